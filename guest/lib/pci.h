/* SPDX-License-Identifier: MIT */
/*
 * PCI on bus 0: configuration access, enumeration, BARs, capabilities,
 * MSI-X.
 *
 * Configuration access: ECAM at `pci_ecam=ADDR` if the command line has it,
 * else mechanism #1 (ports 0xcf8/0xcfc: kvmini, QEMU q35) if the address
 * port reads back what was written, else ECAM from the ACPI MCFG table.
 * QEMU microvm with pcie=on has no 0xcf8 and (QEMU 7.2) no MCFG either: its
 * ECAM is at 0xe0000000 (hw/i386/microvm.h), so pass pci_ecam=0xe0000000
 * there. Mechanism #1 is port
 * I/O, which costs one exit per port access at CPL0 (~12.7 us on our hosts)
 * and a #GP trap per access at CPL3 (~100 us): configure devices at CPL0.
 * ECAM accesses are MMIO and work at either CPL.
 *
 * Enumeration reads one dword per absent device (the vendor ID) and three
 * per present function; functions 1..7 are probed only when function 0's
 * header type has the multifunction bit. Bridges are listed but not
 * followed (bus 0 only).
 *
 * BARs: kvmini and QEMU's firmware (SeaBIOS on q35) assign them. A memory
 * BAR left at 0 (QEMU microvm: no firmware does it) gets an address from a
 * bump allocator in [PCI_ALLOC_START, PCI_ALLOC_END), above every BAR
 * already there. A BAR above 4 GiB is added to the page tables (page.h).
 *
 * Not thread-safe: one CPU configures PCI, at init time.
 */
#ifndef GUEST_PCI_H
#define GUEST_PCI_H

#include <stdbool.h>
#include <stdint.h>

#define PCI_MAX_FUNCS 64

/* Where pci_dev_enable places unassigned memory BARs: above q35's ECAM
 * (0xb0000000), below microvm's (0xe0000000), inside kvmini's PCI hole. */
#define PCI_ALLOC_START 0xc0000000ull
#define PCI_ALLOC_END	0xe0000000ull

/* Configuration header offsets. */
#define PCI_VENDOR_ID	 0x00
#define PCI_COMMAND	 0x04
#define PCI_STATUS	 0x06
#define PCI_CLASS_REV	 0x08
#define PCI_HEADER_TYPE	 0x0e
#define PCI_BAR0	 0x10
#define PCI_CAP_PTR	 0x34
#define PCI_CMD_IO	 0x0001
#define PCI_CMD_MEM	 0x0002
#define PCI_CMD_MASTER	 0x0004
#define PCI_CMD_INTX_OFF 0x0400
#define PCI_STATUS_CAPS	 0x0010

#define PCI_CAP_VENDOR 0x09
#define PCI_CAP_MSIX   0x11

/* struct pci_bar.flags */
#define PCI_BAR_IO	 0x1
#define PCI_BAR_MEM64	 0x2
#define PCI_BAR_PREFETCH 0x4

struct pci_bar {
	uint64_t addr; /* guest-physical base (0: unassigned) */
	uint64_t size; /* 0: not implemented (or the upper half of a 64-bit BAR) */
	uint8_t flags;
	bool guest_assigned; /* the address came from this guest's allocator */
};

struct pci_dev {
	uint8_t bus, dev, fn;
	uint8_t header_type; /* without the multifunction bit */
	uint16_t vendor, device;
	uint32_t class_rev; /* class << 8 | revision (class = base << 16 | sub << 8 | prog-if) */
	bool bars_probed;
	struct pci_bar bar[6];
};

/*
 * Pick the configuration access method and enumerate bus 0. CPL0, once
 * (later calls return the same count). Returns the number of functions
 * found, or -ENODEV if there is no usable configuration mechanism.
 */
int pci_init(void);

/* "cf8", "ecam" or "none". */
const char *pci_method(void);

/* Function @i (0 <= i < pci_init()'s count), in bus order. */
struct pci_dev *pci_get(unsigned int i);

/* The @index-th (0-based) function with these IDs, or NULL. */
struct pci_dev *pci_find(uint16_t vendor, uint16_t device, unsigned int index);

/* Configuration space of @d, offsets below 256, naturally aligned. */
uint8_t pci_read8(const struct pci_dev *d, unsigned int off);
uint16_t pci_read16(const struct pci_dev *d, unsigned int off);
uint32_t pci_read32(const struct pci_dev *d, unsigned int off);
void pci_write8(const struct pci_dev *d, unsigned int off, uint8_t v);
void pci_write16(const struct pci_dev *d, unsigned int off, uint16_t v);
void pci_write32(const struct pci_dev *d, unsigned int off, uint32_t v);

/*
 * Size every BAR (decoding off meanwhile) into d->bar[]. Type 0 headers
 * only; others get no BARs. Called by pci_dev_enable; CPL0.
 */
void pci_bars_probe(struct pci_dev *d);

/*
 * Make @d usable: probe its BARs, give unassigned memory BARs an address,
 * map BARs above 4 GiB, then enable memory decoding and bus mastering
 * (I/O decoding too if an I/O BAR is assigned) and disable INTx. CPL0.
 * Returns 0, or -ENOSPC if the allocator is out of room, -ENOMEM if page
 * tables could not be allocated.
 */
int pci_dev_enable(struct pci_dev *d);

/*
 * Move @d's memory BARs to new addresses (a test of the VMM's BAR
 * remapping, doorbells included): 32-bit ones, and 64-bit ones if @high is
 * 0, from the allocator (above every BAR already in its window, so they do
 * move); 64-bit ones from @high upwards otherwise (beyond 4 GiB they are
 * mapped by pci_dev_enable). Memory decoding is off while they change.
 * Before pci_dev_enable; CPL0. Returns 0 or -ENOSPC.
 */
int pci_dev_relocate(struct pci_dev *d, uint64_t high);

/*
 * Offset of the first capability with ID @id after offset @after (0: from
 * the start of the list), or 0 if there is none. The walk is bounded, so a
 * looping list ends. Use @after to find further capabilities of an ID.
 */
uint8_t pci_cap_find(const struct pci_dev *d, uint8_t id, uint8_t after);

/* Print "BB:DD.F vvvv:dddd class cccccc" and the BARs. Any CPL. */
void pci_dev_print(const struct pci_dev *d);

/* MSI-X of one function. Table and PBA are MMIO in the function's BARs. */
struct pci_msix {
	const struct pci_dev *d;
	uint8_t cap;	/* capability offset */
	uint16_t nvec;	/* table size */
	uint64_t table; /* address of entry 0 */
	uint64_t pba;	/* address of the pending-bit array */
};

/*
 * Find @d's MSI-X capability and enable MSI-X with every entry masked
 * (entries are programmed with pci_msix_route). @d must be enabled
 * (pci_dev_enable). CPL0. Returns 0, -ENODEV if there is no MSI-X, or
 * -EINVAL if the table or PBA lies outside its BAR.
 */
int pci_msix_enable(const struct pci_dev *d, struct pci_msix *m);

/* Point entry @entry at IDT @vector on LAPIC @apic_id and unmask it.
 * MMIO only: any CPL. */
void pci_msix_route(const struct pci_msix *m, unsigned int entry, uint8_t vector, uint32_t apic_id);

/* Mask or unmask entry @entry. Any CPL. */
void pci_msix_mask(const struct pci_msix *m, unsigned int entry, bool masked);

/* The pending bit of entry @entry (set while it is masked and fired). */
bool pci_msix_pending(const struct pci_msix *m, unsigned int entry);

#endif
