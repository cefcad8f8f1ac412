/* SPDX-License-Identifier: MIT */
/*
 * One vCPU's whole KVM state, read and written for snapshots. vcpu_state.c
 * owns the KVM calls and their order; vmm/snapshot.c stores the struct as
 * a section and knows nothing of what is in it.
 */
#ifndef KVMINI_VCPU_STATE_H
#define KVMINI_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

#include "vmm/util.h"
#include "vmm/vcpu.h"

#define VCPU_STATE_MAX_MSRS  128
#define VCPU_STATE_MAX_CPUID 128

struct vcpu_state_msr {
	uint32_t index;
	uint32_t reserved;
	uint64_t data;
};

/*
 * The KVM state structs (fixed UAPI layouts), MSRs and CPUID. This layout is
 * the payload of snapshot section "vcpu.N" version 1 (docs/snapshot.md):
 * changing it means a new section version.
 */
struct vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_lapic_state lapic;
	struct kvm_mp_state mp_state;
	struct kvm_vcpu_events events;
	struct kvm_debugregs debugregs;
	uint32_t nmsrs;
	uint32_t ncpuid;
	struct vcpu_state_msr msrs[VCPU_STATE_MAX_MSRS];
	/* The CPUID the guest saw: a restored guest must see the same. */
	struct kvm_cpuid_entry2 cpuid[VCPU_STATE_MAX_CPUID];
};

/*
 * Read @v's state into @s: registers, FPU/XSAVE, LAPIC, MP state, pending
 * events, debug registers, CPUID and every MSR KVM lists that reads back.
 * Main thread, the vCPU parked (vcpu_group_pause) or never run. -errno
 * with @err.
 */
int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct errbuf *err);

/*
 * Check @s (it comes from a file: MP state, MSR and CPUID counts) and give
 * it to @v in the order KVM needs. Main thread, the vCPU not running.
 * -EINVAL or KVM's -errno with @err; the vCPU may then be half written
 * (the caller destroys the VM).
 */
int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct errbuf *err);

#endif
