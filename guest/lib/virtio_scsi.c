// SPDX-License-Identifier: MIT
/* virtio-scsi: configuration, request chains, control and event queues, and
 * the SCSI commands of virtio_scsi.h. */
#include "guest.h"
#include "virtio_scsi.h"

/* struct virtio_scsi_config */
#define CFG_NUM_QUEUES	    0
#define CFG_SEG_MAX	    4
#define CFG_MAX_SECTORS	    8
#define CFG_CMD_PER_LUN	    12
#define CFG_EVENT_INFO_SIZE 16
#define CFG_SENSE_SIZE	    20
#define CFG_CDB_SIZE	    24
#define CFG_MAX_CHANNEL	    28
#define CFG_MAX_TARGET	    30
#define CFG_MAX_LUN	    32

#define QUEUE_CTRL  0
#define QUEUE_EVENT 1
#define QUEUE_REQ   2

#define DEFAULT_QUEUE_SIZE 256
#define DEFAULT_MAX_SEGS   64
#define CTRL_QUEUE_SIZE	   16

#define MSIX_CONFIG_ENTRY 0
#define MSIX_QUEUE_ENTRY  1

int vscsi_open(struct vscsi *s, unsigned int index, const char *name)
{
	struct virtio_opts o;
	struct pci_dev *d =
	    virtio_pci_open(VIRTIO_TYPE_SCSI, 0x1004, index, name, "virtio-scsi controller");
	int r;

	if (!d)
		return -ENODEV;
	virtio_opts_from_cmdline(&o, VSCSI_MAX_SEGS);
	r = vscsi_init(s, d, &o);
	if (r) {
		printf("%s: controller %u: initialisation failed: %d (device status 0x%x)\n", name,
		       index, r, s->vd.common ? virtio_status(&s->vd) : 0);
		return r;
	}
	vscsi_print(s, name);
	return 0;
}

/* Give the device every event buffer. */
static int post_events(struct vscsi *s)
{
	for (unsigned int i = 0; i < VSCSI_EVENTS; i++) {
		struct virtq_buf b = {&s->event_bufs[i], sizeof(s->event_bufs[i])};
		int r = virtq_add(&s->eventq, &b, 0, 1, &s->event_bufs[i]);
		if (r)
			return r;
	}
	virtq_kick(&s->eventq);
	return 0;
}

int vscsi_restart(struct vscsi *s)
{
	struct virtio_dev *v = &s->vd;
	int r;

	s->error = 0;
	r = virtio_negotiate(v, virtio_opts_features(&s->opts));
	if (r)
		return r;
	s->num_queues = virtio_cfg32(v, CFG_NUM_QUEUES);
	s->seg_max = virtio_cfg32(v, CFG_SEG_MAX);
	s->max_sectors = virtio_cfg32(v, CFG_MAX_SECTORS);
	s->cmd_per_lun = virtio_cfg32(v, CFG_CMD_PER_LUN);
	s->event_info_size = virtio_cfg32(v, CFG_EVENT_INFO_SIZE);
	s->sense_size = virtio_cfg32(v, CFG_SENSE_SIZE);
	s->cdb_size = virtio_cfg32(v, CFG_CDB_SIZE);
	s->max_channel = virtio_cfg16(v, CFG_MAX_CHANNEL);
	s->max_target = virtio_cfg16(v, CFG_MAX_TARGET);
	s->max_lun = virtio_cfg32(v, CFG_MAX_LUN);
	/* Our header and response have the default sizes, which the device
	 * uses after a reset (5.6.4). */
	if (s->sense_size != VIRTIO_SCSI_SENSE_SIZE || s->cdb_size != VIRTIO_SCSI_CDB_SIZE)
		return -ENOTSUP;
	if (v->config_vector >= 0 && (r = virtio_config_irq(v, MSIX_CONFIG_ENTRY)) != 0)
		return r;
	uint16_t qsize = s->opts.queue_size ? s->opts.queue_size : DEFAULT_QUEUE_SIZE;
	uint16_t segs = s->opts.max_segs ? s->opts.max_segs : DEFAULT_MAX_SEGS;
	if (segs > VSCSI_MAX_SEGS)
		segs = VSCSI_MAX_SEGS;
	if (s->seg_max && segs > s->seg_max)
		segs = s->seg_max;
	if (s->opts.irq && s->queue_vector < 0)
		return -ENODEV; /* no MSI-X, and no INTx support: polling only */
	r = virtio_queue_setup(v, &s->ctrlq, QUEUE_CTRL, CTRL_QUEUE_SIZE, VIRTIO_NO_VECTOR, 0);
	if (!r)
		r = virtio_queue_setup(v, &s->eventq, QUEUE_EVENT, VSCSI_EVENTS, VIRTIO_NO_VECTOR,
				       0);
	if (!r)
		r = virtio_queue_setup(v, &s->vq, QUEUE_REQ, qsize,
				       s->opts.irq ? MSIX_QUEUE_ENTRY : VIRTIO_NO_VECTOR, segs + 2);
	if (r)
		return r;
	/* Without indirect tables a chain (header, response, data) uses ring slots. */
	if (!s->vq.indirect && segs + 2 > s->vq.size)
		segs = s->vq.size - 2;
	s->max_segs = segs;
	virtq_disable_irq(&s->ctrlq);
	virtq_disable_irq(&s->eventq);
	if (!s->opts.irq)
		virtq_disable_irq(&s->vq);
	r = virtio_driver_ok(v);
	return r ? r : post_events(s);
}

int vscsi_init(struct vscsi *s, struct pci_dev *d, const struct virtio_opts *o)
{
	int r;

	*s = (struct vscsi){.queue_vector = -1};
	if (o)
		s->opts = *o;
	s->event_bufs = mem_alloc(VSCSI_EVENTS * sizeof(*s->event_bufs), 64);
	if (!s->event_bufs)
		return -ENOMEM;
	r = virtio_pci_probe(&s->vd, d);
	if (r)
		return r;
	if (s->vd.have_msix) {
		/* As virtio-blk: the queue vector is routed even when polling,
		 * so that a restart may switch modes. */
		r = virtio_msix_vector(&s->vd, MSIX_CONFIG_ENTRY, NULL, NULL);
		if (r < 0)
			return r;
		s->vd.config_vector = r;
		r = virtio_msix_vector(&s->vd, MSIX_QUEUE_ENTRY, NULL, NULL);
		if (r >= 0)
			s->queue_vector = r;
	}
	return vscsi_restart(s);
}

void vscsi_lun_bytes(uint8_t out[8], uint16_t target, uint16_t lun)
{
	memset(out, 0, 8);
	out[0] = 1;
	out[1] = (uint8_t)target;
	out[2] = 0x40 | ((lun >> 8) & 0x3f);
	out[3] = lun & 0xff;
}

int vscsi_submit(struct vscsi *s, struct vscsi_req *r)
{
	struct virtq_buf *bufs = s->scratch;
	unsigned int nout = 1, nin = 1;
	int n;

	r->hdr = (struct virtio_scsi_cmd_req){.tag = r->tag = ++s->next_tag};
	if (r->lun_raw)
		memcpy(r->hdr.lun, r->lun_raw, 8);
	else
		vscsi_lun_bytes(r->hdr.lun, r->target, r->lun);
	memcpy(r->hdr.cdb, r->cdb, VIRTIO_SCSI_CDB_SIZE);
	memset(&r->resp, 0, sizeof(r->resp));
	r->resp.response = VSCSI_S_PENDING;
	r->written = 0;
	bufs[0] = (struct virtq_buf){&r->hdr, sizeof(r->hdr)};
	n = virtq_split(bufs + nout, s->max_segs, r->out, r->out_len, r->seg);
	if (n < 0)
		return n;
	nout += n;
	bufs[nout] = (struct virtq_buf){&r->resp, sizeof(r->resp)};
	n = virtq_split(bufs + nout + 1, s->max_segs - (nout - 1), r->in, r->in_len, r->seg);
	if (n < 0)
		return n;
	nin += n;
	return virtq_add(&s->vq, bufs, nout, nin, r);
}

void vscsi_kick(struct vscsi *s)
{
	virtq_kick(&s->vq);
}

struct vscsi_req *vscsi_reap(struct vscsi *s)
{
	uint32_t len;
	struct vscsi_req *r = virtq_get(&s->vq, &len);

	if (r)
		r->written = len;
	return r;
}

struct vscsi_req *vscsi_wait(struct vscsi *s, uint64_t timeout_tsc)
{
	struct vscsi_req *r;

	vscsi_kick(s);
	while (!(r = vscsi_reap(s))) {
		int e = virtio_wait_used(&s->vd, &s->vq, s->opts.irq, timeout_tsc, &s->irq_waits);
		if (e) {
			s->error = e;
			return NULL;
		}
	}
	return r;
}

int vscsi_result(const struct vscsi_req *r)
{
	if (r->resp.response == VIRTIO_SCSI_S_OK && r->resp.status == SCSI_GOOD)
		return 0;
	return VSCSI_RESULT(r->resp.response, r->resp.status);
}

bool vscsi_sense(const struct vscsi_req *r, struct vscsi_sense *out)
{
	const uint8_t *p = r->resp.sense;
	uint32_t len = r->resp.sense_len;

	*out = (struct vscsi_sense){0};
	if (len > VIRTIO_SCSI_SENSE_SIZE)
		len = VIRTIO_SCSI_SENSE_SIZE;
	if (len < 1)
		return false;
	switch (p[0] & 0x7f) {
	case 0x70:
	case 0x71: /* fixed: key in byte 2, ASC/ASCQ in 12/13 */
		if (len < 3)
			return false;
		out->key = p[2] & 0xf;
		if (len >= 14) {
			out->asc = p[12];
			out->ascq = p[13];
		}
		return true;
	case 0x72:
	case 0x73: /* descriptor: key, ASC, ASCQ in bytes 1..3 */
		if (len < 4)
			return false;
		out->key = p[1] & 0xf;
		out->asc = p[2];
		out->ascq = p[3];
		return true;
	default:
		return false;
	}
}

bool vscsi_check(const struct vscsi_req *r, int result, uint8_t key, uint8_t asc, int ascq)
{
	struct vscsi_sense sn;

	if (result != VSCSI_RESULT(VIRTIO_SCSI_S_OK, SCSI_CHECK_CONDITION) || !vscsi_sense(r, &sn))
		return false;
	return sn.key == key && sn.asc == asc && (ascq < 0 || sn.ascq == ascq);
}

static void put_be(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, unsigned int bytes)
{
	uint64_t v = 0;

	for (unsigned int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

void vscsi_prep_rw(struct vscsi_req *r, uint16_t lun, bool write, unsigned int cdb_len,
		   uint64_t lba, uint32_t nblocks, void *buf, uint32_t len)
{
	*r = (struct vscsi_req){.lun = lun};
	if (cdb_len == 16) {
		r->cdb[0] = write ? SCSI_WRITE16 : SCSI_READ16;
		put_be(r->cdb + 2, lba, 8);
		put_be(r->cdb + 10, nblocks, 4);
	} else {
		r->cdb[0] = write ? SCSI_WRITE10 : SCSI_READ10;
		put_be(r->cdb + 2, lba, 4);
		put_be(r->cdb + 7, nblocks, 2);
	}
	if (write) {
		r->out = buf;
		r->out_len = len;
	} else {
		r->in = buf;
		r->in_len = len;
	}
}

int vscsi_do(struct vscsi *s, struct vscsi_req *r)
{
	int e = vscsi_submit(s, r);

	if (e)
		return e;
	struct vscsi_req *done = vscsi_wait(s, tsc_ms(VSCSI_TIMEOUT_MS));
	if (!done)
		return s->error;
	return done == r ? vscsi_result(r) : -EPROTO;
}

/* s->sync for @cdb (@n bytes) to @lun, data-in @in of @in_len bytes. */
static int sync_in(struct vscsi *s, uint16_t lun, const uint8_t *cdb, unsigned int n, void *in,
		   uint32_t in_len)
{
	struct vscsi_req *r = &s->sync;

	*r = (struct vscsi_req){.lun = lun, .in = in, .in_len = in_len};
	memcpy(r->cdb, cdb, n);
	return vscsi_do(s, r);
}

int scsi_test_unit_ready(struct vscsi *s, uint16_t lun)
{
	static const uint8_t cdb[6] = {SCSI_TEST_UNIT_READY};
	struct vscsi_sense sn;
	int e = sync_in(s, lun, cdb, sizeof(cdb), NULL, 0);

	/* A unit attention (after power on or a reset) is reported once. */
	if (e == VSCSI_RESULT(VIRTIO_SCSI_S_OK, SCSI_CHECK_CONDITION) &&
	    vscsi_sense(&s->sync, &sn) && sn.key == SCSI_SENSE_UNIT_ATTENTION)
		e = sync_in(s, lun, cdb, sizeof(cdb), NULL, 0);
	return e;
}

int scsi_inquiry(struct vscsi *s, uint16_t lun, bool evpd, uint8_t page, void *buf, uint16_t len)
{
	uint8_t cdb[6] = {SCSI_INQUIRY, evpd, page};

	put_be(cdb + 3, len, 2);
	return sync_in(s, lun, cdb, sizeof(cdb), buf, len);
}

int scsi_read_capacity10(struct vscsi *s, uint16_t lun, uint32_t *last_lba, uint32_t *block_len)
{
	static const uint8_t cdb[10] = {SCSI_READ_CAPACITY10};
	uint8_t p[8] = {0};
	int e = sync_in(s, lun, cdb, sizeof(cdb), p, sizeof(p));

	*last_lba = get_be(p, 4);
	*block_len = get_be(p + 4, 4);
	return e;
}

int scsi_read_capacity16(struct vscsi *s, uint16_t lun, uint64_t *last_lba, uint32_t *block_len,
			 uint8_t *raw, uint32_t len)
{
	uint8_t cdb[16] = {SCSI_SERVICE_IN16, SCSI_SAI_READ_CAP16};
	uint8_t p[32] = {0};
	int e;

	put_be(cdb + 10, sizeof(p), 4);
	e = sync_in(s, lun, cdb, sizeof(cdb), p, sizeof(p));
	*last_lba = get_be(p, 8);
	*block_len = get_be(p + 8, 4);
	if (raw)
		memcpy(raw, p, len < sizeof(p) ? len : sizeof(p));
	return e;
}

int scsi_report_luns(struct vscsi *s, uint16_t lun, void *buf, uint32_t len)
{
	uint8_t cdb[12] = {SCSI_REPORT_LUNS};

	put_be(cdb + 6, len, 4);
	return sync_in(s, lun, cdb, sizeof(cdb), buf, len);
}

int scsi_rw(struct vscsi *s, uint16_t lun, bool write, unsigned int cdb_len, uint64_t lba,
	    uint32_t nblocks, void *buf, uint32_t len)
{
	vscsi_prep_rw(&s->sync, lun, write, cdb_len, lba, nblocks, buf, len);
	return vscsi_do(s, &s->sync);
}

int scsi_sync_cache(struct vscsi *s, uint16_t lun)
{
	static const uint8_t cdb[10] = {SCSI_SYNC_CACHE10};

	return sync_in(s, lun, cdb, sizeof(cdb), NULL, 0);
}

/* One polled request on the control queue. */
int vscsi_ctrl_raw(struct vscsi *s, const void *req, uint32_t req_len, void *resp,
		   uint32_t resp_len, uint32_t *written)
{
	struct virtq_buf b[2] = {{req, req_len}, {resp, resp_len}};
	uint64_t dummy = 0;
	void *done;
	int e;

	*written = 0;
	e = virtq_add(&s->ctrlq, b, 1, resp_len ? 1 : 0, b);
	if (e)
		return e;
	virtq_kick(&s->ctrlq);
	while (!(done = virtq_get(&s->ctrlq, written))) {
		e = virtio_wait_used(&s->vd, &s->ctrlq, false, tsc_ms(VSCSI_TIMEOUT_MS), &dummy);
		if (e)
			return e;
	}
	return done == b ? 0 : -EPROTO;
}

int vscsi_tmf(struct vscsi *s, uint32_t subtype, uint16_t target, uint16_t lun, uint64_t tag,
	      uint8_t *response)
{
	struct virtio_scsi_ctrl_tmf_req req = {
	    .type = VIRTIO_SCSI_T_TMF, .subtype = subtype, .tag = tag};
	struct virtio_scsi_ctrl_tmf_resp resp = {VSCSI_S_PENDING};
	uint32_t written;
	int e;

	vscsi_lun_bytes(req.lun, target, lun);
	e = vscsi_ctrl_raw(s, &req, sizeof(req), &resp, sizeof(resp), &written);
	*response = resp.response;
	return e;
}

bool vscsi_event(struct vscsi *s, struct virtio_scsi_event *e)
{
	struct virtio_scsi_event *b = virtq_get(&s->eventq, NULL);

	if (!b)
		return false;
	*e = *b;
	s->events++;
	struct virtq_buf buf = {b, sizeof(*b)};
	if (!virtq_add(&s->eventq, &buf, 0, 1, b))
		virtq_kick(&s->eventq);
	return true;
}

void vscsi_print(const struct vscsi *s, const char *name)
{
	const struct pci_dev *d = s->vd.pci;

	printf("%s: %02x:%02x.%x virtio-scsi num_queues %u seg_max %u max_sectors %u cmd_per_lun %u"
	       " max_target %u max_lun %u queue %u%s%s completion %s\n",
	       name, d->bus, d->dev, d->fn, s->num_queues, s->seg_max, s->max_sectors,
	       s->cmd_per_lun, s->max_target, s->max_lun, s->vq.size,
	       s->vq.indirect ? " indirect" : "", s->vq.event_idx ? " event_idx" : "",
	       s->opts.irq ? "irq" : "poll");
}
