// SPDX-License-Identifier: MIT
/*
 * Raw disk images as virtio-blk and virtio-scsi use them: opening and
 * locking, blocking transfers, hole punching and zeroing, and the queue of
 * host I/O errors an iothread hands to the main thread for werror/rerror.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "vmm/vm.h"

int disk_image_open(const char *path, bool readonly, int *fdp, uint64_t *sizep, struct errbuf *err)
{
	struct stat st;
	uint64_t size;
	int fd, ret;

	fd = open(path, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errno, "disk '%s': cannot open%s: %s", path,
			       readonly ? "" : " for writing", strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = err_set(err, errno, "disk '%s': cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size) < 0) {
			ret = err_set(err, errno, "disk '%s': cannot get the device size: %s", path,
				      strerror(errno));
			goto fail;
		}
	} else {
		ret = err_set(err, EINVAL, "disk '%s' is not a regular file or block device", path);
		goto fail;
	}
	if (size % DISK_SECTOR) {
		ret =
		    err_set(err, EINVAL,
			    "disk '%s': size %llu bytes is not a multiple of 512 (pad or truncate "
			    "the image)",
			    path, (unsigned long long)size);
		goto fail;
	}
	/* Two writers on one image corrupt it: take a lock, shared for
	 * read-only disks, and refuse a busy image. */
	if (flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			ret = err_set(err, EBUSY,
				      "disk '%s' is in use (locked by another process or disk)",
				      path);
		else
			ret = err_set(err, errno, "disk '%s': cannot lock: %s", path,
				      strerror(errno));
		goto fail;
	}
	*fdp = fd;
	*sizep = size;
	return 0;
fail:
	close(fd);
	return ret;
}

void disk_image_close(int fd, bool readonly, const char *name, const char *path)
{
	if (fd < 0)
		return;
	/* Nothing written is lost: flush before close. */
	if (!readonly && fdatasync(fd) < 0)
		fprintf(stderr, "kvmini: %s: fdatasync '%s' failed: %s\n", name, path,
			strerror(errno));
	close(fd);
}

int disk_rw_full(int fd, struct iovec *iov, unsigned n, uint64_t off, bool write)
{
	while (n) {
		ssize_t got = write ? pwritev(fd, iov, (int)n, (off_t)off)
				    : preadv(fd, iov, (int)n, (off_t)off);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (got == 0)
			return -EIO; /* the file shrank under us */
		off += (uint64_t)got;
		while (n && (size_t)got >= iov->iov_len) {
			got -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (uint8_t *)iov->iov_base + got;
			iov->iov_len -= (size_t)got;
		}
	}
	return 0;
}

int disk_punch(int fd, uint64_t off, uint64_t len)
{
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) < 0)
		return -errno;
	return 0;
}

static int disk_write_zeroes_slow(int fd, uint64_t off, uint64_t len)
{
	static const uint8_t zeroes[65536];

	while (len) {
		size_t l = len < sizeof(zeroes) ? (size_t)len : sizeof(zeroes);
		struct iovec v = {(void *)zeroes, l};
		int r = disk_rw_full(fd, &v, 1, off, true);

		if (r < 0)
			return r;
		off += l;
		len -= l;
	}
	return 0;
}

int disk_write_zeroes(int fd, uint64_t off, uint64_t len, bool may_unmap)
{
	if (may_unmap && disk_punch(fd, off, len) == 0)
		return 0;
	if (fallocate(fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) == 0)
		return 0;
	return disk_write_zeroes_slow(fd, off, len);
}

/* ---- error reports: iothread -> main thread ---- */

static void disk_reports_bh(void *opaque)
{
	struct disk_reports *r = opaque;
	struct disk_report copy[DISK_MAX_REPORTS];
	unsigned n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	memcpy(copy, r->reports, n * sizeof(copy[0]));
	r->n = 0;
	pthread_mutex_unlock(&r->lock);
	for (unsigned i = 0; i < n; i++)
		r->env.io_error(r->env.opaque, copy[i].block, copy[i].is_read, copy[i].action,
				copy[i].error);
}

int disk_reports_init(struct disk_reports *r, const struct block_env *env)
{
	pthread_mutex_init(&r->lock, NULL);
	r->env = *env;
	r->n = 0;
	r->bh = aio_bh_new(env->main_ctx, disk_reports_bh, r);
	if (!r->bh) {
		pthread_mutex_destroy(&r->lock);
		return -ENOMEM;
	}
	return 0;
}

void disk_reports_exit(struct disk_reports *r)
{
	if (!r->bh)
		return;
	/* Nothing schedules it any more; a report still pending is moot. */
	aio_bh_delete(r->bh);
	r->bh = NULL;
	pthread_mutex_destroy(&r->lock);
}

void disk_report(struct disk_reports *r, struct vm_block *block, bool is_read,
		 enum disk_error_action action, int error)
{
	struct disk_report rep = {block, is_read, action, error};

	pthread_mutex_lock(&r->lock);
	/* Beyond the limit reports are dropped, but never a stop. */
	if (r->n < DISK_MAX_REPORTS)
		r->reports[r->n++] = rep;
	else if (action == DISK_ACTION_STOP)
		r->reports[DISK_MAX_REPORTS - 1] = rep;
	pthread_mutex_unlock(&r->lock);
	aio_bh_schedule(r->bh);
}

/* ---- the VM's services ---- */

static int block_vm_drive_add(void *opaque, struct vm_block *b)
{
	return vm_block_add(opaque, b);
}

static void block_vm_drive_remove(void *opaque, struct vm_block *b)
{
	vm_block_remove(opaque, b);
}

static void block_vm_io_error(void *opaque, struct vm_block *b, bool is_read,
			      enum disk_error_action action, int error)
{
	vm_block_io_error(opaque, b, is_read, action, error);
}

void block_env_from_vm(struct block_env *env, struct vm *vm)
{
	*env = (struct block_env){.opaque = vm,
				  .main_ctx = vm->main_ctx,
				  .drive_add = block_vm_drive_add,
				  .drive_remove = block_vm_drive_remove,
				  .io_error = block_vm_io_error};
}
