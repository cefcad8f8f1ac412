/* SPDX-License-Identifier: MIT */
/*
 * CPUID: the features --cpu-features names, the edits it makes to KVM's
 * supported table, and each vCPU's topology (one package of N cores).
 */
#ifndef KVMINI_CPUID_H
#define KVMINI_CPUID_H

#include <linux/kvm.h>

#include "vmm/config.h"
#include "vmm/util.h"

/* Index of feature @name (as in /proc/cpuinfo) in the table, or -1. Pure. */
int cpuid_feature_lookup(const char *name);
/* The name of feature index @feature. Pure. */
const char *cpuid_feature_name(int feature);

/* Add to @cpuid (the supported table) what KVM emulates but reports only
 * as a capability of @kvm_fd: the TSC-deadline timer. Main thread. */
void cpuid_add_emulated(struct kvm_cpuid2 *cpuid, int kvm_fd);

/* Apply cfg's feature edits to @cpuid (the supported table). Main thread. */
int cpuid_apply_features(struct kvm_cpuid2 *cpuid, const struct vm_config *cfg, struct errbuf *err);

/*
 * Give vCPU @vcpu_id (fd @vcpu_fd) of @ncpus the table @cpuid with its own
 * topology fields (APIC ID, counts): KVM_SET_CPUID2. Main thread, at vCPU
 * creation. -errno with @err.
 */
int cpuid_setup_vcpu(int vcpu_fd, int vcpu_id, const struct kvm_cpuid2 *cpuid, int ncpus,
		     struct errbuf *err);

#endif
