/* SPDX-License-Identifier: MIT */
/*
 * virtio-blk driver (virtio 1.x, one request queue) over virtio.h.
 *
 * Requests are asynchronous: fill a struct vblk_req, vblk_submit it (any
 * number, up to the queue's room), vblk_kick once, and collect completions
 * with vblk_reap (non-blocking) or vblk_wait. The request struct itself
 * holds what the device reads and writes besides the data (header, status,
 * discard range): it must stay put, untouched, until it is returned.
 *
 * Completion: by polling the used ring (default) or by MSI-X interrupt
 * (opts.irq). Measured on our hosts (docs/guest-abi.md): polling at CPL3 is
 * cheaper, because every interrupt wait costs a trip to CPL0 and back.
 *
 * vblk_init runs at CPL0 (PCI configuration); everything else runs at
 * either CPL, and belongs at CPL3 on our hosts.
 */
#ifndef GUEST_VIRTIO_BLK_H
#define GUEST_VIRTIO_BLK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_BLK_F_SIZE_MAX	  1
#define VIRTIO_BLK_F_SEG_MAX	  2
#define VIRTIO_BLK_F_RO		  5
#define VIRTIO_BLK_F_BLK_SIZE	  6
#define VIRTIO_BLK_F_FLUSH	  9
#define VIRTIO_BLK_F_DISCARD	  13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN		  0
#define VIRTIO_BLK_T_OUT	  1
#define VIRTIO_BLK_T_FLUSH	  4
#define VIRTIO_BLK_T_GET_ID	  8
#define VIRTIO_BLK_T_DISCARD	  11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK	    0
#define VIRTIO_BLK_S_IOERR  1
#define VIRTIO_BLK_S_UNSUPP 2
#define VBLK_S_PENDING	    0xff /* status while in flight / not written by the device */

#define VIRTIO_BLK_ID_BYTES 20
#define VIRTIO_BLK_WZ_UNMAP 1
#define VBLK_SECTOR	    512

#define VBLK_MAX_SEGS 256 /* data descriptors per request, at most */

/* The header every request starts with (device-readable). */
struct virtio_blk_outhdr {
	uint32_t type;
	uint32_t ioprio;
	uint64_t sector;
};

/* One DISCARD / WRITE_ZEROES segment (device-readable). */
struct virtio_blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags; /* VIRTIO_BLK_WZ_UNMAP */
};

struct vblk_req {
	/* The caller fills these. */
	uint32_t type;	 /* VIRTIO_BLK_T_* */
	uint64_t sector; /* IN, OUT; DISCARD and WRITE_ZEROES: first sector */
	void *buf;	 /* IN, OUT, GET_ID data */
	uint32_t len;	 /* bytes of data (IN/OUT: a multiple of 512; GET_ID: 20);
			    DISCARD, WRITE_ZEROES: number of sectors */
	uint32_t seg;	 /* split data into descriptors of at most this many bytes (0: no
			    limit but the device's size_max) */
	uint32_t flags;	 /* WRITE_ZEROES: VIRTIO_BLK_WZ_UNMAP */
	void *user;	 /* for the caller */
	/* Results. */
	uint8_t status;	  /* VIRTIO_BLK_S_*, VBLK_S_PENDING until the device writes it */
	uint32_t written; /* bytes the device says it wrote (data + status) */
	/* Read by the device; owned by the driver while in flight. */
	struct virtio_blk_outhdr hdr;
	struct virtio_blk_range range;
};

struct vblk {
	struct virtio_dev vd;
	struct virtq vq;
	struct virtio_opts opts;
	uint64_t capacity; /* in 512-byte sectors */
	uint32_t blk_size; /* logical block size (512 unless BLK_SIZE says otherwise) */
	uint32_t size_max; /* bytes per descriptor, 0: no limit */
	uint32_t seg_max;  /* data descriptors per request the device takes, 0: no limit */
	uint32_t max_discard_sectors, max_discard_seg;
	uint32_t max_wz_sectors, max_wz_seg;
	uint16_t max_segs;  /* data descriptors per request we use */
	int queue_vector;   /* IDT vector of queue interrupts (MSI-X entry 1), -1 if none;
			       used while opts.irq is set (vblk_restart applies it) */
	int error;	    /* last vblk_wait failure: -ETIMEDOUT, -EIO (NEEDS_RESET) */
	uint64_t irq_waits; /* statistics */
	struct virtq_buf scratch[VBLK_MAX_SEGS + 2];
};

/* Options from the command line (virtio_opts_from_cmdline), segs= up to
 * VBLK_MAX_SEGS. */
void vblk_opts_from_cmdline(struct virtio_opts *o);

/*
 * The usual start of a guest: pci_init, find disk @index, vblk_init with
 * options from the command line, print what was found with @name. With
 * `relocate` on the command line it first moves the disk's BARs
 * (pci_dev_relocate; `relocate_high=ADDR` for its 64-bit BARs). CPL0.
 * Returns 0 or -errno (and says why on the console).
 */
int vblk_open(struct vblk *b, unsigned int index, const char *name);

/*
 * Probe @d (virtio_pci_probe: CPL0), allocate interrupt vectors (config
 * change on MSI-X entry 0, requests on entry 1 if @o->irq), and start the
 * device (vblk_restart). @o may be NULL (defaults). Returns 0 or -errno.
 */
int vblk_init(struct vblk *b, struct pci_dev *d, const struct virtio_opts *o);

/*
 * Reset the device and bring it up again: features, configuration, queue 0
 * (same memory), DRIVER_OK, with b->opts as they are now (a caller may
 * change opts.irq, queue_size, no_indirect... in between). Requests in
 * flight are forgotten. Any CPL (MMIO only). Returns 0 or -errno.
 */
int vblk_restart(struct vblk *b);

static inline bool vblk_has(const struct vblk *b, unsigned int feature)
{
	return virtio_has(&b->vd, feature);
}

/* Queue @r (status becomes VBLK_S_PENDING); no notification yet. Returns 0,
 * -ENOSPC (queue full: reap first), -E2BIG (more segments than allowed),
 * -EINVAL. */
int vblk_submit(struct vblk *b, struct vblk_req *r);

/* Notify the device of submitted requests (if it wants notifications). */
void vblk_kick(struct vblk *b);

/* A completed request, or NULL. */
struct vblk_req *vblk_reap(struct vblk *b);

/*
 * Kick, then wait for one completed request and return it. NULL if nothing
 * completed within @timeout_tsc ticks (b->error = -ETIMEDOUT) or the device
 * set NEEDS_RESET (b->error = -EIO; checked every ~10 ms while waiting).
 */
struct vblk_req *vblk_wait(struct vblk *b, uint64_t timeout_tsc);

/* Requests in flight. */
static inline unsigned int vblk_inflight(const struct vblk *b)
{
	return virtq_inflight(&b->vq);
}

/*
 * Synchronous helpers: submit one request, wait (VBLK_TIMEOUT_MS) and
 * return its VIRTIO_BLK_S_* status, or -errno. No other request may be in
 * flight.
 */
#define VBLK_TIMEOUT_MS 10000
int vblk_do(struct vblk *b, struct vblk_req *r);
int vblk_read(struct vblk *b, uint64_t sector, void *buf, uint32_t len);
int vblk_write(struct vblk *b, uint64_t sector, const void *buf, uint32_t len);
int vblk_flush(struct vblk *b);
/* @id: 21 bytes; the ID (up to 20 bytes) NUL-terminated. */
int vblk_get_id(struct vblk *b, char *id);

/* Print "NAME: capacity ... features ..." for logs. */
void vblk_print(const struct vblk *b, const char *name);

#endif
