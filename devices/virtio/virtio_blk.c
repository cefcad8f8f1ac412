// SPDX-License-Identifier: MIT
/*
 * virtio-blk over a raw image: `--disk path=FILE[,readonly=on][,serial=STR]
 * [,aio=auto|threads|io_uring][,werror=POLICY][,rerror=POLICY]`.
 *
 * What is virtio-blk's: parsing a chain into a request (header, data
 * slice, status byte), carrying it out on a pool worker (blk_req_execute),
 * and its status. Everything else is the request engine's
 * (devices/block/engine.h), shared with virtio-scsi: each disk has its own
 * iothread, which receives the queue's doorbell (a KVM ioeventfd); reads
 * go to an io_uring, the rest to the pool, straight to and from guest RAM;
 * completions return the chain and raise one interrupt per batch; pausing
 * holds every result; werror/rerror; snapshots of held requests (a
 * finished one is returned with its saved status, never run twice).
 *
 * Host I/O in progress at exit completes before the file is fdatasync'd
 * and closed; held requests are dropped. See docs/devices.md.
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/engine.h"
#include "devices/virtio/virtio.h"
#include "vmm/vm.h"

#define SECTOR		  DISK_SECTOR
#define BLK_POOL_THREADS  16
#define BLK_URING_ENTRIES VIRTIO_BLK_QUEUE_SIZE
#define BLK_CONFIG_LEN	  offsetof(struct virtio_blk_config, max_secure_erase_sectors)
#define BLK_CLASS_STORAGE 0x010000 /* mass storage, SCSI: what QEMU reports */
#define BLK_REQ_HDR	  sizeof(struct virtio_blk_outhdr)
#define BLK_DZ_SEGMENT	  sizeof(struct virtio_blk_discard_write_zeroes)

#define BLK_SNAP_VERSION 2

/* A request in flight: the engine's part, the chain parsed, its result. */
struct blk_inflight {
	struct block_req br; /* first: the engine's callbacks get it */
	struct virtio_blk *blk;
	struct blk_req *req;
	uint8_t status; /* the result to return (VIRTIO_BLK_S_*) */
};

struct virtio_blk {
	struct block_engine eng; /* first: block_device_pause and the like take the device */
	struct virtio_dev vdev;
	char name[32];
	char path[DISK_PATH_MAX];
	struct blk_disk disk;
	struct block_drive drive;
	struct vm_block block; /* what query-block reports; in vm->blocks while realized */
};
_Static_assert(offsetof(struct virtio_blk, eng) == 0,
	       "block_device_* take the device as its engine");

/* ---- request parsing and execution (pure / worker side) ---- */

struct blk_req *blk_req_parse(const struct vq_elem *elem, const char **why)
{
	struct virtio_blk_outhdr hdr;
	const struct iovec *last;
	struct blk_req *r;

	if (elem->out_len < BLK_REQ_HDR) {
		*why = "request without a 16-byte header";
		return NULL;
	}
	if (elem->in_len < 1) {
		*why = "request without a status byte";
		return NULL;
	}
	r = calloc(1, sizeof(*r) + (elem->out_num + elem->in_num) * sizeof(r->iov_store[0]));
	if (!r) {
		*why = "out of host memory";
		return NULL;
	}
	iov_to_buf(elem->out, elem->out_num, 0, &hdr, sizeof(hdr));
	r->type = hdr.type;
	r->sector = hdr.sector;
	last = &elem->in[elem->in_num - 1];
	r->status = (uint8_t *)last->iov_base + last->iov_len - 1;
	r->iov = r->iov_store;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		/* Data goes into the writable buffers before the status byte. */
		r->len = elem->in_len - 1;
		r->niov = iov_slice(elem->in, elem->in_num, 0, r->len, r->iov);
		break;
	default:
		/* Data (write payload, discard segments) follows the header. */
		r->len = elem->out_len - BLK_REQ_HDR;
		r->niov = iov_slice(elem->out, elem->out_num, BLK_REQ_HDR, r->len, r->iov);
		break;
	}
	r->written = 1; /* the status byte */
	r->result = VIRTIO_BLK_S_OK;
	return r;
}

/* Is [sector, sector + bytes/512) inside the disk (overflow-safe)? */
static bool blk_in_range(const struct blk_disk *d, uint64_t sector, uint64_t bytes)
{
	uint64_t n = bytes / SECTOR;

	return sector <= d->nsectors && n <= d->nsectors - sector;
}

static uint8_t blk_discard_write_zeroes(const struct blk_disk *d, struct blk_req *r)
{
	struct virtio_blk_discard_write_zeroes seg;
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint64_t off, len;

	if (d->readonly)
		return VIRTIO_BLK_S_IOERR;
	/* One segment per request: max_discard_seg = max_write_zeroes_seg = 1. */
	if (r->len != BLK_DZ_SEGMENT ||
	    iov_to_buf(r->iov, r->niov, 0, &seg, sizeof(seg)) != sizeof(seg))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.flags & ~(zeroes ? VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP : 0u))
		return VIRTIO_BLK_S_UNSUPP;
	if (seg.num_sectors > VIRTIO_BLK_MAX_DZ ||
	    !blk_in_range(d, seg.sector, (uint64_t)seg.num_sectors * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	off = seg.sector * SECTOR;
	len = (uint64_t)seg.num_sectors * SECTOR;
	if (!len)
		return VIRTIO_BLK_S_OK;
	if (!zeroes) {
		/* Discard is a hint: a file system that cannot punch holes
		 * simply keeps the data. */
		int e = disk_punch(d->fd, off, len);

		if (e < 0 && e != -EOPNOTSUPP) {
			r->error = -e;
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	}
	/* Write zeroes must read back as zeroes. */
	r->error =
	    -disk_write_zeroes(d->fd, off, len, seg.flags & VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP);
	return r->error ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
}

/* Can this read be done at all? (Sector multiple, inside the disk, and
 * written = len + status must fit the used ring's 32-bit length.) */
static bool blk_read_ok(const struct blk_disk *d, const struct blk_req *r)
{
	return !(r->len % SECTOR) && r->len < UINT32_MAX && blk_in_range(d, r->sector, r->len);
}

void blk_req_execute(const struct blk_disk *d, struct blk_req *r)
{
	uint8_t st = VIRTIO_BLK_S_OK;
	size_t n;

	r->error = 0;
	switch (r->type) {
	case VIRTIO_BLK_T_IN:
		if (!blk_read_ok(d, r))
			st = VIRTIO_BLK_S_IOERR;
		else if ((r->error =
			      -disk_rw_full(d->fd, r->iov, r->niov, r->sector * SECTOR, false)))
			st = VIRTIO_BLK_S_IOERR;
		else
			r->written += (uint32_t)r->len;
		break;
	case VIRTIO_BLK_T_OUT:
		if (d->readonly || r->len % SECTOR || !blk_in_range(d, r->sector, r->len))
			st = VIRTIO_BLK_S_IOERR;
		else if ((r->error =
			      -disk_rw_full(d->fd, r->iov, r->niov, r->sector * SECTOR, true)))
			st = VIRTIO_BLK_S_IOERR;
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!d->readonly && fdatasync(d->fd) < 0) {
			r->error = errno;
			st = VIRTIO_BLK_S_IOERR;
		}
		break;
	case VIRTIO_BLK_T_GET_ID:
		n = iov_from_buf(r->iov, r->niov, 0, d->serial,
				 r->len < sizeof(d->serial) ? r->len : sizeof(d->serial));
		r->written += (uint32_t)n;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		st = blk_discard_write_zeroes(d, r);
		break;
	default:
		st = VIRTIO_BLK_S_UNSUPP;
		break;
	}
	r->result = st;
}

/* ---- the device on the request engine (iothread side) ---- */

static struct blk_inflight *blk_of(const struct block_req *r)
{
	return (struct blk_inflight *)r;
}

static void blk_req_free(struct block_req *r)
{
	free(blk_of(r)->req);
	free(blk_of(r));
}

/* Worker: the blocking operation. */
static void blk_work(struct block_req *br)
{
	struct blk_inflight *f = blk_of(br);

	blk_req_execute(&f->blk->disk, f->req);
	br->error = f->req->error;
}

/* The host work is over: what to return. */
static void blk_done(struct block_req *br)
{
	struct blk_inflight *f = blk_of(br);
	struct blk_req *r = f->req;

	/* cancelled: a reset waits for it, it only needs retiring */
	if (br->cancelled || br->error)
		f->status = VIRTIO_BLK_S_IOERR;
	else if (br->ignored || br->uring)
		f->status = VIRTIO_BLK_S_OK;
	else
		f->status = r->result;
	/* A read that worked, or whose failure is ignored, wrote its data. */
	if (f->status == VIRTIO_BLK_S_OK && r->type == VIRTIO_BLK_T_IN &&
	    (br->uring || br->ignored))
		r->written = (uint32_t)r->len + 1;
	block_req_complete(br);
}

static uint32_t blk_put_result(struct block_req *br)
{
	struct blk_inflight *f = blk_of(br);

	*f->req->status = f->status;
	return f->req->written;
}

/* Start @f: a read the disk can serve goes to the engine as a read (its
 * ring), a read it cannot is answered at once, the rest is pool work. */
static void blk_start(struct blk_inflight *f)
{
	struct blk_req *r = f->req;
	struct block_req *br = &f->br;

	br->is_read = r->type == VIRTIO_BLK_T_IN;
	if (br->is_read) {
		if (!blk_read_ok(&f->blk->disk, r)) {
			f->status = VIRTIO_BLK_S_IOERR;
			block_req_complete(br);
			return;
		}
		br->iov = r->iov;
		br->niov = r->niov;
		br->off = r->sector * SECTOR;
		br->len = r->len;
	}
	block_req_start(br);
}

/* Run a held request again from its chain (the last attempt consumed its
 * iovecs). */
static bool blk_restart(struct block_req *br, const char **why)
{
	struct blk_inflight *f = blk_of(br);
	struct blk_req *r = blk_req_parse(br->elem, why);

	if (!r)
		return false;
	free(f->req);
	f->req = r;
	blk_start(f);
	return true;
}

static const struct block_engine_ops blk_engine_ops = {
    .work = blk_work,
    .done = blk_done,
    .put_result = blk_put_result,
    .restart = blk_restart,
    .free = blk_req_free,
};

/* A new request for @elem, parsed; NULL with @why if it is none. */
static struct blk_inflight *blk_inflight_new(struct virtio_blk *blk, struct vq_elem *elem,
					     const char **why)
{
	struct blk_inflight *f = calloc(1, sizeof(*f));

	*why = "out of host memory";
	if (f)
		f->req = blk_req_parse(elem, why);
	if (!f || !f->req) {
		free(f);
		return NULL;
	}
	f->blk = blk;
	virtio_block_req_init(&f->br, &blk->eng, elem);
	f->br.drive = &blk->drive;
	return f;
}

static void blk_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_blk *blk = vdev->opaque;
	struct vq_elem *elem;

	while (virtio_pop(vdev, q, &elem) > 0) {
		const char *why;
		struct blk_inflight *f = blk_inflight_new(blk, elem, &why);

		if (!f) {
			virtio_error(vdev, "queue %u: %s", q, why);
			virtio_push(vdev, q, elem, 0); /* discarded: the device is broken */
			break;
		}
		blk_start(f);
	}
	/* One system call for the whole batch of reads. */
	block_engine_submit(&blk->eng);
}

static const struct virtio_dev_ops blk_virtio_ops = {
    .queue_notify = blk_queue_notify,
    .drop_held = virtio_block_drop_held,
};

/* ---- realize, exit ---- */

static int blk_open(struct virtio_blk *blk, const struct disk_config *dc, struct errbuf *err)
{
	uint64_t size;
	int ret = disk_image_open(dc->path, dc->readonly, &blk->disk.fd, &size, err);

	if (ret < 0)
		return ret;
	blk->disk.nsectors = size / SECTOR;
	blk->disk.readonly = dc->readonly;
	memcpy(blk->disk.serial, dc->serial, strlen(dc->serial));
	blk->drive = (struct block_drive){.fd = blk->disk.fd,
					  .readonly = dc->readonly,
					  .werror = dc->werror,
					  .rerror = dc->rerror,
					  .delay_ms = dc->delay_ms,
					  .block = &blk->block};
	return 0;
}

static void blk_fill_config(const struct virtio_blk *blk, struct virtio_blk_config *c)
{
	memset(c, 0, sizeof(*c));
	c->capacity = blk->disk.nsectors;
	c->seg_max = VIRTIO_BLK_SEG_MAX;
	c->blk_size = SECTOR;
	c->num_queues = 1;
	c->max_discard_sectors = VIRTIO_BLK_MAX_DZ;
	c->max_discard_seg = 1;
	c->discard_sector_alignment = 1;
	c->max_write_zeroes_sectors = VIRTIO_BLK_MAX_DZ;
	c->max_write_zeroes_seg = 1;
	c->write_zeroes_may_unmap = 1;
}

static void blk_free(struct virtio_blk *blk)
{
	block_engine_free(&blk->eng);
	disk_image_close(blk->disk.fd, blk->disk.readonly, blk->name, blk->path);
	free(blk);
}

static int virtio_blk_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct virtio_blk_config cfg;
	struct virtio_dev_params p;
	struct block_engine_params ep;
	struct block_env env;
	struct disk_config *dc;
	char what[256];
	struct virtio_blk *blk;
	int index = 0, ret;

	for (int i = 0; i < vm->ndevices; i++)
		index += vm->devices[i].ops == &virtio_blk_ops;
	blk = calloc(1, sizeof(*blk));
	dc = malloc(sizeof(*dc));
	if (!blk || !dc) {
		free(blk);
		free(dc);
		return err_set(err, ENOMEM, "out of memory");
	}
	blk->disk.fd = -1;
	snprintf(blk->name, sizeof(blk->name), "virtio-blk%d", index);
	ret = disk_config_parse(opts ? opts : "", dc, err);
	if (ret < 0)
		goto fail;
	snprintf(blk->path, sizeof(blk->path), "%s", dc->path);
	ret = blk_open(blk, dc, err);
	if (ret < 0)
		goto fail;
	block_env_from_vm(&env, vm);
	ep = (struct block_engine_params){.name = blk->name,
					  .env = &env,
					  .aio = dc->aio,
					  .pool_threads = BLK_POOL_THREADS,
					  .uring_entries = BLK_URING_ENTRIES,
					  .nqueues = 1,
					  .ops = &blk_engine_ops};
	snprintf(what, sizeof(what), "disk '%.200s'", dc->path);
	ep.what = what;
	ret = block_engine_init(&blk->eng, &ep, err);
	if (ret < 0)
		goto fail;

	blk_fill_config(blk, &cfg);
	p = (struct virtio_dev_params){
	    .name = blk->name,
	    .device_id = VIRTIO_ID_BLOCK,
	    .pci_class = BLK_CLASS_STORAGE,
	    .features = (1ULL << VIRTIO_BLK_F_SEG_MAX) | (1ULL << VIRTIO_BLK_F_BLK_SIZE) |
			(1ULL << VIRTIO_BLK_F_FLUSH),
	    .nqueues = 1,
	    .queue_size = VIRTIO_BLK_QUEUE_SIZE,
	    .config = &cfg,
	    .config_len = BLK_CONFIG_LEN,
	    .ctx = blk->eng.ctx,
	    .ops = &blk_virtio_ops,
	    .opaque = blk,
	};
	if (dc->readonly)
		p.features |= 1ULL << VIRTIO_BLK_F_RO;
	else
		p.features |= (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES);
	ret = virtio_pci_init(&blk->vdev, vm, &p, err);
	if (ret < 0)
		goto fail;
	virtio_block_attach(&blk->eng, &blk->vdev);
	snprintf(blk->block.id, sizeof(blk->block.id), "%s", blk->name);
	blk->block.path = blk->path;
	blk->block.readonly = dc->readonly;
	blk->block.io_status = "ok";
	ret = block_drive_register(&blk->eng, &blk->block);
	if (ret < 0) {
		err_set(err, -ret, "%s: too many block devices", blk->name);
		block_engine_stop(&blk->eng);
		virtio_pci_exit(&blk->vdev);
		goto fail;
	}
	free(dc);
	*state = blk;
	return 0;
fail:
	free(dc);
	blk_free(blk);
	return ret;
}

static void virtio_blk_exit(void *state)
{
	struct virtio_blk *blk = state;

	block_drive_unregister(&blk->eng, &blk->block);
	block_engine_stop(&blk->eng);
	virtio_pci_exit(&blk->vdev);
	blk_free(blk);
}

/* ---- snapshots ---- */

/*
 * The device's section: this header, the virtio transport's state
 * (virtio_pci_save: PCI config, MSI-X, status, features, queues with their
 * in-flight heads), then (version 2) one struct blk_req_snap per held
 * request in pop order. At restore the chains are read again from guest
 * RAM and checked again; a request that had finished is returned with its
 * saved status, the others are started at resume. Version 1 (no records:
 * every held request ran again) is still read.
 */
struct blk_snap {
	uint32_t version;
	uint32_t nrequests; /* requests held at save = in-flight elements */
	uint64_t nsectors;  /* must match the image now */
	uint8_t readonly;
	uint8_t io_status; /* 0 ok, 1 failed, 2 nospace */
	uint8_t reserved[6];
};

struct blk_req_snap {
	uint16_t queue, head; /* struct block_req_snap_hdr */
	uint8_t state;
	uint8_t status; /* BLOCK_HELD_DONE: the result */
	uint8_t reserved[2];
	uint32_t written; /* ... and the bytes written, status byte included */
};

static const char *const blk_io_status[] = {"ok", "failed", "nospace"};

static void blk_fill_snap(const struct block_req *br, void *rec)
{
	const struct blk_inflight *f = (const struct blk_inflight *)br;
	struct blk_req_snap s = {.status = 0};

	if (br->state == BLOCK_HELD_DONE) {
		s.status = f->status;
		s.written = f->req->written;
	}
	memcpy(rec, &s, sizeof(s));
}

static int virtio_blk_save(void *state, void *buf, size_t len)
{
	struct virtio_blk *blk = state;
	struct blk_snap h = {.version = BLK_SNAP_VERSION};
	size_t recs;
	int n;

	if (len < sizeof(h))
		return -ENOSPC;
	if (!block_engine_idle(&blk->eng))
		return -EBUSY;
	h.nrequests = block_engine_nheld(&blk->eng);
	h.nsectors = blk->disk.nsectors;
	h.readonly = blk->disk.readonly;
	for (uint8_t i = 0; i < ARRAY_SIZE(blk_io_status); i++)
		if (!strcmp(blk->block.io_status, blk_io_status[i]))
			h.io_status = i;
	recs = (size_t)h.nrequests * sizeof(struct blk_req_snap);
	if (len - sizeof(h) < recs)
		return -ENOSPC;
	n = virtio_pci_save(&blk->vdev, (uint8_t *)buf + sizeof(h), len - sizeof(h) - recs,
			    h.nrequests);
	if (n < 0)
		return n;
	block_engine_save_held(&blk->eng, (uint8_t *)buf + sizeof(h) + n,
			       sizeof(struct blk_req_snap), blk_fill_snap);
	memcpy(buf, &h, sizeof(h));
	return (int)(sizeof(h) + (size_t)n + recs);
}

struct blk_load_ctx {
	struct virtio_blk *blk;
	const struct blk_req_snap *recs; /* NULL: version 1, every request NEW */
	uint32_t nrecs;
	struct block_list list;
};

/* Is @s a held request this device could have had? */
static int blk_req_snap_check(const struct blk_req_snap *s, char *why, size_t n)
{
	struct block_req_snap_hdr h = {s->queue, s->head, s->state};

	if (block_req_snap_check(&h, 1, why, n) < 0)
		return -EINVAL;
	if (s->reserved[0] | s->reserved[1])
		return snprintf(why, n, "reserved bytes are not zero"), -EINVAL;
	if (s->state != BLOCK_HELD_DONE && (s->status || s->written))
		return snprintf(why, n, "a result for a request that has none"), -EINVAL;
	if (s->state == BLOCK_HELD_DONE && (s->status > VIRTIO_BLK_S_UNSUPP || s->written < 1))
		return snprintf(why, n, "status %u, %u bytes written", s->status, s->written),
		       -EINVAL;
	return 0;
}

/* Each in-flight chain read back at load: it must be a request, and the
 * one saved. */
static int blk_load_elem(void *opaque, struct vq_elem *elem, struct errbuf *err)
{
	struct blk_load_ctx *c = opaque;
	struct blk_req_snap s = {.state = BLOCK_HELD_NEW};
	const char *why;
	struct blk_inflight *f;

	if (c->recs) {
		bool found = false;

		for (uint32_t i = 0; i < c->nrecs && !found; i++) {
			memcpy(&s, &c->recs[i], sizeof(s));
			found = s.queue == elem->queue && s.head == elem->head;
		}
		if (!found)
			return err_set(err, EINVAL,
				       "%s: in-flight head %u of queue %u has no saved request",
				       c->blk->name, elem->head, elem->queue);
	}
	f = blk_inflight_new(c->blk, elem, &why);
	if (!f)
		return err_set(err, EINVAL, "%s: in-flight request at head %u: %s", c->blk->name,
			       elem->head, why);
	if (s.state == BLOCK_HELD_DONE && s.written > elem->in_len) {
		blk_req_free(&f->br);
		return err_set(err, EINVAL,
			       "%s: in-flight request at head %u: %u bytes written, its buffers "
			       "hold %llu",
			       c->blk->name, elem->head, s.written,
			       (unsigned long long)elem->in_len);
	}
	f->br.state = s.state;
	f->status = s.status;
	f->req->written = s.state == BLOCK_HELD_DONE ? s.written : 1;
	block_list_add(&c->list, &f->br);
	return 0;
}

static int virtio_blk_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct virtio_blk *blk = state;
	struct blk_load_ctx c = {.blk = blk};
	struct blk_snap h;
	size_t recs = 0;
	char why[96];
	int ret;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", blk->name, len);
	memcpy(&h, buf, sizeof(h));
	if (h.version != BLK_SNAP_VERSION && h.version != 1)
		return err_set(err, EINVAL, "%s: state version %u, kvmini reads 1 and %u",
			       blk->name, h.version, BLK_SNAP_VERSION);
	for (size_t i = 0; i < sizeof(h.reserved); i++)
		if (h.reserved[i])
			return err_set(err, EINVAL, "%s: reserved bytes are not zero", blk->name);
	if (h.nsectors != blk->disk.nsectors)
		return err_set(err, EINVAL,
			       "%s: the snapshot's disk has %llu sectors, '%s' has %llu (not the "
			       "same image?)",
			       blk->name, (unsigned long long)h.nsectors, blk->path,
			       (unsigned long long)blk->disk.nsectors);
	if (h.readonly > 1 || h.readonly != blk->disk.readonly)
		return err_set(err, EINVAL,
			       "%s: readonly=%s in the snapshot, %s on the command line", blk->name,
			       h.readonly ? "on" : "off", blk->disk.readonly ? "on" : "off");
	if (h.io_status >= ARRAY_SIZE(blk_io_status))
		return err_set(err, EINVAL, "%s: bad io-status %u", blk->name, h.io_status);
	if (h.nrequests > VIRTIO_BLK_QUEUE_SIZE)
		return err_set(err, EINVAL, "%s: %u requests in flight (at most %u)", blk->name,
			       h.nrequests, VIRTIO_BLK_QUEUE_SIZE);
	if (h.version == BLK_SNAP_VERSION) {
		recs = (size_t)h.nrequests * sizeof(struct blk_req_snap);
		if (len - sizeof(h) < recs)
			return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", blk->name,
				       len);
		c.recs = (const void *)((const uint8_t *)buf + len - recs);
		c.nrecs = h.nrequests;
		for (uint32_t i = 0; i < h.nrequests; i++) {
			struct blk_req_snap s;

			memcpy(&s, &c.recs[i], sizeof(s));
			if (blk_req_snap_check(&s, why, sizeof(why)) < 0)
				return err_set(err, EINVAL, "%s: saved request %u: %s", blk->name,
					       i, why);
			for (uint32_t k = 0; k < i; k++)
				if (c.recs[k].head == s.head)
					return err_set(err, EINVAL,
						       "%s: saved request %u is there twice",
						       blk->name, i);
		}
	}
	if (!block_engine_idle(&blk->eng) || block_engine_nheld(&blk->eng))
		return err_set(err, EBUSY, "%s: can only load into a fresh, paused device",
			       blk->name);
	ret = virtio_pci_load(&blk->vdev, (const uint8_t *)buf + sizeof(h), len - sizeof(h) - recs,
			      h.nrequests, blk_load_elem, &c, err);
	if (ret < 0) {
		while (c.list.head) {
			struct block_req *br = c.list.head;

			block_list_del(&c.list, br);
			free(br->elem);
			blk_req_free(br);
		}
		return ret;
	}
	/* Returned or started (in this order) when the VM is resumed. */
	block_engine_set_held(&blk->eng, &c.list);
	blk->block.io_status = blk_io_status[h.io_status];
	return 0;
}

const struct device_ops virtio_blk_ops = {
    .name = "virtio-blk",
    .realize = virtio_blk_realize,
    .save = virtio_blk_save,
    .load = virtio_blk_load,
    .pause = block_device_pause,
    .resume = block_device_resume,
    .exit = virtio_blk_exit,
};
