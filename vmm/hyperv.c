// SPDX-License-Identifier: MIT
/* Hyper-V enlightenments: CPUID, SynIC registers, hypercalls. See vmm/hyperv.h. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/hyperv.h"

#define HV_CPUID_BASE	     0x40000000u
#define HV_CPUID_KVM	     0x40000100u /* where KVM's own leaves move */
#define HV_CPUID_NESTED	     0x4000000au
#define HV_CPUID_SYNDBG	     0x40000080u
#define HV_CPUID_ENLIGHT     0x40000004u
#define HV_EVMCS_RECOMMENDED (1u << 14)

#define HV_MSR_SCONTROL 0x40000080u
#define HV_MSR_SIEFP	0x40000082u
#define HV_MSR_SIMP	0x40000083u
#define HV_ENABLE	1ull

int hyperv_slot_post(void *slot, const struct hv_message *msg)
{
	struct hv_message *dst = slot;

	if (__atomic_load_n(&dst->message_type, __ATOMIC_ACQUIRE) != 0) {
		/* The guest only ever clears the type; it reads the flag after. */
		__atomic_fetch_or(&dst->flags, HV_MESSAGE_FLAG_PENDING, __ATOMIC_SEQ_CST);
		return -EAGAIN;
	}
	memcpy((char *)dst + offsetof(struct hv_message, payload_size),
	       (const char *)msg + offsetof(struct hv_message, payload_size),
	       sizeof(*msg) - offsetof(struct hv_message, payload_size));
	__atomic_store_n(&dst->message_type, msg->message_type, __ATOMIC_RELEASE);
	return 0;
}

bool hyperv_flag_set(void *flags, unsigned bit)
{
	uint64_t *word = (uint64_t *)flags + (bit / 64) % (HV_EVENT_FLAGS_BYTES / 8);
	uint64_t mask = 1ull << (bit % 64);

	return !(__atomic_fetch_or(word, mask, __ATOMIC_SEQ_CST) & mask);
}

unsigned hyperv_post_input_check(const struct hv_post_message_input *in, struct hv_message *out)
{
	if (in->connection_id & ~(uint32_t)HV_CONNECTION_ID_MASK)
		return HV_STATUS_INVALID_CONNECTION_ID;
	/* Types with bit 31 set are the hypervisor's own (timer expired, ...). */
	if (in->message_type == 0 || (in->message_type & 0x80000000u))
		return HV_STATUS_INVALID_PARAMETER;
	if (in->payload_size > HV_MESSAGE_PAYLOAD_SIZE)
		return HV_STATUS_INVALID_PARAMETER;
	memset(out, 0, sizeof(*out));
	out->message_type = in->message_type;
	out->payload_size = (uint8_t)in->payload_size;
	memcpy(out->payload, in->payload, in->payload_size);
	return HV_STATUS_SUCCESS;
}

static int hyperv_get_hv_cpuid(int kvm_fd, struct kvm_cpuid2 **out, struct errbuf *err)
{
	if (ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYS_HYPERV_CPUID) <= 0)
		return err_set(
		    err, ENOTSUP,
		    "--hyperv: this host's KVM lacks KVM_CAP_SYS_HYPERV_CPUID (Linux 5.11+)");
	for (uint32_t n = 32; n <= 1024; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return err_set(err, ENOMEM, "--hyperv: out of memory");
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_HV_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return err_set(err, errno, "--hyperv: KVM_GET_SUPPORTED_HV_CPUID: %s",
				       strerror(errno));
	}
	return err_set(err, E2BIG, "--hyperv: KVM_GET_SUPPORTED_HV_CPUID: too many entries");
}

int hyperv_cpuid_merge(struct kvm_cpuid2 **cpuid, int kvm_fd, struct errbuf *err)
{
	struct kvm_cpuid2 *hv = NULL, *old = *cpuid, *c;
	struct kvm_cpuid_entry2 *vendor = NULL;
	uint32_t max = HV_CPUID_BASE;
	int ret = hyperv_get_hv_cpuid(kvm_fd, &hv, err);

	if (ret < 0)
		return ret;
	c = calloc(1, sizeof(*c) + (old->nent + hv->nent) * sizeof(c->entries[0]));
	if (!c) {
		free(hv);
		return err_set(err, ENOMEM, "--hyperv: out of memory");
	}
	for (uint32_t i = 0; i < old->nent; i++) {
		struct kvm_cpuid_entry2 e = old->entries[i];

		if (e.function >= HV_CPUID_BASE && e.function < HV_CPUID_KVM) {
			e.function += HV_CPUID_KVM - HV_CPUID_BASE;
			if (e.function == HV_CPUID_KVM && e.eax >= HV_CPUID_BASE &&
			    e.eax < HV_CPUID_KVM)
				e.eax += HV_CPUID_KVM - HV_CPUID_BASE; /* its max leaf */
		}
		c->entries[c->nent++] = e;
	}
	for (uint32_t i = 0; i < hv->nent; i++) {
		struct kvm_cpuid_entry2 e = hv->entries[i];

		/* Not offered: the synthetic debugger (its leaves would need
		 * KVM_CAP_HYPERV_SYNDBG handling) and the enlightened VMCS
		 * (KVM_CAP_HYPERV_ENLIGHTENED_VMCS, Intel only). */
		if (e.function >= HV_CPUID_SYNDBG || e.function < HV_CPUID_BASE)
			continue;
		if (e.function == HV_CPUID_ENLIGHT)
			e.eax &= ~HV_EVMCS_RECOMMENDED;
		if (e.function == HV_CPUID_NESTED)
			e.eax = 0;
		if (e.function > max)
			max = e.function;
		c->entries[c->nent++] = e;
	}
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == HV_CPUID_BASE)
			vendor = &c->entries[i];
	if (vendor)
		vendor->eax = max;
	free(hv);
	free(old);
	*cpuid = c;
	return 0;
}

int hyperv_init(struct hyperv *hv, const struct guest_mem *mem, int ncpus)
{
	memset(hv, 0, sizeof(*hv));
	hv->synic = calloc((size_t)ncpus, sizeof(*hv->synic));
	if (!hv->synic)
		return -ENOMEM;
	hv->mem = mem;
	hv->ncpus = ncpus;
	pthread_mutex_init(&hv->lock, NULL);
	return 0;
}

void hyperv_destroy(struct hyperv *hv)
{
	if (!hv->synic)
		return;
	pthread_mutex_destroy(&hv->lock);
	free(hv->synic);
	hv->synic = NULL;
}

int hyperv_enable_vcpu(int vcpu_fd, int vcpu_id, struct errbuf *err)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_HYPERV_SYNIC2};

	if (ioctl(vcpu_fd, KVM_ENABLE_CAP, &cap) < 0)
		return err_set(err, errno, "--hyperv: vcpu %d: KVM_CAP_HYPERV_SYNIC2: %s", vcpu_id,
			       strerror(errno));
	return 0;
}

void hyperv_set_handlers(struct hyperv *hv, const struct hyperv_conn_ops *ops, void *opaque)
{
	pthread_mutex_lock(&hv->lock);
	hv->ops = ops;
	hv->ops_opaque = opaque;
	pthread_mutex_unlock(&hv->lock);
}

void *hyperv_synic_slot(struct hyperv *hv, int vcpu, unsigned sint, bool events)
{
	uint64_t page = 0;
	bool on;

	if (vcpu < 0 || vcpu >= hv->ncpus || sint >= HV_SINT_COUNT)
		return NULL;
	pthread_mutex_lock(&hv->lock);
	page = events ? hv->synic[vcpu].evt_page : hv->synic[vcpu].msg_page;
	on = (hv->synic[vcpu].control & HV_ENABLE) && (page & HV_ENABLE);
	pthread_mutex_unlock(&hv->lock);
	if (!on)
		return NULL;
	page &= ~0xfffull;
	return guest_mem_ptr(hv->mem, page + sint * (uint64_t)HV_MESSAGE_SIZE, HV_MESSAGE_SIZE);
}

static uint64_t hyperv_post_message(struct hyperv *hv, uint64_t gpa, bool fast)
{
	struct hv_post_message_input in;
	struct hv_message msg;
	unsigned status;

	if (fast)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	if (gpa & 7)
		return HV_STATUS_INVALID_ALIGNMENT;
	if (guest_mem_read(hv->mem, gpa, &in, sizeof(in)) < 0)
		return HV_STATUS_INVALID_HYPERCALL_INPUT;
	status = hyperv_post_input_check(&in, &msg);
	if (status != HV_STATUS_SUCCESS)
		return status;
	/* ops are set once at realize, before any vCPU runs. */
	if (!hv->ops || !hv->ops->post_message)
		return HV_STATUS_INVALID_CONNECTION_ID;
	return hv->ops->post_message(hv->ops_opaque, in.connection_id, &msg);
}

static uint64_t hyperv_signal_event(struct hyperv *hv, uint64_t param, bool fast)
{
	uint64_t in = param;

	if (!fast) {
		if (param & 7)
			return HV_STATUS_INVALID_ALIGNMENT;
		if (guest_mem_read(hv->mem, param, &in, sizeof(in)) < 0)
			return HV_STATUS_INVALID_HYPERCALL_INPUT;
	}
	/* Input: ConnectionId (32 bits), FlagNumber (16 bits), reserved. */
	if ((uint32_t)in & ~(uint32_t)HV_CONNECTION_ID_MASK)
		return HV_STATUS_INVALID_CONNECTION_ID;
	if (!hv->ops || !hv->ops->signal_event)
		return HV_STATUS_INVALID_CONNECTION_ID;
	return hv->ops->signal_event(hv->ops_opaque, (uint32_t)in, (uint16_t)(in >> 32));
}

void hyperv_handle_exit(struct hyperv *hv, int vcpu_id, struct kvm_hyperv_exit *e)
{
	switch (e->type) {
	case KVM_EXIT_HYPERV_SYNIC:
		if (vcpu_id < 0 || vcpu_id >= hv->ncpus)
			return;
		pthread_mutex_lock(&hv->lock);
		hv->synic[vcpu_id].control = e->u.synic.control;
		hv->synic[vcpu_id].evt_page = e->u.synic.evt_page;
		hv->synic[vcpu_id].msg_page = e->u.synic.msg_page;
		pthread_mutex_unlock(&hv->lock);
		return;
	case KVM_EXIT_HYPERV_HCALL: {
		uint16_t code = (uint16_t)e->u.hcall.input;
		bool fast = e->u.hcall.input & (1u << 16);

		if (code == HVCALL_POST_MESSAGE)
			e->u.hcall.result = hyperv_post_message(hv, e->u.hcall.params[0], fast);
		else if (code == HVCALL_SIGNAL_EVENT)
			e->u.hcall.result = hyperv_signal_event(hv, e->u.hcall.params[0], fast);
		else
			e->u.hcall.result = HV_STATUS_INVALID_HYPERCALL_CODE;
		return;
	}
	default:
		return; /* the synthetic debugger: not offered */
	}
}
