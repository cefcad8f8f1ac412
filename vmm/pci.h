/* SPDX-License-Identifier: MIT */
/*
 * PCI: one host bridge (bus 0, device 00.0) reached through configuration
 * mechanism #1 (ports 0xcf8 address, 0xcfc-0xcff data), single-function type
 * 0 devices in slots 1..31, BARs that kvmini places at realize time and maps
 * on the MMIO/PIO buses while the guest's command register enables them.
 * See docs/devices.md for the layout a guest sees.
 *
 * Threads and locking. Realize-time calls (pci_register_device, pci_add_bar,
 * pci_bar_add_region, pci_add_capability, pci_config_set*) are made by the
 * main thread before any vCPU runs. Guest configuration accesses arrive on
 * vCPU threads and are serialised by the host's config lock, which is held
 * while a device's config hooks and its regions' map hooks run. BAR region
 * callbacks are called by the buses with no PCI lock held.
 * Lock order: PCI config lock -> device locks -> MSI-X lock -> MSI router lock.
 */
#ifndef KVMINI_PCI_H
#define KVMINI_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/kvm_irq.h"
#include "vmm/util.h"

struct vm;

#define PCI_SLOTS	 32
#define PCI_CFG_SIZE	 256
#define PCI_BARS	 6
#define PCI_BAR_UNMAPPED UINT64_MAX

#define PCI_CONFIG_ADDR_PORT 0xcf8
#define PCI_CONFIG_DATA_PORT 0xcfc

/* The host bridge's IDs: Red Hat's "QEMU PCIe host bridge" (1b36:0008). */
#define PCI_HOST_VENDOR 0x1b36
#define PCI_HOST_DEVICE 0x0008

/* Where kvmini's I/O BARs go (pci-testdev's BAR 1 is the only one). */
#define PCI_IO_START 0xc000
#define PCI_IO_END   0x10000

/* 64-bit BARs must end below this (a 52-bit physical address). */
#define PCI_MMIO64_LIMIT (1ULL << 52)

enum pci_bar_type {
	PCI_BAR_NONE = 0,
	PCI_BAR_MEM32,
	PCI_BAR_MEM64, /* uses BAR n and n + 1 */
	PCI_BAR_IO,
	PCI_BAR_MEM64_HI, /* internal: the upper half of the BAR before it */
};

/*
 * A piece of a BAR served by one bus callback: [offset, offset + len) of the
 * BAR, registered on the bus at (BAR address + offset) while the BAR is
 * mapped. @map, if set, is told the region's new guest address (or
 * PCI_BAR_UNMAPPED) after each change, on the thread that made the change
 * (a vCPU, or main at realize) with the PCI config lock held: a device puts
 * its KVM ioeventfds there. @name must outlive the device.
 */
struct pci_region {
	uint64_t offset;
	uint64_t len;
	bus_io_fn *fn;
	void *opaque;
	void (*map)(void *opaque, uint64_t addr);
	const char *name;
};

#define PCI_BAR_MAX_REGIONS 8

struct pci_bar {
	enum pci_bar_type type;
	bool prefetch;
	uint64_t size;	 /* power of two; 0: BAR not implemented */
	uint64_t mapped; /* guest address the regions are on the bus at, or PCI_BAR_UNMAPPED */
	struct pci_region regions[PCI_BAR_MAX_REGIONS];
	int nregions;
};

/* What a device is; copied into its configuration header. */
struct pci_device_info {
	const char *name; /* for messages, e.g. "virtio-blk0"; must outlive the device */
	uint16_t vendor_id;
	uint16_t device_id;
	uint16_t subsystem_vendor_id;
	uint16_t subsystem_id;
	uint8_t revision;
	uint32_t class_code; /* base << 16 | sub << 8 | prog-if */
	/*
	 * Optional hooks, vCPU thread, config lock held, @opaque from
	 * pci_register_device. config_read runs before the guest reads
	 * [off, off + len) and may refresh those bytes in d->config;
	 * config_write runs after a write was applied through the masks.
	 */
	void (*config_read)(void *opaque, uint32_t off, uint32_t len);
	void (*config_write)(void *opaque, uint32_t off, uint32_t len);
};

/*
 * One function's state. Fields are owned by pci.c; a device reads them and
 * sets up config/wmask bytes only through the helpers below (realize time)
 * or from its config hooks (config lock held).
 */
struct pci_device {
	struct pci_host *host;
	const struct pci_device_info *info;
	void *opaque;
	unsigned slot;
	uint8_t config[PCI_CFG_SIZE];
	uint8_t wmask[PCI_CFG_SIZE];   /* bits the guest may write */
	uint8_t w1cmask[PCI_CFG_SIZE]; /* bits a guest write of 1 clears */
	uint16_t cap_end;	       /* first free byte for the next capability */
	struct pci_bar bars[PCI_BARS];
};

struct pci_host {
	struct bus *pio;
	struct bus *mmio;
	pthread_mutex_t lock; /* config space of every device, addr_latch, mappings */
	uint32_t addr_latch;  /* last value written to 0xcf8 */
	struct pci_device *slots[PCI_SLOTS];
	struct pci_device bridge; /* slot 0 */
	/* Next free address per BAR kind (bump allocation at realize). */
	uint64_t next_mmio32, next_mmio64, next_io;
	uint64_t mmio64_base; /* where 64-bit BARs start (the ACPI window) */
	struct msi_router msi;
	const struct kvm_irq_ops *kvm; /* KVM seam: irq routes, irqfds, ioeventfds */
	void *kvm_opaque;
};

/*
 * Set up @h: the host bridge at 00.0, the config ports on @pio, and the MSI
 * router over @kvm. 64-bit BARs go at or above @mmio64_start (above RAM).
 * Main thread. -errno and @err on failure, nothing left registered.
 */
int pci_host_init(struct pci_host *h, struct bus *pio, struct bus *mmio, uint64_t mmio64_start,
		  const struct kvm_irq_ops *kvm, void *kvm_opaque, struct errbuf *err);

/* Free what pci_host_init and pci_register_device allocated. Main thread,
 * after every device's exit op and with no vCPU running. */
void pci_host_destroy(struct pci_host *h);

/*
 * The host bridge as a device (main/main.c realizes it before any PCI
 * device): creates vm->pci with KVM's real irq ops on vm->vm_fd.
 */
extern const struct device_ops pci_host_ops;

/*
 * Snapshot of what belongs to the host bridge: the 0xcf8 latch and the
 * bridge's own config space (each PCI device saves its own). save returns
 * the bytes used or -ENOSPC; load refuses (-EINVAL, message) a wrong size
 * or version, or any read-only config bit that
 * differs from this kvmini's, and applies only guest-writable bits. Main
 * thread, vCPUs stopped.
 */
int pci_host_save(struct pci_host *h, void *buf, size_t len);
int pci_host_load(struct pci_host *h, const void *buf, size_t len, struct errbuf *err);

/*
 * A function's configuration space in a snapshot (each PCI device saves its
 * own). pci_device_save_config copies the 256 bytes. pci_device_load_config
 * refuses (-EINVAL, a message naming the byte) any bit the guest could not
 * have written: one outside the writable mask that differs from this
 * kvmini's, or a write-1-to-clear bit that is set (kvmini never sets
 * them). Then it applies the bytes and puts every BAR on the host where
 * config space now says (region map hooks run, so ioeventfds follow; all
 * devices are re-mapped, so BARs the guest swapped between two devices end
 * up right once both are loaded). Device hooks are not called: a device
 * reloads what it derives from config space itself (msix_load). Main
 * thread, vCPUs stopped.
 */
void pci_device_save_config(struct pci_device *d, uint8_t *config);
int pci_device_load_config(struct pci_device *d, const uint8_t *config, struct errbuf *err);

/*
 * Add a device in the next free slot. The header is filled from @info
 * (which must outlive the device); @opaque is passed to the hooks. Main
 * thread at realize. -ENOSPC (message) when all 31 slots are taken.
 */
int pci_register_device(struct vm *vm, const struct pci_device_info *info, void *opaque,
			struct pci_device **out, struct errbuf *err);
/* Same on a bare host (unit tests, or a VM whose vm->pci is @h). */
int pci_host_add_device(struct pci_host *h, const struct pci_device_info *info, void *opaque,
			struct pci_device **out, struct errbuf *err);

/*
 * Take @d off the bus: its BARs are unmapped (region map hooks run, so a
 * device calls this from its exit op while its state is still alive) and
 * its slot is freed. Main thread, no vCPU running.
 */
void pci_unregister_device(struct pci_device *d);

/*
 * Implement BAR @bar with @size bytes (a power of two; at least 4 KiB for
 * memory BARs, 4..256 for I/O) and give it its address: 32-bit BARs in
 * [LAYOUT_MMIO32_START, LAYOUT_IOAPIC), 64-bit ones above RAM, I/O ones in
 * [PCI_IO_START, PCI_IO_END), each naturally aligned. A 64-bit BAR also
 * takes @bar + 1. Realize time. -EINVAL for a bad index/size, -ENOSPC when
 * the window is full.
 */
int pci_add_bar(struct pci_device *d, int bar, enum pci_bar_type type, uint64_t size, bool prefetch,
		struct errbuf *err);

/* Serve [r->offset, r->offset + r->len) of BAR @bar with r->fn. Realize time. */
int pci_bar_add_region(struct pci_device *d, int bar, const struct pci_region *r,
		       struct errbuf *err);

/*
 * Append a capability of @len bytes (at least 2) with ID @id to the list;
 * returns its offset in config space (4-byte aligned, >= 0x40), or -ENOSPC.
 * Bytes after the ID/next pair are zero and read-only until the caller sets
 * them (pci_config_set*, pci_config_set_wmask). Realize time.
 */
int pci_add_capability(struct pci_device *d, uint8_t id, uint8_t len, struct errbuf *err);

/*
 * Set command register bits @cmd (PCI_COMMAND_MEMORY, ...) and map the BARs
 * they enable, as firmware does for a device that guests expect enabled
 * (edu: kvm-unit-tests only sets bus mastering). Realize or reset time.
 */
void pci_device_enable(struct pci_device *d, uint16_t cmd);

/* Little-endian config accessors. Realize time or config hooks. */
void pci_config_set8(struct pci_device *d, uint32_t off, uint8_t v);
void pci_config_set16(struct pci_device *d, uint32_t off, uint16_t v);
void pci_config_set32(struct pci_device *d, uint32_t off, uint32_t v);
uint8_t pci_config_get8(const struct pci_device *d, uint32_t off);
uint16_t pci_config_get16(const struct pci_device *d, uint32_t off);
uint32_t pci_config_get32(const struct pci_device *d, uint32_t off);
/* Make the bits of @mask (@width bytes, little-endian) at @off guest-writable. */
void pci_config_set_wmask(struct pci_device *d, uint32_t off, uint32_t mask, uint32_t width);

/*
 * Guest address BAR @bar is mapped at, or PCI_BAR_UNMAPPED (decoding off,
 * address unusable, or overlapping another device). Config lock or realize.
 */
uint64_t pci_bar_address(const struct pci_device *d, int bar);

/*
 * Access [off, off + len) of BAR @bar as if it came from the bus (used by
 * virtio's PCI-configuration-access capability). Config lock held. Returns
 * false if no region covers the whole access (reads then see all-ones).
 */
bool pci_bar_access(struct pci_device *d, int bar, uint64_t off, void *data, uint32_t len,
		    bool is_write);

#endif
