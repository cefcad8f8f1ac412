/* SPDX-License-Identifier: MIT */
/*
 * The blkcopy workload, for any disk driver: copies the first half of a
 * disk onto its second half with reads and writes of mixed sizes (1 to 256
 * sectors of 512 bytes) and mixed segmentation (one descriptor, 4 KiB
 * pages, odd 1000-byte pieces), up to depth requests in flight; then
 * flushes; then reads both halves back and compares them.
 *
 * The disk is any of disk_drv.h's: blkcopy (virtio-blk) and scsicopy
 * (virtio-scsi) open one each. Everything but diskcopy_setup runs at CPL3
 * (user_call).
 *
 * Output (NAME is the disk's name): `NAME: copied B bytes in R requests, max in
 * flight M`, `NAME: flush status S`, `NAME: verified B bytes: match` (or
 * `MISMATCH at sector X`).
 */
#ifndef GUEST_DISKCOPY_H
#define GUEST_DISKCOPY_H

#include <stdbool.h>
#include <stdint.h>

#include "disk_drv.h"

#define DISKCOPY_SECTOR	   DISK_SECTOR
#define DISKCOPY_MAX_DEPTH 64

struct diskcopy {
	/* The caller fills these. */
	struct disk *disk;    /* open */
	uint64_t half;	      /* sectors in each half */
	unsigned int depth;   /* 1..DISKCOPY_MAX_DEPTH */
	uint32_t max_sectors; /* per request */
	uint64_t rng;	      /* seed, non-zero */
	/* Results. */
	uint64_t requests, max_inflight, bytes_copied;
	uint64_t mismatch_at; /* first differing sector of the second half, or UINT64_MAX */
	int io_error;
	/* The engine's. */
	struct diskcopy_slot *slots;
	uint64_t next_sector;
};

/*
 * Read depth=, maxkb= and seed= from the command line into @c (which holds
 * the defaults: depth 64, 256 sectors, a fixed seed), allocate the slots
 * and buffers. 0, or -ENOMEM after printing why.
 */
int diskcopy_setup(struct diskcopy *c);

/* The whole workload (copy, flush, verify; with @verify_only the
 * verification only). Returns the exit status: 0 match, 1 mismatch, 2 I/O
 * error. */
long diskcopy_run(struct diskcopy *c, bool verify_only);

#endif
