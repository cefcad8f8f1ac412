/* SPDX-License-Identifier: MIT */
/*
 * The data the snapshot workloads (snap-blk, snap-scsi) write, so that the
 * guest and the host (tests/system) can both check a block: write number g
 * (1, 2, ...) of block b of @spb 512-byte sectors gives each sector k: the
 * 8-byte @magic, then b, g and spb * b + k (little-endian 64-bit words),
 * then 480 bytes of (131b + 7g + k) & 0xff. Generation 0 (never written)
 * is all zeroes. Any CPL.
 */
#ifndef GUEST_BLKPATTERN_H
#define GUEST_BLKPATTERN_H

#include <stdbool.h>
#include <stdint.h>

#define BLKPATTERN_SECTOR 512

/* Fill @buf (@spb sectors) with write @g of block @b. */
void blkpattern_fill(uint8_t *buf, const char magic[8], unsigned int spb, uint64_t b, uint64_t g);

/* Does @buf hold write @g of block @b (zeroes for g = 0)? */
bool blkpattern_check(const uint8_t *buf, const char magic[8], unsigned int spb, uint64_t b,
		      uint64_t g);

#endif
