// SPDX-License-Identifier: MIT
/*
 * blkpattern: a Linux guest program (static, musl) that keeps several
 * direct-I/O writes in flight on a block device, one thread each, for the
 * snapshot tests of Linux guests (tests/system/test_linux.py).
 *
 *   blkpattern DEVICE MAGIC NBLOCKS WRITES THREADS
 *
 * Thread t owns the 4 KiB blocks b with b % THREADS == t and writes them in
 * a pseudo-random order, each write a new generation of its block. Every
 * 512-byte sector holds MAGIC (8 bytes), then block, generation and sector
 * number (u64 each), then a fill byte derived from them, the format of
 * guest/lib's snapshot workloads (tests/system/blkutil.py checks it).
 * At the end: flush, read every block back, compare with the last
 * generation written, and print the sum over blocks of (b + 1) * gen.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BLOCK  4096
#define SECTOR 512

static int fd;
static char magic[8];
static uint64_t nblocks, writes_per_thread;
static unsigned nthreads;
static uint64_t *last_gen; /* per block; each written by its owner thread only */

static void fill(uint8_t *buf, uint64_t b, uint64_t gen)
{
	for (int k = 0; k < BLOCK / SECTOR; k++) {
		uint8_t *s = buf + k * SECTOR;
		uint64_t hdr[3] = {b, gen, b * (BLOCK / SECTOR) + (uint64_t)k};

		memcpy(s, magic, 8);
		memcpy(s + 8, hdr, sizeof(hdr));
		memset(s + 32, (int)((131 * b + 7 * gen + (uint64_t)k) & 0xff), SECTOR - 32);
	}
}

static void *writer(void *arg)
{
	unsigned t = (unsigned)(uintptr_t)arg;
	uint64_t owned = (nblocks - t + nthreads - 1) / nthreads;
	uint64_t x = 0x9e3779b97f4a7c15ULL * (t + 1);
	uint8_t *buf;

	if (owned == 0 || posix_memalign((void **)&buf, BLOCK, BLOCK))
		return NULL;
	for (uint64_t i = 0; i < writes_per_thread; i++) {
		uint64_t b;

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b = (x % owned) * nthreads + t;
		fill(buf, b, last_gen[b] + 1);
		if (pwrite(fd, buf, BLOCK, (off_t)(b * BLOCK)) != BLOCK) {
			perror("blkpattern: write");
			exit(1);
		}
		last_gen[b]++;
		if (t == 0 && i % (writes_per_thread / 8 + 1) == 0)
			printf("blkpattern: thread 0 at write %" PRIu64 "\n", i);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[64];
	uint8_t *buf, *want;
	uint64_t gensum = 0;

	if (argc != 6 || strlen(argv[2]) > 8) {
		fprintf(stderr, "usage: blkpattern DEVICE MAGIC NBLOCKS WRITES THREADS\n");
		return 2;
	}
	memset(magic, 0, sizeof(magic));
	memcpy(magic, argv[2], strlen(argv[2]));
	nblocks = strtoull(argv[3], NULL, 0);
	nthreads = (unsigned)strtoul(argv[5], NULL, 0);
	if (nblocks == 0 || nthreads == 0 || nthreads > 64) {
		fprintf(stderr, "blkpattern: bad NBLOCKS or THREADS (1..64)\n");
		return 2;
	}
	writes_per_thread = strtoull(argv[4], NULL, 0) / nthreads;
	fd = open(argv[1], O_RDWR | O_DIRECT);
	last_gen = calloc(nblocks, sizeof(*last_gen));
	if (fd < 0 || !last_gen || posix_memalign((void **)&buf, BLOCK, BLOCK) ||
	    posix_memalign((void **)&want, BLOCK, BLOCK)) {
		perror("blkpattern: setup");
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("blkpattern: %u writers on %s\n", nthreads, argv[1]);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_create(&th[t], NULL, writer, (void *)(uintptr_t)t);
	for (unsigned t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	if (fdatasync(fd) < 0) {
		perror("blkpattern: flush");
		return 1;
	}
	printf("blkpattern: flush ok\n");
	for (uint64_t b = 0; b < nblocks; b++) {
		if (pread(fd, buf, BLOCK, (off_t)(b * BLOCK)) != BLOCK) {
			perror("blkpattern: read");
			return 1;
		}
		if (last_gen[b])
			fill(want, b, last_gen[b]);
		else
			memset(want, 0, BLOCK);
		if (memcmp(buf, want, BLOCK)) {
			printf("blkpattern: block %" PRIu64 " differs from generation %" PRIu64 "\n",
			       b, last_gen[b]);
			return 1;
		}
		gensum += (b + 1) * last_gen[b];
	}
	printf("blkpattern: verified %" PRIu64 " blocks, gensum 0x%" PRIx64 "\n", nblocks, gensum);
	printf("blkpattern: done\n");
	return 0;
}
