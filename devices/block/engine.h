/* SPDX-License-Identifier: MIT */
/*
 * The request engine under every in-process disk device (virtio-blk,
 * virtio-scsi). A device parses a popped chain into its own request, which
 * embeds a struct block_req, and says how to run it (ops->work on a pool
 * worker, or an io_uring read the engine does itself) and how to write its
 * result (ops->put_result). The engine owns the rest:
 *
 *  - the iothread, its thread pool, the io_uring and the notify BH;
 *  - the request lists: SUBMITTED (host work in progress) and HELD (no host
 *    work: finished while paused, cancelled by a pause or restored from a
 *    snapshot, or failed under werror/rerror=stop);
 *  - werror/rerror: a failed host operation (its errno in r->error) is
 *    reported as BLOCK_IO_ERROR and stops (the request is held and retried
 *    at resume), is ignored (the guest is told it worked) or is reported to
 *    the guest, per the policy of the request's drive;
 *  - pause (quiesce: no pops, pool work not started is cancelled, host I/O
 *    in progress completes, every result is held), resume (held results
 *    returned, the rest started again, in pop order), a driver reset's drop
 *    of held requests, and exit;
 *  - the snapshot records of held requests: a request that had finished is
 *    saved with its result and returned with it at restore, never run twice.
 *
 * The engine knows no transport: it returns requests through struct
 * block_transport_ops (virtio-pci's is devices/virtio/virtio_block.c).
 *
 * Threads: the engine's functions run on its iothread unless said
 * otherwise. The HELD list is under the transport's lock; the rest is the
 * iothread's (the main thread's while the iothread is idle: realize, load).
 */
#ifndef KVMINI_BLOCK_ENGINE_H
#define KVMINI_BLOCK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "devices/block/block.h"

struct vq_elem;

/* Where a popped request is. The values are saved in snapshots. */
enum block_state {
	BLOCK_SUBMITTED = 0, /* host work in progress: on the submitted list */
	BLOCK_HELD_DONE = 1, /* finished while paused: its result is returned at resume */
	BLOCK_HELD_NEW = 2,  /* never ran (cancelled by a pause, or restored): started at resume */
	BLOCK_HELD_FAILED = 3, /* failed under werror/rerror=stop: retried at resume */
	BLOCK_DEVICE = 4,      /* kept by the device itself (a TMF waiting for aborted requests) */
};

/* One image with its error policies: a virtio-blk disk, a SCSI LUN. */
struct block_drive {
	int fd;
	bool readonly;
	enum disk_error_policy werror, rerror;
	uint32_t delay_ms;	/* a worker sleeps this long before each host I/O */
	struct vm_block *block; /* named in BLOCK_IO_ERROR reports */
};

struct block_engine;

/* The part of a device's request the engine owns (block_req_init). */
struct block_req {
	struct block_engine *eng;
	struct vq_elem *elem;		 /* the transport's: the engine only hands it back */
	uint16_t queue, head;		 /* where @elem came from */
	const struct block_drive *drive; /* host I/O and error policy; NULL: none */
	bool is_read;			 /* rerror applies (else werror); io_uring-able */
	bool aborted;			 /* the device cancelled it (TMF): no policy */
	/* Set by the engine before ops->done: */
	bool uring;	/* the host work was an io_uring read */
	bool cancelled; /* cancelled before a worker took it (and not held) */
	bool ignored;	/* it failed and the policy says to report success */
	int error;	/* errno of the failed host operation, 0 */
	enum block_state state;
	/* The data of a read: filled by the device before block_req_start. */
	struct iovec *iov;
	unsigned niov;
	uint64_t off, len;
	/* Progress of an io_uring read. */
	uint64_t left;
	unsigned iov_pos;
	struct thread_pool_req *preq;
	struct block_req *prev, *next;
};

struct block_list {
	struct block_req *head, *tail;
	unsigned n;
};

/* What a device tells the engine. All required. */
struct block_engine_ops {
	/* Worker thread: the blocking host work of @r (touching only its
	 * buffers and the file); sets r->error to an errno when the host
	 * failed it. */
	void (*work)(struct block_req *r);
	/* @r's host work is over (r->uring, r->cancelled, r->ignored,
	 * r->error as the engine left them after the error policy), or @r
	 * was aborted: decide its result, keep it in the request, and call
	 * block_req_complete (or keep @r, state BLOCK_DEVICE). iothread. */
	void (*done)(struct block_req *r);
	/* Write @r's result into its chain; returns the bytes written (the
	 * used length). iothread, device not paused. */
	uint32_t (*put_result)(struct block_req *r);
	/* Run a held NEW or FAILED request again from its chain (the last
	 * attempt consumed its iovecs): block_req_start or
	 * block_req_complete. False with @why if the chain is no request any
	 * more (the engine puts the device into NEEDS_RESET). iothread. */
	bool (*restart)(struct block_req *r, const char **why);
	/* Free the device's request (its elem is gone or the caller's). */
	void (*free)(struct block_req *r);
};

/*
 * How the engine returns requests and pauses the device: the transport's
 * side, with @t its opaque. hold_ok and discard run under the transport's
 * lock (block_engine_attach), the rest without it.
 */
struct block_transport_ops {
	/* May a request stay unreturned with no host work (held)? */
	bool (*hold_ok)(void *t);
	/* Forget @elem without returning it, and free it (a driver reset). */
	void (*discard)(void *t, struct vq_elem *elem);
	/* Return @elem to queue @q with @len bytes written, and free it. */
	void (*push)(void *t, unsigned q, struct vq_elem *elem, uint32_t len);
	/* Interrupt the driver for queue @q if it wants one now. */
	void (*notify)(void *t, unsigned q);
	/* Stop / restart taking requests from the queues. */
	void (*pause)(void *t);
	void (*resume)(void *t);
	/* The driver broke the protocol (@why): the device needs a reset. */
	void (*broken)(void *t, unsigned q, const char *why);
	/* Exit: wait for every element to be returned, stop the doorbells. */
	void (*stop)(void *t);
};

struct block_engine_params {
	const char *name;	     /* messages and the iothread's name */
	const char *what;	     /* who asked for aio=io_uring, in its error ("disk 'x.img'") */
	const struct block_env *env; /* the VM's services (copied) */
	enum disk_aio aio;
	unsigned pool_threads;
	unsigned uring_entries; /* a power of two */
	unsigned nqueues;	/* queues that get interrupts, at most 32 */
	const struct block_engine_ops *ops;
};

struct block_engine {
	char name[32];
	const struct block_engine_ops *ops;
	/* block_engine_attach */
	const struct block_transport_ops *tops;
	void *t;
	pthread_mutex_t *lock; /* the transport's: held list, hold_ok, discard */
	struct iothread *iothread;
	struct aio_context *ctx;
	struct thread_pool *pool;
	struct aio_bh *notify_bh; /* one interrupt decision per batch of completions */
	bool use_uring;
	struct uring uring;
	struct block_env env;
	struct disk_reports reports;
	unsigned nqueues;

	/* iothread (or main while the iothread is idle) */
	bool paused;
	bool notify_scheduled;
	unsigned notify_queues; /* bit per queue pushed to since the last notify */
	struct block_list submitted;
	/* *lock */
	struct block_list held; /* in pop order (resume keeps it) */
};

/*
 * Open the io_uring (per @p->aio: auto falls back to threads, io_uring is
 * an error where the host refuses it), start the iothread, its pool and the
 * notify BH. Main thread at realize. -errno with @err; block_engine_free
 * undoes a partial init.
 */
int block_engine_init(struct block_engine *e, const struct block_engine_params *p,
		      struct errbuf *err);
/* The transport the engine returns requests through, its opaque and its
 * lock (realized on e->ctx). Main thread, before the first request. */
void block_engine_attach(struct block_engine *e, const struct block_transport_ops *tops, void *t,
			 pthread_mutex_t *lock);
/*
 * Exit: host work in progress completes (nothing started is cut short),
 * held requests are dropped, the transport stops (tops->stop) and the
 * iothread with it. Main thread, vCPUs stopped. Then the transport's exit
 * and block_engine_free.
 */
void block_engine_stop(struct block_engine *e);
/* Stop the iothread if running; free the ring and the reports. Harmless
 * on a zeroed or partly initialised engine. Main thread. */
void block_engine_free(struct block_engine *e);

/* Make drive @b known to the VM (query-block) / forget it. Main thread:
 * register after realize succeeded, unregister at exit. -ENOSPC. */
int block_drive_register(struct block_engine *e, struct vm_block *b);
void block_drive_unregister(struct block_engine *e, struct vm_block *b);

/* Pause / resume (the device's pause/resume ops). Main thread; they run
 * on the iothread and wait for it. */
void block_engine_pause(struct block_engine *e);
void block_engine_resume(struct block_engine *e);
/* The same as device_ops for a device whose state begins with its
 * struct block_engine (vmm/device.h). */
void block_device_pause(void *state);
void block_device_resume(void *state);

/* Driver reset: forget every held request. The transport's lock held
 * (vCPU thread). */
void block_engine_drop_held(struct block_engine *e);

/* Hand the queued io_uring reads to the kernel, and return at once those
 * the page cache served meanwhile. After a batch of block_req_start. */
void block_engine_submit(struct block_engine *e);

/* Make @r (zeroed) a request of @e for the transport's @elem. */
void block_req_init(struct block_req *r, struct block_engine *e, struct vq_elem *elem,
		    uint16_t queue, uint16_t head);

/*
 * Start @r's host work: an io_uring read when it is a read (r->iov, niov,
 * off, len set) and the engine has a ring, else ops->work on the pool.
 * Ends in ops->done.
 */
void block_req_start(struct block_req *r);
/* @r has its result (ops->done decided it): return it to the driver, or
 * hold it while the device is paused. */
void block_req_complete(struct block_req *r);
/* The device aborts @r (a TMF): pool work not yet taken is cancelled;
 * ops->done sees r->aborted once no host work is left. */
void block_req_abort(struct block_req *r);

/* List helpers for devices that keep requests of their own. */
void block_list_add(struct block_list *l, struct block_req *r);
void block_list_del(struct block_list *l, struct block_req *r);

/*
 * Snapshots of held requests. Every record begins with these five bytes
 * (queue, head, state); the device's own fields follow, from offset 5.
 * Main thread, device paused.
 */
struct block_req_snap_hdr {
	uint16_t queue, head;
	uint8_t state; /* BLOCK_HELD_* */
};

/* May the device be saved now (paused, no host work)? And how many held. */
bool block_engine_idle(struct block_engine *e);
unsigned block_engine_nheld(struct block_engine *e);
/* Write one @rec_size record per held request into @buf (room for
 * block_engine_nheld of them), header filled, then @fill(r, record). */
void block_engine_save_held(struct block_engine *e, void *buf, size_t rec_size,
			    void (*fill)(const struct block_req *r, void *rec));
/* Check a record's header: queue below @nqueues, a held state. -EINVAL. */
int block_req_snap_check(const struct block_req_snap_hdr *h, unsigned nqueues, char *why,
			 size_t why_len);
/* Take the requests of a successful load as the held list, in order. */
void block_engine_set_held(struct block_engine *e, struct block_list *l);

#endif
