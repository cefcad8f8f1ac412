/* SPDX-License-Identifier: MIT */
/*
 * virtio: split virtqueues and the modern (1.x) virtio-pci transport.
 *
 * The guest is hostile. Everything read from a ring is read once into
 * kvmini's memory, checked, and only then used; every guest address goes
 * through guest_mem_ptr(). A malformed chain (loop, chain longer than the
 * queue, address outside RAM or wrapping, bad indirect table, readable
 * buffer after a writable one, head index out of range or already in use,
 * available index running ahead by more than the queue size) puts the
 * device into NEEDS_RESET and raises a configuration-change interrupt: the
 * driver must reset it. kvmini and other devices go on.
 *
 * Threads and locking (virtio_pci.c): a device has one lock, vdev->lock.
 * vCPU threads take it for register accesses (common/ISR/device config,
 * notify fallback); the device's AioContext thread takes it around ring
 * accesses (virtio_pop / virtio_push / virtio_notify). Queue notifications
 * (ioeventfds) are handled on that AioContext: an iothread's, or the main
 * one. Lock order: PCI config lock -> vdev->lock -> MSI-X lock.
 */
#ifndef KVMINI_VIRTIO_H
#define KVMINI_VIRTIO_H

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "aio/aio.h"
#include "vmm/config.h"
#include "vmm/iov.h"
#include "vmm/memory.h"
#include "vmm/msix.h"
#include "vmm/pci.h"
#include "vmm/util.h"

struct vm;
struct vm_block;

/* ------------------------------------------------------------------ */
/* Split virtqueue (virtqueue.c). Pure: guest memory only, no locking. */

#define VQ_MAX_SIZE	1024 /* largest queue a device offers */
#define VQ_MAX_INDIRECT 1024 /* entries in one indirect table */
#define VQ_MAX_IOV	1024 /* buffers in one chain (IOV_MAX for preadv) */

/*
 * Everything a queue is, as plain data: what a snapshot saves and a
 * restore validates. inflight has one bit per head index popped and not
 * yet pushed or discarded; inuse counts them.
 */
struct vq_state {
	uint64_t desc;	 /* guest addresses of the three areas */
	uint64_t avail;	 /* "driver area" */
	uint64_t used;	 /* "device area" */
	uint16_t size;	 /* negotiated, a power of two <= max_size */
	uint16_t vector; /* MSI-X vector or VIRTIO_MSI_NO_VECTOR */
	uint16_t enabled;
	uint16_t last_avail_idx; /* next avail ring entry to pop */
	uint16_t used_idx;	 /* next used ring entry; published to used->idx */
	uint16_t signalled_used; /* used_idx when the last interrupt was decided */
	uint16_t signalled_used_valid;
	uint16_t inuse;
	uint64_t inflight[VQ_MAX_SIZE / 64];
};

struct virtqueue {
	struct vq_state s;
	uint16_t max_size;
	bool event_idx;		/* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool indirect;		/* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool notify_suppressed; /* we asked the driver not to notify */
	const struct guest_mem *mem;
	/* Host views of the areas, set by vq_enable (guest RAM never moves). */
	uint8_t *desc_p, *avail_p, *used_p;
	struct iovec *scratch; /* VQ_MAX_IOV entries for vq_pop */
	/* Pop order of the in-flight heads (a snapshot keeps it): popped_at[h]
	 * is the value of pops when head h was popped. */
	uint64_t pops;
	uint64_t *popped_at; /* max_size entries */
	char why[160];	     /* what was wrong with the last bad chain */
};

/*
 * A queue as a snapshot keeps it: plain fixed-width fields (little-endian,
 * as on x86), the in-flight heads in the order they were popped. What a
 * restore must not trust is checked by vq_snap_check.
 */
struct vq_snap {
	uint64_t desc, avail, used;
	uint16_t size, vector, enabled, last_avail_idx;
	uint16_t used_idx, signalled_used, signalled_used_valid, inuse;
	uint8_t notify_suppressed;
	uint8_t reserved[7];		/* zero */
	uint16_t inflight[VQ_MAX_SIZE]; /* inuse heads, pop order; zero after them */
};

/*
 * One popped chain: out[] are device-readable buffers, in[] device-writable
 * ones, all pointing into guest RAM. Allocated by vq_pop, freed by the
 * caller (virtio_push does it).
 */
struct vq_elem {
	uint16_t head;
	uint16_t queue;
	unsigned out_num, in_num;
	uint64_t out_len, in_len;
	struct iovec *out, *in;
	struct iovec iov[];
};

/* Set up an empty, disabled queue; -ENOMEM. Main thread. */
int vq_init(struct virtqueue *vq, const struct guest_mem *mem, uint16_t max_size);
void vq_free(struct virtqueue *vq);
/* Back to the reset state: disabled, size = max_size, no vector. */
void vq_reset(struct virtqueue *vq);

/*
 * Check the areas the driver configured (alignment, inside RAM for
 * @s.size entries) and enable the queue with the negotiated ring features.
 * -EINVAL with vq->why set if they are unusable.
 */
int vq_enable(struct virtqueue *vq, bool event_idx, bool indirect);

/*
 * Pop the next available chain. Returns 1 and *out, 0 if the ring is
 * empty, -EIO with vq->why for a malformed chain or index (the queue must
 * not be used again before a reset), -ENOMEM.
 */
int vq_pop(struct virtqueue *vq, struct vq_elem **out);

/* Return @elem to the driver with @len bytes written (clamped to in_len). */
void vq_push(struct virtqueue *vq, const struct vq_elem *elem, uint32_t len);

/* Forget @elem without returning it (device reset or broken). */
void vq_discard(struct virtqueue *vq, const struct vq_elem *elem);

/* The in-flight heads in the order they were popped; returns how many
 * (s.inuse). @heads has room for max_size. */
unsigned vq_inflight_heads(const struct virtqueue *vq, uint16_t *heads);

/*
 * Read the chain of in-flight head @head again (a restored queue): the same
 * checks as vq_pop, nothing in the queue's state changes. Returns 1 and
 * *out, -EIO with vq->why for a malformed chain, -ENOMEM.
 */
int vq_reload(struct virtqueue *vq, uint16_t head, struct vq_elem **out);

/* Fill @s from @vq (reserved bytes and unused heads zeroed). */
void vq_save(const struct virtqueue *vq, struct vq_snap *s);

/*
 * Is @s a queue this device could be in? Checks every field against
 * @max_size and guest RAM @mem: size a power of two <= max, flags 0 or 1,
 * a disabled queue in its reset state, an enabled one with rings aligned
 * and inside RAM, in-flight heads < size, unique, exactly inuse of them,
 * and (@balanced: the device is not in NEEDS_RESET, so nothing was
 * discarded) last_avail_idx - used_idx == inuse. Returns 0, or -EINVAL
 * with a reason in @why. The vector is the transport's to check. Pure.
 */
int vq_snap_check(const struct vq_snap *s, uint16_t max_size, const struct guest_mem *mem,
		  bool balanced, char *why, size_t why_len);

/* Make @vq what @s (checked) says, with the negotiated ring features. */
void vq_load(struct virtqueue *vq, const struct vq_snap *s, bool event_idx, bool indirect);

/* Is the available ring empty (as far as the driver has published)? */
bool vq_avail_empty(struct virtqueue *vq);

/*
 * Ask the driver to notify us (enable) or not: EVENT_IDX writes avail_event,
 * otherwise the used ring's NO_NOTIFY flag. Enabling is followed by a full
 * barrier, so a caller that re-checks vq_avail_empty() afterwards cannot
 * miss a buffer the driver added without notifying.
 */
void vq_set_notification(struct virtqueue *vq, bool enable);

/*
 * Should the driver get an interrupt for what was pushed since the last
 * call? Follows EVENT_IDX (used_event) or the avail ring's NO_INTERRUPT
 * flag, and records the used index as signalled.
 */
bool vq_should_notify(struct virtqueue *vq);

/* The EVENT_IDX test: has the index crossed @event moving from @old to @new? */
static inline bool vq_need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* ------------------------------------------------------------------ */
/* virtio-pci transport (virtio_pci.c). */

/* BAR 0: the virtio structures; BAR 1: MSI-X table and PBA. */
#define VIRTIO_PCI_BAR		  0
#define VIRTIO_PCI_BAR_SIZE	  0x4000
#define VIRTIO_PCI_COMMON_OFF	  0x0000
#define VIRTIO_PCI_COMMON_LEN	  0x38 /* struct virtio_pci_common_cfg */
#define VIRTIO_PCI_ISR_OFF	  0x1000
#define VIRTIO_PCI_DEVICE_OFF	  0x2000
#define VIRTIO_PCI_NOTIFY_OFF	  0x3000
#define VIRTIO_PCI_NOTIFY_MULT	  4 /* each queue has its own doorbell */
#define VIRTIO_PCI_REGION_LEN	  0x1000
#define VIRTIO_PCI_MSIX_BAR	  1
#define VIRTIO_PCI_MSIX_BAR_SIZE  0x1000
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x000
#define VIRTIO_PCI_MSIX_PBA_OFF	  0x800
#define VIRTIO_PCI_MAX_QUEUES	  64 /* MSI-X table (1 + queues) fits before the PBA */
#define VIRTIO_PCI_MAX_CONFIG	  VIRTIO_PCI_REGION_LEN

/* ISR bits (used with MSI-X too, for drivers that poll the ISR). */
#define VIRTIO_ISR_QUEUE  0x1
#define VIRTIO_ISR_CONFIG 0x2

/* Status bit 0x40, spelled as the spec names it. */
#define VIRTIO_STATUS_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET

/* Ring features the transport always offers; VERSION_1 is required. */
#define VIRTIO_TRANSPORT_FEATURES                                                                  \
	((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_INDIRECT_DESC) |                    \
	 (1ULL << VIRTIO_RING_F_EVENT_IDX))

struct virtio_dev;

struct virtio_dev_ops {
	/*
	 * Queue @q may have new buffers: drain it with virtio_pop. Runs on the
	 * device's AioContext thread with no lock held. Required.
	 */
	void (*queue_notify)(struct virtio_dev *vdev, unsigned q);
	/* Device-specific part of a reset; every popped element has been
	 * pushed or discarded by then. vdev->lock held, vCPU thread. */
	void (*reset)(struct virtio_dev *vdev);
	/* The driver wrote device config bytes (already stored in
	 * vdev->config); absent: the config is read-only. Lock held. */
	void (*config_write)(struct virtio_dev *vdev, uint32_t off, uint32_t len);
	/*
	 * The driver resets the device: drop every element the device holds
	 * without host work in progress (werror=stop, or the device is being
	 * paused while vCPUs still run; see virtio_hold_ok) with
	 * virtio_discard_locked, so that the reset, which waits for every
	 * popped element, can finish. vdev->lock held, vCPU thread.
	 */
	void (*drop_held)(struct virtio_dev *vdev);
	/*
	 * The driver set DRIVER_OK (called before kvmini rings the enabled
	 * queues' doorbells), or enabled queue @q (vq_enable accepted it;
	 * any status). For a device whose rings another process serves: the
	 * write completes only when these return, so they may block, for a
	 * bounded time, and set NEEDS_RESET. vdev->lock held, vCPU thread.
	 */
	void (*driver_ok)(struct virtio_dev *vdev);
	void (*queue_enabled)(struct virtio_dev *vdev, unsigned q);
};

struct virtio_dev_params {
	const char *name;    /* e.g. "virtio-blk0", for messages; copied */
	uint16_t device_id;  /* virtio device ID (VIRTIO_ID_*) */
	uint32_t pci_class;  /* base << 16 | sub << 8 | prog-if */
	uint64_t features;   /* device-specific bits; the transport adds its own */
	unsigned nqueues;    /* 1..VIRTIO_PCI_MAX_QUEUES */
	uint16_t queue_size; /* maximum (and initial) size of each queue, power of two */
	const void *config;  /* initial device config; copied */
	uint32_t config_len;
	struct aio_context *ctx; /* where queue notifications run */
	/* Another process serves the rings (vhost-user): the doorbell
	 * eventfds are its, kvmini never reads them, queue_notify is unused. */
	bool external;
	const struct virtio_dev_ops *ops;
	void *opaque;
};

/* One queue's doorbell: an eventfd that KVM (ioeventfd) or the notify
 * region's fallback writes, read on vdev->ctx (or by the external
 * process serving the rings). */
struct virtio_kick {
	struct virtio_dev *vdev;
	unsigned q;
	int fd;
	bool ioeventfd;		/* attached to notify_addr + q * MULT right now */
	uint32_t ioeventfd_len; /* ... matching writes of this width (0: any) */
};

struct virtio_dev {
	char name[32];
	const struct virtio_dev_ops *ops;
	void *opaque;
	struct vm *vm;
	struct pci_host *host;
	struct pci_device_info pci_info;
	struct pci_device *pdev;
	struct msix msix;
	struct aio_context *ctx;      /* queue notifications run here */
	struct aio_context *main_ctx; /* the main thread's (realize/exit run there) */
	uint16_t device_id;
	unsigned nqueues;
	struct virtio_kick *kicks;
	bool handlers_on; /* kick fd handlers registered on ctx */
	bool external;	  /* virtio_dev_params.external */

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t idle;  /* signalled when the last in-use element is returned */
	uint64_t host_features;
	uint64_t guest_features;
	uint32_t dfselect, gfselect;
	uint8_t status;
	uint8_t isr;
	uint8_t config_generation;
	uint16_t queue_select;
	uint16_t config_vector;
	bool broken;	/* NEEDS_RESET: no ring is touched until reset */
	bool quiescing; /* reset or exit in progress: no new pops */
	bool paused;	/* virtio_pause: no new pops until virtio_resume */
	struct virtqueue *vqs;
	uint8_t *config;
	uint32_t config_len;
	uint64_t notify_addr; /* where the notify region is mapped, or PCI_BAR_UNMAPPED */
	unsigned pci_cfg_cap; /* offset of VIRTIO_PCI_CAP_PCI_CFG */
	unsigned errors;      /* NEEDS_RESET events, for tests and messages */
};

/*
 * Create the PCI function, its BARs, capabilities, MSI-X (1 + nqueues
 * vectors), queues and doorbells for a virtio device described by @p.
 * Main thread at realize, before vCPUs run; @p->ctx must be polled by its
 * owner (iothread or main loop). -errno and @err; nothing left behind.
 */
int virtio_pci_init(struct virtio_dev *vdev, struct vm *vm, const struct virtio_dev_params *p,
		    struct errbuf *err);
/* Same against a bare PCI host and guest memory (unit tests). */
int virtio_pci_init_host(struct virtio_dev *vdev, struct pci_host *host,
			 const struct guest_mem *mem, struct aio_context *main_ctx,
			 const struct virtio_dev_params *p, struct errbuf *err);

/*
 * Stop taking new work and wait until every popped element was pushed or
 * discarded, then remove the doorbell handlers from ctx. Main thread at
 * exit (vCPUs stopped); ctx must still be polled.
 */
void virtio_pci_stop(struct virtio_dev *vdev);

/* Take the function off the bus and free everything. Main thread, after
 * virtio_pci_stop and after the device stopped using ctx. */
void virtio_pci_exit(struct virtio_dev *vdev);

/*
 * Pop the next chain of queue @q for processing: 1 and *elem, or 0 when
 * the queue is empty, not running (no DRIVER_OK, broken, resetting), or
 * malformed (the device then is in NEEDS_RESET). Handles notification
 * suppression: while a device pops, the driver is asked not to notify;
 * when the queue runs dry, notifications are re-enabled and the ring
 * re-checked. ctx thread.
 */
int virtio_pop(struct virtio_dev *vdev, unsigned q, struct vq_elem **elem);

/*
 * Return @elem with @len bytes written, then free it. If the device was
 * reset or broke meanwhile the element is discarded instead. Any thread
 * (normally ctx). Call virtio_notify after a batch.
 */
void virtio_push(struct virtio_dev *vdev, unsigned q, struct vq_elem *elem, uint32_t len);

/* Interrupt the driver for queue @q if it wants one now. Any thread. */
void virtio_notify(struct virtio_dev *vdev, unsigned q);

/*
 * Pausing (the device's pause/resume ops, see vmm/device.h). virtio_pause
 * stops pops (doorbells are still read, and forgotten); the device then
 * quiesces its own work. virtio_resume lets pops happen again and rings
 * every enabled queue's doorbell, so what the driver queued meanwhile is
 * seen. Any thread.
 */
void virtio_pause(struct virtio_dev *vdev);
void virtio_resume(struct virtio_dev *vdev);

/*
 * May the device keep a popped element unreturned with no host work in
 * progress (a request held by werror=stop, or completed while paused)?
 * Not while a reset or exit waits for elements, nor once the device broke
 * (the element would never be returned anyway). vdev->lock held; a device
 * keeps its held elements where ops->drop_held finds them, under the lock.
 */
bool virtio_hold_ok(const struct virtio_dev *vdev);

/* Forget @elem without returning it and free it (drop_held). Lock held. */
void virtio_discard_locked(struct virtio_dev *vdev, struct vq_elem *elem);

/*
 * Snapshots of the transport: PCI config space, MSI-X table and pending
 * bits, status, features, selectors, ISR, config generation, the device
 * config bytes and every queue with its in-flight heads in pop order, as
 * struct virtio_pci_snap followed by arrays (virtio_pci.c has the layout).
 *
 * virtio_pci_save: into @buf of at least virtio_pci_snap_size() bytes;
 * returns the bytes written, -ENOSPC, or -EPROTO if the queues' inuse do
 * not add up to @ninflight, the elements the device says it holds (one line
 * on stderr says so). The device is paused and its own work quiesced (main
 * thread, vCPUs parked).
 *
 * virtio_pci_load: checks every field against this device and guest RAM
 * (sizes and IDs as realized, status bits consistent, vectors the device
 * has, queue sizes powers of two up to the maximum, rings aligned inside
 * RAM, in-flight heads in range, unique, inuse of them and matching the
 * ring indices; all queues' inuse together equal to @ninflight, the number
 * of requests the device's own state says it held), re-reads every
 * in-flight chain with vq_pop's checks and hands each, in pop order, to
 * @fn, which takes it (0) or refuses it (-errno and a message in @err; the
 * element stays the transport's). Only
 * when all of that succeeded is the state applied: PCI config (BARs, and
 * with them the doorbell ioeventfds, move), MSI-X (KVM routes, irqfds),
 * then the rest. On error (-EINVAL, one line naming the device and what is
 * wrong) nothing was applied, and the elements @fn took are the device's
 * to free without pushing them. Main thread, device paused, vCPUs not
 * running.
 */
typedef int virtio_load_elem_fn(void *opaque, struct vq_elem *elem, struct errbuf *err);
size_t virtio_pci_snap_size(const struct virtio_dev *vdev);
int virtio_pci_save(struct virtio_dev *vdev, void *buf, size_t len, unsigned ninflight);
int virtio_pci_load(struct virtio_dev *vdev, const void *buf, size_t len, unsigned ninflight,
		    virtio_load_elem_fn *fn, void *opaque, struct errbuf *err);

/*
 * The device config bytes (vdev->config_len of them) in the transport
 * state @buf of @len bytes, or NULL if @buf is too short to hold them.
 * virtio_pci_load compares them with the device's only when the driver
 * cannot write the config (no ops->config_write); a device that lets it
 * checks them itself, before virtio_pci_load, since nothing may fail after
 * that applied the state. Any thread.
 */
const void *virtio_pci_snap_config(const struct virtio_dev *vdev, const void *buf, size_t len);

/* Configuration change: bump the generation and interrupt. Any thread. */
void virtio_config_changed(struct virtio_dev *vdev);

/*
 * The device found the driver broke the rules: set NEEDS_RESET, stop
 * using the rings, print one line, interrupt the config vector.
 * virtio_set_needs_reset: lock held; virtio_error: takes the lock.
 */
void virtio_set_needs_reset(struct virtio_dev *vdev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void virtio_error(struct virtio_dev *vdev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Has the driver accepted feature @bit? Lock held or after FEATURES_OK. */
static inline bool virtio_has_feature(const struct virtio_dev *vdev, unsigned bit)
{
	return vdev->guest_features & (1ULL << bit);
}

/* ------------------------------------------------------------------ */
/* virtio-pci as the block request engine's transport (virtio_block.c). */

struct block_engine;
struct block_req;

/* Serve @e's requests through @vdev (after virtio_pci_init). Main thread. */
void virtio_block_attach(struct block_engine *e, struct virtio_dev *vdev);
/* virtio_dev_ops.drop_held of a device whose vdev->opaque begins with its
 * struct block_engine. vdev->lock held, vCPU thread. */
void virtio_block_drop_held(struct virtio_dev *vdev);
/* block_req_init for a popped @elem. */
void virtio_block_req_init(struct block_req *r, struct block_engine *e, struct vq_elem *elem);

/* ------------------------------------------------------------------ */
/* virtio-blk (virtio_blk.c) */

struct device_ops;
/* --disk: realize with the option string (see disk_config_parse). */
extern const struct device_ops virtio_blk_ops;

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_SEG_MAX    (VIRTIO_BLK_QUEUE_SIZE - 2)
#define VIRTIO_BLK_MAX_DZ     0x3fffff /* max discard/write-zeroes sectors per request */

/* The backing file as requests see it. */
struct blk_disk {
	int fd;
	uint64_t nsectors; /* capacity in 512-byte sectors */
	bool readonly;
	char serial[20]; /* GET_ID answer, zero-padded */
};

/*
 * One request, parsed from a chain: the 16-byte header (copied), the data
 * buffers (a slice of the chain: after the header for writes, before the
 * status byte for reads), and the status byte's place in guest RAM.
 */
struct blk_req {
	uint32_t type;
	uint64_t sector;
	struct iovec *iov; /* points into iov_store */
	unsigned niov;
	uint64_t len;	  /* bytes in iov */
	uint8_t *status;  /* last byte of the last device-writable buffer */
	uint32_t written; /* bytes the device wrote into writable buffers, status included */
	uint8_t result;	  /* VIRTIO_BLK_S_* */
	int error;	  /* errno of the host operation that failed (werror/rerror), or 0 */
	struct iovec iov_store[];
};

/*
 * Parse @elem into a new request (malloc'd; free() it). Returns NULL with
 * *why set if the chain cannot be a virtio-blk request at all (no 16-byte
 * header, no status byte): the driver broke the protocol. Pure.
 */
struct blk_req *blk_req_parse(const struct vq_elem *elem, const char **why);

/*
 * Carry out @r on @d with blocking I/O and set r->result and r->written
 * (the caller stores the status byte), and r->error when the host failed
 * the I/O (a request that is wrong for the disk, out of range or a write to
 * a read-only one, fails with error 0: no policy applies to it). Worker
 * thread; touches only the request's buffers (the iovecs are consumed)
 * and the file.
 */
void blk_req_execute(const struct blk_disk *d, struct blk_req *r);

/* ------------------------------------------------------------------ */
/* vhost-user-blk (vhost_user_blk.c) */

struct vm_config;
struct vhost_user_blk_config;
/* --vhost-user-blk: realize with the option string. */
extern const struct device_ops vhost_user_blk_ops;
/* Parse one option string into @c; -EINVAL with @err. Pure. */
int vhost_user_blk_config_parse(const char *spec, struct vhost_user_blk_config *c,
				struct errbuf *err);
/* Parse every --vhost-user-blk of @cfg (before /dev/kvm is opened). */
int vhost_user_blk_config_check(const struct vm_config *cfg, struct errbuf *err);

/* ------------------------------------------------------------------ */
/* virtio-scsi (virtio_scsi.c) */

/* The controller with every --scsi-disk as a LUN (realize reads
 * vm->cfg->scsi_disks; opts unused). */
extern const struct device_ops virtio_scsi_ops;

#endif
