/* SPDX-License-Identifier: MIT */
/*
 * vCPUs: one thread each running KVM_RUN, exits dispatched to the buses, and
 * the pause/stop protocol that parks them.
 *
 * A VM owns one struct vcpu_group (vm.h embeds it) and fills in what its
 * vCPUs need: the KVM fds, the buses, guest RAM (for crash reports) and
 * @end, through which a vCPU says why the VM must end. vCPUs know nothing
 * else of the VM.
 */
#ifndef KVMINI_VCPU_H
#define KVMINI_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "vmm/bus.h"
#include "vmm/memory.h"
#include "vmm/util.h"

/* Why a vCPU ends the VM (vcpu_group.end). */
enum vcpu_end {
	VCPU_END_RESET,	     /* the guest asked for a reset (KVM system event) */
	VCPU_END_SHUTDOWN,   /* the guest shut down (KVM system event): status 0 */
	VCPU_END_CRASH,	     /* triple fault, KVM internal error, failed entry, ...: reported */
	VCPU_END_HOST_ERROR, /* KVM_RUN failed */
};

struct vcpu_group;

struct vcpu {
	struct vcpu_group *group;
	int id;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	pthread_t thread;
	bool thread_started;
};

struct vcpu_group {
	/* Set by the owner before vcpu_group_create; read-only after. */
	int kvm_fd;
	int vm_fd;
	struct bus *pio;
	struct bus *mmio;
	const struct guest_mem *mem;
	/* Called once per ending vCPU on its own thread; must be thread safe. */
	void (*end)(void *opaque, enum vcpu_end why);
	/* KVM_EXIT_HYPERV of vCPU @vcpu_id (--hyperv; NULL: such an exit is a
	 * crash). On the vCPU's thread; fills in a hypercall's result. */
	void (*hyperv_exit)(void *opaque, int vcpu_id, struct kvm_hyperv_exit *e);
	/* KVM_EXIT_IOAPIC_EOI: the guest's EOI of @vector, routed to a
	 * userspace IOAPIC pin (split irqchip, --iommu; NULL: such an exit is
	 * a crash). On the vCPU's thread. */
	void (*ioapic_eoi)(void *opaque, uint8_t vector);
	void *opaque;

	struct vcpu *vcpus; /* n of them, created by vcpu_group_create */
	int n;

	/* vCPU threads leave their loop once this is set (see vcpu_group_stop). */
	atomic_bool stopping;
	/*
	 * Pause protocol (vcpu_group_pause / vcpu_group_resume, main thread):
	 * pause_req is set, every vCPU is kicked, and each parks in vcpu_park()
	 * after completing its pending I/O. park_lock protects nparked and
	 * nrunning; park_cond signals both directions.
	 */
	atomic_bool pause_req;
	pthread_mutex_t park_lock;
	pthread_cond_t park_cond;
	int nparked;  /* vCPU threads parked */
	int nrunning; /* vCPU threads inside their loop */
};

/* Locks and flags of an empty group (no vCPU yet). Main thread. */
void vcpu_group_init(struct vcpu_group *g);

/*
 * Create @n vCPUs (ids 0..n-1) on g->vm_fd, each given @cpuid with its own
 * topology, or no CPUID when @cpuid is NULL (a snapshot restore sets the
 * saved one). Main thread. -errno with @err; the vCPUs created so far stay
 * in g->vcpus for vcpu_group_destroy.
 */
int vcpu_group_create(struct vcpu_group *g, int n, const struct kvm_cpuid2 *cpuid,
		      struct errbuf *err);

/* Close every vCPU and free the group. Main thread, after vcpu_group_stop. */
void vcpu_group_destroy(struct vcpu_group *g);

/* Start one thread per vCPU. Main thread. -errno with @err. */
int vcpu_group_start(struct vcpu_group *g, struct errbuf *err);

/*
 * Stop every started vCPU at an instruction boundary (pending port/MMIO
 * accesses completed) and wait until all are parked. vcpu_group_resume
 * lets them run. Main thread.
 */
void vcpu_group_pause(struct vcpu_group *g);
void vcpu_group_resume(struct vcpu_group *g);

/* Make every vCPU thread leave KVM_RUN and its loop, then join them. Main thread. */
void vcpu_group_stop(struct vcpu_group *g);

/*
 * One line per vCPU on @out: where it was (rip, cpl, halted or running),
 * so that a guest stopped by --timeout tells where it hung. After
 * vcpu_group_stop. Main thread.
 */
void vcpu_group_print_where(const struct vcpu_group *g, FILE *out);

/*
 * Registers for a 32-bit boot, PVH or multiboot: flat 32-bit protected mode
 * with the GDT the loaders write at LAYOUT_GDT (vmm/pvh.h), paging off,
 * EFLAGS IF and VM clear, EIP = @entry, EBX = @ebx (PVH: start_info;
 * multiboot: the information structure), EAX = @eax (PVH: 0; multiboot:
 * MB_BOOT_MAGIC). Main thread.
 */
int vcpu_set_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t ebx, uint32_t eax,
			struct errbuf *err);

/*
 * Registers for a Linux 64-bit boot (vmm/bzimage.h): long mode with paging
 * through @cr3, CS/DS as in the GDT the loader wrote at LAYOUT_LINUX_GDT,
 * interrupts off, rip = @entry, rsi = @boot_params. Main thread.
 */
int vcpu_set_boot_state64(struct vcpu *vcpu, uint64_t entry, uint64_t boot_params, uint64_t cr3,
			  struct errbuf *err);

/* The vCPU whose thread calls this, NULL on any other thread. */
struct vcpu *vcpu_self(void);

/*
 * Sleep the calling vCPU thread (@vcpu is vcpu_self()) until wall time
 * @until (CLOCK_REALTIME), forever when NULL, parking it meanwhile for
 * every pause request. Returns 0 at @until, -ECANCELED once the group is
 * stopping. Called from a device's port handler (ACPI S3).
 */
int vcpu_sleep_until(struct vcpu *vcpu, const struct timespec *until);

/*
 * Real mode at @vector as firmware resumes from S3 (CS = vector >> 4,
 * IP = vector & 0xf, flat 64K data segments, paging and long mode off).
 * On @vcpu's own thread, in an exit handler: KVM does not complete the
 * exiting port write's instruction once RIP moved. -errno and @err.
 */
int vcpu_enter_real_mode(struct vcpu *vcpu, uint32_t vector, struct errbuf *err);

/* Park the calling vCPU thread while a pause is requested. vCPU thread. */
void vcpu_park(struct vcpu *vcpu);
/* Kick @vcpu out of KVM_RUN (immediate_exit + signal). Any thread. */
void vcpu_kick(struct vcpu *vcpu);

#endif
