// SPDX-License-Identifier: MIT
/* What `make run` boots: shows what the guest was given, starts the APs. */
#include "guest.h"

static const char *memmap_type(uint32_t t)
{
	switch (t) {
	case MEMMAP_RAM:
		return "ram";
	case MEMMAP_RESERVED:
		return "reserved";
	case MEMMAP_ACPI:
		return "acpi";
	case MEMMAP_NVS:
		return "nvs";
	case MEMMAP_UNUSABLE:
		return "unusable";
	default:
		return "?";
	}
}

static unsigned int greeted; /* APs that have printed their line */

static void ap_hello(unsigned int cpu, void *arg)
{
	printf("demo: cpu %u (apic id %u) is up\n", cpu, this_cpu()->apic_id);
	__atomic_add_fetch(&greeted, 1, __ATOMIC_RELEASE); /* pairs with main's acquire load */
}

int main(void)
{
	uint64_t initrd, initrd_size;
	unsigned int n = smp_cpu_count();

	printf("kvmini demo guest\n");
	printf("cpus: %u\n", n);
	printf("memory map: %u entries, %lu MiB of RAM\n", boot_memmap_count(),
	       boot_ram_bytes() >> 20);
	for (unsigned int i = 0; i < boot_memmap_count(); i++) {
		const struct hvm_memmap_table_entry *e = boot_memmap_entry(i);
		if (e->size == 0)
			printf("  (empty entry, type %u)\n", e->type);
		else
			printf("  0x%012lx-0x%012lx %s\n", e->addr, e->addr + e->size - 1,
			       memmap_type(e->type));
	}
	printf("image: 0x%lx-0x%lx\n", boot_image_start(), boot_image_end() - 1);
	if (!boot_initrd(&initrd, &initrd_size))
		printf("initrd: 0x%lx, %lu bytes\n", initrd, initrd_size);
	else
		printf("initrd: none\n");
	printf("command line: \"%s\"\n", boot_cmdline());
	printf("demo: cpu 0 (apic id %u) is the BSP\n", this_cpu()->apic_id);
	if (n > 1) {
		unsigned int up = smp_start(ap_hello, NULL);
		uint64_t t0 = rdtsc();
		/* APs print asynchronously: wait for their lines before exiting. */
		while (__atomic_load_n(&greeted, __ATOMIC_ACQUIRE) + 1 < up &&
		       rdtsc() - t0 < SMP_START_TIMEOUT_TSC)
			cpu_relax();
		printf("demo: %u of %u cpus online\n", up, n);
	}
	return 0;
}
