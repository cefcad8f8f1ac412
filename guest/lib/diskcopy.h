/* SPDX-License-Identifier: MIT */
/*
 * The blkcopy workload, for any disk driver: copies the first half of a
 * disk onto its second half with reads and writes of mixed sizes (1 to 256
 * sectors of 512 bytes) and mixed segmentation (one descriptor, 4 KiB
 * pages, odd 1000-byte pieces), up to depth requests in flight; then
 * flushes; then reads both halves back and compares them.
 *
 * The driver side (struct diskcopy_ops) queues and completes struct
 * diskcopy_io requests; blkcopy (virtio-blk) and scsicopy (virtio-scsi)
 * provide one each. Everything but diskcopy_setup runs at CPL3 (user_call).
 *
 * Output (NAME is c->name): `NAME: copied B bytes in R requests, max in
 * flight M`, `NAME: flush status S`, `NAME: verified B bytes: match` (or
 * `MISMATCH at sector X`).
 */
#ifndef GUEST_DISKCOPY_H
#define GUEST_DISKCOPY_H

#include <stdbool.h>
#include <stdint.h>

#define DISKCOPY_SECTOR	   512
#define DISKCOPY_MAX_DEPTH 64

/* One request. The driver keeps its own request for it (by id). */
struct diskcopy_io {
	unsigned int id; /* 0 .. 2 * depth - 1 */
	bool write;
	uint64_t sector;
	uint32_t nsec;
	uint8_t *buf;
	uint32_t seg; /* descriptors of at most this many bytes (0: one) */
	void *slot;   /* the engine's */
};

struct diskcopy_ops {
	/* Queue @io: 0, -ENOSPC (no room now: retried after a completion),
	 * or another -errno (fatal). */
	int (*submit)(void *ctx, struct diskcopy_io *io);
	/* Kick and wait for a completion: the request, or NULL after printing
	 * why (timeout, device needs a reset). */
	struct diskcopy_io *(*wait)(void *ctx);
	/* Another completion, or NULL. */
	struct diskcopy_io *(*reap)(void *ctx);
	/* Did @io fail? If so, print why ("NAME: write of N sectors at S
	 * failed: ..."). */
	bool (*failed)(void *ctx, const struct diskcopy_io *io);
	/* Requests in flight. */
	unsigned int (*inflight)(void *ctx);
	/* Flush: 0 done, > 0 the device's failure status, -ENOTSUP (not
	 * offered: skipped), other -errno. */
	int (*flush)(void *ctx);
};

struct diskcopy {
	/* The caller fills these. */
	const char *name;
	const struct diskcopy_ops *ops;
	void *ctx;
	uint64_t half;	      /* sectors in each half */
	unsigned int depth;   /* 1..DISKCOPY_MAX_DEPTH */
	uint32_t max_sectors; /* per request */
	uint16_t max_segs;    /* descriptors per request the driver takes */
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
