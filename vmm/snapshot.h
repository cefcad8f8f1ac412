/* SPDX-License-Identifier: MIT */
/*
 * Snapshot files: a stopped VM's vCPUs, irqchip, PIT, KVM clock, devices
 * and RAM (docs/snapshot.md has the format).
 *
 * Every section is versioned and CRC-32 checked; loading validates every
 * field and trusts the file no more than the guest. RAM is written
 * sparsely (zero pages are holes in the file) and restored by mapping the
 * file MAP_PRIVATE, so pages load lazily as the guest touches them; the RAM
 * data's checksum is verified by `kvmini snapshot inspect --verify`, not on
 * restore (RAM contents are guest data, trusted no more than the guest).
 *
 * All functions: main thread.
 */
#ifndef KVMINI_SNAPSHOT_H
#define KVMINI_SNAPSHOT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "vmm/util.h"

struct vm;

struct snapshot_stats {
	uint64_t file_bytes; /* bytes actually written (holes excluded) */
	uint64_t ram_pages;  /* non-zero RAM pages written */
};

/*
 * Save @vm, which must be paused (vm_pause; -EINVAL otherwise), to @path. Written to a
 * temporary file beside it (an unpredictable name, created O_EXCL|O_NOFOLLOW,
 * mode 0600), synced, renamed over @path (a link there is replaced, not
 * followed), then the directory is synced: a crash never leaves a
 * half-written snapshot, and a VM restored from @path keeps its mapping of
 * the old file.
 */
int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *stats,
		  struct errbuf *err);

/*
 * Load @path into @vm: created from a matching command line (memory size,
 * vCPUs, devices) with its devices realized, not started. The VM is left
 * paused (vm_pause): vm_resume lets the devices restart what was in flight
 * and the vCPUs run. On error nothing has run and no disk image was
 * written; the caller destroys the VM.
 */
int snapshot_restore(struct vm *vm, const char *path, struct errbuf *err);

/* Print the sections of @path (name, version, offset, size, CRC status) to
 * @out; with @verify also check the RAM data's checksum. */
int snapshot_inspect(const char *path, FILE *out, bool verify, struct errbuf *err);

#endif
