// SPDX-License-Identifier: MIT
/*
 * virtio-scsi: one controller, one target (0), LUNs backed by raw images:
 * `--scsi-disk path=FILE[,lun=N][,readonly=on][,serial=STR][,aio=..]
 * [,werror=..][,rerror=..]`, repeatable (one LUN each).
 *
 * Queues: 0 control (task management, async-notification queries), 1
 * event (never popped: there are no events to send without hotplug, so the
 * driver's buffers simply stay in the ring), 2 requests. Commands are
 * decoded by the SCSI disk emulation (devices/block/scsi_disk.c); what it
 * answers itself completes at once, and reads, writes, flushes and unmaps
 * go to the request engine (devices/block/engine.h), as virtio-blk's do:
 * one iothread for the controller, reads on an io_uring, the rest on the
 * thread pool, straight to and from guest RAM; held requests while paused
 * or under werror/rerror=stop. A held request keeps its whole result (SCSI
 * status, sense, residual), and a snapshot saves it with the CDB and tag:
 * every chain read back at restore must carry the ones saved.
 *
 * Task management (virtio spec 5.6.6.1): ABORT TASK, ABORT TASK SET,
 * CLEAR TASK SET, LOGICAL UNIT RESET and I_T NEXUS RESET mark the matching
 * requests aborted (pool work no worker took is cancelled); each returns
 * with response ABORTED once its host work is over, and the TMF completes
 * (FUNCTION COMPLETE) after the last of them. Resets also leave a unit
 * attention on the LUNs. QUERY TASK / QUERY TASK SET answer FUNCTION
 * SUCCEEDED when a matching request is in flight.
 */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_scsi.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/block/engine.h"
#include "devices/block/scsi.h"
#include "devices/virtio/virtio.h"
#include "vmm/vm.h"

#define VSCSI_QUEUE_SIZE   256
#define VSCSI_CTRL_Q	   0
#define VSCSI_EVENT_Q	   1
#define VSCSI_REQ_Q	   2
#define VSCSI_NQUEUES	   3
#define VSCSI_SEG_MAX	   (VSCSI_QUEUE_SIZE - 2)
#define VSCSI_SIZE_MAX	   256 /* largest cdb_size / sense_size a driver may set */
#define VSCSI_REQ_HDR	   offsetof(struct virtio_scsi_cmd_req, cdb)	/* + cdb_size */
#define VSCSI_RESP_HDR	   offsetof(struct virtio_scsi_cmd_resp, sense) /* + sense_size */
#define VSCSI_POOL_THREADS 16
#define VSCSI_CLASS	   0x010000 /* mass storage, SCSI */
#define VSCSI_CDB_SAVED	   32	    /* CDB bytes a snapshot keeps per request */
#define VSCSI_UNMAP_PARAM  (8 + 16 * (SCSI_MAX_UNMAP_DESC + 1))
#define VSCSI_SNAP_VERSION 1

#ifndef VIRTIO_SCSI_S_FUNCTION_COMPLETE
#define VIRTIO_SCSI_S_FUNCTION_COMPLETE 0 /* the spec's name; Linux's header lacks it */
#endif

struct vscsi_lun {
	struct scsi_lun s; /* emulation state: iothread (main while paused) */
	struct block_drive drive;
	char path[DISK_PATH_MAX];
	struct vm_block block;
};

/* The result a request returns with: a command's response, or a TMF's. */
struct vscsi_result {
	uint8_t response; /* VIRTIO_SCSI_S_* */
	uint8_t status;	  /* SAM status (commands) */
	uint8_t sense_len;
	uint8_t sense[SCSI_SENSE_LEN];
	uint32_t resid;
	uint32_t data; /* bytes written to the data-in buffer */
};

struct virtio_scsi;

enum vscsi_kind { VSCSI_CMD, VSCSI_TMF, VSCSI_AN };

/* A request popped and not yet returned. */
struct vscsi_req {
	struct block_req br; /* first: the engine's callbacks get it */
	struct virtio_scsi *vs;
	enum vscsi_kind kind;
	uint8_t abort_response;	      /* aborted: ABORTED, or RESET for a LUN or nexus reset */
	struct vscsi_req *tmf_waiter; /* ... and that TMF waits for it */
	unsigned tmf_pending;	      /* TMF: aborted requests not yet over */
	struct vscsi_lun *lun;	      /* NULL: a missing LUN, or a TMF */
	uint64_t tag;
	uint8_t cdb[VSCSI_CDB_SAVED];
	/* The host operation (commands only). */
	enum scsi_op op;
	uint64_t lba;
	uint32_t nblocks;
	bool fua;
	uint32_t param_len;
	struct iovec *iov; /* the data buffer: exactly the transfer, in iov_store */
	unsigned niov;
	uint64_t len;
	uint32_t resid; /* data buffer bytes beyond the transfer */
	/* What the host operation did (worker). */
	uint8_t status;
	struct scsi_sense sense;
	struct vscsi_result res; /* the result to return */
	struct iovec iov_store[];
};

struct virtio_scsi {
	struct block_engine eng; /* first: block_device_pause and the like take the device */
	struct virtio_dev vdev;
	char name[32];
	struct vscsi_lun *luns; /* ascending LUN numbers */
	uint16_t *lun_ids;	/* the same numbers, for REPORT LUNS */
	unsigned nluns;
	struct virtio_scsi_config config_ro; /* what the driver may not change */
	/* cdb_size, sense_size: written under vdev.lock (config_write), read
	 * by the iothread with atomics. */
	uint32_t cdb_size, sense_size;

	/* iothread (or main while the iothread is idle) */
	struct block_list waiting; /* TMFs waiting for aborted requests */
	struct scsi_cmd cmd;	   /* scratch for decoding */
};
_Static_assert(offsetof(struct virtio_scsi, eng) == 0,
	       "block_device_* take the device as its engine");

static struct vscsi_req *vscsi_of(const struct block_req *br)
{
	return (struct vscsi_req *)br;
}

/* ---- parsing ---- */

/*
 * The LUN @l addresses: 0 and *@lun (NULL if the target has no such LUN),
 * or -1 for another target (lun[0] must be 1, lun[1] the target 0, then
 * single-level LUN structure with flat or peripheral addressing).
 */
static int vscsi_lun_find(struct virtio_scsi *vs, const uint8_t l[8], struct vscsi_lun **lun)
{
	unsigned id;

	*lun = NULL;
	if (l[0] != 1 || l[1] != 0 || !vs->nluns)
		return -1;
	if ((l[2] & 0xc0) != 0x40 && (l[2] & 0xc0) != 0)
		return 0;
	if (l[4] | l[5] | l[6] | l[7])
		return 0;
	id = ((unsigned)(l[2] & 0x3f) << 8) | l[3];
	for (unsigned i = 0; i < vs->nluns; i++)
		if (vs->luns[i].s.lun == id)
			*lun = &vs->luns[i];
	return 0;
}

static void vscsi_free(struct block_req *br)
{
	free(vscsi_of(br));
}

static struct vscsi_req *vscsi_req_new(struct virtio_scsi *vs, struct vq_elem *elem)
{
	struct vscsi_req *r =
	    calloc(1, sizeof(*r) + (elem->out_num + elem->in_num) * sizeof(r->iov_store[0]));

	if (!r)
		return NULL;
	r->vs = vs;
	virtio_block_req_init(&r->br, &vs->eng, elem);
	r->iov = r->iov_store;
	return r;
}

/* ---- completion ---- */

static uint32_t vscsi_sense_size(struct virtio_scsi *vs)
{
	return __atomic_load_n(&vs->sense_size, __ATOMIC_RELAXED);
}

/*
 * Write r->res into @r's device-writable buffers; returns the bytes
 * written. The response header was checked at pop to fit. iothread.
 */
static uint32_t vscsi_put_result(struct block_req *br)
{
	struct vscsi_req *r = vscsi_of(br);
	const struct vscsi_result *res = &r->res;
	struct vq_elem *e = br->elem;
	struct virtio_scsi_cmd_resp h = {0};
	uint32_t ss, sl;

	if (r->kind == VSCSI_TMF) {
		iov_from_buf(e->in, e->in_num, 0, &res->response, 1);
		return 1;
	}
	if (r->kind == VSCSI_AN) {
		/* No asynchronous events are supported: none is granted. */
		struct virtio_scsi_ctrl_an_resp a = {.event_actual = 0,
						     .response = VIRTIO_SCSI_S_OK};

		iov_from_buf(e->in, e->in_num, 0, &a, sizeof(a));
		return sizeof(a);
	}
	ss = vscsi_sense_size(r->vs);
	sl = res->sense_len < ss ? res->sense_len : ss;
	h.sense_len = sl;
	h.resid = res->resid;
	h.status = res->status;
	h.response = res->response;
	memcpy(h.sense, res->sense, sl);
	/* The header and as much sense as the driver asked for; a driver
	 * sense_size beyond ours gets zeroes. */
	iov_from_buf(e->in, e->in_num, 0, &h, VSCSI_RESP_HDR + sl);
	if (ss > sl) {
		static const uint8_t zero[VSCSI_SIZE_MAX];

		iov_from_buf(e->in, e->in_num, VSCSI_RESP_HDR + sl, zero, ss - sl);
	}
	return (uint32_t)(VSCSI_RESP_HDR + ss) + res->data;
}

/* Return @r with @res (or hold it while the device is paused). */
static void vscsi_complete(struct vscsi_req *r, const struct vscsi_result *res)
{
	r->res = *res;
	block_req_complete(&r->br);
}

/* A response-only result (no SCSI status). */
static void vscsi_respond(struct vscsi_req *r, uint8_t response)
{
	struct vscsi_result res = {.response = response};

	vscsi_complete(r, &res);
}

static void vscsi_tmf_done(struct vscsi_req *t)
{
	block_list_del(&t->vs->waiting, &t->br);
	vscsi_respond(t, VIRTIO_SCSI_S_FUNCTION_COMPLETE);
}

/* An aborted request's host work is over: it returns ABORTED (RESET). */
static void vscsi_abort_done(struct vscsi_req *r)
{
	struct vscsi_req *t = r->tmf_waiter;

	vscsi_respond(r, r->abort_response);
	if (t && !--t->tmf_pending)
		vscsi_tmf_done(t);
}

/* A command's result with SAM @status (and @sense for CHECK CONDITION). */
static void vscsi_result_cmd(struct vscsi_result *res, uint8_t status,
			     const struct scsi_sense *sense, uint32_t data, uint32_t resid)
{
	memset(res, 0, sizeof(*res));
	res->response = VIRTIO_SCSI_S_OK;
	res->status = status;
	res->data = data;
	res->resid = resid;
	if (status == SCSI_STATUS_CHECK_CONDITION) {
		scsi_sense_build(sense, res->sense);
		res->sense_len = SCSI_SENSE_LEN;
	}
}

/*
 * @r's host work is over (the engine applied werror/rerror to br.error),
 * or it was aborted or cancelled: its result. iothread.
 */
static void vscsi_done(struct block_req *br)
{
	struct vscsi_req *r = vscsi_of(br);
	bool is_read = r->op == SCSI_OP_READ;
	uint32_t data = 0;

	if (br->aborted) {
		vscsi_abort_done(r);
		return;
	}
	if (br->cancelled) {
		/* A reset is waiting for it: it only needs to be retired. */
		struct scsi_sense sn = {SCSI_SENSE_ABORTED_COMMAND, 0, 0};

		vscsi_result_cmd(&r->res, SCSI_STATUS_CHECK_CONDITION, &sn, 0, r->resid);
		block_req_complete(br);
		return;
	}
	if (br->error) {
		r->status = SCSI_STATUS_CHECK_CONDITION;
		r->sense = scsi_sense_from_errno(br->error, is_read);
	} else if (br->ignored || br->uring) {
		r->status = SCSI_STATUS_GOOD;
	}
	if (r->status == SCSI_STATUS_GOOD && is_read)
		data = (uint32_t)r->len;
	vscsi_result_cmd(&r->res, r->status, &r->sense, data,
			 r->status == SCSI_STATUS_GOOD ? r->resid : r->resid + (uint32_t)r->len);
	block_req_complete(br);
}

/* ---- host work ---- */

static void vscsi_unmap(struct vscsi_req *r)
{
	struct scsi_unmap_desc descs[SCSI_MAX_UNMAP_DESC];
	uint8_t param[VSCSI_UNMAP_PARAM];
	size_t n = iov_to_buf(r->iov, r->niov, 0, param,
			      r->len < sizeof(param) ? (size_t)r->len : sizeof(param));
	int nd = scsi_unmap_parse(&r->lun->s, param, n, descs, &r->sense);

	if (nd < 0) {
		r->status = SCSI_STATUS_CHECK_CONDITION;
		return;
	}
	for (int i = 0; i < nd; i++) {
		/* A hint: a file system that cannot punch keeps the data. */
		int e = disk_punch(r->lun->drive.fd, descs[i].lba * SCSI_BLOCK,
				   (uint64_t)descs[i].nblocks * SCSI_BLOCK);

		if (e < 0 && e != -EOPNOTSUPP) {
			r->br.error = -e;
			return;
		}
	}
}

/* Worker thread: the blocking operation. Touches the data buffer only. */
static void vscsi_work(struct block_req *br)
{
	struct vscsi_req *r = vscsi_of(br);
	int fd = r->lun->drive.fd;
	int e = 0;

	r->status = SCSI_STATUS_GOOD;
	switch (r->op) {
	case SCSI_OP_READ:
	case SCSI_OP_WRITE:
		e = disk_rw_full(fd, r->iov, r->niov, r->lba * SCSI_BLOCK, r->op == SCSI_OP_WRITE);
		if (!e && r->op == SCSI_OP_WRITE && r->fua && fdatasync(fd) < 0)
			e = -errno;
		break;
	case SCSI_OP_FLUSH:
		if (!r->lun->s.readonly && fdatasync(fd) < 0)
			e = -errno;
		break;
	case SCSI_OP_UNMAP:
		vscsi_unmap(r);
		break;
	case SCSI_OP_DONE:
		break;
	}
	if (e)
		br->error = -e;
}

/* Start @r's host operation (op != DONE, buffers sliced). iothread. */
static void vscsi_start(struct vscsi_req *r)
{
	struct block_req *br = &r->br;

	br->drive = &r->lun->drive;
	br->is_read = r->op == SCSI_OP_READ;
	br->iov = r->iov;
	br->niov = r->niov;
	br->off = r->lba * SCSI_BLOCK;
	br->len = r->len;
	block_req_start(br);
}

/* ---- commands ---- */

/*
 * Decode @r's command (header already copied) and either answer it or
 * start it. Returns through vscsi_complete / vscsi_start. iothread; also
 * at resume for requests restored NEW or held FAILED (the iovecs are
 * sliced anew each time, the last attempt consumed them).
 */
static void vscsi_cmd_run(struct virtio_scsi *vs, struct vscsi_req *r, const uint8_t *cdb,
			  uint32_t cdb_len)
{
	struct vq_elem *e = r->br.elem;
	uint64_t req_hdr = VSCSI_REQ_HDR + __atomic_load_n(&vs->cdb_size, __ATOMIC_RELAXED);
	uint64_t resp_hdr = VSCSI_RESP_HDR + vscsi_sense_size(vs);
	uint64_t dout = e->out_len - req_hdr, din = e->in_len - resp_hdr;
	struct scsi_cmd *c = &vs->cmd;
	struct vscsi_result res;
	uint64_t xfer;

	if (dout && din) {
		/* Bidirectional commands need VIRTIO_SCSI_F_INOUT, not offered. */
		vscsi_respond(r, VIRTIO_SCSI_S_FAILURE);
		return;
	}
	scsi_disk_command(r->lun ? &r->lun->s : NULL, vs->lun_ids, vs->nluns, cdb, cdb_len, din, c);
	r->op = c->op;
	if (c->op == SCSI_OP_DONE) {
		uint32_t n = 0;

		if (c->status == SCSI_STATUS_GOOD && c->data_len)
			n = (uint32_t)iov_from_buf(e->in, e->in_num, resp_hdr, c->data,
						   c->data_len);
		/* Nothing of a data-out buffer was transferred either (a
		 * write refused by the emulation). */
		vscsi_result_cmd(&res, c->status, &c->sense, n, (uint32_t)(din + dout - n));
		vscsi_complete(r, &res);
		return;
	}
	r->lba = c->lba;
	r->nblocks = c->nblocks;
	r->fua = c->fua;
	r->param_len = c->param_len;
	switch (c->op) {
	case SCSI_OP_READ:
	case SCSI_OP_WRITE:
		xfer = (uint64_t)c->nblocks * SCSI_BLOCK;
		/* The initiator's buffer must hold the transfer, in the
		 * command's direction. */
		if ((c->op == SCSI_OP_READ ? din : dout) < xfer ||
		    (c->op == SCSI_OP_READ ? dout : din) != 0) {
			vscsi_respond(r, VIRTIO_SCSI_S_OVERRUN);
			return;
		}
		if (!xfer) {
			vscsi_result_cmd(&res, SCSI_STATUS_GOOD, NULL, 0, (uint32_t)(din + dout));
			vscsi_complete(r, &res);
			return;
		}
		r->len = xfer;
		r->resid = (uint32_t)((c->op == SCSI_OP_READ ? din : dout) - xfer);
		if (c->op == SCSI_OP_READ)
			r->niov = iov_slice(e->in, e->in_num, resp_hdr, xfer, r->iov);
		else
			r->niov = iov_slice(e->out, e->out_num, req_hdr, xfer, r->iov);
		break;
	case SCSI_OP_UNMAP:
		r->len = dout < c->param_len ? dout : c->param_len;
		r->resid = (uint32_t)(dout - r->len);
		r->niov = iov_slice(e->out, e->out_num, req_hdr, r->len, r->iov);
		break;
	default:
		r->len = 0;
		r->niov = 0;
		r->resid = (uint32_t)(din + dout);
		break;
	}
	vscsi_start(r);
}

/*
 * Read @r's request header and run it. False if the chain is not a
 * virtio-scsi command at all (@why set): the driver broke the protocol.
 */
static bool vscsi_cmd_parse(struct virtio_scsi *vs, struct vscsi_req *r, bool run, const char **why)
{
	struct vq_elem *e = r->br.elem;
	uint32_t cdb_size = __atomic_load_n(&vs->cdb_size, __ATOMIC_RELAXED);
	uint8_t hdr[VSCSI_REQ_HDR + VSCSI_SIZE_MAX];
	struct virtio_scsi_cmd_req *h = (void *)hdr;

	if (e->out_len < VSCSI_REQ_HDR + cdb_size) {
		*why = "command request shorter than its header";
		return false;
	}
	if (e->in_len < VSCSI_RESP_HDR + vscsi_sense_size(vs)) {
		*why = "command without room for its response";
		return false;
	}
	iov_to_buf(e->out, e->out_num, 0, hdr, VSCSI_REQ_HDR + cdb_size);
	r->tag = h->tag;
	memset(r->cdb, 0, sizeof(r->cdb));
	memcpy(r->cdb, h->cdb, cdb_size < VSCSI_CDB_SAVED ? cdb_size : VSCSI_CDB_SAVED);
	if (vscsi_lun_find(vs, h->lun, &r->lun) < 0) {
		if (run)
			vscsi_respond(r, VIRTIO_SCSI_S_BAD_TARGET);
		return true;
	}
	if (run)
		vscsi_cmd_run(vs, r, h->cdb, cdb_size);
	return true;
}

/* ---- task management ---- */

/* Does @r match a TMF's scope? (@tag: ABORT/QUERY TASK) */
static bool vscsi_tmf_match(const struct vscsi_req *r, const struct vscsi_lun *lun, bool all_luns,
			    bool by_tag, uint64_t tag)
{
	if (r->kind != VSCSI_CMD || r->br.aborted)
		return false;
	if (!all_luns && r->lun != lun)
		return false;
	return !by_tag || r->tag == tag;
}

static void vscsi_tmf(struct virtio_scsi *vs, struct vscsi_req *t,
		      const struct virtio_scsi_ctrl_tmf_req *q)
{
	uint8_t response = VIRTIO_SCSI_S_FUNCTION_COMPLETE;
	bool by_tag = false, all = false, reset = false, query = false;
	struct vscsi_lun *lun;
	struct block_req *br, *next;

	t->kind = VSCSI_TMF;
	if (vscsi_lun_find(vs, q->lun, &lun) < 0) {
		vscsi_respond(t, VIRTIO_SCSI_S_BAD_TARGET);
		return;
	}
	switch (q->subtype) {
	case VIRTIO_SCSI_T_TMF_ABORT_TASK:
		by_tag = true;
		break;
	case VIRTIO_SCSI_T_TMF_ABORT_TASK_SET:
	case VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET:
		break;
	case VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET:
		reset = true;
		break;
	case VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET:
		all = reset = true;
		break;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK:
		by_tag = query = true;
		break;
	case VIRTIO_SCSI_T_TMF_QUERY_TASK_SET:
		query = true;
		break;
	case VIRTIO_SCSI_T_TMF_CLEAR_ACA: /* NACA is never accepted: no ACA */
	default:
		vscsi_respond(t, VIRTIO_SCSI_S_FUNCTION_REJECTED);
		return;
	}
	if (!lun && !all) {
		vscsi_respond(t, VIRTIO_SCSI_S_INCORRECT_LUN);
		return;
	}
	for (br = vs->eng.submitted.head; br; br = next) {
		struct vscsi_req *r = vscsi_of(br);

		next = br->next;
		if (!vscsi_tmf_match(r, lun, all, by_tag, q->tag))
			continue;
		if (query) {
			response = VIRTIO_SCSI_S_FUNCTION_SUCCEEDED;
			break;
		}
		/* virtio 5.6.6.1.1: ABORTED for the abort TMFs, RESET for resets. */
		r->abort_response = reset ? VIRTIO_SCSI_S_RESET : VIRTIO_SCSI_S_ABORTED;
		r->tmf_waiter = t;
		t->tmf_pending++;
		block_req_abort(br);
	}
	if (reset)
		for (unsigned i = 0; i < vs->nluns; i++)
			if (all || &vs->luns[i] == lun)
				vs->luns[i].s.ua = SCSI_UA_RESET;
	if (t->tmf_pending) {
		t->br.state = BLOCK_DEVICE;
		block_list_add(&vs->waiting, &t->br);
		return;
	}
	vscsi_respond(t, response);
}

/* A control-queue request; false (@why) if malformed. iothread. */
static bool vscsi_ctrl(struct virtio_scsi *vs, struct vscsi_req *r, const char **why)
{
	struct vq_elem *e = r->br.elem;
	uint32_t type;

	if (e->out_len < sizeof(type)) {
		*why = "control request without a type";
		return false;
	}
	iov_to_buf(e->out, e->out_num, 0, &type, sizeof(type));
	if (type == VIRTIO_SCSI_T_TMF) {
		struct virtio_scsi_ctrl_tmf_req q;

		if (e->out_len < sizeof(q) || e->in_len < 1) {
			*why = "task management request or response too short";
			return false;
		}
		iov_to_buf(e->out, e->out_num, 0, &q, sizeof(q));
		vscsi_tmf(vs, r, &q);
		return true;
	}
	if (type == VIRTIO_SCSI_T_AN_QUERY || type == VIRTIO_SCSI_T_AN_SUBSCRIBE) {
		if (e->out_len < sizeof(struct virtio_scsi_ctrl_an_req) ||
		    e->in_len < sizeof(struct virtio_scsi_ctrl_an_resp)) {
			*why = "async notification request or response too short";
			return false;
		}
		r->kind = VSCSI_AN;
		block_req_complete(&r->br);
		return true;
	}
	*why = "unknown control request type";
	return false;
}

static void vscsi_queue_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtio_scsi *vs = vdev->opaque;
	struct vq_elem *elem;

	if (q == VSCSI_EVENT_Q)
		return; /* buffers for events: kept in the ring until there is one */
	while (virtio_pop(vdev, q, &elem) > 0) {
		struct vscsi_req *r = vscsi_req_new(vs, elem);
		const char *why = "out of host memory";
		bool ok = false;

		if (r)
			ok = q == VSCSI_CTRL_Q ? vscsi_ctrl(vs, r, &why)
					       : vscsi_cmd_parse(vs, r, true, &why);
		if (!ok) {
			free(r);
			virtio_error(vdev, "queue %u: %s", q, why);
			virtio_push(vdev, q, elem, 0); /* discarded: the device is broken */
			break;
		}
	}
	block_engine_submit(&vs->eng);
}

/*
 * The driver may set cdb_size and sense_size (up to VSCSI_SIZE_MAX; a
 * larger value is ignored); everything else in the config is read-only.
 * vdev.lock held.
 */
static void vscsi_config_write(struct virtio_dev *vdev, uint32_t off, uint32_t len)
{
	struct virtio_scsi *vs = vdev->opaque;
	struct virtio_scsi_config c;

	(void)off;
	(void)len;
	memcpy(&c, vdev->config, sizeof(c));
	if (c.cdb_size > VSCSI_SIZE_MAX)
		c.cdb_size = vs->cdb_size;
	if (c.sense_size > VSCSI_SIZE_MAX)
		c.sense_size = vs->sense_size;
	vs->config_ro.cdb_size = c.cdb_size;
	vs->config_ro.sense_size = c.sense_size;
	memcpy(vdev->config, &vs->config_ro, sizeof(c));
	__atomic_store_n(&vs->cdb_size, c.cdb_size, __ATOMIC_RELAXED);
	__atomic_store_n(&vs->sense_size, c.sense_size, __ATOMIC_RELAXED);
}

static void vscsi_reset(struct virtio_dev *vdev)
{
	struct virtio_scsi *vs = vdev->opaque;

	/* Sizes back to their defaults (lock held). No unit attention is set
	 * (QEMU sets one): a driver that just initialised the device need not
	 * expect one, and held requests were dropped, not cancelled. */
	vs->config_ro.cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
	vs->config_ro.sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
	memcpy(vdev->config, &vs->config_ro, sizeof(vs->config_ro));
	__atomic_store_n(&vs->cdb_size, VIRTIO_SCSI_CDB_DEFAULT_SIZE, __ATOMIC_RELAXED);
	__atomic_store_n(&vs->sense_size, VIRTIO_SCSI_SENSE_DEFAULT_SIZE, __ATOMIC_RELAXED);
}

static const struct virtio_dev_ops vscsi_virtio_ops = {
    .queue_notify = vscsi_queue_notify,
    .reset = vscsi_reset,
    .config_write = vscsi_config_write,
    .drop_held = virtio_block_drop_held,
};

/* ---- pause, resume ---- */

/* Run a held command again from its chain. iothread. */
static bool vscsi_restart(struct block_req *br, const char **why)
{
	struct vscsi_req *r = vscsi_of(br);

	r->tmf_waiter = NULL;
	return vscsi_cmd_parse(r->vs, r, true, why);
}

static const struct block_engine_ops vscsi_engine_ops = {
    .work = vscsi_work,
    .done = vscsi_done,
    .put_result = vscsi_put_result,
    .restart = vscsi_restart,
    .free = vscsi_free,
};

/* ---- realize, exit ---- */

static void vscsi_free_dev(struct virtio_scsi *vs)
{
	block_engine_free(&vs->eng);
	for (unsigned i = 0; i < vs->nluns; i++)
		disk_image_close(vs->luns[i].drive.fd, vs->luns[i].s.readonly, vs->luns[i].block.id,
				 vs->luns[i].path);
	free(vs->luns);
	free(vs->lun_ids);
	free(vs);
}

static int vscsi_lun_cmp(const void *a, const void *b)
{
	const struct vscsi_lun *x = a, *y = b;

	return (int)x->s.lun - (int)y->s.lun;
}

/* Parse and open every --scsi-disk into vs->luns (sorted by LUN). */
static int vscsi_open_luns(struct virtio_scsi *vs, const struct vm_config *cfg, enum disk_aio *aio,
			   struct errbuf *err)
{
	unsigned n = cfg->nscsi_disks;
	struct disk_config *dc = calloc(n, sizeof(*dc));
	bool used[DISK_LUN_MAX + 1] = {false};
	int ret = 0;

	vs->luns = calloc(n, sizeof(vs->luns[0]));
	vs->lun_ids = calloc(n, sizeof(vs->lun_ids[0]));
	if (!dc || !vs->luns || !vs->lun_ids) {
		free(dc);
		return err_set(err, ENOMEM, "out of memory");
	}
	*aio = DISK_AIO_AUTO;
	/* Explicit LUNs first, so that a default never takes one. */
	for (unsigned i = 0; i < n; i++) {
		ret = scsi_disk_config_parse(cfg->scsi_disks[i], &dc[i], err);
		if (ret < 0)
			goto out;
		if (dc[i].lun < 0)
			continue;
		if (used[dc[i].lun]) {
			ret = err_set(err, EINVAL, "--scsi-disk '%s': lun %d is already taken",
				      cfg->scsi_disks[i], dc[i].lun);
			goto out;
		}
		used[dc[i].lun] = true;
	}
	for (unsigned i = 0; i < n; i++) {
		struct vscsi_lun *l = &vs->luns[i];
		uint64_t size;
		unsigned id;

		if (dc[i].lun >= 0) {
			id = (unsigned)dc[i].lun;
		} else {
			for (id = 0; used[id]; id++)
				;
			used[id] = true;
		}
		l->drive.fd = -1;
		vs->nluns = i + 1;
		ret = disk_image_open(dc[i].path, dc[i].readonly, &l->drive.fd, &size, err);
		if (ret < 0)
			goto out;
		snprintf(l->path, sizeof(l->path), "%s", dc[i].path);
		l->s.lun = (uint16_t)id;
		l->s.nblocks = size / SCSI_BLOCK;
		l->s.readonly = dc[i].readonly;
		l->s.unmap = !dc[i].readonly;
		l->s.ua = SCSI_UA_NONE;
		memcpy(l->s.serial, dc[i].serial, strlen(dc[i].serial) + 1);
		if (!l->s.serial[0])
			snprintf(l->s.serial, sizeof(l->s.serial), "kvmini-lun%u", id);
		l->drive.readonly = dc[i].readonly;
		l->drive.werror = dc[i].werror;
		l->drive.rerror = dc[i].rerror;
		l->drive.delay_ms = dc[i].delay_ms;
		snprintf(l->block.id, sizeof(l->block.id), "%.16s-lun%u", vs->name, id);
		l->block.readonly = dc[i].readonly;
		l->block.io_status = "ok";
		/* One ring for the controller: threads if any LUN asks. */
		if (dc[i].aio == DISK_AIO_THREADS || *aio == DISK_AIO_THREADS)
			*aio = DISK_AIO_THREADS;
		else if (dc[i].aio == DISK_AIO_IO_URING)
			*aio = DISK_AIO_IO_URING;
	}
	qsort(vs->luns, vs->nluns, sizeof(vs->luns[0]), vscsi_lun_cmp);
	for (unsigned i = 0; i < vs->nluns; i++) {
		/* Only now: sorting moved the paths. */
		vs->luns[i].block.path = vs->luns[i].path;
		vs->luns[i].drive.block = &vs->luns[i].block;
		vs->lun_ids[i] = vs->luns[i].s.lun;
	}
out:
	free(dc);
	return ret;
}

static int virtio_scsi_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct virtio_dev_params p;
	struct block_engine_params ep;
	struct block_env env;
	struct virtio_scsi *vs;
	enum disk_aio aio = DISK_AIO_AUTO;
	int ret;

	(void)opts;
	vs = calloc(1, sizeof(*vs));
	if (!vs)
		return err_set(err, ENOMEM, "out of memory");
	snprintf(vs->name, sizeof(vs->name), "virtio-scsi0");
	ret = vscsi_open_luns(vs, vm->cfg, &aio, err);
	if (ret < 0)
		goto fail;
	block_env_from_vm(&env, vm);
	ep = (struct block_engine_params){.name = vs->name,
					  .what = "--scsi-disk",
					  .env = &env,
					  .aio = aio,
					  .pool_threads = VSCSI_POOL_THREADS,
					  .uring_entries = VSCSI_QUEUE_SIZE,
					  .nqueues = VSCSI_NQUEUES,
					  .ops = &vscsi_engine_ops};
	ret = block_engine_init(&vs->eng, &ep, err);
	if (ret < 0)
		goto fail;

	vs->config_ro = (struct virtio_scsi_config){
	    .num_queues = 1,
	    .seg_max = VSCSI_SEG_MAX,
	    .max_sectors = SCSI_MAX_XFER,
	    .cmd_per_lun = VSCSI_QUEUE_SIZE,
	    .event_info_size = sizeof(struct virtio_scsi_event),
	    .sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE,
	    .cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE,
	    .max_channel = 0,
	    .max_target = 0,
	    .max_lun = DISK_LUN_MAX,
	};
	vs->cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
	vs->sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
	p = (struct virtio_dev_params){
	    .name = vs->name,
	    .device_id = VIRTIO_ID_SCSI,
	    .pci_class = VSCSI_CLASS,
	    .features = 0,
	    .nqueues = VSCSI_NQUEUES,
	    .queue_size = VSCSI_QUEUE_SIZE,
	    .config = &vs->config_ro,
	    .config_len = sizeof(vs->config_ro),
	    .ctx = vs->eng.ctx,
	    .ops = &vscsi_virtio_ops,
	    .opaque = vs,
	};
	ret = virtio_pci_init(&vs->vdev, vm, &p, err);
	if (ret < 0)
		goto fail;
	virtio_block_attach(&vs->eng, &vs->vdev);
	for (unsigned i = 0; i < vs->nluns; i++) {
		ret = block_drive_register(&vs->eng, &vs->luns[i].block);
		if (ret < 0) {
			err_set(err, -ret, "%s: too many block devices", vs->name);
			while (i--)
				block_drive_unregister(&vs->eng, &vs->luns[i].block);
			block_engine_stop(&vs->eng);
			virtio_pci_exit(&vs->vdev);
			goto fail;
		}
	}
	*state = vs;
	return 0;
fail:
	vscsi_free_dev(vs);
	return ret;
}

static void virtio_scsi_exit(void *state)
{
	struct virtio_scsi *vs = state;

	for (unsigned i = 0; i < vs->nluns; i++)
		block_drive_unregister(&vs->eng, &vs->luns[i].block);
	block_engine_stop(&vs->eng);
	virtio_pci_exit(&vs->vdev);
	vscsi_free_dev(vs);
}

/* ---- snapshots ---- */

/*
 * The section: struct vscsi_snap, nluns struct vscsi_lun_snap (ascending
 * LUNs), nrequests struct vscsi_req_snap (the held requests), then the
 * transport's state (virtio_pci_save).
 */
struct vscsi_snap {
	uint32_t version;
	uint32_t nluns;
	uint32_t nrequests;
	uint32_t cdb_size, sense_size;
	uint32_t reserved;
};

struct vscsi_lun_snap {
	uint64_t nblocks; /* must match the image now */
	uint16_t lun;
	uint8_t readonly;
	uint8_t ua;
	uint8_t io_status; /* 0 ok, 1 failed, 2 nospace */
	uint8_t reserved[3];
};

struct vscsi_req_snap {
	uint16_t queue, head; /* struct block_req_snap_hdr */
	uint8_t state;	      /* BLOCK_HELD_DONE, BLOCK_HELD_NEW or BLOCK_HELD_FAILED */
	uint8_t tmf;
	uint8_t response, status; /* BLOCK_HELD_DONE: the result */
	uint8_t sense_len;
	uint8_t reserved[7];
	uint32_t resid, data;
	uint8_t sense[SCSI_SENSE_LEN];
	uint8_t reserved2[6];
	uint8_t cdb[VSCSI_CDB_SAVED]; /* commands: must match the chain at restore */
	uint64_t tag;
};

static const char *const vscsi_io_status[] = {"ok", "failed", "nospace"};

static void vscsi_fill_snap(const struct block_req *br, void *rec)
{
	const struct vscsi_req *r = vscsi_of(br);
	struct vscsi_req_snap s = {.tmf = r->kind == VSCSI_TMF, .tag = r->tag};

	if (br->state == BLOCK_HELD_DONE) {
		s.response = r->res.response;
		s.status = r->res.status;
		s.sense_len = r->res.sense_len;
		s.resid = r->res.resid;
		s.data = r->res.data;
		memcpy(s.sense, r->res.sense, sizeof(s.sense));
	}
	memcpy(s.cdb, r->cdb, sizeof(s.cdb));
	memcpy(rec, &s, sizeof(s));
}

static int virtio_scsi_save(void *state, void *buf, size_t len)
{
	struct virtio_scsi *vs = state;
	struct vscsi_snap h = {.version = VSCSI_SNAP_VERSION, .nluns = vs->nluns};
	uint8_t *b = buf;
	size_t off;
	int n;

	if (!block_engine_idle(&vs->eng) || vs->waiting.n)
		return -EBUSY;
	h.nrequests = block_engine_nheld(&vs->eng);
	h.cdb_size = vs->cdb_size;
	h.sense_size = vs->sense_size;
	off = sizeof(h) + vs->nluns * sizeof(struct vscsi_lun_snap) +
	      h.nrequests * sizeof(struct vscsi_req_snap);
	if (len < off)
		return -ENOSPC;
	memcpy(b, &h, sizeof(h));
	for (unsigned i = 0; i < vs->nluns; i++) {
		const struct vscsi_lun *l = &vs->luns[i];
		struct vscsi_lun_snap s = {.nblocks = l->s.nblocks,
					   .lun = l->s.lun,
					   .readonly = l->s.readonly,
					   .ua = l->s.ua};

		for (uint8_t k = 0; k < ARRAY_SIZE(vscsi_io_status); k++)
			if (!strcmp(l->block.io_status, vscsi_io_status[k]))
				s.io_status = k;
		memcpy(b + sizeof(h) + i * sizeof(s), &s, sizeof(s));
	}
	block_engine_save_held(&vs->eng, b + sizeof(h) + vs->nluns * sizeof(struct vscsi_lun_snap),
			       sizeof(struct vscsi_req_snap), vscsi_fill_snap);
	n = virtio_pci_save(&vs->vdev, b + off, len - off, h.nrequests);
	if (n < 0)
		return n;
	return (int)(off + (size_t)n);
}

struct vscsi_load_ctx {
	struct virtio_scsi *vs;
	const struct vscsi_req_snap *reqs;
	uint32_t nreqs;
	struct block_list list;
};

/* Is @s a held request this device could have had? */
static int vscsi_req_snap_check(const struct vscsi_req_snap *s, char *why, size_t n)
{
	static const uint8_t zero[7];
	struct block_req_snap_hdr h = {s->queue, s->head, s->state};

	if (s->queue == VSCSI_EVENT_Q)
		return snprintf(why, n, "queue %u", s->queue), -EINVAL;
	if (block_req_snap_check(&h, VSCSI_NQUEUES, why, n) < 0)
		return -EINVAL;
	if (s->tmf > 1 || s->tmf != (s->queue == VSCSI_CTRL_Q))
		return snprintf(why, n, "task management flag %u on queue %u", s->tmf, s->queue),
		       -EINVAL;
	if (s->tmf && s->state != BLOCK_HELD_DONE)
		return snprintf(why, n, "a task management request that is not finished"), -EINVAL;
	if (s->sense_len > SCSI_SENSE_LEN || s->response > VIRTIO_SCSI_S_INCORRECT_LUN)
		return snprintf(why, n, "sense length %u, response %u", s->sense_len, s->response),
		       -EINVAL;
	if (memcmp(s->reserved, zero, sizeof(s->reserved)) ||
	    memcmp(s->reserved2, zero, sizeof(s->reserved2)))
		return snprintf(why, n, "reserved bytes are not zero"), -EINVAL;
	if (s->state != BLOCK_HELD_DONE &&
	    (s->response || s->status || s->sense_len || s->resid || s->data))
		return snprintf(why, n, "a result for a request that has none"), -EINVAL;
	return 0;
}

/* Each in-flight chain read back at load: it must be the request saved. */
static int vscsi_load_elem(void *opaque, struct vq_elem *elem, struct errbuf *err)
{
	struct vscsi_load_ctx *c = opaque;
	struct virtio_scsi *vs = c->vs;
	const struct vscsi_req_snap *s = NULL;
	const char *why = "out of host memory";
	struct vscsi_req *r;

	for (uint32_t i = 0; i < c->nreqs; i++)
		if (c->reqs[i].queue == elem->queue && c->reqs[i].head == elem->head)
			s = &c->reqs[i];
	if (!s)
		return err_set(err, EINVAL,
			       "%s: in-flight head %u of queue %u has no saved request", vs->name,
			       elem->head, elem->queue);
	r = vscsi_req_new(vs, elem);
	if (!r)
		return err_set(err, ENOMEM, "%s: out of host memory", vs->name);
	r->br.state = s->state;
	r->kind = s->tmf ? VSCSI_TMF : VSCSI_CMD;
	if (s->tmf) {
		uint32_t type = UINT32_MAX;

		if (elem->out_len >= sizeof(struct virtio_scsi_ctrl_tmf_req))
			iov_to_buf(elem->out, elem->out_num, 0, &type, sizeof(type));
		if (type != VIRTIO_SCSI_T_TMF || elem->in_len < 1) {
			free(r);
			return err_set(err, EINVAL,
				       "%s: in-flight control request at head %u is not a TMF",
				       vs->name, elem->head);
		}
	} else if (!vscsi_cmd_parse(vs, r, false, &why)) {
		free(r);
		return err_set(err, EINVAL, "%s: in-flight request at head %u: %s", vs->name,
			       elem->head, why);
	} else if (memcmp(r->cdb, s->cdb, sizeof(s->cdb)) || r->tag != s->tag) {
		free(r);
		return err_set(
		    err, EINVAL,
		    "%s: in-flight request at head %u: its CDB or tag in guest memory is "
		    "not the one saved",
		    vs->name, elem->head);
	}
	if (s->state == BLOCK_HELD_DONE) {
		r->res.response = s->response;
		r->res.status = s->status;
		r->res.sense_len = s->sense_len;
		r->res.resid = s->resid;
		r->res.data = s->data;
		memcpy(r->res.sense, s->sense, sizeof(s->sense));
	}
	block_list_add(&c->list, &r->br);
	return 0;
}

static int virtio_scsi_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct virtio_scsi *vs = state;
	struct vscsi_load_ctx c = {.vs = vs};
	const uint8_t *b = buf;
	const void *cfgp;
	struct vscsi_snap h;
	uint8_t ua[DISK_LUN_MAX + 1];
	uint8_t io[DISK_LUN_MAX + 1];
	char why[96];
	size_t off;
	int ret;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", vs->name, len);
	memcpy(&h, b, sizeof(h));
	if (h.version != VSCSI_SNAP_VERSION)
		return err_set(err, EINVAL, "%s: state version %u, kvmini reads %u", vs->name,
			       h.version, VSCSI_SNAP_VERSION);
	if (h.reserved)
		return err_set(err, EINVAL, "%s: reserved bytes are not zero", vs->name);
	if (h.nluns != vs->nluns)
		return err_set(
		    err, EINVAL,
		    "%s: the snapshot has %u LUNs, the command line gives %u --scsi-disk", vs->name,
		    h.nluns, vs->nluns);
	if (h.cdb_size > VSCSI_SIZE_MAX || h.sense_size > VSCSI_SIZE_MAX)
		return err_set(err, EINVAL, "%s: cdb_size %u / sense_size %u out of range",
			       vs->name, h.cdb_size, h.sense_size);
	if (h.nrequests > 2 * VSCSI_QUEUE_SIZE)
		return err_set(err, EINVAL, "%s: %u requests in flight (at most %u)", vs->name,
			       h.nrequests, 2 * VSCSI_QUEUE_SIZE);
	off = sizeof(h) + h.nluns * sizeof(struct vscsi_lun_snap) +
	      h.nrequests * sizeof(struct vscsi_req_snap);
	if (len < off)
		return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", vs->name, len);
	for (unsigned i = 0; i < vs->nluns; i++) {
		struct vscsi_lun_snap s;
		const struct vscsi_lun *l = &vs->luns[i];

		memcpy(&s, b + sizeof(h) + i * sizeof(s), sizeof(s));
		if (s.lun != l->s.lun)
			return err_set(err, EINVAL,
				       "%s: the snapshot has LUN %u where the command line has "
				       "LUN %u",
				       vs->name, s.lun, l->s.lun);
		if (s.nblocks != l->s.nblocks)
			return err_set(err, EINVAL,
				       "%s: LUN %u had %llu blocks, '%s' has %llu (not the same "
				       "image?)",
				       vs->name, s.lun, (unsigned long long)s.nblocks, l->path,
				       (unsigned long long)l->s.nblocks);
		if (s.readonly != l->s.readonly)
			return err_set(err, EINVAL,
				       "%s: LUN %u: readonly=%s in the snapshot, %s on the command "
				       "line",
				       vs->name, s.lun, s.readonly ? "on" : "off",
				       l->s.readonly ? "on" : "off");
		if (s.ua > SCSI_UA_RESET || s.io_status >= ARRAY_SIZE(vscsi_io_status) ||
		    s.reserved[0] | s.reserved[1] | s.reserved[2])
			return err_set(err, EINVAL, "%s: LUN %u: bad state", vs->name, s.lun);
		ua[i] = s.ua;
		io[i] = s.io_status;
	}
	c.reqs = (const void *)(b + sizeof(h) + h.nluns * sizeof(struct vscsi_lun_snap));
	c.nreqs = h.nrequests;
	for (uint32_t i = 0; i < h.nrequests; i++) {
		struct vscsi_req_snap s;

		memcpy(&s, &c.reqs[i], sizeof(s));
		if (vscsi_req_snap_check(&s, why, sizeof(why)) < 0)
			return err_set(err, EINVAL, "%s: saved request %u: %s", vs->name, i, why);
		for (uint32_t k = 0; k < i; k++)
			if (c.reqs[k].queue == s.queue && c.reqs[k].head == s.head)
				return err_set(err, EINVAL, "%s: saved request %u is there twice",
					       vs->name, i);
	}
	if (!block_engine_idle(&vs->eng) || block_engine_nheld(&vs->eng))
		return err_set(err, EBUSY, "%s: can only load into a fresh, paused device",
			       vs->name);
	/* The config bytes the transport will restore must agree, checked
	 * now: nothing may fail once virtio_pci_load applied its state. */
	cfgp = virtio_pci_snap_config(&vs->vdev, b + off, len - off);
	if (cfgp) {
		struct virtio_scsi_config want = vs->config_ro;

		want.cdb_size = h.cdb_size;
		want.sense_size = h.sense_size;
		if (memcmp(cfgp, &want, sizeof(want)))
			return err_set(err, EINVAL,
				       "%s: the saved device configuration is not this device's",
				       vs->name);
	}
	/* The chains are parsed with the saved sizes. */
	vs->cdb_size = h.cdb_size;
	vs->sense_size = h.sense_size;
	ret = virtio_pci_load(&vs->vdev, b + off, len - off, h.nrequests, vscsi_load_elem, &c, err);
	if (ret < 0) {
		vs->cdb_size = VIRTIO_SCSI_CDB_DEFAULT_SIZE;
		vs->sense_size = VIRTIO_SCSI_SENSE_DEFAULT_SIZE;
		while (c.list.head) {
			struct block_req *br = c.list.head;

			block_list_del(&c.list, br);
			free(br->elem);
			vscsi_free(br);
		}
		return ret;
	}
	vs->config_ro.cdb_size = h.cdb_size;
	vs->config_ro.sense_size = h.sense_size;
	for (unsigned i = 0; i < vs->nluns; i++) {
		vs->luns[i].s.ua = ua[i];
		vs->luns[i].block.io_status = vscsi_io_status[io[i]];
	}
	block_engine_set_held(&vs->eng, &c.list);
	return 0;
}

const struct device_ops virtio_scsi_ops = {
    .name = "virtio-scsi",
    .realize = virtio_scsi_realize,
    .save = virtio_scsi_save,
    .load = virtio_scsi_load,
    .pause = block_device_pause,
    .resume = block_device_resume,
    .exit = virtio_scsi_exit,
};
