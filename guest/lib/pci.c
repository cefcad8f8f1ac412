// SPDX-License-Identifier: MIT
/* PCI bus 0: configuration access (mechanism #1 or ECAM), scan, BARs, MSI-X. */
#include "acpi.h"
#include "guest.h"
#include "page.h"
#include "pci.h"

#define CF8_ADDR   0xcf8
#define CF8_DATA   0xcfc
#define CF8_ENABLE 0x80000000u

enum method { METHOD_NONE, METHOD_CF8, METHOD_ECAM };

static enum method method;
static bool scanned;
static uint64_t ecam_base; /* address of bus 0 */
/* Last value written to 0xcf8: consecutive accesses to one dword (a
 * read-modify-write) then cost one exit instead of two. Only this module
 * writes 0xcf8. */
static uint32_t cf8_latch;
static struct pci_dev funcs[PCI_MAX_FUNCS];
static unsigned int nfuncs;
static uint64_t alloc_next; /* 0: allocator not set up yet */

static uint32_t cf8_select(uint8_t dev, uint8_t fn, unsigned int off)
{
	uint32_t a = CF8_ENABLE | (uint32_t)dev << 11 | (uint32_t)fn << 8 | (off & 0xfc);

	if (a != cf8_latch) {
		outl(CF8_ADDR, a);
		cf8_latch = a;
	}
	return CF8_DATA + (off & 3);
}

static uint64_t ecam_addr(uint8_t dev, uint8_t fn, unsigned int off)
{
	return ecam_base + ((uint64_t)dev << 15 | (uint64_t)fn << 12 | off);
}

/* Raw access by location (bus 0); @size 1, 2 or 4, @off aligned to it. */
static uint32_t cfg_read(uint8_t dev, uint8_t fn, unsigned int off, unsigned int size)
{
	if (method == METHOD_CF8)
		return pio_read(cf8_select(dev, fn, off), size);
	if (method == METHOD_ECAM)
		return mmio_read(ecam_addr(dev, fn, off), size);
	return 0xffffffffu >> (32 - 8 * size);
}

static void cfg_write(uint8_t dev, uint8_t fn, unsigned int off, unsigned int size, uint32_t v)
{
	if (method == METHOD_CF8)
		pio_write(cf8_select(dev, fn, off), size, v);
	else if (method == METHOD_ECAM)
		mmio_write(ecam_addr(dev, fn, off), size, v);
}

uint8_t pci_read8(const struct pci_dev *d, unsigned int off)
{
	return cfg_read(d->dev, d->fn, off & 0xff, 1);
}

uint16_t pci_read16(const struct pci_dev *d, unsigned int off)
{
	return cfg_read(d->dev, d->fn, off & 0xfe, 2);
}

uint32_t pci_read32(const struct pci_dev *d, unsigned int off)
{
	return cfg_read(d->dev, d->fn, off & 0xfc, 4);
}

void pci_write8(const struct pci_dev *d, unsigned int off, uint8_t v)
{
	cfg_write(d->dev, d->fn, off & 0xff, 1, v);
}

void pci_write16(const struct pci_dev *d, unsigned int off, uint16_t v)
{
	cfg_write(d->dev, d->fn, off & 0xfe, 2, v);
}

void pci_write32(const struct pci_dev *d, unsigned int off, uint32_t v)
{
	cfg_write(d->dev, d->fn, off & 0xfc, 4, v);
}

/* Mechanism #1 exists if the address port keeps what we write (Linux's
 * type 1 check does the same); a missing port reads as all ones. */
static bool cf8_present(void)
{
	outl(CF8_ADDR, CF8_ENABLE);
	bool ok = inl(CF8_ADDR) == CF8_ENABLE;
	cf8_latch = CF8_ENABLE;
	return ok;
}

static void add_function(uint8_t dev, uint8_t fn, uint32_t id, uint8_t header)
{
	struct pci_dev *d;

	if (nfuncs == PCI_MAX_FUNCS)
		return;
	d = &funcs[nfuncs++];
	*d = (struct pci_dev){.dev = dev, .fn = fn, .vendor = id & 0xffff, .device = id >> 16};
	d->header_type = header & 0x7f;
	d->class_rev = cfg_read(dev, fn, PCI_CLASS_REV, 4);
}

static bool id_present(uint32_t id)
{
	uint16_t vendor = id & 0xffff;

	return vendor != 0xffff && vendor != 0;
}

int pci_init(void)
{
	if (scanned)
		return method == METHOD_NONE ? -ENODEV : (int)nfuncs;
	scanned = true;
	if (cmdline_get_u64("pci_ecam", &ecam_base) && cf8_present())
		method = METHOD_CF8;
	else if (ecam_base || acpi_mcfg_bus0(&ecam_base) == 0)
		method = METHOD_ECAM;
	/* bus 0: 32 devices of 8 functions of 4 KiB */
	if (method == METHOD_NONE ||
	    (method == METHOD_ECAM && page_map_mmio(ecam_base, 32 << 15))) {
		method = METHOD_NONE;
		return -ENODEV;
	}
	for (uint8_t dev = 0; dev < 32; dev++) {
		uint32_t id = cfg_read(dev, 0, PCI_VENDOR_ID, 4);
		if (!id_present(id))
			continue;
		uint8_t header = cfg_read(dev, 0, PCI_HEADER_TYPE, 1);
		add_function(dev, 0, id, header);
		if (!(header & 0x80))
			continue; /* single function: functions 1..7 are not decoded */
		for (uint8_t fn = 1; fn < 8; fn++) {
			id = cfg_read(dev, fn, PCI_VENDOR_ID, 4);
			if (id_present(id))
				add_function(dev, fn, id, cfg_read(dev, fn, PCI_HEADER_TYPE, 1));
		}
	}
	return nfuncs;
}

const char *pci_method(void)
{
	return method == METHOD_CF8 ? "cf8" : method == METHOD_ECAM ? "ecam" : "none";
}

struct pci_dev *pci_get(unsigned int i)
{
	return i < nfuncs ? &funcs[i] : NULL;
}

struct pci_dev *pci_find(uint16_t vendor, uint16_t device, unsigned int index)
{
	for (unsigned int i = 0; i < nfuncs; i++)
		if (funcs[i].vendor == vendor && funcs[i].device == device && index-- == 0)
			return &funcs[i];
	return NULL;
}

void pci_bars_probe(struct pci_dev *d)
{
	if (d->bars_probed)
		return;
	d->bars_probed = true;
	if (d->header_type != 0)
		return;
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	/* Decoding off while a BAR holds all ones, so it claims nothing. */
	pci_write16(d, PCI_COMMAND, cmd & ~(PCI_CMD_IO | PCI_CMD_MEM));
	for (unsigned int i = 0; i < 6; i++) {
		unsigned int off = PCI_BAR0 + 4 * i;
		uint32_t lo = pci_read32(d, off);
		pci_write32(d, off, 0xffffffffu);
		uint32_t mlo = pci_read32(d, off);
		pci_write32(d, off, lo);
		struct pci_bar *b = &d->bar[i];
		if (lo & 1) { /* I/O */
			uint32_t mask = mlo & ~3u & 0xffff;
			b->flags = PCI_BAR_IO;
			b->addr = lo & ~3u;
			b->size = mask ? (~mask & 0xffff) + 1 : 0;
			continue;
		}
		uint64_t addr = lo & ~0xfull, mask = mlo & ~0xfull;
		b->flags = (lo & 8) ? PCI_BAR_PREFETCH : 0;
		b->addr = addr;
		if (((lo >> 1) & 3) == 2 && i < 5) { /* 64-bit: the next BAR is the upper half */
			uint32_t hi = pci_read32(d, off + 4);
			pci_write32(d, off + 4, 0xffffffffu);
			uint32_t mhi = pci_read32(d, off + 4);
			pci_write32(d, off + 4, hi);
			addr |= (uint64_t)hi << 32;
			mask |= (uint64_t)mhi << 32;
			b->flags |= PCI_BAR_MEM64;
			b->addr = addr;
			i++;
		} else if (mask) {
			mask |= 0xffffffff00000000ull;
		}
		b->size = mask ? ~mask + 1 : 0; /* no writable address bit: not implemented */
	}
	pci_write16(d, PCI_COMMAND, cmd);
}

/* First use: start above every memory BAR already inside the window. */
static void alloc_setup(void)
{
	alloc_next = PCI_ALLOC_START;
	for (unsigned int i = 0; i < nfuncs; i++) {
		pci_bars_probe(&funcs[i]);
		for (unsigned int j = 0; j < 6; j++) {
			const struct pci_bar *b = &funcs[i].bar[j];
			uint64_t end = b->addr + b->size;
			if (b->size && !(b->flags & PCI_BAR_IO) && b->addr < PCI_ALLOC_END &&
			    end > alloc_next)
				alloc_next = end;
		}
	}
}

/* A naturally aligned range of @size in the window, or 0. */
static uint64_t alloc_mmio(uint64_t size)
{
	if (!alloc_next)
		alloc_setup();
	uint64_t a = (alloc_next + size - 1) & ~(size - 1);
	if (a < alloc_next || a > PCI_ALLOC_END || size > PCI_ALLOC_END - a)
		return 0;
	alloc_next = a + size;
	return a;
}

/* Program memory BAR @i of @d with address @a (type bits kept). */
static void bar_write(struct pci_dev *d, unsigned int i, uint64_t a)
{
	struct pci_bar *b = &d->bar[i];

	pci_write32(d, PCI_BAR0 + 4 * i, (uint32_t)a | (pci_read32(d, PCI_BAR0 + 4 * i) & 0xf));
	if (b->flags & PCI_BAR_MEM64)
		pci_write32(d, PCI_BAR0 + 4 * i + 4, a >> 32);
	b->addr = a;
	b->guest_assigned = true;
}

int pci_dev_relocate(struct pci_dev *d, uint64_t high)
{
	uint16_t cmd;
	int r = 0;

	pci_bars_probe(d);
	if (!alloc_next)
		alloc_setup(); /* counts the current addresses: the new ones differ */
	cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & ~PCI_CMD_MEM);
	for (unsigned int i = 0; i < 6 && !r; i++) {
		struct pci_bar *b = &d->bar[i];
		uint64_t a;
		if (!b->size || (b->flags & PCI_BAR_IO))
			continue;
		if (high && (b->flags & PCI_BAR_MEM64)) {
			a = (high + b->size - 1) & ~(b->size - 1);
			high = a + b->size;
		} else if (!(a = alloc_mmio(b->size))) {
			r = -ENOSPC;
			break;
		}
		bar_write(d, i, a);
	}
	pci_write16(d, PCI_COMMAND, cmd);
	return r;
}

int pci_dev_enable(struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, PCI_COMMAND);
	bool io = false;

	pci_bars_probe(d);
	for (unsigned int i = 0; i < 6; i++) {
		struct pci_bar *b = &d->bar[i];
		if (!b->size)
			continue;
		if (b->flags & PCI_BAR_IO) {
			io |= b->addr != 0;
			continue; /* no I/O allocator: our drivers use memory BARs */
		}
		if (!b->addr) {
			uint64_t a = alloc_mmio(b->size);
			if (!a)
				return -ENOSPC;
			bar_write(d, i, a);
		}
		if (b->addr + b->size > GUEST_MAPPED_END) {
			int r = page_map_mmio(b->addr, b->size);
			if (r)
				return r;
		}
	}
	cmd |= PCI_CMD_MEM | PCI_CMD_MASTER | PCI_CMD_INTX_OFF | (io ? PCI_CMD_IO : 0);
	pci_write16(d, PCI_COMMAND, cmd);
	return 0;
}

uint8_t pci_cap_find(const struct pci_dev *d, uint8_t id, uint8_t after)
{
	uint8_t p;

	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS))
		return 0;
	p = after ? pci_read8(d, after + 1) : pci_read8(d, PCI_CAP_PTR);
	/* 48 capabilities of 4 bytes fill the 192 bytes after the header: more is a loop */
	for (int n = 0; n < 48 && p >= 0x40; n++) {
		p &= 0xfc;
		uint16_t w = pci_read16(d, p); /* ID and next pointer in one access */
		if ((w & 0xff) == id)
			return p;
		p = w >> 8;
	}
	return 0;
}

void pci_dev_print(const struct pci_dev *d)
{
	printf("pci: %02x:%02x.%x %04x:%04x class %06x rev %u header %u\n", d->bus, d->dev, d->fn,
	       d->vendor, d->device, d->class_rev >> 8, d->class_rev & 0xff, d->header_type);
	for (unsigned int i = 0; i < 6 && d->bars_probed; i++) {
		const struct pci_bar *b = &d->bar[i];
		if (b->size)
			printf("pci:   bar %u: %s 0x%lx size 0x%lx%s%s\n", i,
			       b->flags & PCI_BAR_IO	  ? "io"
			       : b->flags & PCI_BAR_MEM64 ? "mem64"
							  : "mem32",
			       b->addr, b->size, b->flags & PCI_BAR_PREFETCH ? " prefetch" : "",
			       b->guest_assigned ? " (assigned by the guest)" : "");
	}
}

#define MSIX_CTRL	   2
#define MSIX_TABLE	   4
#define MSIX_PBA	   8
#define MSIX_CTRL_ENABLE   0x8000
#define MSIX_CTRL_FMASK	   0x4000
#define MSIX_ENTRY_SIZE	   16
#define MSIX_ENTRY_ADDR_LO 0
#define MSIX_ENTRY_ADDR_HI 4
#define MSIX_ENTRY_DATA	   8
#define MSIX_ENTRY_CTRL	   12
#define MSIX_ENTRY_MASKED  1

/* Address of [offset, offset + len) of the BAR named by @bir_off's low bits. */
static uint64_t msix_locate(const struct pci_dev *d, uint32_t bir_off, uint64_t len)
{
	const struct pci_bar *b;
	uint32_t bir = bir_off & 7, off = bir_off & ~7u;

	if (bir > 5)
		return 0;
	b = &d->bar[bir];
	if (!b->size || (b->flags & PCI_BAR_IO) || !b->addr || off > b->size || len > b->size - off)
		return 0;
	return b->addr + off;
}

int pci_msix_enable(const struct pci_dev *d, struct pci_msix *m)
{
	uint8_t cap = pci_cap_find(d, PCI_CAP_MSIX, 0);

	if (!cap)
		return -ENODEV;
	uint16_t ctrl = pci_read16(d, cap + MSIX_CTRL);
	m->d = d;
	m->cap = cap;
	m->nvec = (ctrl & 0x7ff) + 1;
	m->table = msix_locate(d, pci_read32(d, cap + MSIX_TABLE), m->nvec * MSIX_ENTRY_SIZE);
	m->pba = msix_locate(d, pci_read32(d, cap + MSIX_PBA), (m->nvec + 63) / 64 * 8);
	if (!m->table || !m->pba)
		return -EINVAL;
	/* Enable with the function masked, mask every entry, then unmask the function. */
	pci_write16(d, cap + MSIX_CTRL, ctrl | MSIX_CTRL_ENABLE | MSIX_CTRL_FMASK);
	for (unsigned int i = 0; i < m->nvec; i++)
		pci_msix_mask(m, i, true);
	pci_write16(d, cap + MSIX_CTRL, (ctrl | MSIX_CTRL_ENABLE) & ~MSIX_CTRL_FMASK);
	return 0;
}

void pci_msix_route(const struct pci_msix *m, unsigned int entry, uint8_t vector, uint32_t apic_id)
{
	uint64_t e = m->table + (uint64_t)entry * MSIX_ENTRY_SIZE;

	if (entry >= m->nvec)
		return;
	pci_msix_mask(m, entry, true); /* never fire a half-written message */
	mmio_write32(e + MSIX_ENTRY_ADDR_LO, irq_msi_address(apic_id));
	mmio_write32(e + MSIX_ENTRY_ADDR_HI, 0);
	mmio_write32(e + MSIX_ENTRY_DATA, vector);
	pci_msix_mask(m, entry, false);
}

void pci_msix_mask(const struct pci_msix *m, unsigned int entry, bool masked)
{
	uint64_t c = m->table + (uint64_t)entry * MSIX_ENTRY_SIZE + MSIX_ENTRY_CTRL;

	if (entry < m->nvec)
		mmio_write32(c, masked ? MSIX_ENTRY_MASKED : 0);
}

bool pci_msix_pending(const struct pci_msix *m, unsigned int entry)
{
	if (entry >= m->nvec)
		return false;
	return (mmio_read32(m->pba + entry / 32 * 4) >> (entry % 32)) & 1;
}
