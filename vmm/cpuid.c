// SPDX-License-Identifier: MIT
/*
 * CPUID: start from KVM_GET_SUPPORTED_CPUID, apply --cpu-features edits, and
 * give each vCPU a consistent topology: one package of N cores, one thread
 * each, APIC IDs 0..N-1 (leaves 0x1, 0x4, 0xB, 0x1F, 0x8000_0008).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/cpuid.h"

enum { R_EAX, R_EBX, R_ECX, R_EDX };

struct cpuid_feature {
	const char *name;
	uint32_t leaf;
	uint32_t subleaf;
	uint8_t reg;
	uint8_t bit;
};

/* Names as Linux prints them in /proc/cpuinfo. */
static const struct cpuid_feature cpuid_features[] = {
    {"fpu", 1, 0, R_EDX, 0},
    {"vme", 1, 0, R_EDX, 1},
    {"de", 1, 0, R_EDX, 2},
    {"pse", 1, 0, R_EDX, 3},
    {"tsc", 1, 0, R_EDX, 4},
    {"msr", 1, 0, R_EDX, 5},
    {"pae", 1, 0, R_EDX, 6},
    {"mce", 1, 0, R_EDX, 7},
    {"cx8", 1, 0, R_EDX, 8},
    {"apic", 1, 0, R_EDX, 9},
    {"sep", 1, 0, R_EDX, 11},
    {"mtrr", 1, 0, R_EDX, 12},
    {"pge", 1, 0, R_EDX, 13},
    {"mca", 1, 0, R_EDX, 14},
    {"cmov", 1, 0, R_EDX, 15},
    {"pat", 1, 0, R_EDX, 16},
    {"pse36", 1, 0, R_EDX, 17},
    {"clflush", 1, 0, R_EDX, 19},
    {"mmx", 1, 0, R_EDX, 23},
    {"fxsr", 1, 0, R_EDX, 24},
    {"sse", 1, 0, R_EDX, 25},
    {"sse2", 1, 0, R_EDX, 26},
    {"ht", 1, 0, R_EDX, 28},
    {"sse3", 1, 0, R_ECX, 0},
    {"pclmulqdq", 1, 0, R_ECX, 1},
    {"monitor", 1, 0, R_ECX, 3},
    {"vmx", 1, 0, R_ECX, 5},
    {"ssse3", 1, 0, R_ECX, 9},
    {"fma", 1, 0, R_ECX, 12},
    {"cx16", 1, 0, R_ECX, 13},
    {"pdcm", 1, 0, R_ECX, 15},
    {"pcid", 1, 0, R_ECX, 17},
    {"sse4_1", 1, 0, R_ECX, 19},
    {"sse4_2", 1, 0, R_ECX, 20},
    {"x2apic", 1, 0, R_ECX, 21},
    {"movbe", 1, 0, R_ECX, 22},
    {"popcnt", 1, 0, R_ECX, 23},
    {"tsc_deadline_timer", 1, 0, R_ECX, 24},
    {"aes", 1, 0, R_ECX, 25},
    {"xsave", 1, 0, R_ECX, 26},
    {"avx", 1, 0, R_ECX, 28},
    {"f16c", 1, 0, R_ECX, 29},
    {"rdrand", 1, 0, R_ECX, 30},
    {"hypervisor", 1, 0, R_ECX, 31},
    {"fsgsbase", 7, 0, R_EBX, 0},
    {"bmi1", 7, 0, R_EBX, 3},
    {"hle", 7, 0, R_EBX, 4},
    {"avx2", 7, 0, R_EBX, 5},
    {"smep", 7, 0, R_EBX, 7},
    {"bmi2", 7, 0, R_EBX, 8},
    {"erms", 7, 0, R_EBX, 9},
    {"invpcid", 7, 0, R_EBX, 10},
    {"rtm", 7, 0, R_EBX, 11},
    {"avx512f", 7, 0, R_EBX, 16},
    {"avx512dq", 7, 0, R_EBX, 17},
    {"rdseed", 7, 0, R_EBX, 18},
    {"adx", 7, 0, R_EBX, 19},
    {"smap", 7, 0, R_EBX, 20},
    {"avx512ifma", 7, 0, R_EBX, 21},
    {"clflushopt", 7, 0, R_EBX, 23},
    {"clwb", 7, 0, R_EBX, 24},
    {"avx512cd", 7, 0, R_EBX, 28},
    {"sha_ni", 7, 0, R_EBX, 29},
    {"avx512bw", 7, 0, R_EBX, 30},
    {"avx512vl", 7, 0, R_EBX, 31},
    {"avx512vbmi", 7, 0, R_ECX, 1},
    {"umip", 7, 0, R_ECX, 2},
    {"pku", 7, 0, R_ECX, 3},
    {"vaes", 7, 0, R_ECX, 9},
    {"vpclmulqdq", 7, 0, R_ECX, 10},
    {"rdpid", 7, 0, R_ECX, 22},
    {"fsrm", 7, 0, R_EDX, 4},
    {"xsaveopt", 0xd, 1, R_EAX, 0},
    {"xsavec", 0xd, 1, R_EAX, 1},
    {"xgetbv1", 0xd, 1, R_EAX, 2},
    {"xsaves", 0xd, 1, R_EAX, 3},
    {"lahf_lm", 0x80000001, 0, R_ECX, 0},
    {"svm", 0x80000001, 0, R_ECX, 2},
    {"abm", 0x80000001, 0, R_ECX, 5},
    {"sse4a", 0x80000001, 0, R_ECX, 6},
    {"3dnowprefetch", 0x80000001, 0, R_ECX, 8},
    {"skinit", 0x80000001, 0, R_ECX, 12},
    {"syscall", 0x80000001, 0, R_EDX, 11},
    {"nx", 0x80000001, 0, R_EDX, 20},
    {"pdpe1gb", 0x80000001, 0, R_EDX, 26},
    {"rdtscp", 0x80000001, 0, R_EDX, 27},
    {"lm", 0x80000001, 0, R_EDX, 29},
    {"npt", 0x8000000a, 0, R_EDX, 0},
    /* KVM's paravirtual features (leaf 0x40000001), named as QEMU names them. */
    {"kvmclock", 0x40000001, 0, R_EAX, 0},
    {"kvm-nopiodelay", 0x40000001, 0, R_EAX, 1},
    {"kvmclock2", 0x40000001, 0, R_EAX, 3},
    {"kvm-asyncpf", 0x40000001, 0, R_EAX, 4},
    {"kvm-steal-time", 0x40000001, 0, R_EAX, 5},
    {"kvm-pv-eoi", 0x40000001, 0, R_EAX, 6},
    {"kvm-pv-unhalt", 0x40000001, 0, R_EAX, 7},
    {"kvm-pv-tlb-flush", 0x40000001, 0, R_EAX, 9},
    {"kvm-asyncpf-vmexit", 0x40000001, 0, R_EAX, 10},
    {"kvm-pv-ipi", 0x40000001, 0, R_EAX, 11},
    {"kvm-poll-control", 0x40000001, 0, R_EAX, 12},
    {"kvm-pv-sched-yield", 0x40000001, 0, R_EAX, 13},
    {"kvm-asyncpf-int", 0x40000001, 0, R_EAX, 14},
    {"kvm-msi-ext-dest-id", 0x40000001, 0, R_EAX, 15},
    {"kvmclock-stable-bit", 0x40000001, 0, R_EAX, 24},
};

int cpuid_feature_lookup(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cpuid_features); i++)
		if (!strcmp(cpuid_features[i].name, name))
			return (int)i;
	return -ENOENT;
}

const char *cpuid_feature_name(int feature)
{
	if (feature < 0 || (size_t)feature >= ARRAY_SIZE(cpuid_features))
		return NULL;
	return cpuid_features[feature].name;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t leaf, uint32_t sub)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != leaf)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != sub)
			continue;
		return e;
	}
	return NULL;
}

static uint32_t *cpuid_reg(struct kvm_cpuid_entry2 *e, int reg)
{
	switch (reg) {
	case R_EAX:
		return &e->eax;
	case R_EBX:
		return &e->ebx;
	case R_ECX:
		return &e->ecx;
	default:
		return &e->edx;
	}
}

void cpuid_add_emulated(struct kvm_cpuid2 *cpuid, int kvm_fd)
{
	struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, 1, 0);

	/* KVM emulates the LAPIC's TSC-deadline mode in its in-kernel LAPIC
	 * (kvmini always has one) but leaves the bit out of the supported
	 * table: the capability says it, as QEMU reads it. */
	if (e && ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0)
		e->ecx |= 1u << 24;
}

int cpuid_apply_features(struct kvm_cpuid2 *cpuid, const struct vm_config *cfg, struct errbuf *err)
{
	for (unsigned i = 0; i < cfg->nfeatures; i++) {
		const struct feature_edit *fe = &cfg->features[i];
		const struct cpuid_feature *f = &cpuid_features[fe->feature];
		struct kvm_cpuid_entry2 *e = cpuid_find(cpuid, f->leaf, f->subleaf);
		uint32_t *r = e ? cpuid_reg(e, f->reg) : NULL;

		if (fe->enable) {
			/* We can only offer what KVM supports: +name checks it. */
			if (!r || !(*r & (1u << f->bit)))
				return err_set(
				    err, ENOTSUP,
				    "--cpu-features: '%s' is not supported by this host's KVM",
				    f->name);
		} else if (r) {
			*r &= ~(1u << f->bit);
			/* Without XSAVE the guest must not see OSXSAVE-dependent state. */
			if (f->leaf == 1 && f->reg == R_ECX && f->bit == 26) {
				*r &= ~(1u << 27);
				*r &= ~(1u << 28); /* avx needs xsave */
			}
		}
	}
	return 0;
}

static int ilog2_ceil(unsigned n)
{
	int s = 0;

	while ((1u << s) < n)
		s++;
	return s;
}

/* Leaf 0xB level @level for a package of @ncpus single-thread cores. */
static struct kvm_cpuid_entry2 cpuid_topology_level(uint32_t level, uint32_t apic_id, int shift,
						    int ncpus)
{
	struct kvm_cpuid_entry2 e = {.function = 0xb,
				     .index = level,
				     .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
				     .edx = apic_id};

	if (level == 0) { /* SMT: one thread per core */
		e.eax = 0;
		e.ebx = 1;
		e.ecx = (1u << 8) | 0;
	} else if (level == 1) { /* core: N per package */
		e.eax = (uint32_t)shift;
		e.ebx = (uint32_t)ncpus;
		e.ecx = (2u << 8) | 1;
	} else { /* invalid level ends the enumeration */
		e.ecx = level;
	}
	return e;
}

int cpuid_setup_vcpu(int vcpu_fd, int vcpu_id, const struct kvm_cpuid2 *cpuid, int ncpus,
		     struct errbuf *err)
{
	/* The supported table may lack leaf 0xB's sub-leaves: rebuild that leaf. */
	uint32_t max = cpuid->nent + 3;
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + max * sizeof(c->entries[0]));
	uint32_t apic_id = (uint32_t)vcpu_id;
	int shift = ilog2_ceil((unsigned)ncpus);
	int ret = 0;

	if (!c)
		return err_set(err, ENOMEM, "vcpu %d: out of memory for CPUID", vcpu_id);
	for (uint32_t i = 0; i < cpuid->nent; i++) {
		struct kvm_cpuid_entry2 e = cpuid->entries[i];

		switch (e.function) {
		case 0:
			if (e.eax < 0xb)
				e.eax = 0xb;
			break;
		case 1:
			/* EBX[31:24] initial APIC ID, EBX[23:16] logical count. */
			e.ebx =
			    (e.ebx & 0xffff) | (apic_id << 24) | ((uint32_t)(1u << shift) << 16);
			if (ncpus > 1)
				e.edx |= 1u << 28; /* HTT: the count field is valid */
			else
				e.edx &= ~(1u << 28);
			e.ecx |= 1u << 31; /* hypervisor */
			break;
		case 4:
			/* EAX[31:26] cores per package - 1 (cache leaves only). */
			if ((e.eax & 0x1f) != 0)
				e.eax = (e.eax & 0x3fff) | ((uint32_t)((1u << shift) - 1) << 26);
			break;
		case 0xb:
		case 0x1f:
			continue; /* rebuilt below */
		case 0x80000008:
			/* ECX[15:12] APIC ID size, ECX[7:0] threads per package - 1. */
			e.ecx = ((uint32_t)shift << 12) | (uint32_t)(ncpus - 1);
			break;
		default:
			break;
		}
		c->entries[c->nent++] = e;
	}
	for (uint32_t level = 0; level < 3; level++)
		c->entries[c->nent++] = cpuid_topology_level(level, apic_id, shift, ncpus);
	if (ioctl(vcpu_fd, KVM_SET_CPUID2, c) < 0)
		ret = err_set(err, errno, "vcpu %d: KVM_SET_CPUID2: %s", vcpu_id, strerror(errno));
	free(c);
	return ret;
}
