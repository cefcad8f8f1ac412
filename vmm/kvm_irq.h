/* SPDX-License-Identifier: MIT */
/*
 * The KVM side of interrupts and doorbells, apart from PCI and MSI-X:
 *  - struct kvm_irq_ops: the few KVM calls interrupts and doorbells need
 *    (GSI routing table, irqfd, ioeventfd, irqchip lines). kvm_irq_ops_vm issues the real
 *    ioctls on a VM fd; unit tests supply their own recording table. This is
 *    the only seam: the logic above it is the same in both cases.
 *  - struct msi_router: the VM's GSI routing table. It keeps KVM's default
 *    irqchip routes (GSI 0-23: PIC and IOAPIC pins, which the legacy devices'
 *    KVM_IRQ_LINE needs) and adds one MSI route per MSI vector, and the
 *    Hyper-V SINT routes of the hyperv-testdev (vmm/hyperv_testdev.h).
 *
 * The PCI host owns one router (vmm/pci.h); MSI-X (vmm/msix.h) allocates and
 * routes GSIs in it and attaches irqfds through its ops. The router's lock
 * is the last in every lock order.
 */
#ifndef KVMINI_KVM_IRQ_H
#define KVMINI_KVM_IRQ_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* The KVM calls behind MSI-X and virtio doorbells. Every op returns 0 or -errno. */
struct kvm_irq_ops {
	/* Replace the VM's whole GSI routing table (KVM_SET_GSI_ROUTING). */
	int (*set_gsi_routing)(void *opaque, const struct kvm_irq_routing *table);
	/* Attach (@assign) or detach eventfd @fd as an irqfd on @gsi (KVM_IRQFD). */
	int (*irqfd)(void *opaque, int fd, uint32_t gsi, bool assign);
	/* Attach or detach @fd to writes of @len bytes at MMIO (or port, @pio)
	 * address @addr (KVM_IOEVENTFD, no data match). */
	int (*ioeventfd)(void *opaque, uint64_t addr, uint32_t len, int fd, bool pio, bool assign);
	/*
	 * Optional (NULL: not available): attach or detach @fd to MMIO (or
	 * port, @pio) writes of @len (1, 2, 4 or 8) bytes at @addr whose value
	 * is @data (KVM_IOEVENTFD_FLAG_DATAMATCH). Several fds may share an
	 * address with different values (ivshmem's doorbell: one per peer and
	 * vector).
	 */
	int (*ioeventfd_datamatch)(void *opaque, uint64_t addr, uint32_t len, uint64_t data, int fd,
				   bool pio, bool assign);
	/* Optional (NULL: not available): drive irqchip input @irq (GSI 0-23:
	 * PIC and IOAPIC pins) to @level (KVM_IRQ_LINE). pc-testdev's lines. */
	int (*irq_line)(void *opaque, uint32_t irq, bool level);
	/* Optional: attach eventfd @fd as an irqfd on @gsi whose acknowledgement
	 * (for a Hyper-V SINT route: the guest's EOM or EOI) signals
	 * @resample_fd (KVM_IRQFD_FLAG_RESAMPLE). Detach with irqfd. */
	int (*irqfd_resample)(void *opaque, int fd, int resample_fd, uint32_t gsi);
	/* Optional: make the guest's HvSignalEvent on Hyper-V connection
	 * @conn_id signal eventfd @fd in KVM (@assign), or stop it
	 * (KVM_HYPERV_EVENTFD). */
	int (*hyperv_eventfd)(void *opaque, uint32_t conn_id, int fd, bool assign);
};

/* The real thing: @opaque is a pointer to the VM fd (int *). */
extern const struct kvm_irq_ops kvm_irq_ops_vm;

#define MSI_ROUTER_FIRST_GSI 24	  /* 0-23 are the irqchip pins */
#define MSI_ROUTER_MAX_GSI   1024 /* well below KVM_MAX_IRQ_ROUTES */

struct msi_router {
	const struct kvm_irq_ops *ops;
	void *opaque;
	pthread_mutex_t lock;	       /* everything below */
	struct kvm_irq_routing *table; /* irqchip entries first, then MSI and SINT routes */
	uint32_t cap;		       /* entries table has room for */
	uint32_t next_gsi;	       /* GSIs are never reused (no hot-unplug) */
	bool dirty;		       /* table differs from what KVM has */
	bool split;		       /* msi_router_split: GSIs 0-23 are the caller's */
};

/*
 * Set up the default irqchip routes; nothing is sent to KVM until the first
 * MSI route is committed. Main thread. -ENOMEM.
 */
int msi_router_init(struct msi_router *r, const struct kvm_irq_ops *ops, void *opaque);
void msi_router_destroy(struct msi_router *r);

/*
 * For a split irqchip (vmm/ioapic.h): drop the irqchip routes, and let the
 * userspace IOAPIC set and clear MSI routes on GSIs 0-23 (its pins) with
 * msi_router_set and msi_router_clear. Main thread, before any commit.
 */
void msi_router_split(struct msi_router *r);

/* Reserve a GSI for an MSI route. Any thread. -ENOSPC past MSI_ROUTER_MAX_GSI. */
int msi_router_alloc_gsi(struct msi_router *r, uint32_t *gsi);

/*
 * Route @gsi to the MSI message (@addr, @data); nothing reaches KVM until
 * msi_router_commit. Any thread. -EINVAL for a GSI never allocated,
 * -ENOMEM.
 */
int msi_router_set(struct msi_router *r, uint32_t gsi, uint64_t addr, uint32_t data);

/*
 * Route @gsi (allocated) to Hyper-V SynIC SINT @sint of the vCPU with VP
 * index @vcpu (KVM_IRQ_ROUTING_HV_SINT), or drop @gsi's route
 * (msi_router_clear: -ENOENT if it has none; the GSI stays allocated).
 * Nothing reaches KVM until msi_router_commit. Any thread.
 */
int msi_router_set_hv_sint(struct msi_router *r, uint32_t gsi, uint32_t vcpu, uint32_t sint);
int msi_router_clear(struct msi_router *r, uint32_t gsi);

/* Push the table to KVM if it changed since the last commit. Any thread. */
int msi_router_commit(struct msi_router *r);

#endif
