/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/intel_iommu.c on a bare guest_mem: the register file
 * and its commands, DMA remapping (3- and 4-level tables, 2 MiB pages,
 * pass-through, permissions), fault recording and its event, interrupt
 * remapping (index, presence, source-id, compatibility format, posted),
 * queued invalidation (waits, bad descriptors and tails), and table
 * pointers outside RAM.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/intel_iommu.h"
#include "vmm/vm.h"

#define RAM (16u << 20)

/* Link-time stand-in: the tests give intel_iommu_new their own sender. */
int vm_msi_send_raw(struct vm *vm, uint64_t addr, uint32_t data)
{
	(void)vm, (void)addr, (void)data;
	return 0;
}

struct env {
	struct guest_mem m;
	struct intel_iommu *iu;
	int events;
	uint64_t ev_addr;
	uint32_t ev_data;
};

static void record_msi(void *opaque, uint64_t addr, uint32_t data)
{
	struct env *e = opaque;

	e->events++;
	e->ev_addr = addr;
	e->ev_data = data;
}

static int setup(void **st)
{
	struct env *e = calloc(1, sizeof(*e));

	if (!e || guest_mem_init(&e->m, RAM))
		return -1;
	e->iu = intel_iommu_new(&e->m, record_msi, e);
	*st = e;
	return e->iu ? 0 : -1;
}

static int teardown(void **st)
{
	struct env *e = *st;

	intel_iommu_free(e->iu);
	guest_mem_free(&e->m);
	free(e);
	return 0;
}

static uint32_t r32(struct env *e, uint64_t off)
{
	uint32_t v = 0;

	intel_iommu_mmio(e->iu, off, &v, 4, false);
	return v;
}

static uint64_t r64(struct env *e, uint64_t off)
{
	uint64_t v = 0;

	intel_iommu_mmio(e->iu, off, &v, 8, false);
	return v;
}

static void w32(struct env *e, uint64_t off, uint32_t v)
{
	intel_iommu_mmio(e->iu, off, &v, 4, true);
}
static void w64(struct env *e, uint64_t off, uint64_t v)
{
	intel_iommu_mmio(e->iu, off, &v, 8, true);
}

static void put64(struct env *e, uint64_t gpa, uint64_t v)
{
	assert_int_equal(guest_mem_write(&e->m, gpa, &v, 8), 0);
}

/* Guest-physical layout of the tables the tests build. */
#define ROOT 0x100000ull
#define CTX  0x101000ull
#define L4   0x102000ull
#define L3   0x103000ull
#define L2   0x104000ull
#define L1   0x105000ull
#define IRT  0x106000ull
#define IQ   0x107000ull
#define PAGE 0x200000ull
#define BIG  0x400000ull /* a 2 MiB page */
#define SID  0x0018	 /* 00:03.0 */

#define GCMD_TE	   (1u << 31)
#define GCMD_SRTP  (1u << 30)
#define GCMD_QIE   (1u << 26)
#define GCMD_IRE   (1u << 25)
#define GCMD_SIRTP (1u << 24)
#define GCMD_CFI   (1u << 23)

static void cmd(struct env *e, uint32_t bit)
{
	uint32_t keep = r32(e, 0x1c) & (GCMD_TE | GCMD_QIE | GCMD_IRE | GCMD_CFI);

	w32(e, 0x18, keep | bit);
}

/* A 3-level context for SID mapping IOVA 0x5000 to PAGE (read/write) and
 * IOVA 2 MiB to BIG (a 2 MiB page, read-only); translation on. */
static void map_3level(struct env *e, uint64_t ctx_lo_extra)
{
	put64(e, ROOT + (SID >> 8) * 16, CTX | 1);
	put64(e, CTX + (SID & 0xff) * 16, L3 | 1 | ctx_lo_extra);
	put64(e, CTX + (SID & 0xff) * 16 + 8, 1 | 5u << 8);
	put64(e, L3, L2 | 3);
	put64(e, L2, L1 | 3);
	put64(e, L2 + 8, BIG | 1 | 1u << 7);
	put64(e, L1 + 5 * 8, PAGE | 3);
	w64(e, 0x20, ROOT);
	cmd(e, GCMD_SRTP);
	cmd(e, GCMD_TE);
}

static void test_registers(void **st)
{
	struct env *e = *st;
	uint64_t cap = r64(e, 0x08), ecap = r64(e, 0x10);
	uint8_t narrow = 0;

	assert_int_equal(r32(e, 0x00), 0x10);
	assert_true(cap & (1u << 9) && cap & (1u << 10)); /* 39- and 48-bit */
	assert_int_equal((cap >> 16) & 0x3f, 47);
	assert_int_equal(((cap >> 24) & 0x3ff) * 16, 0x220);
	assert_int_equal((cap >> 34) & 3, 3);		     /* 2M, 1G pages */
	assert_int_equal(ecap & 0xb, 0xb);		     /* C, QI, IR */
	assert_int_equal(((ecap >> 8) & 0x3ff) * 16, 0x200); /* IOTLB regs */
	assert_int_equal(r32(e, 0x08), (uint32_t)cap);	     /* halves */
	assert_int_equal(r32(e, 0x0c), (uint32_t)(cap >> 32));
	assert_int_equal(r32(e, 0x1c), 0);
	assert_int_equal(r32(e, 0x38), 1u << 31); /* fault events masked at reset */
	w64(e, 0x20, ROOT);
	assert_int_equal(r32(e, 0x1c), 0); /* RTADDR alone does nothing */
	cmd(e, GCMD_SRTP);
	assert_int_equal(r32(e, 0x1c), GCMD_SRTP);
	cmd(e, GCMD_QIE);
	cmd(e, GCMD_TE);
	assert_int_equal(r32(e, 0x1c), GCMD_SRTP | GCMD_QIE | GCMD_TE);
	assert_int_equal(r32(e, 0x18), 0); /* GCMD is write-only */
	w32(e, 0x18, GCMD_SRTP);	   /* TE and QIE dropped */
	assert_int_equal(r32(e, 0x1c), GCMD_SRTP);
	/* Register-based invalidations complete at once, granularity as asked. */
	w64(e, 0x28, 1ull << 63 | 1ull << 61);
	assert_int_equal(r64(e, 0x28) >> 59, 1u << 2 | 1); /* ICC clear; CIRG 1, CAIG 1 */
	w64(e, 0x208, 1ull << 63 | 1ull << 60);
	assert_int_equal(r64(e, 0x208) >> 57, 1u << 3 | 1); /* IVT clear; IIRG 1, IAIG 1 */
	/* Odd widths and alignments: all-ones, no effect. */
	intel_iommu_mmio(e->iu, 0x1c, &narrow, 1, false);
	assert_int_equal(narrow, 0xff);
	assert_int_equal(r64(e, 0x1c), UINT64_MAX);
	w32(e, 0x19, 0xffffffff);
	assert_int_equal(r32(e, 0x1c), GCMD_SRTP);
}

static void test_dma(void **st)
{
	struct env *e = *st;
	uint32_t v = 0x12345678, got = 0;
	uint8_t big[64];

	/* Translation off: bus addresses are guest-physical. */
	assert_int_equal(intel_iommu_dma(e->iu, SID, PAGE, &v, 4, true), 0);
	map_3level(e, 0);
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x5000, &got, 4, false), 0);
	assert_int_equal(got, 0x12345678);
	v = 0xcafe;
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x5ffe, &v, 4, true),
			 -EFAULT); /* 0x6000 unmapped */
	assert_int_equal(guest_mem_read(&e->m, PAGE + 0xffe, &got, 2), 0);
	assert_int_equal(got & 0xffff, 0xcafe); /* the part in the mapped page went */
	/* 2 MiB page: any offset inside it. */
	memset(big, 0x5a, sizeof(big));
	assert_int_equal(guest_mem_write(&e->m, BIG + 0x1ff000, big, sizeof(big)), 0);
	memset(big, 0, sizeof(big));
	assert_int_equal(intel_iommu_dma(e->iu, SID, (2u << 20) + 0x1ff000, big, 64, false), 0);
	assert_int_equal(big[63], 0x5a);
	/* A 4-level context walks one more table. */
	put64(e, CTX + (SID & 0xff) * 16, L4 | 1);
	put64(e, CTX + (SID & 0xff) * 16 + 8, 2 | 5u << 8);
	put64(e, L4, L3 | 3);
	got = 0;
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x5000, &got, 4, false), 0);
	assert_int_equal(got, 0x12345678);
	/* Pass-through context. */
	put64(e, CTX + (SID & 0xff) * 16, 1 | 2u << 2);
	got = 0;
	assert_int_equal(intel_iommu_dma(e->iu, SID, PAGE, &got, 4, false), 0);
	assert_int_equal(got, 0x12345678);
	assert_int_equal(r32(e, 0x34), 2); /* PPF: the one fault above, no overflow */
}

static uint64_t frcd_hi(struct env *e)
{
	return r64(e, 0x228);
}

static void clear_fault(struct env *e)
{
	w32(e, 0x22c, 1u << 31);
	w32(e, 0x34, 0xffffffff);
}

static void test_faults(void **st)
{
	struct env *e = *st;
	uint32_t v = 1;

	map_3level(e, 0);
	/* Read of an unmapped IOVA: recorded, event masked so pending. */
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x9000, &v, 4, false), -EFAULT);
	assert_int_equal(r32(e, 0x34) & 2, 2); /* PPF */
	assert_int_equal(frcd_hi(e) >> 63, 1);
	assert_int_equal(frcd_hi(e) & 0xffff, SID);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 6); /* read */
	assert_int_equal((frcd_hi(e) >> 62) & 1, 1);	/* T: a read */
	assert_int_equal(r64(e, 0x220), 0x9000);
	assert_int_equal(r32(e, 0x38), 3u << 30); /* IM, IP */
	assert_int_equal(e->events, 0);
	/* Unmasking sends the pending event. */
	w32(e, 0x3c, 0x41);
	w32(e, 0x40, 0xfee00000);
	w32(e, 0x38, 0);
	assert_int_equal(e->events, 1);
	assert_int_equal(e->ev_addr, 0xfee00000);
	assert_int_equal(e->ev_data, 0x41);
	/* A second fault while the record is full: overflow, nothing else. */
	assert_int_equal(intel_iommu_dma(e->iu, SID, 2u << 20, &v, 4, true), -EFAULT);
	assert_int_equal(r32(e, 0x34) & 1, 1); /* PFO */
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 6);
	clear_fault(e);
	assert_int_equal(r32(e, 0x34), 0);
	/* Write to the read-only 2 MiB page: reason 5, event sent at once. */
	assert_int_equal(intel_iommu_dma(e->iu, SID, 2u << 20, &v, 4, true), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 5);
	assert_int_equal(e->events, 2);
	clear_fault(e);
	/* Beyond the 39-bit width, a device-IOTLB context, a missing root. */
	assert_int_equal(intel_iommu_dma(e->iu, SID, 1ull << 39, &v, 4, false), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 4);
	clear_fault(e);
	assert_int_equal(intel_iommu_dma(e->iu, SID + 1, 0, &v, 4, false), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 2); /* 00:03.1: no context */
	clear_fault(e);
	assert_int_equal(intel_iommu_dma(e->iu, 0x100, 0, &v, 4, false), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 1); /* bus 1: no root entry */
	clear_fault(e);
	put64(e, CTX + (SID & 0xff) * 16, L3 | 1 | 1u << 2);
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x5000, &v, 4, false), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 3);
	clear_fault(e);
	/* Fault reporting disabled in the context: refused, not recorded. */
	put64(e, CTX + (SID & 0xff) * 16, L3 | 1 | 2);
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x9000, &v, 4, false), -EFAULT);
	assert_int_equal(r32(e, 0x34), 0);
	/* A root table outside RAM: refused and recorded, nothing read. */
	w64(e, 0x20, 0xfff00000000ull);
	cmd(e, GCMD_SRTP);
	assert_int_equal(intel_iommu_dma(e->iu, SID, 0x5000, &v, 4, false), -EFAULT);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 8);
	clear_fault(e);
}

static void set_irte(struct env *e, unsigned idx, uint64_t lo, uint64_t hi)
{
	put64(e, IRT + idx * 16, lo);
	put64(e, IRT + idx * 16 + 8, hi);
}

static void test_interrupt_remapping(void **st)
{
	struct env *e = *st;
	uint64_t addr = 0xfee00000 | 5u << 5 | 1u << 4;
	uint32_t data = 0;

	/* Off: nothing changes. */
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), 0);
	assert_int_equal(addr, 0xfee00000 | 5u << 5 | 1u << 4);
	w64(e, 0xb8, IRT | 3); /* 16 entries */
	cmd(e, GCMD_SIRTP);
	cmd(e, GCMD_IRE);
	assert_int_equal(r32(e, 0x1c), GCMD_SIRTP | GCMD_IRE);
	/* Present, level, vector 0x61, destination APIC 2, full SID check. */
	set_irte(e, 5, 1 | 1u << 4 | 0x61u << 16 | (2ull << 8) << 32, SID | 1ull << 18);
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), 0);
	assert_int_equal(addr, 0xfee00000 | 2u << 12);
	assert_int_equal(data, 0x61 | 1u << 15 | 1u << 14);
	/* The IOAPIC has no source-id to check. */
	addr = 0xfee00000 | 5u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, -1, &addr, &data), 0);
	/* Another requester: blocked, recorded with the index. */
	addr = 0xfee00000 | 5u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID + 8, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x26);
	assert_int_equal(r64(e, 0x220) >> 48, 5);
	clear_fault(e);
	/* SQ 3 ignores the function: 00:03.5 passes. SVT 2: a bus range. */
	set_irte(e, 5, 1 | 0x61u << 16, SID | 3ull << 16 | 1ull << 18);
	assert_int_equal(intel_iommu_msi(e->iu, SID + 5, &addr, &data), 0);
	addr = 0xfee00000 | 5u << 5 | 1u << 4;
	set_irte(e, 5, 1 | 0x61u << 16, 0x0102 | 2ull << 18);
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal(intel_iommu_msi(e->iu, 0x0200, &addr, &data), 0);
	clear_fault(e);
	/* SHV: the subhandle in the data is added to the handle. */
	set_irte(e, 7, 1 | 0x62u << 16, 0);
	addr = 0xfee00000 | 5u << 5 | 1u << 4 | 1u << 3;
	data = 2;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), 0);
	assert_int_equal(data, 0x62);
	/* Index past the table, entry not present, posted: blocked. */
	addr = 0xfee00000 | 16u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x21);
	clear_fault(e);
	addr = 0xfee00000 | 9u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x22);
	clear_fault(e);
	set_irte(e, 9, 1 | 1u << 15, 0);
	addr = 0xfee00000 | 9u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x25);
	clear_fault(e);
	/* Fault processing disabled in the entry: blocked, not recorded. */
	set_irte(e, 9, 2, 0);
	addr = 0xfee00000 | 9u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal(r32(e, 0x34), 0);
	/* Compatibility format: blocked unless CFI. */
	addr = 0xfee01000;
	data = 0x30;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x24);
	clear_fault(e);
	cmd(e, GCMD_CFI);
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), 0);
	assert_int_equal(addr, 0xfee01000);
	/* A table outside RAM. */
	w64(e, 0xb8, 0xfff00000000ull | 3);
	cmd(e, GCMD_SIRTP);
	addr = 0xfee00000 | 1u << 5 | 1u << 4;
	assert_int_equal(intel_iommu_msi(e->iu, SID, &addr, &data), -EPERM);
	assert_int_equal((frcd_hi(e) >> 32) & 0xff, 0x23);
}

static void test_queued_invalidation(void **st)
{
	struct env *e = *st;
	uint32_t status = 0;

	w64(e, 0x90, IQ); /* one page, 256 descriptors */
	cmd(e, GCMD_QIE);
	assert_int_equal(r64(e, 0x80), 0);
	/* IOTLB global, then a wait writing 0x77 at PAGE and interrupting. */
	put64(e, IQ, 2 | 1u << 4);
	put64(e, IQ + 8, 0);
	put64(e, IQ + 16, 5 | 1u << 5 | 1u << 4 | 0x77ull << 32);
	put64(e, IQ + 24, PAGE);
	w32(e, 0xa4, 0x42);
	w32(e, 0xa8, 0xfee00000);
	w32(e, 0xa0, 0); /* unmask the completion event */
	w64(e, 0x88, 2 << 4);
	assert_int_equal(r64(e, 0x80), 2 << 4);
	assert_int_equal(guest_mem_read(&e->m, PAGE, &status, 4), 0);
	assert_int_equal(status, 0x77);
	assert_int_equal(r32(e, 0x9c), 1); /* IWC */
	assert_int_equal(e->events, 1);
	assert_int_equal(e->ev_data, 0x42);
	w32(e, 0x9c, 1);
	assert_int_equal(r32(e, 0x9c), 0);
	/* An unknown descriptor stops the queue at it: IQE. */
	put64(e, IQ + 32, 0xf);
	w64(e, 0x88, 3 << 4);
	assert_int_equal(r32(e, 0x34) & (1u << 4), 1u << 4);
	assert_int_equal(r64(e, 0x80), 2 << 4);
	/* Fixed and IQE cleared: it goes on. */
	put64(e, IQ + 32, 4);
	w32(e, 0x34, 1u << 4);
	assert_int_equal(r64(e, 0x80), 3 << 4);
	/* A tail past the queue and 256-bit descriptors: IQE. */
	w64(e, 0x88, 0x7fff0);
	assert_int_equal(r32(e, 0x34) & (1u << 4), 1u << 4);
	w32(e, 0x34, 1u << 4);
	w64(e, 0x90, IQ | 1u << 11);
	w64(e, 0x88, 4 << 4);
	assert_int_equal(r32(e, 0x34) & (1u << 4), 1u << 4);
	/* A wait whose status address is not RAM: IQE, nothing written. */
	w64(e, 0x90, IQ);
	w32(e, 0x34, 1u << 4);
	put64(e, IQ + 48, 5 | 1u << 5);
	put64(e, IQ + 56, 0xfff00000000ull);
	w64(e, 0x88, 4 << 4);
	assert_int_equal(r32(e, 0x34) & (1u << 4), 1u << 4);
	/* QI off then on: the head starts over. */
	w32(e, 0x18, 0);
	cmd(e, GCMD_QIE);
	assert_int_equal(r64(e, 0x80), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dma, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_faults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_interrupt_remapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queued_invalidation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
