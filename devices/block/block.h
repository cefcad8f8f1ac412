/* SPDX-License-Identifier: MIT */
/*
 * The block backend: raw disk images (disk.c), io_uring through
 * liburing (uring.c) and the queue of host I/O errors that werror/rerror
 * report. Shared by every disk device through the request engine
 * (engine.h); the SCSI disk emulation has its own header (scsi.h). Nothing
 * here knows virtio.
 */
#ifndef KVMINI_BLOCK_H
#define KVMINI_BLOCK_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "aio/aio.h"
#include "vmm/config.h"
#include "vmm/util.h"
#include "vmm/vm.h"

struct vm;
struct vm_block;

/* ------------------------------------------------------------------ */
/* Disk options and the error policy (disk_config.c). */

#define DISK_SERIAL_MAX 20 /* virtio-blk's GET_ID string */
#define DISK_PATH_MAX	4096
#define DISK_LUN_MAX	255   /* --scsi-disk lun= */
#define DISK_DELAY_MAX	10000 /* delay= in ms: a testing aid, 10 s at most */

/* How a disk does its I/O (see docs/devices.md). */
enum disk_aio {
	DISK_AIO_AUTO = 0, /* io_uring for reads if the host allows it, else threads */
	DISK_AIO_THREADS,  /* every request on the thread pool */
	DISK_AIO_IO_URING, /* like auto, but an error if io_uring is unavailable */
};

/* werror= / rerror=: what a failed host I/O does (QEMU's values). */
enum disk_error_policy {
	DISK_ERROR_REPORT = 0, /* the default: the request completes with an error */
	DISK_ERROR_IGNORE,
	DISK_ERROR_STOP,
	DISK_ERROR_ENOSPC, /* stop on ENOSPC, report anything else (werror only) */
};

/* The action @p takes for a host I/O that failed with errno @error. Pure. */
enum disk_error_action disk_error_action(enum disk_error_policy p, int error);

/* One --disk or --scsi-disk, parsed: path=FILE[,readonly=on|off][,serial=STR][,aio=MODE]
 * [,werror=POLICY][,rerror=POLICY]. */
struct disk_config {
	char path[DISK_PATH_MAX];
	char serial[DISK_SERIAL_MAX + 1]; /* "" if not given */
	bool readonly;
	enum disk_aio aio;
	enum disk_error_policy werror; /* writes, flushes, discards, write-zeroes */
	enum disk_error_policy rerror; /* reads */
	int lun;		       /* --scsi-disk lun=N, or -1: the first free one */
	uint32_t delay_ms;	       /* delay=: each host I/O waits this long first */
};

/*
 * Parse a --disk option string into *@dc. Pure; any thread. Returns 0, or
 * -EINVAL with a one-line message naming the option and what is wrong
 * (unknown or repeated key, missing path, bad on/off, serial longer than
 * 20 characters or not printable ASCII, aio not auto/threads/io_uring,
 * werror not stop/report/ignore/enospc, rerror not stop/report/ignore,
 * delay not 0..DISK_DELAY_MAX).
 */
int disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err);
/* The same for --scsi-disk, which also takes lun=0..DISK_LUN_MAX. */
int scsi_disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err);

/*
 * Check every --disk and --scsi-disk option string of @cfg: 0, or -EINVAL
 * with the first one's message. Pure; the top level calls it before it
 * opens /dev/kvm.
 */
int disk_config_check(const struct vm_config *cfg, struct errbuf *err);

/* ------------------------------------------------------------------ */
/* io_uring through liburing (uring.c). One thread uses a ring. Only uring.c
 * sees liburing's headers: its ring lives behind a pointer. */

struct io_uring;

struct uring {
	int fd;	 /* the ring (-1 when closed) */
	int efd; /* eventfd the kernel signals on completions (watch it for reading) */
	struct io_uring *ring;
};

/* Set up a ring of @entries (power of two) with a completion eventfd.
 * Any thread. -errno if the host refuses io_uring (ENOSYS, EPERM, ...). */
int uring_init(struct uring *u, unsigned entries);
/* Unmap and close; harmless on a zeroed or failed ring. No I/O in flight. */
void uring_exit(struct uring *u);
/* Queue a readv/writev of @iov (kept alive by the caller until completion);
 * false if the submission queue is full. */
bool uring_prep_rw(struct uring *u, bool write, int fd, const struct iovec *iov, unsigned n,
		   uint64_t off, uint64_t user_data);
/* Hand queued entries to the kernel; returns how many it took or -errno. */
int uring_submit(struct uring *u);
/* Are completions waiting in the ring? (The kernel may post them inside
 * uring_submit: page-cache hits complete there.) */
bool uring_has_cqe(const struct uring *u);
/* Drain the eventfd and every completion, calling @cb for each (which may
 * queue and submit more). Returns the number reaped. */
unsigned uring_reap(struct uring *u, void (*cb)(void *opaque, uint64_t user_data, int32_t res),
		    void *opaque);

/* ------------------------------------------------------------------ */
/* Raw disk images (disk.c), shared by virtio-blk and virtio-scsi. */

#define DISK_SECTOR	 512ULL
#define DISK_MAX_REPORTS 64 /* BLOCK_IO_ERROR events waiting for the main thread */

/*
 * Open the image @path (a regular file or block device whose size is a
 * multiple of 512), read-write unless @readonly, and lock it (shared when
 * read-only, exclusive otherwise) so two writers cannot share it. Returns
 * 0 with *@fd and *@size, or -errno with a one-line message. Main thread.
 */
int disk_image_open(const char *path, bool readonly, int *fd, uint64_t *size, struct errbuf *err);
/* fdatasync (unless read-only; a failure is reported on stderr) and close.
 * Harmless on fd < 0. No I/O in flight. */
void disk_image_close(int fd, bool readonly, const char *name, const char *path);

/*
 * preadv/pwritev until done: short transfers resume, EINTR retries; the
 * iovecs are consumed. 0 or -errno (-EIO: end of file). Worker threads.
 */
int disk_rw_full(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write);
/* Deallocate [off, off+len) keeping the size; -errno (-EOPNOTSUPP: the file
 * system cannot). Worker threads. */
int disk_punch(int fd, uint64_t off, uint64_t len);
/* Make [off, off+len) read back as zeroes: punch (@may_unmap), else zero
 * the range, else write zero blocks. 0 or -errno. Worker threads. */
int disk_write_zeroes(int fd, uint64_t off, uint64_t len, bool may_unmap);

/*
 * What the block layer needs of the VM, injected (as ivshmem's env is):
 * block_env_from_vm fills it from a struct vm; unit tests may fill their
 * own. All three callbacks run on the main thread.
 */
struct block_env {
	void *opaque;
	struct aio_context *main_ctx; /* error reports are sent from here */
	/* A drive exists (query-block lists it) / is gone. -ENOSPC when full. */
	int (*drive_add)(void *opaque, struct vm_block *b);
	void (*drive_remove)(void *opaque, struct vm_block *b);
	/* BLOCK_IO_ERROR, and for a stop the VM's pause (vm_block_io_error). */
	void (*io_error)(void *opaque, struct vm_block *b, bool is_read,
			 enum disk_error_action action, int error);
};

/* The VM's services for block devices. Main thread at realize. */
void block_env_from_vm(struct block_env *env, struct vm *vm);

/* A failed host I/O for the main thread to report (env->io_error). */
struct disk_report {
	struct vm_block *block;
	bool is_read;
	enum disk_error_action action;
	int error;
};

/* Reports an iothread queued; a BH on the main context sends them. */
struct disk_reports {
	struct block_env env;
	pthread_mutex_t lock; /* n, reports */
	struct disk_report reports[DISK_MAX_REPORTS];
	unsigned n;
	struct aio_bh *bh; /* on env.main_ctx */
};

/* Main thread at realize / exit (after the iothread stopped). -ENOMEM. */
int disk_reports_init(struct disk_reports *r, const struct block_env *env);
void disk_reports_exit(struct disk_reports *r);
/* Queue a BLOCK_IO_ERROR for @block (beyond DISK_MAX_REPORTS reports are
 * dropped, never a stop). Any thread. */
void disk_report(struct disk_reports *r, struct vm_block *block, bool is_read,
		 enum disk_error_action action, int error);

#endif
