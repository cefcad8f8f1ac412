// SPDX-License-Identifier: MIT
/*
 * The VT-d unit (vmm/intel_iommu.c) against a guest that programs anything:
 * register writes and reads at any offset and width, DMA of any requester,
 * address and length, and MSIs of any format, with tables, queues and
 * interrupt entries taken from guest RAM the input fills.
 *
 * Input: a count of operations (one byte), the operations (16 bytes each:
 * kind, width, offset, a 64-bit value and a 32-bit argument), then guest
 * RAM from GPA 0. Checked: no access outside guest RAM or the buffers
 * (ASan), DMA either completes or fails with -EFAULT, and a remappable
 * MSI the unit lets through while remapping is on comes out as a
 * compatibility-format message to the local APIC window.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"
#include "vmm/intel_iommu.h"
#include "vmm/vm.h"

#define RAM	(2ULL << 20)
#define MAX_OPS 64
#define DMA_MAX 8192

struct op {
	uint8_t kind; /* % OP_N */
	uint8_t width;
	uint16_t off;
	uint32_t arg; /* DMA: requester and length; MSI: data */
	uint64_t val; /* register value, IOVA or MSI address */
};

_Static_assert(sizeof(struct op) == 16, "op layout");

enum { OP_WRITE, OP_READ, OP_DMA_READ, OP_DMA_WRITE, OP_MSI, OP_N };

/* Linked in for realize, which the target does not use. */
int vm_msi_send_raw(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm, (void)addr, (void)data;
	return 0;
}

static struct guest_mem mem;
static uint8_t *ram;
static unsigned events;

static void count_event(void *opaque, uint64_t addr, uint32_t data)
{
	(void)opaque, (void)addr, (void)data;
	events++;
}

/* ---- seeds: what guest/iommu programs, built as the unit tests do ---- */

static size_t put_op(uint8_t *p, uint8_t kind, uint8_t width, uint16_t off, uint32_t arg,
		     uint64_t val)
{
	struct op o = {kind, width, off, arg, val};

	memcpy(p, &o, sizeof(o));
	return sizeof(o);
}

static void put64(uint8_t *m, uint64_t gpa, uint64_t v)
{
	memcpy(m + gpa, &v, 8);
}

int fuzz_seeds(const char *dir)
{
	static uint8_t buf[1 + MAX_OPS * sizeof(struct op) + 0x10000];
	uint8_t *p = buf + 1, *m;
	uint8_t n = 0;

	/* QI at 0x7000, root 0x1000, context 0x2000, tables 0x3000-0x5000,
	 * interrupt entries 0x6000; enable all, then DMA and MSIs. */
	p += put_op(p, OP_WRITE, 8, 0x90, 0, 0x7000), n++;
	p += put_op(p, OP_WRITE, 4, 0x18, 0, 1u << 26), n++;
	p += put_op(p, OP_WRITE, 8, 0x20, 0, 0x1000), n++;
	p += put_op(p, OP_WRITE, 4, 0x18, 0, 1u << 30 | 1u << 26), n++;
	p += put_op(p, OP_WRITE, 8, 0xb8, 0, 0x6000 | 3), n++;
	p += put_op(p, OP_WRITE, 4, 0x18, 0, 1u << 24 | 1u << 26), n++;
	p += put_op(p, OP_WRITE, 4, 0x18, 0, 1u << 31 | 1u << 26), n++;
	p += put_op(p, OP_WRITE, 4, 0x18, 0, 1u << 31 | 1u << 26 | 1u << 25), n++;
	p += put_op(p, OP_WRITE, 8, 0x88, 0, 2 << 4), n++;
	p += put_op(p, OP_DMA_READ, 0, 0, 0x0008 | 64u << 16, 0x5000), n++;
	p += put_op(p, OP_DMA_WRITE, 0, 0, 0x0008 | 4096u << 16, 0x5ff0), n++;
	p += put_op(p, OP_MSI, 0, 0x0008, 0, 0xfee00000 | 1u << 5 | 1u << 4), n++;
	p += put_op(p, OP_MSI, 0, 0xffff, 0, 0xfee00000 | 2u << 5 | 1u << 4 | 1u << 3), n++;
	p += put_op(p, OP_WRITE, 4, 0x22c, 0, 1u << 31), n++;
	p += put_op(p, OP_READ, 8, 0x220, 0, 0), n++;
	buf[0] = n;
	m = p;
	put64(m, 0x1000, 0x2000 | 1);	       /* bus 0 */
	put64(m, 0x2000 + 8 * 16, 0x3000 | 1); /* 00:01.0: 3 levels */
	put64(m, 0x2000 + 8 * 16 + 8, 1 | 1u << 8);
	put64(m, 0x3000, 0x4000 | 3);
	put64(m, 0x4000, 0x5000 | 3 | 0);
	put64(m, 0x4000 + 8, 0x200000 | 1 | 1u << 7); /* a 2 MiB page, read-only */
	put64(m, 0x6000 + 16, 1 | 0x40u << 16);	      /* IRTE 1 */
	put64(m, 0x6000 + 24, 0x0008 | 1ull << 18);
	put64(m, 0x7000, 2 | 1u << 4);		       /* IOTLB global */
	put64(m, 0x7010, 5 | 1u << 5 | 0x99ull << 32); /* wait, status write */
	put64(m, 0x7018, 0x8000);
	fuzz_write_seed(dir, "setup", buf, (size_t)(m - buf) + 0x9000);
	return 0;
}

/* ---- the target ---- */

static void check_msi(struct intel_iommu *iu, int sid, uint64_t addr, uint32_t data)
{
	uint32_t gsts = 0;
	int ret;

	bool remappable = addr & (1u << 4);

	intel_iommu_mmio(iu, 0x1c, &gsts, 4, false);
	ret = intel_iommu_msi(iu, sid, &addr, &data);
	if (ret != 0 && ret != -EPERM)
		fuzz_fail("intel_iommu_msi returned %d", ret);
	if (ret != 0 || !(gsts & (1u << 25)) || !remappable)
		return; /* blocked, remapping off, or a compatibility message (CFI) */
	if ((addr >> 20) != 0xfee || (addr & (1u << 4)))
		fuzz_fail("a remappable message became 0x%llx", (unsigned long long)addr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t dma[DMA_MAX];
	struct intel_iommu *iu;
	size_t nops, blob;

	if (!ram) {
		if (guest_mem_init(&mem, RAM) < 0)
			abort();
		ram = guest_mem_ptr(&mem, 0, RAM);
	}
	if (size < 1)
		return 0;
	nops = data[0] % (MAX_OPS + 1);
	if (size < 1 + nops * sizeof(struct op))
		return 0;
	blob = size - 1 - nops * sizeof(struct op);
	memset(ram, 0, RAM);
	memcpy(ram, data + 1 + nops * sizeof(struct op), blob < RAM ? blob : RAM);
	iu = intel_iommu_new(&mem, count_event, NULL);
	if (!iu)
		abort();
	for (size_t i = 0; i < nops; i++) {
		struct op o;
		uint64_t v;
		int ret;

		memcpy(&o, data + 1 + i * sizeof(o), sizeof(o));
		v = o.val;
		switch (o.kind % OP_N) {
		case OP_WRITE:
		case OP_READ:
			/* Any width 1..8 at any offset of the 4 KiB window. */
			intel_iommu_mmio(iu, o.off & 0xfff, &v, (o.width % 8) + 1,
					 o.kind % OP_N == OP_WRITE);
			break;
		case OP_DMA_READ:
		case OP_DMA_WRITE:
			ret =
			    intel_iommu_dma(iu, (uint16_t)o.arg, o.val, dma,
					    (o.arg >> 16) % DMA_MAX, o.kind % OP_N == OP_DMA_WRITE);
			if (ret != 0 && ret != -EFAULT)
				fuzz_fail("intel_iommu_dma returned %d", ret);
			break;
		case OP_MSI:
			check_msi(iu, o.off == 0xffff ? -1 : o.off, o.val, o.arg);
			break;
		}
	}
	intel_iommu_free(iu);
	return 0;
}
