/* SPDX-License-Identifier: MIT */
/*
 * MSI-X for PCI devices, delivered by KVM.
 *
 * struct msix: one function's MSI-X capability, table and PBA, over a PCI
 * device (vmm/pci.h) and its host's GSI router (vmm/kvm_irq.h). Every vector
 * owns an eventfd. While the vector is deliverable (MSI-X enabled, function
 * and vector unmasked) that eventfd is a KVM irqfd on the vector's GSI, so
 * writing it injects the interrupt without leaving the kernel. While it is
 * masked the irqfd is removed and writes accumulate in the eventfd: they are
 * the vector's pending bit (the PBA shows them), and unmasking delivers them
 * once. msix depends on pci, never the other way.
 *
 * Threads: msix_notify may be called from any thread (it only writes the
 * eventfd). Table/PBA accesses come from vCPU threads through the BAR;
 * msix_config_write from the device's PCI config hook (config lock held).
 * struct msix's lock protects its table and vector state; the router's
 * lock its table. Lock order: PCI config lock -> msix lock -> router lock.
 */
#ifndef KVMINI_MSIX_H
#define KVMINI_MSIX_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm_irq.h"
#include "vmm/util.h"

struct pci_device;

#define MSIX_MAX_VECTORS 2048 /* the capability's 11-bit table size */
#define MSIX_ENTRY_SIZE	 16
#define MSIX_CAP_LEN	 12

struct msix_entry {
	uint32_t addr_lo;
	uint32_t addr_hi;
	uint32_t data;
	uint32_t ctrl; /* bit 0: vector masked; the rest reads as zero */
};

struct msix_vector_state {
	int efd;      /* eventfd: msix_notify writes it */
	uint32_t gsi; /* its KVM route */
	bool irqfd;   /* efd is attached to gsi as an irqfd right now */
	bool routed;  /* gsi's route holds this entry's address/data */
	bool pending; /* PBA bit: a message arrived while masked */
};

struct msix {
	struct pci_device *pdev;
	struct msi_router *router;
	unsigned cap; /* offset of the capability in config space */
	unsigned nvec;
	pthread_mutex_t lock; /* all fields below */
	bool enabled;	      /* message control bit 15 */
	bool fmask;	      /* message control bit 14: function mask */
	struct msix_entry *table;
	struct msix_vector_state *v;
	unsigned nirqfd_errors; /* irqfd attach failures seen (reported once) */
};

/*
 * Give PCI device @d an MSI-X capability with @nvec vectors (1..2048), its
 * table at @table_off and PBA at @pba_off of memory BAR @bar (both 8-byte
 * aligned; the caller sized the BAR), and one eventfd and GSI per vector.
 * Vectors start masked, MSI-X disabled. The device's PCI config_write hook
 * must call msix_config_write. Realize time (main thread).
 */
int msix_init(struct msix *m, struct pci_device *d, struct msi_router *r, unsigned nvec, int bar,
	      uint64_t table_off, uint64_t pba_off, struct errbuf *err);

/* Detach irqfds and close the eventfds. Main thread, no vCPU running. */
void msix_exit(struct msix *m);

/* Bytes the table and PBA of @nvec vectors take in the BAR. */
static inline uint64_t msix_table_size(unsigned nvec)
{
	return (uint64_t)nvec * MSIX_ENTRY_SIZE;
}
static inline uint64_t msix_pba_size(unsigned nvec)
{
	return ((uint64_t)nvec + 63) / 64 * 8;
}

/*
 * The guest wrote [off, off + len) of @m's function's config space: if it
 * touched the message control word, apply enable/function mask. Called
 * from the device's config_write hook (config lock held, vCPU thread).
 */
void msix_config_write(struct msix *m, uint32_t off, uint32_t len);

/* Signal @vector (delivered now, or pending until unmasked). Any thread.
 * Out-of-range vectors are ignored. */
void msix_notify(struct msix *m, unsigned vector);

/* The eventfd behind @vector (a peer may write it directly), or -1. */
int msix_vector_fd(const struct msix *m, unsigned vector);

/*
 * Make @fd (an eventfd, O_NONBLOCK, owned by msix from now on) the one
 * behind @vector, in place of the vector's own: ivshmem gets its vectors'
 * eventfds from its server, and peers write them directly. Messages
 * waiting in the old eventfd become the vector's pending bit; the irqfd
 * (if the vector is deliverable) moves to @fd. The old eventfd is closed.
 * Main thread (realize or main loop); vCPUs may run. -EINVAL (and @fd is
 * closed) for a vector out of range.
 */
int msix_vector_set_fd(struct msix *m, unsigned vector, int fd);

/*
 * Table and PBA accesses, as the BAR regions msix_init registers deliver
 * them (offsets relative to the table / PBA). Exposed for tests. vCPU
 * threads.
 */
void msix_table_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write);
void msix_pba_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write);

/* Back to power-on state: disabled, all vectors masked, nothing pending.
 * Main thread or config hook. */
void msix_reset(struct msix *m);

/*
 * Snapshot: the table (@nvec entries) and the pending bits
 * (msix_pba_size(nvec) bytes, bit i = vector i). msix_save: vCPUs stopped
 * (messages a device raised while a vector was masked become its pending
 * bit). msix_check refuses (-EINVAL, message) an entry with address bits
 * 1:0 or vector-control bits 31:1 set, or a pending bit past the last
 * vector; pure. msix_load applies a checked table after the function's
 * config space (whose message control word holds enable and function mask)
 * was loaded: KVM routes are set and irqfds attached for deliverable
 * vectors, and their pending messages are delivered. Main thread, vCPUs
 * stopped.
 */
void msix_save(struct msix *m, struct msix_entry *table, uint64_t *pending);
int msix_check(const struct msix *m, const struct msix_entry *table, const uint64_t *pending,
	       struct errbuf *err);
void msix_load(struct msix *m, const struct msix_entry *table, const uint64_t *pending);

#endif
