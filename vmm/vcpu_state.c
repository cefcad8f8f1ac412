// SPDX-License-Identifier: MIT
/* A vCPU's KVM state for snapshots: which ioctls, in which order. See vmm/vcpu_state.h. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/vcpu_state.h"

#define MSR_IA32_TSC_DEADLINE 0x6e0

/* Every MSR KVM lists that it can also read back for this vCPU. */
static int vcpu_state_get_msrs(struct vcpu *v, struct vcpu_state *sv, struct errbuf *err)
{
	struct {
		struct kvm_msr_list hdr;
		uint32_t idx[512];
	} list = {.hdr.nmsrs = 512};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} one;

	if (ioctl(v->group->kvm_fd, KVM_GET_MSR_INDEX_LIST, &list) < 0)
		return err_set(err, errno, "snapshot: KVM_GET_MSR_INDEX_LIST: %s", strerror(errno));
	sv->nmsrs = 0;
	for (uint32_t i = 0; i < list.hdr.nmsrs && i < 512; i++) {
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e[0].index = list.idx[i];
		if (ioctl(v->fd, KVM_GET_MSRS, &one) != 1)
			continue; /* listed but not readable for this vCPU model */
		if (sv->nmsrs == VCPU_STATE_MAX_MSRS)
			return err_set(err, E2BIG, "snapshot: more than %d MSRs",
				       VCPU_STATE_MAX_MSRS);
		sv->msrs[sv->nmsrs].index = one.e[0].index;
		sv->msrs[sv->nmsrs].data = one.e[0].data;
		sv->nmsrs++;
	}
	return 0;
}

int vcpu_state_save(struct vcpu *v, struct vcpu_state *sv, struct errbuf *err)
{
	static const struct {
		unsigned long req;
		size_t off;
		const char *name;
	} gets[] = {
	    {KVM_GET_REGS, offsetof(struct vcpu_state, regs), "KVM_GET_REGS"},
	    {KVM_GET_SREGS, offsetof(struct vcpu_state, sregs), "KVM_GET_SREGS"},
	    {KVM_GET_XSAVE, offsetof(struct vcpu_state, xsave), "KVM_GET_XSAVE"},
	    {KVM_GET_XCRS, offsetof(struct vcpu_state, xcrs), "KVM_GET_XCRS"},
	    {KVM_GET_LAPIC, offsetof(struct vcpu_state, lapic), "KVM_GET_LAPIC"},
	    {KVM_GET_MP_STATE, offsetof(struct vcpu_state, mp_state), "KVM_GET_MP_STATE"},
	    {KVM_GET_VCPU_EVENTS, offsetof(struct vcpu_state, events), "KVM_GET_VCPU_EVENTS"},
	    {KVM_GET_DEBUGREGS, offsetof(struct vcpu_state, debugregs), "KVM_GET_DEBUGREGS"},
	};

	struct {
		struct kvm_cpuid2 hdr;
		struct kvm_cpuid_entry2 e[VCPU_STATE_MAX_CPUID];
	} cpuid = {.hdr.nent = VCPU_STATE_MAX_CPUID};

	memset(sv, 0, sizeof(*sv));
	for (size_t i = 0; i < ARRAY_SIZE(gets); i++)
		if (ioctl(v->fd, gets[i].req, (uint8_t *)sv + gets[i].off) < 0)
			return err_set(err, errno, "snapshot: vCPU %d: %s: %s", v->id, gets[i].name,
				       strerror(errno));
	if (ioctl(v->fd, KVM_GET_CPUID2, &cpuid) < 0)
		return err_set(err, errno, "snapshot: vCPU %d: KVM_GET_CPUID2: %s", v->id,
			       strerror(errno));
	sv->ncpuid = cpuid.hdr.nent;
	memcpy(sv->cpuid, cpuid.e, sv->ncpuid * sizeof(cpuid.e[0]));
	return vcpu_state_get_msrs(v, sv, err);
}

/*
 * Write the saved IA32_TSC_DEADLINE again, after KVM_SET_LAPIC: KVM drops a
 * deadline written while the LVT timer is not in TSC-deadline mode (a
 * fresh vCPU's is one-shot), and clears it when KVM_SET_LAPIC changes the
 * mode. Lost, the guest's armed timer never fires: a tickless Linux then
 * sleeps forever (every sleep, every timeout) after a restore.
 */
static int vcpu_state_put_tsc_deadline(struct vcpu *v, const struct vcpu_state *sv)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[1];
	} one;

	for (uint32_t m = 0; m < sv->nmsrs; m++) {
		if (sv->msrs[m].index != MSR_IA32_TSC_DEADLINE)
			continue;
		memset(&one, 0, sizeof(one));
		one.hdr.nmsrs = 1;
		one.e[0].index = MSR_IA32_TSC_DEADLINE;
		one.e[0].data = sv->msrs[m].data;
		return ioctl(v->fd, KVM_SET_MSRS, &one) == 1 ? 0 : -EINVAL;
	}
	return 0;
}

int vcpu_state_load(struct vcpu *v, const struct vcpu_state *sv, struct errbuf *err)
{
	/* The order KVM needs: sregs (APIC base, EFER) before the LAPIC and
	 * MSRs; events and MP state last. */
	static const struct {
		unsigned long req;
		size_t off;
		const char *name;
	} sets[] = {
	    {KVM_SET_SREGS, offsetof(struct vcpu_state, sregs), "special registers"},
	    {KVM_SET_REGS, offsetof(struct vcpu_state, regs), "registers"},
	    {KVM_SET_XSAVE, offsetof(struct vcpu_state, xsave), "XSAVE state"},
	    {KVM_SET_XCRS, offsetof(struct vcpu_state, xcrs), "XCRs"},
	    {KVM_SET_LAPIC, offsetof(struct vcpu_state, lapic), "local APIC"},
	    {KVM_SET_VCPU_EVENTS, offsetof(struct vcpu_state, events), "pending events"},
	    {KVM_SET_DEBUGREGS, offsetof(struct vcpu_state, debugregs), "debug registers"},
	    {KVM_SET_MP_STATE, offsetof(struct vcpu_state, mp_state), "MP state"},
	};
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e[VCPU_STATE_MAX_MSRS];
	} msrs = {0};
	uint32_t mp = sv->mp_state.mp_state;
	int n;

	if (mp != KVM_MP_STATE_RUNNABLE && mp != KVM_MP_STATE_UNINITIALIZED &&
	    mp != KVM_MP_STATE_INIT_RECEIVED && mp != KVM_MP_STATE_HALTED &&
	    mp != KVM_MP_STATE_SIPI_RECEIVED)
		return err_set(err, EINVAL, "snapshot: vCPU %d has an invalid MP state %u", v->id,
			       mp);
	if (sv->nmsrs > VCPU_STATE_MAX_MSRS)
		return err_set(err, EINVAL, "snapshot: vCPU %d has %u MSRs (at most %d)", v->id,
			       sv->nmsrs, VCPU_STATE_MAX_MSRS);
	if (sv->ncpuid == 0 || sv->ncpuid > VCPU_STATE_MAX_CPUID)
		return err_set(err, EINVAL, "snapshot: vCPU %d has %u CPUID entries (1..%d)", v->id,
			       sv->ncpuid, VCPU_STATE_MAX_CPUID);
	{
		struct {
			struct kvm_cpuid2 hdr;
			struct kvm_cpuid_entry2 e[VCPU_STATE_MAX_CPUID];
		} cpuid = {.hdr.nent = sv->ncpuid};

		memcpy(cpuid.e, sv->cpuid, sv->ncpuid * sizeof(cpuid.e[0]));
		if (ioctl(v->fd, KVM_SET_CPUID2, &cpuid) < 0)
			return err_set(err, errno,
				       "snapshot: vCPU %d: KVM refused the saved CPUID: %s", v->id,
				       strerror(errno));
	}
	for (size_t i = 0; i < ARRAY_SIZE(sets); i++) {
		if (sets[i].req == KVM_SET_LAPIC) {
			msrs.hdr.nmsrs = sv->nmsrs;
			for (uint32_t m = 0; m < sv->nmsrs; m++) {
				msrs.e[m].index = sv->msrs[m].index;
				msrs.e[m].data = sv->msrs[m].data;
			}
			n = ioctl(v->fd, KVM_SET_MSRS, &msrs);
			if (n != (int)sv->nmsrs)
				return err_set(
				    err, EINVAL, "snapshot: vCPU %d: KVM refused MSR 0x%x", v->id,
				    n >= 0 && (uint32_t)n < sv->nmsrs ? sv->msrs[n].index : 0);
		}
		if (ioctl(v->fd, sets[i].req, (const uint8_t *)sv + sets[i].off) < 0)
			return err_set(err, errno,
				       "snapshot: vCPU %d: KVM refused the saved %s: %s", v->id,
				       sets[i].name, strerror(errno));
		if (sets[i].req == KVM_SET_LAPIC) {
			n = vcpu_state_put_tsc_deadline(v, sv);
			if (n < 0)
				return err_set(err, -n,
					       "snapshot: vCPU %d: KVM refused the TSC deadline",
					       v->id);
		}
	}
	return 0;
}
