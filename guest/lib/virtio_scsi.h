/* SPDX-License-Identifier: MIT */
/*
 * virtio-scsi driver (virtio 1.x: control queue 0, event queue 1, one
 * request queue 2) over virtio.h, and the SCSI commands our guests send.
 *
 * Requests are asynchronous, like virtio_blk.h: fill a struct vscsi_req
 * (vscsi_prep_* or by hand), vscsi_submit it (any number, up to the
 * queue's room), vscsi_kick once, collect completions with vscsi_reap
 * (non-blocking) or vscsi_wait. The request struct holds what the device
 * reads and writes besides the data (the virtio_scsi_cmd_req header and the
 * response with its 96 bytes of sense): it must stay put, untouched, until
 * it is returned. A chain is: header, data-out buffers (device-readable),
 * response, data-in buffers (device-writable).
 *
 * LUN addressing (virtio 1.x 5.6.6.1): lun[0] = 1, lun[1] = target,
 * lun[2..3] = 0x4000 | LUN (flat space addressing), lun[4..7] = 0.
 *
 * Completion: by polling the used ring (default) or by MSI-X interrupt
 * (opts.irq; request queue on MSI-X entry 1, config changes on entry 0).
 * The control and event queues are always polled.
 *
 * vscsi_open / vscsi_init run at CPL0 (PCI configuration); everything else
 * runs at either CPL, and belongs at CPL3 on our hosts. Not thread-safe.
 */
#ifndef GUEST_VIRTIO_SCSI_H
#define GUEST_VIRTIO_SCSI_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

#define VIRTIO_SCSI_CDB_SIZE   32
#define VIRTIO_SCSI_SENSE_SIZE 96

/* Response codes (virtio_scsi_cmd_resp.response, TMF and AN responses). */
#define VIRTIO_SCSI_S_OK		 0
#define VIRTIO_SCSI_S_OVERRUN		 1
#define VIRTIO_SCSI_S_ABORTED		 2
#define VIRTIO_SCSI_S_BAD_TARGET	 3
#define VIRTIO_SCSI_S_RESET		 4
#define VIRTIO_SCSI_S_BUSY		 5
#define VIRTIO_SCSI_S_TRANSPORT_FAILURE	 6
#define VIRTIO_SCSI_S_TARGET_FAILURE	 7
#define VIRTIO_SCSI_S_NEXUS_FAILURE	 8
#define VIRTIO_SCSI_S_FAILURE		 9
#define VIRTIO_SCSI_S_FUNCTION_SUCCEEDED 10
#define VIRTIO_SCSI_S_FUNCTION_REJECTED	 11
#define VIRTIO_SCSI_S_INCORRECT_LUN	 12
#define VSCSI_S_PENDING			 0xff /* response while in flight / not written */

/* Control queue request types and TMF subtypes. */
#define VIRTIO_SCSI_T_TMF		     0
#define VIRTIO_SCSI_T_AN_QUERY		     1
#define VIRTIO_SCSI_T_AN_SUBSCRIBE	     2
#define VIRTIO_SCSI_T_TMF_ABORT_TASK	     0
#define VIRTIO_SCSI_T_TMF_ABORT_TASK_SET     1
#define VIRTIO_SCSI_T_TMF_CLEAR_ACA	     2
#define VIRTIO_SCSI_T_TMF_CLEAR_TASK_SET     3
#define VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET    4
#define VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET 5
#define VIRTIO_SCSI_T_TMF_QUERY_TASK	     6
#define VIRTIO_SCSI_T_TMF_QUERY_TASK_SET     7

/* Events (event queue). */
#define VIRTIO_SCSI_T_NO_EVENT	    0
#define VIRTIO_SCSI_T_EVENTS_MISSED 0x80000000u

/* SAM status codes and sense keys we look at. */
#define SCSI_GOOD		   0x00
#define SCSI_CHECK_CONDITION	   0x02
#define SCSI_SENSE_NO_SENSE	   0x0
#define SCSI_SENSE_NOT_READY	   0x2
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT	   0x7

/* Opcodes. */
#define SCSI_TEST_UNIT_READY 0x00
#define SCSI_REQUEST_SENSE   0x03
#define SCSI_INQUIRY	     0x12
#define SCSI_MODE_SENSE6     0x1a
#define SCSI_READ_CAPACITY10 0x25
#define SCSI_READ10	     0x28
#define SCSI_WRITE10	     0x2a
#define SCSI_SYNC_CACHE10    0x35
#define SCSI_READ16	     0x88
#define SCSI_WRITE16	     0x8a
#define SCSI_SERVICE_IN16    0x9e /* service action 0x10: READ CAPACITY (16) */
#define SCSI_SAI_READ_CAP16  0x10
#define SCSI_REPORT_LUNS     0xa0

#define VSCSI_MAX_SEGS 256 /* data descriptors per request, at most */
#define VSCSI_EVENTS   8   /* event buffers kept posted */

/* The request header (device-readable), with the default cdb_size. */
struct virtio_scsi_cmd_req {
	uint8_t lun[8];
	uint64_t tag;
	uint8_t task_attr; /* 0: SIMPLE */
	uint8_t prio;
	uint8_t crn;
	uint8_t cdb[VIRTIO_SCSI_CDB_SIZE];
} __attribute__((packed));

/* The response (device-writable), with the default sense_size. */
struct virtio_scsi_cmd_resp {
	uint32_t sense_len;
	uint32_t resid;
	uint16_t status_qualifier;
	uint8_t status;
	uint8_t response;
	uint8_t sense[VIRTIO_SCSI_SENSE_SIZE];
} __attribute__((packed));

struct virtio_scsi_ctrl_tmf_req {
	uint32_t type; /* VIRTIO_SCSI_T_TMF */
	uint32_t subtype;
	uint8_t lun[8];
	uint64_t tag;
} __attribute__((packed));

struct virtio_scsi_ctrl_tmf_resp {
	uint8_t response;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_req {
	uint32_t type; /* AN_QUERY, AN_SUBSCRIBE */
	uint8_t lun[8];
	uint32_t event_requested;
} __attribute__((packed));

struct virtio_scsi_ctrl_an_resp {
	uint32_t event_actual;
	uint8_t response;
} __attribute__((packed));

struct virtio_scsi_event {
	uint32_t event;
	uint8_t lun[8];
	uint32_t reason;
} __attribute__((packed));

struct vscsi_req {
	/* The caller fills these. */
	uint16_t target, lun;
	const uint8_t *lun_raw; /* non-NULL: these 8 bytes go out instead of target/lun */
	uint8_t cdb[VIRTIO_SCSI_CDB_SIZE];
	const void *out; /* data-out (device-readable), out_len bytes */
	void *in;	 /* data-in (device-writable), in_len bytes */
	uint32_t out_len, in_len;
	uint32_t seg; /* split data into descriptors of at most this many bytes (0: no limit) */
	void *user;   /* for the caller */
	/* Results. */
	uint64_t tag;	  /* unique, given by vscsi_submit */
	uint32_t written; /* bytes the device says it wrote (response + data-in) */
	/* Read and written by the device; owned by the driver while in flight.
	 * resp.response is VSCSI_S_PENDING until the device writes it. */
	struct virtio_scsi_cmd_req hdr;
	struct virtio_scsi_cmd_resp resp;
};

/* Sense data, decoded (fixed or descriptor format). */
struct vscsi_sense {
	uint8_t key, asc, ascq;
};

struct vscsi {
	struct virtio_dev vd;
	struct virtq ctrlq, eventq, vq; /* queues 0, 1, 2 */
	struct virtio_opts opts;
	/* struct virtio_scsi_config */
	uint32_t num_queues, seg_max, max_sectors, cmd_per_lun, event_info_size;
	uint32_t sense_size, cdb_size, max_lun;
	uint16_t max_channel, max_target;
	uint16_t max_segs;  /* data descriptors per request we use */
	int queue_vector;   /* IDT vector of request queue interrupts (MSI-X entry 1), -1 if none */
	int error;	    /* last wait failure: -ETIMEDOUT, -EIO (NEEDS_RESET) */
	uint64_t irq_waits; /* statistics */
	uint64_t next_tag;
	uint64_t events;		      /* events received (vscsi_event) */
	struct virtio_scsi_event *event_bufs; /* VSCSI_EVENTS of them, posted */
	struct vscsi_req sync;		      /* the synchronous helpers' request */
	struct virtq_buf scratch[VSCSI_MAX_SEGS + 2];
};

/*
 * The usual start of a guest: pci_init, find virtio-scsi controller
 * @index, vscsi_init with options from the command line
 * (virtio_opts_from_cmdline), print what was found with @name. CPL0.
 * Returns 0 or -errno (and says why on the console).
 */
int vscsi_open(struct vscsi *s, unsigned int index, const char *name);

/*
 * Probe @d (CPL0), allocate interrupt vectors (config change on MSI-X
 * entry 0, request queue on entry 1), and start the device
 * (vscsi_restart). @o may be NULL (defaults). Returns 0 or -errno.
 */
int vscsi_init(struct vscsi *s, struct pci_dev *d, const struct virtio_opts *o);

/*
 * Reset the device and bring it up again: features, configuration (checks
 * sense_size and cdb_size are the defaults our structures assume, and says
 * -ENOTSUP otherwise), the three queues (same memory), event buffers
 * posted, DRIVER_OK, with s->opts as they are now. Requests in flight are
 * forgotten. Any CPL (MMIO only). Returns 0 or -errno.
 */
int vscsi_restart(struct vscsi *s);

/* The LUN field for @target/@lun (flat space addressing). */
void vscsi_lun_bytes(uint8_t out[8], uint16_t target, uint16_t lun);

/*
 * Queue @r: header (tag, LUN bytes, CDB) filled in, response marked
 * VSCSI_S_PENDING; no notification yet. Returns 0, -ENOSPC (queue full:
 * reap first), -E2BIG (more data segments than allowed), -EINVAL.
 */
int vscsi_submit(struct vscsi *s, struct vscsi_req *r);

/* Notify the device of submitted requests (if it wants notifications). */
void vscsi_kick(struct vscsi *s);

/* A completed request, or NULL. */
struct vscsi_req *vscsi_reap(struct vscsi *s);

/*
 * Kick, then wait for one completed request and return it. NULL if nothing
 * completed within @timeout_tsc ticks (s->error = -ETIMEDOUT) or the device
 * set NEEDS_RESET (s->error = -EIO).
 */
struct vscsi_req *vscsi_wait(struct vscsi *s, uint64_t timeout_tsc);

static inline unsigned int vscsi_inflight(const struct vscsi *s)
{
	return virtq_inflight(&s->vq);
}

/*
 * The outcome of a completed request: 0 if the response is OK and the
 * status GOOD, else VSCSI_RESULT(response, status) (> 0). Synchronous
 * helpers return this, or -errno when the transport failed.
 */
#define VSCSI_RESULT(response, status) ((int)(response) << 8 | (status))
#define VSCSI_RESPONSE(result)	       ((result) >> 8)
#define VSCSI_STATUS(result)	       ((result)&0xff)
int vscsi_result(const struct vscsi_req *r);

/* Decode @r's sense data (fixed 70h/71h or descriptor 72h/73h format,
 * within sense_len). Returns false (and zeroes *@out) if there is none. */
bool vscsi_sense(const struct vscsi_req *r, struct vscsi_sense *out);

/* Was @result a CHECK CONDITION with sense @key/@asc (@ascq, or any if
 * @ascq < 0)? */
bool vscsi_check(const struct vscsi_req *r, int result, uint8_t key, uint8_t asc, int ascq);

/*
 * Fill @r (zeroing it) for a READ or WRITE of @nblocks blocks at @lba with
 * a 10- or 16-byte CDB (@cdb_len), @len bytes of data at @buf. Lengths a
 * 10-byte CDB cannot carry go out truncated: the caller's business.
 */
void vscsi_prep_rw(struct vscsi_req *r, uint16_t lun, bool write, unsigned int cdb_len,
		   uint64_t lba, uint32_t nblocks, void *buf, uint32_t len);

/*
 * Synchronous: submit @r, wait (VSCSI_TIMEOUT_MS) and return
 * vscsi_result(r) or -errno. No other request may be in flight on the
 * request queue.
 */
#define VSCSI_TIMEOUT_MS 10000
int vscsi_do(struct vscsi *s, struct vscsi_req *r);

/*
 * SCSI commands to target 0, LUN @lun, through vscsi_do on s->sync (its
 * response and sense stay there for the caller to look at). Return
 * vscsi_result or -errno.
 */
int scsi_test_unit_ready(struct vscsi *s, uint16_t lun); /* retried once on UNIT ATTENTION */
int scsi_inquiry(struct vscsi *s, uint16_t lun, bool evpd, uint8_t page, void *buf, uint16_t len);
/* Last LBA and block length. */
int scsi_read_capacity10(struct vscsi *s, uint16_t lun, uint32_t *last_lba, uint32_t *block_len);
/* Also copies the first @len (<= 32) bytes of parameter data to @raw (may be NULL). */
int scsi_read_capacity16(struct vscsi *s, uint16_t lun, uint64_t *last_lba, uint32_t *block_len,
			 uint8_t *raw, uint32_t len);
/* REPORT LUNS (select report 0) into @buf. */
int scsi_report_luns(struct vscsi *s, uint16_t lun, void *buf, uint32_t len);
int scsi_rw(struct vscsi *s, uint16_t lun, bool write, unsigned int cdb_len, uint64_t lba,
	    uint32_t nblocks, void *buf, uint32_t len);
int scsi_sync_cache(struct vscsi *s, uint16_t lun);

static inline int scsi_read10(struct vscsi *s, uint16_t lun, uint32_t lba, uint16_t nblocks,
			      void *buf, uint32_t len)
{
	return scsi_rw(s, lun, false, 10, lba, nblocks, buf, len);
}

static inline int scsi_write10(struct vscsi *s, uint16_t lun, uint32_t lba, uint16_t nblocks,
			       const void *buf, uint32_t len)
{
	return scsi_rw(s, lun, true, 10, lba, nblocks, (void *)buf, len);
}

static inline int scsi_read16(struct vscsi *s, uint16_t lun, uint64_t lba, uint32_t nblocks,
			      void *buf, uint32_t len)
{
	return scsi_rw(s, lun, false, 16, lba, nblocks, buf, len);
}

static inline int scsi_write16(struct vscsi *s, uint16_t lun, uint64_t lba, uint32_t nblocks,
			       const void *buf, uint32_t len)
{
	return scsi_rw(s, lun, true, 16, lba, nblocks, (void *)buf, len);
}

/*
 * Control queue, synchronous and polled (VSCSI_TIMEOUT_MS): a task
 * management function @subtype on @target/@lun naming task @tag. Stores
 * the device's response (VIRTIO_SCSI_S_*) in *@response. Returns 0 or
 * -errno (-ETIMEDOUT, -EIO: NEEDS_RESET, -ENOSPC).
 */
int vscsi_tmf(struct vscsi *s, uint32_t subtype, uint16_t target, uint16_t lun, uint64_t tag,
	      uint8_t *response);

/*
 * Control queue, anything: @req (@req_len bytes, device-readable), then
 * @resp (@resp_len bytes, device-writable; @resp_len 0: none). *@written
 * gets the used length. For requests the spec does not define. Returns 0
 * or -errno as vscsi_tmf.
 */
int vscsi_ctrl_raw(struct vscsi *s, const void *req, uint32_t req_len, void *resp,
		   uint32_t resp_len, uint32_t *written);

/* The next event the device posted (copied to *@e; its buffer goes back
 * to the device), or false if none. */
bool vscsi_event(struct vscsi *s, struct virtio_scsi_event *e);

/* Print "NAME: ... num_queues seg_max max_sectors ... queue ..." for logs. */
void vscsi_print(const struct vscsi *s, const char *name);

#endif
