// SPDX-License-Identifier: MIT
/* An Intel VT-d remapping unit for --iommu. See vmm/intel_iommu.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/intel_iommu.h"
#include "vmm/vm.h"

/* Registers (offsets) */
#define VTD_VER	    0x00
#define VTD_CAP	    0x08
#define VTD_ECAP    0x10
#define VTD_GCMD    0x18
#define VTD_GSTS    0x1c
#define VTD_RTADDR  0x20
#define VTD_CCMD    0x28
#define VTD_FSTS    0x34
#define VTD_FECTL   0x38
#define VTD_FEDATA  0x3c
#define VTD_FEADDR  0x40
#define VTD_FEUADDR 0x44
#define VTD_IQH	    0x80
#define VTD_IQT	    0x88
#define VTD_IQA	    0x90
#define VTD_ICS	    0x9c
#define VTD_IECTL   0xa0
#define VTD_IEDATA  0xa4
#define VTD_IEADDR  0xa8
#define VTD_IEUADDR 0xac
#define VTD_IRTA    0xb8
#define VTD_IVA	    0x200 /* ECAP.IRO */
#define VTD_IOTLB   0x208
#define VTD_FRCD    0x220 /* CAP.FRO; one register (CAP.NFR 0) */

/* VT-d 1.0; CAP: 16-bit domain ids, 39/48-bit AGAW, MGAW 48, 2M/1G pages. */
#define VTD_VERSION  0x10
#define VTD_CAP_VAL  (6ULL | 6ULL << 8 | 47ULL << 16 | (uint64_t)(VTD_FRCD / 16) << 24 | 3ULL << 34)
#define VTD_ECAP_VAL (1ULL << 0 | 1ULL << 1 | 1ULL << 3 | 1ULL << 6 | (uint64_t)(VTD_IVA / 16) << 8)

/* GCMD / GSTS bits (command bit n sets status bit n). */
#define VTD_TE	  (1u << 31)
#define VTD_SRTP  (1u << 30)
#define VTD_QIE	  (1u << 26)
#define VTD_IRE	  (1u << 25)
#define VTD_SIRTP (1u << 24)
#define VTD_CFI	  (1u << 23)

#define VTD_FSTS_PFO (1u << 0)
#define VTD_FSTS_PPF (1u << 1)
#define VTD_FSTS_IQE (1u << 4)
#define VTD_FSTS_W1C (VTD_FSTS_PFO | VTD_FSTS_IQE | 1u << 5 | 1u << 6)
#define VTD_IM	     (1u << 31) /* FECTL, IECTL: interrupt mask */
#define VTD_IP	     (1u << 30) /* interrupt pending */
#define VTD_ICS_IWC  1u

#define VTD_ADDR_MASK 0x000ffffffffff000ULL /* bits 51:12 */
#define VTD_PTE_R     1ULL
#define VTD_PTE_W     2ULL
#define VTD_PTE_PS    (1ULL << 7)

/* Fault reasons (VT-d spec, appendix A) */
enum {
	VTD_FR_ROOT_P = 0x1,
	VTD_FR_CTX_P = 0x2,
	VTD_FR_CTX_INV = 0x3,
	VTD_FR_BEYOND_AW = 0x4,
	VTD_FR_WRITE = 0x5,
	VTD_FR_READ = 0x6,
	VTD_FR_PTE_INV = 0x7,
	VTD_FR_ROOT_INV = 0x8,
	VTD_FR_PTE_RSVD = 0xc,
	VTD_FR_IR_INDEX = 0x21,
	VTD_FR_IR_ENTRY_P = 0x22,
	VTD_FR_IR_ROOT = 0x23,
	VTD_FR_IR_COMPAT = 0x24,
	VTD_FR_IR_IRTE = 0x25,
	VTD_FR_IR_SID = 0x26,
};

struct intel_iommu {
	const struct guest_mem *mem;
	void (*send_msi)(void *opaque, uint64_t addr, uint32_t data);
	void *opaque;
	struct vm *vm;	      /* NULL in unit tests */
	pthread_mutex_t lock; /* everything below */
	uint32_t gsts;
	uint64_t rtaddr, root; /* root: RTADDR as latched by SRTP */
	uint64_t ccmd, iva, iotlb;
	uint32_t fsts, fectl, fedata, feaddr, feuaddr;
	uint64_t iqh, iqt, iqa;
	uint32_t ics, iectl, iedata, ieaddr, ieuaddr;
	uint64_t irta, irt; /* irt: IRTA as latched by SIRTP */
	uint64_t frcd[2];
};

/* The 32-bit half of 64-bit register @r that an access at @off reads. */
static uint32_t get_half(uint64_t r, uint64_t off)
{
	return (uint32_t)((off & 4) ? r >> 32 : r);
}

static void set_half(uint64_t *r, uint64_t off, uint32_t v)
{
	*r = (off & 4) ? (*r & 0xffffffffULL) | (uint64_t)v << 32 : (*r & ~0xffffffffULL) | v;
}

/* An event interrupt (fault or invalidation completion): sent unless
 * masked, then pending. Lock held. */
static void vtd_event(struct intel_iommu *iu, uint32_t *ctl, uint32_t data, uint32_t addr,
		      uint32_t uaddr)
{
	if (*ctl & VTD_IM) {
		*ctl |= VTD_IP;
		return;
	}
	*ctl &= ~VTD_IP;
	if (iu->send_msi)
		iu->send_msi(iu->opaque, (uint64_t)uaddr << 32 | addr, data);
}

/* Record a fault in the one fault recording register (overflow if it is
 * full). @info: the faulting page, or an IR fault's index << 48. Lock held. */
static void vtd_fault(struct intel_iommu *iu, uint16_t sid, uint64_t info, int reason, bool write)
{
	if (iu->frcd[1] & (1ULL << 63)) {
		iu->fsts |= VTD_FSTS_PFO;
		return;
	}
	iu->frcd[0] = info & ~0xfffULL;
	iu->frcd[1] = sid | (uint64_t)reason << 32 | (write ? 0 : 1ULL << 62) | 1ULL << 63;
	iu->fsts |= VTD_FSTS_PPF;
	vtd_event(iu, &iu->fectl, iu->fedata, iu->feaddr, iu->feuaddr);
}

static int vtd_read_mem(struct intel_iommu *iu, uint64_t gpa, void *dst, uint64_t len)
{
	return guest_mem_read(iu->mem, gpa, dst, len);
}

/*
 * Translate @iova of requester @sid: *@gpa and the bytes *@avail left in
 * its page. 0, or -EFAULT with the fault recorded (unless the context
 * disables fault reporting). Lock held.
 */
static int vtd_translate(struct intel_iommu *iu, uint16_t sid, uint64_t iova, bool write,
			 uint64_t *gpa, uint64_t *avail)
{
	uint64_t re[2], ce[2], table, pte;
	bool fpd = false;
	int levels, reason;

	if (!(iu->gsts & VTD_TE)) {
		*gpa = iova;
		*avail = 0x1000 - (iova & 0xfff);
		return 0;
	}
	if (iu->root & (3ULL << 10)) { /* scalable mode: not offered */
		reason = VTD_FR_ROOT_INV;
		goto fault;
	}
	if (vtd_read_mem(iu, (iu->root & VTD_ADDR_MASK) + (sid >> 8) * 16ULL, re, 16) < 0) {
		reason = VTD_FR_ROOT_INV;
		goto fault;
	}
	if (!(re[0] & 1)) {
		reason = VTD_FR_ROOT_P;
		goto fault;
	}
	if (vtd_read_mem(iu, (re[0] & VTD_ADDR_MASK) + (sid & 0xff) * 16ULL, ce, 16) < 0) {
		reason = VTD_FR_CTX_INV;
		goto fault;
	}
	if (!(ce[0] & 1)) {
		reason = VTD_FR_CTX_P;
		goto fault;
	}
	fpd = ce[0] & 2;
	switch ((ce[0] >> 2) & 3) {
	case 0:
		break;
	case 2: /* pass-through (ECAP.PT) */
		*gpa = iova;
		*avail = 0x1000 - (iova & 0xfff);
		return 0;
	default: /* device-IOTLB (no ECAP.DT) or reserved */
		reason = VTD_FR_CTX_INV;
		goto fault;
	}
	levels = (ce[1] & 7) == 1 ? 3 : (ce[1] & 7) == 2 ? 4 : 0;
	if (!levels) {
		reason = VTD_FR_CTX_INV;
		goto fault;
	}
	if (iova >> (12 + 9 * levels)) {
		reason = VTD_FR_BEYOND_AW;
		goto fault;
	}
	table = ce[0] & VTD_ADDR_MASK;
	for (int level = levels; level >= 1; level--) {
		int shift = 12 + 9 * (level - 1);

		if (vtd_read_mem(iu, table + ((iova >> shift) & 0x1ff) * 8, &pte, 8) < 0) {
			reason = VTD_FR_PTE_INV;
			goto fault;
		}
		if (!(pte & (write ? VTD_PTE_W : VTD_PTE_R))) {
			reason = write ? VTD_FR_WRITE : VTD_FR_READ;
			goto fault;
		}
		if (level == 1 || (pte & VTD_PTE_PS)) {
			uint64_t size = 1ULL << shift;

			if (level > 3) { /* no 512 GiB pages */
				reason = VTD_FR_PTE_RSVD;
				goto fault;
			}
			*gpa = (pte & VTD_ADDR_MASK & ~(size - 1)) | (iova & (size - 1));
			*avail = size - (iova & (size - 1));
			return 0;
		}
		table = pte & VTD_ADDR_MASK;
	}
	reason = VTD_FR_PTE_INV; /* not reached */
fault:
	if (!fpd)
		vtd_fault(iu, sid, iova, reason, write);
	return -EFAULT;
}

int intel_iommu_dma(struct intel_iommu *iu, uint16_t sid, uint64_t iova, void *buf, uint64_t len,
		    bool write)
{
	uint8_t *p = buf;

	while (len) {
		uint64_t gpa, avail;
		int ret;

		pthread_mutex_lock(&iu->lock);
		ret = vtd_translate(iu, sid, iova, write, &gpa, &avail);
		pthread_mutex_unlock(&iu->lock);
		if (ret < 0)
			return ret;
		if (avail > len)
			avail = len;
		ret = write ? guest_mem_write(iu->mem, gpa, p, avail)
			    : guest_mem_read(iu->mem, gpa, p, avail);
		if (ret < 0)
			return ret;
		p += avail;
		iova += avail;
		len -= avail;
	}
	return 0;
}

int intel_iommu_msi(struct intel_iommu *iu, int sid, uint64_t *addr, uint32_t *data)
{
	uint16_t fsid = sid < 0 ? 0 : (uint16_t)sid;
	uint64_t irte[2], index, dest;
	int reason, ret = 0;
	bool fpd = false;

	pthread_mutex_lock(&iu->lock);
	if (!(iu->gsts & VTD_IRE))
		goto out;
	if (!(*addr & (1u << 4))) { /* compatibility format */
		if (!(iu->gsts & VTD_CFI)) {
			index = 0;
			reason = VTD_FR_IR_COMPAT;
			goto fault;
		}
		goto out;
	}
	index = ((*addr >> 5) & 0x7fff) | ((*addr >> 2) & 1) << 15;
	if (*addr & (1u << 3)) /* SHV: the subhandle is in the data */
		index += *data & 0xffff;
	if (index >= 2ULL << (iu->irt & 0xf)) {
		reason = VTD_FR_IR_INDEX;
		goto fault;
	}
	if (vtd_read_mem(iu, (iu->irt & VTD_ADDR_MASK) + index * 16, irte, 16) < 0) {
		reason = VTD_FR_IR_ROOT;
		goto fault;
	}
	fpd = irte[0] & 2;
	if (!(irte[0] & 1)) {
		reason = VTD_FR_IR_ENTRY_P;
		goto fault;
	}
	if (irte[0] & (1u << 15)) { /* posted interrupts: not offered */
		reason = VTD_FR_IR_IRTE;
		goto fault;
	}
	if (sid >= 0) {
		static const uint16_t sq_mask[4] = {0xffff, 0xfffb, 0xfff9, 0xfff8};
		uint16_t src = (uint16_t)irte[1];
		unsigned svt = (irte[1] >> 18) & 3, bus = (unsigned)sid >> 8;

		if ((svt == 1 && ((src ^ sid) & sq_mask[(irte[1] >> 16) & 3])) ||
		    (svt == 2 && (bus < (src >> 8u) || bus > (src & 0xffu))) || svt == 3) {
			reason = VTD_FR_IR_SID;
			goto fault;
		}
	}
	dest = ((irte[0] >> 32) >> 8) & 0xff; /* xAPIC mode: DST bits 15:8 */
	*addr = 0xfee00000ULL | dest << 12 | ((irte[0] >> 3) & 1) << 3 | ((irte[0] >> 2) & 1) << 2;
	*data = (uint32_t)(((irte[0] >> 16) & 0xff) | ((irte[0] >> 5) & 7) << 8);
	if (irte[0] & (1u << 4))
		*data |= 1u << 15 | 1u << 14;
	goto out;
fault:
	if (!fpd)
		vtd_fault(iu, fsid, index << 48, reason, true);
	ret = -EPERM;
out:
	pthread_mutex_unlock(&iu->lock);
	return ret;
}

/* Retire the descriptors from IQH to IQT (128-bit ones). Lock held. */
static void vtd_run_queue(struct intel_iommu *iu)
{
	uint64_t n = 256ULL << (iu->iqa & 7), head = (iu->iqh >> 4) & 0x7fff;
	uint64_t tail = (iu->iqt >> 4) & 0x7fff;

	if (!(iu->gsts & VTD_QIE) || (iu->fsts & VTD_FSTS_IQE))
		return;
	if (tail >= n || (iu->iqa & (1u << 11))) { /* 256-bit descriptors: not offered */
		iu->fsts |= VTD_FSTS_IQE;
		return;
	}
	while (head != tail) {
		uint64_t d[2];

		if (vtd_read_mem(iu, (iu->iqa & VTD_ADDR_MASK) + head * 16, d, 16) < 0) {
			iu->fsts |= VTD_FSTS_IQE;
			break;
		}
		switch (d[0] & 0xf) {
		case 1: /* context-cache, IOTLB, interrupt entry cache: nothing is cached */
		case 2:
		case 4:
			break;
		case 5: /* invalidation wait */
			if (d[0] & (1u << 5)) {
				uint32_t status = (uint32_t)(d[0] >> 32);

				if (guest_mem_write(iu->mem, d[1] & ~3ULL, &status, 4) < 0) {
					iu->fsts |= VTD_FSTS_IQE;
					goto out;
				}
			}
			if (d[0] & (1u << 4)) {
				iu->ics |= VTD_ICS_IWC;
				vtd_event(iu, &iu->iectl, iu->iedata, iu->ieaddr, iu->ieuaddr);
			}
			break;
		default: /* device-IOTLB (no ECAP.DT) and the rest: invalid */
			iu->fsts |= VTD_FSTS_IQE;
			goto out;
		}
		head = (head + 1) % n;
	}
out:
	iu->iqh = head << 4;
}

static void vtd_gcmd(struct intel_iommu *iu, uint32_t v)
{
	static const uint32_t follow[] = {VTD_TE, VTD_IRE, VTD_CFI};

	for (size_t i = 0; i < ARRAY_SIZE(follow); i++)
		iu->gsts = (v & follow[i]) ? iu->gsts | follow[i] : iu->gsts & ~follow[i];
	if (v & VTD_SRTP) {
		iu->root = iu->rtaddr;
		iu->gsts |= VTD_SRTP;
	}
	if (v & VTD_SIRTP) {
		iu->irt = iu->irta;
		iu->gsts |= VTD_SIRTP;
	}
	if ((v & VTD_QIE) && !(iu->gsts & VTD_QIE)) {
		iu->iqh = 0;
		iu->gsts |= VTD_QIE;
	} else if (!(v & VTD_QIE)) {
		iu->gsts &= ~VTD_QIE;
	}
}

static uint32_t vtd_read32(struct intel_iommu *iu, uint64_t off)
{
	switch (off & ~7ULL) {
	case VTD_CAP:
		return get_half(VTD_CAP_VAL, off);
	case VTD_ECAP:
		return get_half(VTD_ECAP_VAL, off);
	case VTD_RTADDR:
		return get_half(iu->rtaddr, off);
	case VTD_CCMD:
		return get_half(iu->ccmd, off);
	case VTD_IQH:
		return get_half(iu->iqh, off);
	case VTD_IQT:
		return get_half(iu->iqt, off);
	case VTD_IQA:
		return get_half(iu->iqa, off);
	case VTD_IRTA:
		return get_half(iu->irta, off);
	case VTD_IVA:
		return get_half(iu->iva, off);
	case VTD_IOTLB:
		return get_half(iu->iotlb, off);
	case VTD_FRCD:
	case VTD_FRCD + 8: {
		uint64_t r = iu->frcd[(off - VTD_FRCD) / 8];

		return get_half(r, off);
	}
	}
	switch (off) {
	case VTD_VER:
		return VTD_VERSION;
	case VTD_GSTS:
		return iu->gsts;
	case VTD_FSTS:
		return iu->fsts;
	case VTD_FECTL:
		return iu->fectl;
	case VTD_FEDATA:
		return iu->fedata;
	case VTD_FEADDR:
		return iu->feaddr;
	case VTD_FEUADDR:
		return iu->feuaddr;
	case VTD_ICS:
		return iu->ics;
	case VTD_IECTL:
		return iu->iectl;
	case VTD_IEDATA:
		return iu->iedata;
	case VTD_IEADDR:
		return iu->ieaddr;
	case VTD_IEUADDR:
		return iu->ieuaddr;
	default:
		return 0; /* GCMD is write-only; the rest is reserved */
	}
}

/* Unmask an event control register: a pending event goes out now. */
static void vtd_ctl_write(struct intel_iommu *iu, uint32_t *ctl, uint32_t v, uint32_t data,
			  uint32_t addr, uint32_t uaddr)
{
	*ctl = (*ctl & VTD_IP) | (v & VTD_IM);
	if (!(*ctl & VTD_IM) && (*ctl & VTD_IP))
		vtd_event(iu, ctl, data, addr, uaddr);
}

static void vtd_write32(struct intel_iommu *iu, uint64_t off, uint32_t v)
{
	switch (off) {
	case VTD_GCMD:
		vtd_gcmd(iu, v);
		return;
	case VTD_RTADDR:
	case VTD_RTADDR + 4:
		set_half(&iu->rtaddr, off, v);
		return;
	case VTD_CCMD:
	case VTD_CCMD + 4:
		/* Register-based invalidation: done at once (nothing cached);
		 * the actual granularity is the requested one. */
		set_half(&iu->ccmd, off, v);
		if (iu->ccmd & (1ULL << 63))
			iu->ccmd = (iu->ccmd & ~(1ULL << 63) & ~(3ULL << 59)) |
				   ((iu->ccmd >> 61) & 3) << 59;
		return;
	case VTD_IVA:
	case VTD_IVA + 4:
		set_half(&iu->iva, off, v);
		return;
	case VTD_IOTLB:
	case VTD_IOTLB + 4:
		set_half(&iu->iotlb, off, v);
		if (iu->iotlb & (1ULL << 63))
			iu->iotlb = (iu->iotlb & ~(1ULL << 63) & ~(3ULL << 57)) |
				    ((iu->iotlb >> 60) & 3) << 57;
		return;
	case VTD_FSTS:
		iu->fsts &= ~(v & VTD_FSTS_W1C);
		if (v & VTD_FSTS_IQE)
			vtd_run_queue(iu); /* software fixed the descriptor */
		return;
	case VTD_FECTL:
		vtd_ctl_write(iu, &iu->fectl, v, iu->fedata, iu->feaddr, iu->feuaddr);
		return;
	case VTD_FEDATA:
		iu->fedata = v;
		return;
	case VTD_FEADDR:
		iu->feaddr = v & ~3u;
		return;
	case VTD_FEUADDR:
		iu->feuaddr = v;
		return;
	case VTD_IQT:
	case VTD_IQT + 4:
		set_half(&iu->iqt, off, v);
		iu->iqt &= 0x7fff0ULL;
		vtd_run_queue(iu);
		return;
	case VTD_IQA:
	case VTD_IQA + 4:
		set_half(&iu->iqa, off, v);
		return;
	case VTD_ICS:
		iu->ics &= ~(v & VTD_ICS_IWC);
		if (!iu->ics)
			iu->iectl &= ~VTD_IP;
		return;
	case VTD_IECTL:
		vtd_ctl_write(iu, &iu->iectl, v, iu->iedata, iu->ieaddr, iu->ieuaddr);
		return;
	case VTD_IEDATA:
		iu->iedata = v;
		return;
	case VTD_IEADDR:
		iu->ieaddr = v & ~3u;
		return;
	case VTD_IEUADDR:
		iu->ieuaddr = v;
		return;
	case VTD_IRTA:
	case VTD_IRTA + 4:
		set_half(&iu->irta, off, v);
		return;
	case VTD_FRCD + 12: /* F is write-1-to-clear */
		if (v & (1u << 31)) {
			iu->frcd[1] &= ~(1ULL << 63);
			iu->fsts &= ~VTD_FSTS_PPF;
		}
		return;
	default:
		return; /* read-only or reserved */
	}
}

void intel_iommu_mmio(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct intel_iommu *iu = opaque;
	uint64_t v = 0;

	/* 32- and 64-bit aligned accesses; a 64-bit one is its two halves,
	 * low first (the command bits of CCMD and IOTLB are in the high one). */
	if ((len != 4 && len != 8) || (off & (len - 1))) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&iu->lock);
	if (is_write) {
		memcpy(&v, data, len);
		vtd_write32(iu, off, (uint32_t)v);
		if (len == 8)
			vtd_write32(iu, off + 4, (uint32_t)(v >> 32));
	} else {
		v = vtd_read32(iu, off);
		if (len == 8)
			v |= (uint64_t)vtd_read32(iu, off + 4) << 32;
		memcpy(data, &v, len);
	}
	pthread_mutex_unlock(&iu->lock);
}

static void intel_iommu_reset(void *state)
{
	struct intel_iommu *iu = state;

	pthread_mutex_lock(&iu->lock);
	iu->gsts = 0;
	iu->rtaddr = iu->root = iu->ccmd = iu->iva = iu->iotlb = 0;
	iu->fsts = iu->fedata = iu->feaddr = iu->feuaddr = 0;
	iu->fectl = iu->iectl = VTD_IM;
	iu->iqh = iu->iqt = iu->iqa = 0;
	iu->ics = iu->iedata = iu->ieaddr = iu->ieuaddr = 0;
	iu->irta = iu->irt = 0;
	iu->frcd[0] = iu->frcd[1] = 0;
	pthread_mutex_unlock(&iu->lock);
}

struct intel_iommu *intel_iommu_new(const struct guest_mem *mem,
				    void (*send_msi)(void *opaque, uint64_t addr, uint32_t data),
				    void *opaque)
{
	struct intel_iommu *iu = calloc(1, sizeof(*iu));

	if (!iu)
		return NULL;
	iu->mem = mem;
	iu->send_msi = send_msi;
	iu->opaque = opaque;
	pthread_mutex_init(&iu->lock, NULL);
	intel_iommu_reset(iu);
	return iu;
}

void intel_iommu_free(struct intel_iommu *iu)
{
	pthread_mutex_destroy(&iu->lock);
	free(iu);
}

/* Fault and completion events are not remapped: straight to KVM. */
static void intel_iommu_send(void *opaque, uint64_t addr, uint32_t data)
{
	vm_msi_send_raw(opaque, addr, data);
}

static int intel_iommu_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct intel_iommu *iu = intel_iommu_new(&vm->mem, intel_iommu_send, vm);
	int ret;

	if (!iu)
		return err_set(err, ENOMEM, "intel-iommu: out of memory");
	iu->vm = vm;
	ret = bus_register(&vm->mmio, INTEL_IOMMU_BASE, INTEL_IOMMU_SIZE, intel_iommu_mmio, iu,
			   "intel-iommu", err);
	if (ret < 0) {
		intel_iommu_free(iu);
		return ret;
	}
	vm->iommu_msi = intel_iommu_msi;
	vm->iommu_dma = intel_iommu_dma;
	vm->iommu = iu;
	*state = iu;
	return 0;
}

static void intel_iommu_exit(void *state)
{
	struct intel_iommu *iu = state;

	bus_unregister(&iu->vm->mmio, INTEL_IOMMU_BASE);
	iu->vm->iommu = NULL;
	intel_iommu_free(iu);
}

const struct device_ops intel_iommu_ops = {
    .name = "intel-iommu",
    .realize = intel_iommu_realize,
    .reset = intel_iommu_reset,
    .exit = intel_iommu_exit,
};
