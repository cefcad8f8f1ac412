/* SPDX-License-Identifier: MIT */
/*
 * Hyper-V enlightenments (--hyperv), as QEMU's -cpu hv_passthrough: every
 * one KVM supports, in KVM. What stays in userspace is the SynIC's view of
 * each vCPU (its SCONTROL, SIEFP and SIMP, which KVM reports with
 * KVM_EXIT_HYPERV_SYNIC) and the two hypercalls KVM leaves to us:
 * HvPostMessage always, HvSignalEvent for a connection with no eventfd.
 * Both go to the connection handlers a device registered (the
 * hyperv-testdev, vmm/hyperv_testdev.h); without one they fail with
 * HV_STATUS_INVALID_CONNECTION_ID, and every other hypercall with
 * HV_STATUS_INVALID_HYPERCALL_CODE.
 *
 * Threads: vCPU threads report exits; any thread posts messages and sets
 * event flags (the lock orders them with the exits).
 */
#ifndef KVMINI_HYPERV_H
#define KVMINI_HYPERV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/* Hypercall status codes (TLFS). */
#define HV_STATUS_SUCCESS		  0
#define HV_STATUS_INVALID_HYPERCALL_CODE  2
#define HV_STATUS_INVALID_HYPERCALL_INPUT 3
#define HV_STATUS_INVALID_ALIGNMENT	  4
#define HV_STATUS_INVALID_PARAMETER	  5
#define HV_STATUS_INVALID_CONNECTION_ID	  0x12
#define HV_STATUS_INSUFFICIENT_BUFFERS	  0x13

#define HVCALL_POST_MESSAGE 0x5c
#define HVCALL_SIGNAL_EVENT 0x5d

#define HV_SINT_COUNT		16
#define HV_MESSAGE_SIZE		256
#define HV_MESSAGE_PAYLOAD_SIZE 240
#define HV_EVENT_FLAGS_BYTES	256 /* one SINT's slot of the event flags page */
#define HV_CONNECTION_ID_MASK	0xffffff

/* A SynIC message as it sits in a SIMP slot (TLFS HV_MESSAGE). */
struct hv_message {
	uint32_t message_type; /* 0: the slot is free */
	uint8_t payload_size;
	uint8_t flags; /* bit 0: msg_pending */
	uint8_t reserved[2];
	uint64_t sender;
	uint8_t payload[HV_MESSAGE_PAYLOAD_SIZE];
};
#define HV_MESSAGE_FLAG_PENDING 1

/* HvPostMessage's input page (TLFS HV_INPUT_POST_MESSAGE). */
struct hv_post_message_input {
	uint32_t connection_id;
	uint32_t reserved;
	uint32_t message_type;
	uint32_t payload_size;
	uint8_t payload[HV_MESSAGE_PAYLOAD_SIZE];
};

/*
 * Put @msg in the SIMP slot at @slot (HV_MESSAGE_SIZE bytes of guest
 * memory the guest may be using meanwhile) unless the slot is busy
 * (message_type != 0): then set its msg_pending flag, so that the guest
 * writes EOM once it freed the slot, and return -EAGAIN. The type is
 * stored last, so the guest never sees a half-written message. 0 when
 * delivered. Pure (on @slot). Any thread.
 */
int hyperv_slot_post(void *slot, const struct hv_message *msg);

/* Set event flag @bit (0..2047) in the SIEFP slot at @flags (atomically,
 * the guest clears flags meanwhile). True if it was clear: only then must
 * the SINT be signalled. Pure (on @flags). Any thread. */
bool hyperv_flag_set(void *flags, unsigned bit);

/*
 * Check HvPostMessage's input @in (read from guest memory) and make the
 * message it asks for in @out. HV_STATUS_SUCCESS or the status to return.
 * Pure.
 */
unsigned hyperv_post_input_check(const struct hv_post_message_input *in, struct hv_message *out);

/* The handlers of the connections a device offers (hyperv_set_handlers). */
struct hyperv_conn_ops {
	/* HvPostMessage to connection @conn_id of message @msg: a status. On
	 * the calling vCPU's thread. */
	unsigned (*post_message)(void *opaque, uint32_t conn_id, const struct hv_message *msg);
	/* HvSignalEvent on @conn_id that KVM did not handle: a status. */
	unsigned (*signal_event)(void *opaque, uint32_t conn_id, uint16_t flag);
};

struct hyperv_synic {
	uint64_t control, evt_page, msg_page; /* as the guest last wrote them */
};

struct hyperv {
	const struct guest_mem *mem;
	int ncpus;
	pthread_mutex_t lock; /* synic[], ops */
	struct hyperv_synic *synic;
	const struct hyperv_conn_ops *ops;
	void *ops_opaque;
};

/*
 * Merge the Hyper-V CPUID leaves KVM supports (KVM_GET_SUPPORTED_HV_CPUID
 * on @kvm_fd, KVM_CAP_SYS_HYPERV_CPUID) into *@cpuid at 0x40000000, moving
 * KVM's own paravirtual leaves to 0x40000100 (where KVM and Linux also look
 * for them). *@cpuid is reallocated. Main thread. -errno with @err.
 */
int hyperv_cpuid_merge(struct kvm_cpuid2 **cpuid, int kvm_fd, struct errbuf *err);

/* The SynIC state for @ncpus vCPUs over @mem. Main thread. -ENOMEM. */
int hyperv_init(struct hyperv *hv, const struct guest_mem *mem, int ncpus);
void hyperv_destroy(struct hyperv *hv);

/* Turn on vCPU @vcpu_fd's SynIC (KVM_CAP_HYPERV_SYNIC2). Main thread, at
 * vCPU creation. -errno with @err. */
int hyperv_enable_vcpu(int vcpu_fd, int vcpu_id, struct errbuf *err);

/*
 * Handle KVM_EXIT_HYPERV @e of vCPU @vcpu_id: record its SynIC registers,
 * or run the hypercall and set its result. The vCPU's thread.
 */
void hyperv_handle_exit(struct hyperv *hv, int vcpu_id, struct kvm_hyperv_exit *e);

/* Route HvPostMessage / HvSignalEvent to @ops (NULL: none). Main thread. */
void hyperv_set_handlers(struct hyperv *hv, const struct hyperv_conn_ops *ops, void *opaque);

/*
 * Host pointer to SINT @sint's slot of vCPU @vcpu's message page (@events
 * false) or event flags page (@events true), NULL when that page or the
 * SynIC is off or not in RAM. Any thread; the pointer stays valid (guest
 * RAM) but the guest may move the page at any time.
 */
void *hyperv_synic_slot(struct hyperv *hv, int vcpu, unsigned sint, bool events);

#endif
