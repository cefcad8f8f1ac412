/* SPDX-License-Identifier: MIT */
/*
 * virtio 1.x over PCI (modern transport only) and split virtqueues.
 *
 * Where code runs: virtio_pci_probe touches configuration space (port I/O
 * with mechanism #1), so it runs at CPL0. Everything else is MMIO and
 * memory: it works at CPL0 and at CPL3, and on our hosts belongs at CPL3
 * (CPL0 is emulated): ring handling, notifications, status, even device
 * reset and re-initialisation. Interrupt waits go to CPL0 by themselves
 * (irq_wait).
 *
 * Memory: rings and indirect tables come from mem_alloc; buffers are
 * guest-physical = virtual (the identity map), so any address a guest
 * program holds can go into a descriptor as is.
 *
 * Not thread-safe: one CPU drives a device at a time.
 */
#ifndef GUEST_VIRTIO_H
#define GUEST_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

#include "irq.h"
#include "pci.h"

#define VIRTIO_PCI_VENDOR 0x1af4
/* Modern device IDs are 0x1040 + virtio device type. */
#define VIRTIO_PCI_DEVICE(type) (0x1040 + (type))
#define VIRTIO_TYPE_BLOCK	2
#define VIRTIO_TYPE_SCSI	8

/* Device status bits. */
#define VIRTIO_STATUS_ACKNOWLEDGE 0x01
#define VIRTIO_STATUS_DRIVER	  0x02
#define VIRTIO_STATUS_DRIVER_OK	  0x04
#define VIRTIO_STATUS_FEATURES_OK 0x08
#define VIRTIO_STATUS_NEEDS_RESET 0x40
#define VIRTIO_STATUS_FAILED	  0x80

/* Transport feature bits. */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX     29
#define VIRTIO_F_VERSION_1     32

#define VIRTIO_NO_VECTOR 0xffff

/* Descriptor flags. */
#define VIRTQ_DESC_F_NEXT     1
#define VIRTQ_DESC_F_WRITE    2
#define VIRTQ_DESC_F_INDIRECT 4

#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	   1

#define VIRTQ_MAX_SIZE 32768 /* split rings: a power of two up to 32768 */

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

/* One split virtqueue (driver side). Fields are the driver's state; read
 * them, change them only through the functions below (blkevil-style tests
 * write desc[] and the avail ring directly on purpose). */
struct virtq {
	uint16_t index; /* queue number on the device */
	uint16_t size;
	struct virtq_desc *desc;
	volatile uint16_t *avail; /* flags, idx, ring[size], used_event */
	volatile uint16_t *used;  /* flags, idx, then virtq_used_elem[size], avail_event */
	uint64_t notify_addr;	  /* MMIO: write the queue index here */
	bool event_idx, indirect;

	uint16_t free_head, num_free;
	uint16_t avail_idx;  /* next avail->idx to publish */
	uint16_t kicked_idx; /* avail->idx at the last kick decision */
	uint16_t last_used;  /* next used ring entry to consume */
	uint16_t inflight;   /* chains published and not yet returned */
	void **tokens;	     /* per head: the caller's token, NULL if free */
	uint16_t *ndesc;     /* per head: descriptors the chain holds in desc[] */

	struct virtq_desc *itables; /* per head: an indirect table of imax entries */
	uint16_t imax;		    /* 0: no indirect tables */
	uint16_t alloc_size;	    /* entries the ring memory was allocated for */
	uint16_t alloc_imax;	    /* entries per indirect table allocated */

	uint64_t kicks, kicks_suppressed; /* statistics */
	int error; /* a device protocol violation seen by virtq_get (-EPROTO) */
};

/* A buffer for virtq_add: guest-physical = virtual. */
struct virtq_buf {
	const void *addr;
	uint32_t len;
};

/* A virtio-pci device. */
struct virtio_dev {
	struct pci_dev *pci;
	uint64_t common;      /* MMIO: struct virtio_pci_common_cfg */
	uint64_t notify_base; /* MMIO: notification area */
	uint32_t notify_len;
	uint32_t notify_mult;
	uint64_t isr;	 /* MMIO: ISR status byte */
	uint64_t device; /* MMIO: device-specific configuration */
	uint32_t device_len;
	uint16_t num_queues;
	uint64_t device_features; /* offered by the device */
	uint64_t features;	  /* negotiated */

	struct pci_msix msix;
	bool have_msix;
	int config_vector; /* IDT vector of config-change interrupts, -1 if none */
};

/*
 * Find @d's virtio capabilities (common, notify, ISR, device; each checked
 * against its BAR), enable the function (pci_dev_enable) and MSI-X (all
 * entries masked), and reset the device. CPL0 (configuration space).
 * Returns 0, -ENODEV if @d is not a modern virtio device (no common or
 * notify capability), or what pci_dev_enable / pci_msix_enable returned.
 */
int virtio_pci_probe(struct virtio_dev *v, struct pci_dev *d);

/* Device status register; any CPL. */
uint8_t virtio_status(const struct virtio_dev *v);
void virtio_set_status(const struct virtio_dev *v, uint8_t status);

/*
 * Reset: write 0 to the status and wait (bounded, ~1 s) until it reads 0.
 * Every queue is forgotten by the device. Returns 0 or -ETIMEDOUT.
 */
int virtio_reset(const struct virtio_dev *v);

/*
 * Reset, then ACKNOWLEDGE, DRIVER, negotiate features: accept
 * (offered & @wanted) | VERSION_1 and check FEATURES_OK sticks. Returns 0,
 * -ENOTSUP if the device does not offer VERSION_1 (legacy-only), -EIO if it
 * refuses the features (the status then has FAILED set).
 */
int virtio_negotiate(struct virtio_dev *v, uint64_t wanted);

static inline bool virtio_has(const struct virtio_dev *v, unsigned int bit)
{
	return (v->features >> bit) & 1;
}

/*
 * Route MSI-X entry @entry to a newly allocated IDT vector (irq_alloc with
 * @fn/@arg) on this CPU's LAPIC. Returns the IDT vector or -errno
 * (-ENODEV: no MSI-X, -ENOSPC: entry beyond the table or no free vector).
 * Run at CPL0 (IDT).
 */
int virtio_msix_vector(struct virtio_dev *v, unsigned int entry, irq_fn fn, void *arg);

/*
 * Config-change interrupts on MSI-X entry @entry: sets config_msix_vector
 * and checks the device accepted it. 0 or -EIO. After negotiate, before
 * DRIVER_OK; CPL0 if the IDT vector is not allocated yet.
 */
int virtio_config_irq(struct virtio_dev *v, unsigned int entry);

/*
 * Set up queue @index with at most @max_size entries (the device's maximum
 * if smaller; rounded down to a power of two), interrupts on MSI-X entry
 * @msix_entry (VIRTIO_NO_VECTOR: none, poll the used ring), and indirect
 * tables of @imax entries per head if INDIRECT_DESC was negotiated and
 * @imax > 0. Allocates the rings (zeroed) the first time; on a later call
 * (after a reset) reuses them if @vq->size still fits. Checks that the
 * device keeps the queue size and vector we write. Call between
 * virtio_negotiate and virtio_driver_ok. Returns 0, -ENOENT (no such queue),
 * -ENOMEM, or -EIO (the device did not take the size or vector).
 */
int virtio_queue_setup(struct virtio_dev *v, struct virtq *vq, uint16_t index, uint16_t max_size,
		       uint16_t msix_entry, uint16_t imax);

/* Set DRIVER_OK. Returns 0, or -EIO if the device then reports
 * NEEDS_RESET or FAILED. */
int virtio_driver_ok(const struct virtio_dev *v);

/*
 * A field of the device configuration space, read with an access of its
 * own width. 64-bit fields take two 32-bit reads, repeated until
 * config_generation is the same before and after. A field beyond
 * device_len reads as 0.
 */
uint8_t virtio_cfg8(const struct virtio_dev *v, unsigned int off);
uint16_t virtio_cfg16(const struct virtio_dev *v, unsigned int off);
uint32_t virtio_cfg32(const struct virtio_dev *v, unsigned int off);
uint64_t virtio_cfg64(const struct virtio_dev *v, unsigned int off);

/* Read and clear the ISR status (bit 0 queue, bit 1 config change). */
uint8_t virtio_isr(const struct virtio_dev *v);

/*
 * Queue a chain: @nout device-readable buffers, then @nin device-writable
 * ones, with @token (non-NULL) to get back from virtq_get. Uses the head's
 * indirect table when the queue has them and the chain has more than one
 * buffer and fits, else direct descriptors. Zero-length buffers are
 * refused. The chain is published at once (avail->idx; a polling device
 * may take it), the notification waits for virtq_kick so that one
 * notification can cover many chains. Returns 0, -EINVAL, or -ENOSPC (not
 * enough free descriptors: reap completions first).
 */
int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned int nout, unsigned int nin,
	      void *token);

/*
 * Publish @head, a chain the caller wrote into desc[] (and tables) itself:
 * tests that hand the device malformed chains. This bypasses the free list,
 * which the caller's descriptors overwrite: after it, only virtq_kick and
 * virtq_get may be used until virtq_reinit (normally after a device reset).
 * virtq_get returns @token for it and frees nothing.
 */
void virtq_publish_raw(struct virtq *vq, uint16_t head, void *token);

/*
 * Notify the device of newly published chains unless it asked not to be
 * (EVENT_IDX avail_event, or USED_F_NO_NOTIFY). Returns true if a
 * notification was written.
 */
bool virtq_kick(struct virtq *vq);

/*
 * The next completed chain: returns its token and stores the device's
 * written length in *@len (may be NULL), frees its descriptors; NULL if
 * none. A used entry naming a head that is not in flight is a device bug:
 * vq->error = -EPROTO, the entry is skipped.
 */
void *virtq_get(struct virtq *vq, uint32_t *len);

/* True if the device has used entries not consumed yet. */
bool virtq_has_used(const struct virtq *vq);

/*
 * Ask for an interrupt at the next completion (EVENT_IDX: used_event =
 * last_used; else clear NO_INTERRUPT), with the full barrier the protocol
 * needs. Returns true if completions are already pending (no interrupt may
 * come for them: reap them first).
 */
bool virtq_enable_irq(struct virtq *vq);

/* Tell the device interrupts are not wanted (best effort: NO_INTERRUPT, or
 * under EVENT_IDX a used_event far behind). */
void virtq_disable_irq(struct virtq *vq);

/* Chains in flight. */
static inline unsigned int virtq_inflight(const struct virtq *vq)
{
	return vq->inflight;
}

/* Forget every chain and reset the ring state (after a device reset; the
 * memory is kept). Tokens of chains in flight are dropped. */
void virtq_reinit(struct virtq *vq);

/* ---- Driver helpers shared by virtio_blk.c and virtio_scsi.c (virtio_drv.c) ---- */

/* Driver options a guest takes from its command line. */
struct virtio_opts {
	uint16_t queue_size; /* 0: the device's maximum, capped at 256 */
	bool irq;	     /* completion by MSI-X interrupt instead of polling */
	bool no_indirect;    /* do not negotiate INDIRECT_DESC */
	bool no_event_idx;   /* do not negotiate EVENT_IDX */
	uint16_t max_segs;   /* data descriptors per request (0: the driver's default) */
};

/* Options from the command line: `irq` (MSI-X completion), `qsize=N`,
 * `segs=N` (max_segs, at most @max_segs), `noindirect`, `noevent_idx`. */
void virtio_opts_from_cmdline(struct virtio_opts *o, unsigned int max_segs);

/* The transport features @o asks for (INDIRECT_DESC, EVENT_IDX unless
 * turned off), to OR into a driver's wanted features. */
uint64_t virtio_opts_features(const struct virtio_opts *o);

/*
 * The usual start of a driver: pci_init, then the @index-th function on
 * bus 0 that is modern virtio device @type (0x1040 + type) or the
 * transitional ID @transitional (0: none). With `relocate` on the command
 * line it first moves the function's BARs (pci_dev_relocate;
 * `relocate_high=ADDR` for its 64-bit BARs). Errors are printed with
 * @name and @what ("virtio-blk disk"). CPL0. Returns the device or NULL.
 */
struct pci_dev *virtio_pci_open(unsigned int type, uint16_t transitional, unsigned int index,
				const char *name, const char *what);

/*
 * Split [@p, @p + @len) into buffers of at most @seg bytes (0: no limit)
 * at @out, at most @max of them. Returns the number of buffers, or -E2BIG.
 */
int virtq_split(struct virtq_buf *out, unsigned int max, const void *p, uint32_t len, uint32_t seg);

/*
 * Wait until @vq has a used entry: returns 0, -ETIMEDOUT after
 * @timeout_tsc ticks, or -EIO once the device sets NEEDS_RESET (checked
 * every ~10 ms). Polls the used ring, or with @irq sleeps on the queue's
 * interrupt (counting sleeps in *@irq_waits). Does not kick.
 */
int virtio_wait_used(const struct virtio_dev *v, struct virtq *vq, bool irq, uint64_t timeout_tsc,
		     uint64_t *irq_waits);

#endif
