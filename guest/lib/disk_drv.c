// SPDX-License-Identifier: MIT
/* struct disk_ops (disk_drv.h) over virtio-blk and virtio-scsi. */
#include "disk_drv.h"
#include "guest.h"

static const char *const op_name[] = {"read", "write", "flush"};

/* Point @d at the fields of driver struct @dev (a struct vblk or vscsi:
 * they name them alike). */
#define DISK_BIND(d, dev)                                                                          \
	((d)->max_segs = (dev)->max_segs, (d)->vd = &(dev)->vd, (d)->vq = &(dev)->vq,              \
	 (d)->opts = &(dev)->opts, (d)->error = &(dev)->error, (d)->irq_waits = &(dev)->irq_waits)

/* The ops table of functions P_open, P_restart... */
#define DISK_OPS(p)                                                                                \
	{                                                                                          \
		.open = p##_open, .restart = p##_restart, .submit = p##_submit, .wait = p##_wait,  \
		.reap = p##_reap, .result = p##_result, .read = p##_read, .flush = p##_flush       \
	}

int disk_open(struct disk *d, const struct disk_ops *ops, const char *name)
{
	d->ops = ops;
	d->name = name;
	return ops->open(d);
}

struct disk_req *disk_wait(struct disk *d, uint64_t timeout_tsc)
{
	struct disk_req *r = d->ops->wait(d, timeout_tsc);

	if (!r)
		printf("%s: waiting for a completion failed: %d (device status 0x%x)\n", d->name,
		       *d->error, virtio_status(d->vd));
	return r;
}

/* ---- virtio-blk: the whole disk ---- */

static int blk_open(struct disk *d)
{
	struct vblk *b = &d->u.blk;
	uint64_t v = 0;
	int e;

	cmdline_get_u64("disk", &v);
	e = vblk_open(b, v, d->name);
	if (e)
		return e;
	d->sectors = b->capacity;
	d->can_flush = vblk_has(b, VIRTIO_BLK_F_FLUSH);
	DISK_BIND(d, b);
	return 0;
}

static int blk_restart(struct disk *d)
{
	return vblk_restart(&d->u.blk);
}

static int blk_submit(struct disk *d, struct disk_req *r)
{
	static const uint32_t type[] = {[DISK_READ] = VIRTIO_BLK_T_IN,
					[DISK_WRITE] = VIRTIO_BLK_T_OUT,
					[DISK_FLUSH] = VIRTIO_BLK_T_FLUSH};

	r->u.blk = (struct vblk_req){.type = type[r->op], .user = r};
	if (r->op != DISK_FLUSH) {
		r->u.blk.sector = r->sector;
		r->u.blk.buf = r->buf;
		r->u.blk.len = r->nsec * DISK_SECTOR;
		r->u.blk.seg = r->seg;
	}
	return vblk_submit(&d->u.blk, &r->u.blk);
}

static struct disk_req *blk_wait(struct disk *d, uint64_t timeout_tsc)
{
	struct vblk_req *r = vblk_wait(&d->u.blk, timeout_tsc);

	return r ? r->user : NULL;
}

static struct disk_req *blk_reap(struct disk *d)
{
	struct vblk_req *r = vblk_reap(&d->u.blk);

	return r ? r->user : NULL;
}

static int blk_result(struct disk *d, const struct disk_req *r)
{
	uint8_t st = r->u.blk.status;

	if (st == VIRTIO_BLK_S_OK)
		return 0;
	if (r->op == DISK_FLUSH)
		printf("%s: flush failed: status %u\n", d->name, st);
	else
		printf("%s: %s of %u sectors at %lu failed: status %u\n", d->name, op_name[r->op],
		       r->nsec, r->sector, st);
	return st == VBLK_S_PENDING ? -EPROTO : st;
}

static int blk_read(struct disk *d, uint64_t sector, void *buf, uint32_t nsec)
{
	return vblk_read(&d->u.blk, sector, buf, nsec * DISK_SECTOR);
}

static int blk_flush(struct disk *d)
{
	return vblk_flush(&d->u.blk);
}

const struct disk_ops disk_blk_ops = DISK_OPS(blk);

/* ---- virtio-scsi: one LUN, READ/WRITE (10) and (16) ---- */

int disk_scsi_attach(struct disk *d, const char *name)
{
	struct vscsi *s = &d->u.scsi.ctl;
	uint64_t v = 0;
	int e;

	d->ops = &disk_scsi_ops;
	d->name = name;
	cmdline_get_u64("ctrl", &v);
	e = vscsi_open(s, v, name);
	if (e)
		return e;
	if (!cmdline_get_u64("lun", &v))
		d->u.scsi.lun = v;
	if (!cmdline_get_u64("cdb", &v) && (v == 10 || v == 16))
		d->u.scsi.cdb = v;
	d->can_flush = true; /* SYNCHRONIZE CACHE is part of SBC */
	DISK_BIND(d, s);
	return 0;
}

static int scsi_open(struct disk *d)
{
	uint64_t last;
	uint32_t bl;
	int e = disk_scsi_attach(d, d->name);

	if (e)
		return e;
	if (scsi_test_unit_ready(&d->u.scsi.ctl, d->u.scsi.lun) ||
	    scsi_read_capacity16(&d->u.scsi.ctl, d->u.scsi.lun, &last, &bl, NULL, 0) ||
	    bl != DISK_SECTOR) {
		printf("%s: lun %u: not ready or no 512-byte blocks\n", d->name, d->u.scsi.lun);
		return -ENODEV;
	}
	d->sectors = last + 1;
	return 0;
}

static int scsi_restart(struct disk *d)
{
	int e = vscsi_restart(&d->u.scsi.ctl);

	/* The reset left a unit attention: take it. */
	return e ? e : scsi_test_unit_ready(&d->u.scsi.ctl, d->u.scsi.lun);
}

static int scsi_submit(struct disk *d, struct disk_req *r)
{
	struct vscsi_req *q = &r->u.scsi;

	if (r->op == DISK_FLUSH) {
		*q = (struct vscsi_req){.lun = d->u.scsi.lun};
		q->cdb[0] = SCSI_SYNC_CACHE10;
	} else {
		unsigned int cdb = d->u.scsi.cdb	      ? d->u.scsi.cdb
				   : (d->u.scsi.toggle++ & 1) ? 16
							      : 10;
		vscsi_prep_rw(q, d->u.scsi.lun, r->op == DISK_WRITE, cdb, r->sector, r->nsec,
			      r->buf, r->nsec * DISK_SECTOR);
		q->seg = r->seg;
	}
	q->user = r;
	return vscsi_submit(&d->u.scsi.ctl, q);
}

static struct disk_req *scsi_wait(struct disk *d, uint64_t timeout_tsc)
{
	struct vscsi_req *r = vscsi_wait(&d->u.scsi.ctl, timeout_tsc);

	return r ? r->user : NULL;
}

static struct disk_req *scsi_reap(struct disk *d)
{
	struct vscsi_req *r = vscsi_reap(&d->u.scsi.ctl);

	return r ? r->user : NULL;
}

/* "NAME: WHAT failed: response R status S sense K/ASC/ASCQ" for request @q
 * with outcome @e (vscsi_result or -errno). */
static void scsi_print_failure(struct disk *d, const char *what, const struct vscsi_req *q, int e)
{
	struct vscsi_sense sn;

	if (e < 0) {
		printf("%s: %s failed: transport error %d\n", d->name, what, e);
		return;
	}
	vscsi_sense(q, &sn);
	printf("%s: %s failed: response %d status 0x%x sense %x/%02xh/%02xh\n", d->name, what,
	       VSCSI_RESPONSE(e), VSCSI_STATUS(e), sn.key, sn.asc, sn.ascq);
}

static int scsi_result(struct disk *d, const struct disk_req *r)
{
	const struct vscsi_req *q = &r->u.scsi;
	int e = vscsi_result(q);
	char what[64];

	if (!e)
		return 0;
	if (r->op == DISK_FLUSH)
		snprintf(what, sizeof(what), "flush");
	else
		snprintf(what, sizeof(what), "%s(%u) of %u sectors at %lu", op_name[r->op],
			 q->cdb[0] >= 0x80 ? 16 : 10, r->nsec, r->sector);
	scsi_print_failure(d, what, q, e);
	return q->resp.response == VSCSI_S_PENDING ? -EPROTO : e;
}

static int scsi_read(struct disk *d, uint64_t sector, void *buf, uint32_t nsec)
{
	return scsi_read16(&d->u.scsi.ctl, d->u.scsi.lun, sector, nsec, buf, nsec * DISK_SECTOR);
}

static int scsi_flush(struct disk *d)
{
	int e = scsi_sync_cache(&d->u.scsi.ctl, d->u.scsi.lun);

	if (e)
		scsi_print_failure(d, "SYNCHRONIZE CACHE", &d->u.scsi.ctl.sync, e);
	return e;
}

const struct disk_ops disk_scsi_ops = DISK_OPS(scsi);
