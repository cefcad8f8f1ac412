// SPDX-License-Identifier: MIT
/* virtio-blk: configuration, request chains, completion by polling or MSI-X. */
#include "guest.h"
#include "virtio_blk.h"

/* struct virtio_blk_config */
#define CFG_CAPACITY	    0
#define CFG_SIZE_MAX	    8
#define CFG_SEG_MAX	    12
#define CFG_BLK_SIZE	    20
#define CFG_MAX_DISCARD	    36
#define CFG_MAX_DISCARD_SEG 40
#define CFG_MAX_WZ	    48
#define CFG_MAX_WZ_SEG	    52

#define DEFAULT_QUEUE_SIZE 256
#define DEFAULT_MAX_SEGS   64

#define MSIX_CONFIG_ENTRY 0
#define MSIX_QUEUE_ENTRY  1

void vblk_opts_from_cmdline(struct virtio_opts *o)
{
	virtio_opts_from_cmdline(o, VBLK_MAX_SEGS);
}

int vblk_open(struct vblk *b, unsigned int index, const char *name)
{
	struct virtio_opts o;
	struct pci_dev *d =
	    virtio_pci_open(VIRTIO_TYPE_BLOCK, 0x1001, index, name, "virtio-blk disk");
	int r;

	if (!d)
		return -ENODEV;
	vblk_opts_from_cmdline(&o);
	r = vblk_init(b, d, &o);
	if (r) {
		printf("%s: disk %u: initialisation failed: %d (device status 0x%x)\n", name, index,
		       r, b->vd.common ? virtio_status(&b->vd) : 0);
		return r;
	}
	vblk_print(b, name);
	if (cmdline_has("relocate"))
		pci_dev_print(d);
	return 0;
}

int vblk_restart(struct vblk *b)
{
	struct virtio_dev *v = &b->vd;
	uint64_t wanted = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
			  1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			  1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_DISCARD |
			  1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	int r;

	wanted |= virtio_opts_features(&b->opts);
	b->error = 0;
	r = virtio_negotiate(v, wanted);
	if (r)
		return r;
	b->capacity = virtio_cfg64(v, CFG_CAPACITY);
	b->size_max = vblk_has(b, VIRTIO_BLK_F_SIZE_MAX) ? virtio_cfg32(v, CFG_SIZE_MAX) : 0;
	b->seg_max = vblk_has(b, VIRTIO_BLK_F_SEG_MAX) ? virtio_cfg32(v, CFG_SEG_MAX) : 0;
	b->blk_size = vblk_has(b, VIRTIO_BLK_F_BLK_SIZE) ? virtio_cfg32(v, CFG_BLK_SIZE) : 512;
	if (vblk_has(b, VIRTIO_BLK_F_DISCARD)) {
		b->max_discard_sectors = virtio_cfg32(v, CFG_MAX_DISCARD);
		b->max_discard_seg = virtio_cfg32(v, CFG_MAX_DISCARD_SEG);
	}
	if (vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES)) {
		b->max_wz_sectors = virtio_cfg32(v, CFG_MAX_WZ);
		b->max_wz_seg = virtio_cfg32(v, CFG_MAX_WZ_SEG);
	}
	if (v->config_vector >= 0 && (r = virtio_config_irq(v, MSIX_CONFIG_ENTRY)) != 0)
		return r;
	uint16_t qsize = b->opts.queue_size ? b->opts.queue_size : DEFAULT_QUEUE_SIZE;
	uint16_t segs = b->opts.max_segs ? b->opts.max_segs : DEFAULT_MAX_SEGS;
	if (segs > VBLK_MAX_SEGS)
		segs = VBLK_MAX_SEGS;
	if (b->seg_max && segs > b->seg_max)
		segs = b->seg_max;
	if (b->opts.irq && b->queue_vector < 0)
		return -ENODEV; /* no MSI-X, and no INTx support: polling only */
	r = virtio_queue_setup(v, &b->vq, 0, qsize,
			       b->opts.irq ? MSIX_QUEUE_ENTRY : VIRTIO_NO_VECTOR, segs + 2);
	if (r)
		return r;
	/* Without indirect tables a chain (header, data, status) uses ring slots. */
	if (!b->vq.indirect && segs + 2 > b->vq.size)
		segs = b->vq.size - 2;
	b->max_segs = segs;
	if (!b->opts.irq)
		virtq_disable_irq(&b->vq);
	return virtio_driver_ok(v);
}

int vblk_init(struct vblk *b, struct pci_dev *d, const struct virtio_opts *o)
{
	int r;

	*b = (struct vblk){.queue_vector = -1};
	if (o)
		b->opts = *o;
	r = virtio_pci_probe(&b->vd, d);
	if (r)
		return r;
	if (b->vd.have_msix) {
		/* Config changes (NEEDS_RESET) are counted; queue interrupts only
		 * wake waits. The queue vector is routed even when polling, so a
		 * restart may switch modes (opts.irq). */
		r = virtio_msix_vector(&b->vd, MSIX_CONFIG_ENTRY, NULL, NULL);
		if (r < 0)
			return r;
		b->vd.config_vector = r;
		r = virtio_msix_vector(&b->vd, MSIX_QUEUE_ENTRY, NULL, NULL);
		if (r >= 0)
			b->queue_vector = r;
	}
	return vblk_restart(b);
}

/* Split [p, p + len) into descriptors of at most @seg bytes (and size_max). */
static int add_data(const struct vblk *b, struct virtq_buf *out, const uint8_t *p, uint32_t len,
		    uint32_t seg)
{
	if (b->size_max && (!seg || seg > b->size_max))
		seg = b->size_max;
	return virtq_split(out, b->max_segs, p, len, seg);
}

int vblk_submit(struct vblk *b, struct vblk_req *r)
{
	struct virtq_buf *bufs = b->scratch;
	unsigned int nout = 1, nin = 0;
	int n = 0;

	r->hdr = (struct virtio_blk_outhdr){.type = r->type, .sector = r->sector};
	r->status = VBLK_S_PENDING;
	r->written = 0;
	bufs[0] = (struct virtq_buf){&r->hdr, sizeof(r->hdr)};
	switch (r->type) {
	case VIRTIO_BLK_T_OUT:
		n = add_data(b, bufs + 1, r->buf, r->len, r->seg);
		nout += n;
		break;
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_GET_ID:
		n = add_data(b, bufs + 1, r->buf, r->len, r->seg);
		nin += n;
		break;
	case VIRTIO_BLK_T_DISCARD:
	case VIRTIO_BLK_T_WRITE_ZEROES:
		r->hdr.sector = 0; /* the range carries the sectors */
		r->range = (struct virtio_blk_range){r->sector, r->len, r->flags};
		bufs[nout++] = (struct virtq_buf){&r->range, sizeof(r->range)};
		break;
	case VIRTIO_BLK_T_FLUSH:
		break;
	default: /* unknown types go out as header + status: the device answers UNSUPP */
		break;
	}
	if (n < 0)
		return n;
	bufs[nout + nin] = (struct virtq_buf){&r->status, 1};
	nin++;
	return virtq_add(&b->vq, bufs, nout, nin, r);
}

void vblk_kick(struct vblk *b)
{
	virtq_kick(&b->vq);
}

struct vblk_req *vblk_reap(struct vblk *b)
{
	uint32_t len;
	struct vblk_req *r = virtq_get(&b->vq, &len);

	if (r)
		r->written = len;
	return r;
}

struct vblk_req *vblk_wait(struct vblk *b, uint64_t timeout_tsc)
{
	struct vblk_req *r;

	vblk_kick(b);
	while (!(r = vblk_reap(b))) {
		int e = virtio_wait_used(&b->vd, &b->vq, b->opts.irq, timeout_tsc, &b->irq_waits);
		if (e) {
			b->error = e;
			return NULL;
		}
	}
	return r;
}

int vblk_do(struct vblk *b, struct vblk_req *r)
{
	int e = vblk_submit(b, r);

	if (e)
		return e;
	struct vblk_req *done = vblk_wait(b, tsc_ms(VBLK_TIMEOUT_MS));
	if (!done)
		return b->error;
	return done == r ? r->status : -EPROTO;
}

static int rw(struct vblk *b, uint32_t type, uint64_t sector, void *buf, uint32_t len)
{
	struct vblk_req r = {.type = type, .sector = sector, .buf = buf, .len = len};

	return vblk_do(b, &r);
}

int vblk_read(struct vblk *b, uint64_t sector, void *buf, uint32_t len)
{
	return rw(b, VIRTIO_BLK_T_IN, sector, buf, len);
}

int vblk_write(struct vblk *b, uint64_t sector, const void *buf, uint32_t len)
{
	return rw(b, VIRTIO_BLK_T_OUT, sector, (void *)buf, len);
}

int vblk_flush(struct vblk *b)
{
	return rw(b, VIRTIO_BLK_T_FLUSH, 0, NULL, 0);
}

int vblk_get_id(struct vblk *b, char *id)
{
	int r;

	memset(id, 0, VIRTIO_BLK_ID_BYTES + 1);
	r = rw(b, VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES);
	id[VIRTIO_BLK_ID_BYTES] = 0;
	return r;
}

void vblk_print(const struct vblk *b, const char *name)
{
	const struct pci_dev *d = b->vd.pci;

	printf("%s: %02x:%02x.%x capacity %lu sectors (%lu MiB) blk_size %u size_max %u seg_max %u"
	       " queue %u%s%s%s%s%s%s completion %s\n",
	       name, d->bus, d->dev, d->fn, b->capacity, b->capacity >> 11, b->blk_size,
	       b->size_max, b->seg_max, b->vq.size, b->vq.indirect ? " indirect" : "",
	       b->vq.event_idx ? " event_idx" : "", vblk_has(b, VIRTIO_BLK_F_RO) ? " ro" : "",
	       vblk_has(b, VIRTIO_BLK_F_FLUSH) ? " flush" : "",
	       vblk_has(b, VIRTIO_BLK_F_DISCARD) ? " discard" : "",
	       vblk_has(b, VIRTIO_BLK_F_WRITE_ZEROES) ? " write_zeroes" : "",
	       b->opts.irq ? "irq" : "poll");
}
