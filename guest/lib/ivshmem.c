// SPDX-License-Identifier: MIT
/*
 * ivshmem driver with just enough PCI: see ivshmem.h.
 *
 * The PCI part (mechanism #1 access, BAR sizing, the MSI-X capability) is a
 * minimal stand-in kept small on purpose: a fuller guest PCI library is
 * being written on the blkguest branch; once that is in main, this file
 * should use it instead.
 */
#include "guest.h"
#include "ivshmem.h"

#ifndef ENOSPC
#define ENOSPC 28
#endif

#define PCI_ADDR_PORT 0xcf8
#define PCI_DATA_PORT 0xcfc

#define IVSHMEM_VENDOR 0x1af4
#define IVSHMEM_DEVICE 0x1110

#define CFG_COMMAND	  0x04
#define CFG_HEADER	  0x0e
#define CFG_BAR0	  0x10
#define CFG_CAP_PTR	  0x34
#define CMD_MEM		  0x0002
#define CMD_MASTER	  0x0004
#define CMD_INTX_OFF	  0x0400
#define CAP_MSIX	  0x11
#define MSIX_ENABLE	  0x8000
#define MSIX_MASKALL	  0x4000
#define BAR_IO		  0x1
#define BAR_TYPE_64	  0x4
#define HOLE_END	  0xfec00000ull /* IOAPIC: BARs stay below */
#define LAPIC_LVT_TIMER	  0x320
#define LAPIC_LVT_LINT0	  0x350
#define LAPIC_TIMER_INIT  0x380
#define LAPIC_TIMER_DIV	  0x3e0
#define LAPIC_SVR	  0x0f0
#define LVT_MASKED	  0x10000
#define LAPIC_NS_PER_TICK 1 /* KVM's LAPIC timer runs at 1 GHz */

static uint32_t cfg_addr(unsigned dev, unsigned fn, unsigned off)
{
	return 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc);
}

static uint32_t cfg_read32(unsigned dev, unsigned fn, unsigned off)
{
	outl(PCI_ADDR_PORT, cfg_addr(dev, fn, off));
	return inl(PCI_DATA_PORT);
}

static void cfg_write32(unsigned dev, unsigned fn, unsigned off, uint32_t v)
{
	outl(PCI_ADDR_PORT, cfg_addr(dev, fn, off));
	outl(PCI_DATA_PORT, v);
}

static uint16_t cfg_read16(unsigned dev, unsigned fn, unsigned off)
{
	return (uint16_t)(cfg_read32(dev, fn, off) >> (8 * (off & 2)));
}

static void cfg_write16(unsigned dev, unsigned fn, unsigned off, uint16_t v)
{
	outl(PCI_ADDR_PORT, cfg_addr(dev, fn, off));
	outw(PCI_DATA_PORT + (off & 2), v);
}

/* Size of memory BAR @bar (decoding must be off): 0 if not a memory BAR. */
static uint64_t bar_size(unsigned dev, unsigned fn, unsigned bar, bool *is64)
{
	unsigned off = CFG_BAR0 + 4 * bar;
	uint32_t lo = cfg_read32(dev, fn, off), hi = 0, mlo, mhi = 0xffffffffu;
	uint64_t mask;

	*is64 = (lo & (BAR_IO | 0x6)) == BAR_TYPE_64;
	if (lo & BAR_IO)
		return 0;
	cfg_write32(dev, fn, off, 0xffffffffu);
	mlo = cfg_read32(dev, fn, off);
	cfg_write32(dev, fn, off, lo);
	if (*is64) {
		hi = cfg_read32(dev, fn, off + 4);
		cfg_write32(dev, fn, off + 4, 0xffffffffu);
		mhi = cfg_read32(dev, fn, off + 4);
		cfg_write32(dev, fn, off + 4, hi);
	}
	mask = (uint64_t)mhi << 32 | (mlo & ~0xfu);
	if (!(mlo & ~0xfu))
		return 0;
	return ~mask + 1;
}

static uint64_t bar_addr(unsigned dev, unsigned fn, unsigned bar, bool is64)
{
	uint64_t a = cfg_read32(dev, fn, CFG_BAR0 + 4 * bar) & ~0xfull;

	if (is64)
		a |= (uint64_t)cfg_read32(dev, fn, CFG_BAR0 + 4 * bar + 4) << 32;
	return a;
}

/*
 * End of the highest memory BAR below 4 GiB on bus 0, skipping BAR @skip
 * of device @skipdev. Sizing turns each function's decoding off briefly.
 */
static uint64_t pci_mem_top(unsigned skipdev, unsigned skip)
{
	uint64_t top = 0;

	for (unsigned dev = 0; dev < 32; dev++) {
		unsigned nfn = 1;

		for (unsigned fn = 0; fn < nfn; fn++) {
			uint32_t id = cfg_read32(dev, fn, 0);
			uint16_t cmd;

			if ((id & 0xffff) == 0xffff)
				continue;
			if (fn == 0 && (cfg_read32(dev, fn, 0x0c) >> 16) & 0x80)
				nfn = 8;
			if ((cfg_read32(dev, fn, 0x0c) >> 16 & 0x7f) != 0)
				continue; /* bridges: their windows are not ours to judge */
			cmd = cfg_read16(dev, fn, CFG_COMMAND);
			cfg_write16(dev, fn, CFG_COMMAND, cmd & ~CMD_MEM);
			for (unsigned bar = 0; bar < 6; bar++) {
				bool is64;
				uint64_t size = bar_size(dev, fn, bar, &is64), a;

				if (size && !(dev == skipdev && fn == 0 && bar == skip)) {
					a = bar_addr(dev, fn, bar, is64);
					if (a && a + size <= HOLE_END && a + size > top)
						top = a + size;
				}
				if (is64)
					bar++;
			}
			cfg_write16(dev, fn, CFG_COMMAND, cmd);
		}
	}
	return top;
}

static uint8_t find_cap(unsigned dev, uint8_t id)
{
	uint8_t p = (uint8_t)cfg_read32(dev, 0, CFG_CAP_PTR) & 0xfc;

	for (int n = 0; p && n < 48; n++) {
		uint32_t w = cfg_read32(dev, 0, p);

		if ((w & 0xff) == id)
			return p;
		p = (uint8_t)(w >> 8) & 0xfc;
	}
	return 0;
}

int ivshmem_open(unsigned index, struct ivshmem_dev *d)
{
	unsigned dev, found = 0;
	uint64_t size, addr;
	bool is64;
	uint8_t cap;

	for (dev = 0; dev < 32; dev++) {
		uint32_t id = cfg_read32(dev, 0, 0);

		if (id == (IVSHMEM_DEVICE << 16 | IVSHMEM_VENDOR) && found++ == index)
			break;
	}
	if (dev == 32)
		return -ENOENT;
	memset(d, 0, sizeof(*d));
	d->dev = (uint8_t)dev;
	cfg_write16(dev, 0, CFG_COMMAND, 0);
	d->regs = bar_addr(dev, 0, 0, false);
	size = bar_size(dev, 0, 2, &is64);
	addr = bar_addr(dev, 0, 2, is64);
	if (!addr || addr + size > HOLE_END) {
		/* Above what the runtime maps (kvmini puts 64-bit BARs above
		 * RAM): move it into the 32-bit hole, above everything there. */
		uint64_t top = pci_mem_top(dev, 2);

		addr = (top + size - 1) & ~(size - 1);
		if (addr < 0xc0000000ull)
			addr = 0xc0000000ull;
		if (addr + size > HOLE_END)
			return -ENOSPC;
		cfg_write32(dev, 0, CFG_BAR0 + 8, (uint32_t)addr);
		if (is64)
			cfg_write32(dev, 0, CFG_BAR0 + 12, 0);
		d->moved = true;
	}
	d->shm = addr;
	d->shm_size = size;
	cap = find_cap(dev, CAP_MSIX);
	if (cap) {
		uint32_t w = cfg_read32(dev, 0, cap), t = cfg_read32(dev, 0, cap + 4);

		d->doorbell = true;
		d->nvec = (uint16_t)((w >> 16) & 0x7ff) + 1;
		d->msix = bar_addr(dev, 0, t & 7, false) + (t & ~7u);
	}
	cfg_write16(dev, 0, CFG_COMMAND, CMD_MEM | CMD_MASTER | CMD_INTX_OFF);
	if (cap) {
		/* Enable with the function masked, mask every entry, unmask the
		 * function: no vector can fire before it is routed. */
		cfg_write16(dev, 0, cap + 2, MSIX_ENABLE | MSIX_MASKALL);
		for (unsigned v = 0; v < d->nvec; v++)
			mmio_write32(d->msix + 16 * v + 12, 1);
		cfg_write16(dev, 0, cap + 2, MSIX_ENABLE);
	}
	d->id = ivshmem_read_reg(d, IVSHMEM_REG_IVPOSITION);
	return 0;
}

static volatile uint64_t irq_counts[IVSHMEM_MAX_IRQS];
static volatile bool timer_fired;

static void ivshmem_irq(struct trap_frame *f)
{
	irq_counts[f->vector - IVSHMEM_IRQ_VECTOR]++;
	lapic_eoi();
}

static void ivshmem_timer(struct trap_frame *f)
{
	(void)f;
	timer_fired = true;
	lapic_eoi();
}

void ivshmem_irq_init(void)
{
	outb(0x21, 0xff); /* 8259 PIC: all masked (firmware may leave the PIT on) */
	outb(0xa1, 0xff);
	mmio_write32(LAPIC_BASE + LAPIC_LVT_LINT0, LVT_MASKED);
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);	 /* enabled, spurious vector 0xff */
	mmio_write32(LAPIC_BASE + LAPIC_TIMER_DIV, 0xb); /* divide by 1 */
	mmio_write32(LAPIC_BASE + LAPIC_LVT_TIMER, IVSHMEM_IRQ_TIMER); /* one-shot */
	trap_set_handler(IVSHMEM_IRQ_TIMER, ivshmem_timer);
	for (unsigned v = 0; v < IVSHMEM_MAX_IRQS; v++)
		trap_set_handler(IVSHMEM_IRQ_VECTOR + v, ivshmem_irq);
}

void ivshmem_route(const struct ivshmem_dev *d, unsigned v)
{
	uint64_t e = d->msix + 16 * v;

	mmio_write32(e + 0, 0xfee00000u | (lapic_id() & 0xff) << 12);
	mmio_write32(e + 4, 0);
	mmio_write32(e + 8, IVSHMEM_IRQ_VECTOR + v);
	mmio_write32(e + 12, 0);
}

uint64_t ivshmem_irq_count(unsigned v)
{
	return v < IVSHMEM_MAX_IRQS ? irq_counts[v] : 0;
}

struct wait_args {
	volatile uint32_t *word;
	uint32_t old;
	uint32_t max_ms;
};

/* CPL0, interrupts off: the check and `sti; hlt` leave no gap for a lost
 * wake-up (sti takes effect after hlt has begun). */
static long wait_k(void *arg)
{
	struct wait_args *a = arg;

	timer_fired = false;
	mmio_write32(LAPIC_BASE + LAPIC_TIMER_INIT, a->max_ms * (1000000u / LAPIC_NS_PER_TICK));
	while (*a->word == a->old && !timer_fired)
		__asm__ volatile("sti; hlt; cli" ::: "memory");
	mmio_write32(LAPIC_BASE + LAPIC_TIMER_INIT, 0);
	return !timer_fired;
}

bool ivshmem_wait(volatile uint32_t *word, uint32_t old, uint32_t max_ms)
{
	struct wait_args a = {word, old, max_ms > 4000 ? 4000 : max_ms};

	return kernel_call(wait_k, &a);
}
