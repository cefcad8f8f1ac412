// SPDX-License-Identifier: MIT
/* Block contents of the snapshot workloads (blkpattern.h). */
#include "blkpattern.h"
#include "guest.h"

static void fill_sector(uint8_t *p, const char magic[8], unsigned int spb, uint64_t b, uint64_t g,
			unsigned int k)
{
	uint64_t words[3] = {b, g, b * spb + k};

	memcpy(p, magic, 8);
	memcpy(p + 8, words, sizeof(words));
	memset(p + 32, (int)((131 * b + 7 * g + k) & 0xff), BLKPATTERN_SECTOR - 32);
}

void blkpattern_fill(uint8_t *buf, const char magic[8], unsigned int spb, uint64_t b, uint64_t g)
{
	for (unsigned int k = 0; k < spb; k++)
		fill_sector(buf + k * BLKPATTERN_SECTOR, magic, spb, b, g, k);
}

bool blkpattern_check(const uint8_t *buf, const char magic[8], unsigned int spb, uint64_t b,
		      uint64_t g)
{
	uint8_t want[BLKPATTERN_SECTOR];

	for (unsigned int k = 0; k < spb; k++) {
		if (g)
			fill_sector(want, magic, spb, b, g, k);
		else
			memset(want, 0, sizeof(want));
		if (memcmp(buf + k * BLKPATTERN_SECTOR, want, BLKPATTERN_SECTOR))
			return false;
	}
	return true;
}
