/* SPDX-License-Identifier: MIT */
/*
 * One interface over the disk drivers, so that a workload (diskcopy.c,
 * disksnap.c, diskbench.c) is written once and runs over virtio-blk
 * (disk_blk_ops: a whole disk) and virtio-scsi (disk_scsi_ops: one LUN).
 *
 * Requests are asynchronous, as in the drivers: fill a struct disk_req,
 * disk_submit it, collect completions with disk_wait / disk_reap, judge
 * each with disk_result. A request must stay put until it is returned.
 * Sectors are 512 bytes on both.
 *
 * disk_open runs at CPL0; everything else at either CPL (at CPL3 on our
 * hosts). Lines the drivers print start with the disk's name.
 */
#ifndef GUEST_DISK_DRV_H
#define GUEST_DISK_DRV_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio_blk.h"
#include "virtio_scsi.h"

#define DISK_SECTOR	512
#define DISK_TIMEOUT_MS 10000

enum disk_op { DISK_READ, DISK_WRITE, DISK_FLUSH };

struct disk_req {
	/* The caller fills these. */
	enum disk_op op;
	uint64_t sector; /* READ, WRITE */
	uint32_t nsec;
	void *buf;    /* nsec * DISK_SECTOR bytes */
	uint32_t seg; /* descriptors of at most this many bytes (0: no limit) */
	void *user;   /* for the caller */
	/* The driver's, while in flight. */
	union {
		struct vblk_req blk;
		struct vscsi_req scsi;
	} u;
};

struct disk;

struct disk_ops {
	/* Open the device the command line names (blk: disk=N; scsi: ctrl=N,
	 * lun=N, cdb=10|16) and find its size; print what was found, or why
	 * not. CPL0. 0 or -errno. */
	int (*open)(struct disk *d);
	/* Reset the device and start it again with d->opts as they are now
	 * (irq mode, queue size...); requests in flight are forgotten. */
	int (*restart)(struct disk *d);
	/* Queue @r: 0, -ENOSPC (no room: reap first), other -errno. */
	int (*submit)(struct disk *d, struct disk_req *r);
	/* Kick and wait up to @timeout_tsc for a completion; NULL on timeout
	 * or NEEDS_RESET (*d->error says which). */
	struct disk_req *(*wait)(struct disk *d, uint64_t timeout_tsc);
	/* Another completion, or NULL. */
	struct disk_req *(*reap)(struct disk *d);
	/* See disk_result. */
	int (*result)(struct disk *d, const struct disk_req *r);
	/* Synchronous (nothing else in flight): read @nsec sectors at
	 * @sector; flush. 0, the device's failure status (> 0) or -errno. */
	int (*read)(struct disk *d, uint64_t sector, void *buf, uint32_t nsec);
	int (*flush)(struct disk *d);
};

struct disk {
	const struct disk_ops *ops;
	const char *name;
	/* Set by open, for the workloads. */
	uint64_t sectors;	   /* capacity */
	uint16_t max_segs;	   /* descriptors per request the driver takes */
	bool can_flush;		   /* the device offers a flush */
	struct virtio_dev *vd;	   /* the driver's: device status */
	struct virtq *vq;	   /* the request queue: inflight, kicks, error */
	struct virtio_opts *opts;  /* changed before restart */
	int *error;		   /* why the last wait failed */
	const uint64_t *irq_waits; /* statistics */
	union {
		struct vblk blk;
		struct {
			struct vscsi ctl;
			uint16_t lun;
			unsigned int cdb; /* CDB size of READ/WRITE: 10, 16, 0 alternate */
			unsigned int toggle;
		} scsi;
	} u;
};

extern const struct disk_ops disk_blk_ops, disk_scsi_ops;

/* Open @d with @ops (which fills it in), its lines starting with @name.
 * Fields of d->u set before stay unless the command line says otherwise
 * (scsi: u.scsi.cdb). CPL0. 0 or -errno, after saying why. */
int disk_open(struct disk *d, const struct disk_ops *ops, const char *name);

/* disk_scsi_ops' open without the size: for a caller that asks the LUN
 * itself (scsicopy checks TEST UNIT READY and READ CAPACITY). CPL0. */
int disk_scsi_attach(struct disk *d, const char *name);

static inline int disk_submit(struct disk *d, struct disk_req *r)
{
	return d->ops->submit(d, r);
}

static inline struct disk_req *disk_reap(struct disk *d)
{
	return d->ops->reap(d);
}

/* d->ops->wait, printing "NAME: waiting for a completion failed: ..." when
 * it returns NULL. */
struct disk_req *disk_wait(struct disk *d, uint64_t timeout_tsc);

/*
 * The outcome of completed request @r: 0 done; else, after printing why
 * ("NAME: write of N sectors at S failed: ..."), -EPROTO if the
 * device returned it without writing its status (not finished, or returned
 * twice), or its failure status (> 0).
 */
static inline int disk_result(struct disk *d, const struct disk_req *r)
{
	return d->ops->result(d, r);
}

/* Requests in flight. */
static inline unsigned int disk_inflight(const struct disk *d)
{
	return virtq_inflight(d->vq);
}

#endif
