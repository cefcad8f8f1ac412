// SPDX-License-Identifier: MIT
/*
 * vhost-user-blk:
 * `--vhost-user-blk socket=PATH[,num-queues=N][,timeout=S][,reconnect=S]`.
 * A virtio-blk PCI function (the virtio-pci transport, external rings)
 * whose queues an outside process serves: qemu-storage-daemon, SPDK.
 * kvmini keeps the PCI function, features, config and MSI-X; the backend
 * gets guest RAM (a memfd, SET_MEM_TABLE), each ring's addresses, its
 * doorbell eventfd (the KVM ioeventfd: kicks go straight to the backend)
 * and its MSI-X vector's eventfd (a KVM irqfd: the backend interrupts the
 * guest directly).
 *
 * Queue enabling is synchronous (QEMU commit "vhost-user: call
 * VHOST_USER_SET_VRING_ENABLE synchronously"): a driver enables a queue,
 * sets DRIVER_OK and kicks at once; the enable goes over the socket, the
 * kick over an eventfd, so a backend could see the kick first, drop it as
 * aimed at a disabled ring, and the guest would wait forever. So the
 * vCPU's DRIVER_OK (or queue_enable after DRIVER_OK) write completes only
 * when the backend acknowledged SET_VRING_ENABLE, within the timeout.
 * A backend that does not answer in time, refuses, or breaks the protocol
 * puts the device into NEEDS_RESET, with one line on stderr and a QMP
 * event VHOST_USER_BLK_ERROR; kvmini and QMP go on (QMP waits at most the
 * timeout for a vCPU that is inside such a write).
 *
 * With reconnect=S a lost connection is not the device's failure: the
 * rings stay the driver's, kvmini retries every S seconds from the main
 * loop (vublk_retry) and, once a backend answers with what the driver
 * negotiated, hands it everything again, with the same INFLIGHT_SHMFD
 * region: the backend resubmits what its predecessor had taken and not
 * finished (the region marks those), and starts after them.
 *
 * Snapshots hold no request in flight: saving (vCPUs parked) waits until
 * the backend finished what the driver made available, then stops the
 * rings; resuming (the source going on, or a restore) hands them to the
 * backend again from there (vublk_save, vublk_resume_op).
 *
 * Threads: every message on the device's connection is sent with
 * vdev->lock held: by the vCPU that writes the status or queue_enable
 * (driver_ok, queue_enabled, reset ops), by the main thread at realize and
 * exit (no vCPU runs), or by the main loop when it reconnects (the new
 * connection's handshake runs before it is the device's, without the lock).
 */
#include <errno.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_ids.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/vhost_user.h"
#include "devices/virtio/virtio.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#define VUBLK_QUEUE_SIZE	 256
#define VUBLK_DEFAULT_TIMEOUT_NS (5ULL * 1000000000ULL)
#define VUBLK_MAX_QUEUES	 16
#define VUBLK_MAX_EVENTS	 4 /* QMP reports queued for the main loop */
#define VUBLK_CONFIG_LEN	 offsetof(struct virtio_blk_config, max_secure_erase_sectors)
#define VUBLK_CLASS_STORAGE	 0x010000

/* The virtio-blk features passed from the backend to the guest. */
#define VUBLK_FEATURES                                                                             \
	((1ULL << VIRTIO_BLK_F_SIZE_MAX) | (1ULL << VIRTIO_BLK_F_SEG_MAX) |                        \
	 (1ULL << VIRTIO_BLK_F_GEOMETRY) | (1ULL << VIRTIO_BLK_F_RO) |                             \
	 (1ULL << VIRTIO_BLK_F_BLK_SIZE) | (1ULL << VIRTIO_BLK_F_FLUSH) |                          \
	 (1ULL << VIRTIO_BLK_F_TOPOLOGY) | (1ULL << VIRTIO_BLK_F_MQ) |                             \
	 (1ULL << VIRTIO_BLK_F_DISCARD) | (1ULL << VIRTIO_BLK_F_WRITE_ZEROES))

/* The protocol features kvmini uses. */
#define VUBLK_PROTOCOL                                                                             \
	((1ULL << VHOST_USER_PROTOCOL_F_MQ) | (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 (1ULL << VHOST_USER_PROTOCOL_F_CONFIG) | (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))

struct vublk {
	struct virtio_dev vdev;
	struct vhost_user vu;
	struct vm *vm;
	struct vhost_user_blk_config cfg;
	char name[32];
	bool started;			     /* features and memory table sent (DRIVER_OK) */
	bool ring_on[VIRTIO_PCI_MAX_QUEUES]; /* ring handed to the backend */
	/* Each handed ring's used index in guest RAM (the queue's own view
	 * is cleared by the transport's reset before ours runs). */
	volatile uint16_t *used_idx[VIRTIO_PCI_MAX_QUEUES];
	volatile uint16_t *avail_idx[VIRTIO_PCI_MAX_QUEUES];
	/* The call fd of rings without an MSI-X vector (a polling driver):
	 * backends need one (libvhost-user fails without), nobody reads it. */
	int null_call_fd;
	/* The INFLIGHT_SHMFD region, shared with the backend (-1 / NULL without). */
	int inflight_fd;
	void *inflight_p;
	struct vhost_user_inflight inflight;
	bool watching;		 /* the socket is watched on the main loop (vublk_sock_ready) */
	uint64_t offered;	 /* the virtio-blk features offered to the guest */
	uint64_t capacity;	 /* the disk's sectors, as the guest read them */
	struct aio_timer *retry; /* reconnect=: the next attempt (main thread) */
	bool retry_said;	 /* a failed attempt was reported in this outage */
	/* When the connection was lost, a ring the backend had held requests
	 * it had not finished (which ones, only an inflight region says). */
	bool lost_busy;
	/* Reports for QMP, raised in order on the main thread (event_bh).
	 * Several can come before it runs (the backend died, then the
	 * driver's reset failed on it): the first names the cause, so when
	 * the queue is full the later ones are dropped (stderr has them). */
	struct aio_bh *event_bh;
	pthread_mutex_t event_lock;
	unsigned nevents;
	char events[VUBLK_MAX_EVENTS][600];
};

/* The keys of --vhost-user-blk, in the order vublk_config_set knows them. */
static const char *const vublk_keys[] = {"socket", "num-queues", "timeout", "reconnect"};

/* One key's value into @c (@key: index in vublk_keys); -EINVAL with @err. */
static int vublk_config_set(const char *spec, struct vhost_user_blk_config *c, unsigned key,
			    const char *val, struct errbuf *err)
{
	static const struct {
		uint64_t max;
		const char *what;
	} num[] = {{0, NULL},
		   {VUBLK_MAX_QUEUES, "a number of queues"},
		   {3600, "whole seconds"},
		   {3600, "whole seconds"}};
	uint64_t n;

	if (key == 0) {
		if (!val[0])
			return err_set(err, EINVAL, "--vhost-user-blk '%s': empty socket", spec);
		memcpy(c->socket, val, strlen(val) + 1);
		return 0;
	}
	if (parse_uint(val, 1, num[key].max, &n) < 0)
		return err_set(
		    err, EINVAL, "--vhost-user-blk '%s': %s '%s' must be %s from 1 to %llu", spec,
		    vublk_keys[key], val, num[key].what, (unsigned long long)num[key].max);
	if (key == 1)
		c->num_queues = (unsigned)n;
	else if (key == 2)
		c->timeout_ns = n * 1000000000ULL;
	else
		c->reconnect_ns = n * 1000000000ULL;
	return 0;
}

int vhost_user_blk_config_parse(const char *spec, struct vhost_user_blk_config *c,
				struct errbuf *err)
{
	static const char keys[] = "socket, num-queues, timeout, reconnect";
	const char *const *names = vublk_keys;
	const char *p = spec, *k;
	char val[sizeof(c->socket)];
	unsigned seen = 0, key;
	size_t klen;
	int r;

	memset(c, 0, sizeof(*c));
	c->num_queues = 1;
	c->timeout_ns = VUBLK_DEFAULT_TIMEOUT_NS;
	while ((r = opt_list_next("vhost-user-blk", spec, keys, &p, &k, &klen, val, sizeof(val),
				  err)) > 0) {
		for (key = 0; key < ARRAY_SIZE(vublk_keys) && !opt_key_is(k, klen, names[key]);
		     key++)
			;
		if (key == ARRAY_SIZE(vublk_keys))
			return err_set(err, EINVAL,
				       "--vhost-user-blk '%s': unknown option '%.*s' (keys: %s)",
				       spec, (int)klen, k, keys);
		if (seen & (1u << key))
			return err_set(err, EINVAL, "--vhost-user-blk '%s': %s given twice", spec,
				       names[key]);
		seen |= 1u << key;
		r = vublk_config_set(spec, c, key, val, err);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (!(seen & 1u))
		return err_set(err, EINVAL,
			       "--vhost-user-blk '%s': no socket=PATH (the backend's UNIX socket)",
			       spec);
	return 0;
}

int vhost_user_blk_config_check(const struct vm_config *cfg, struct errbuf *err)
{
	struct vhost_user_blk_config c;

	for (unsigned i = 0; i < cfg->nvhost_user_blk; i++) {
		int r = vhost_user_blk_config_parse(cfg->vhost_user_blks[i], &c, err);

		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- reports ---- */

/* Copy @s into @out as the inside of a JSON string. */
static void json_escape(char *out, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s && o + 7 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			o += (size_t)snprintf(out + o, size - o, "\\%c", c);
		else if (c < 0x20)
			o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
		else
			out[o++] = (char)c;
	}
	out[o] = '\0';
}

static void vublk_event_bh(void *opaque)
{
	struct vublk *v = opaque;
	char data[VUBLK_MAX_EVENTS][sizeof(v->events[0])];
	unsigned n;

	pthread_mutex_lock(&v->event_lock);
	n = v->nevents;
	memcpy(data, v->events, sizeof(data[0]) * n);
	v->nevents = 0;
	pthread_mutex_unlock(&v->event_lock);
	for (unsigned i = 0; i < n && v->vm->events.event; i++)
		v->vm->events.event(v->vm->events.opaque, "VHOST_USER_BLK_ERROR", data[i]);
}

/* Raise VHOST_USER_BLK_ERROR for @why on the main thread. Any thread. */
static void vublk_report(struct vublk *v, const char *why)
{
	char reason[400];

	json_escape(reason, sizeof(reason), why);
	pthread_mutex_lock(&v->event_lock);
	if (v->nevents < VUBLK_MAX_EVENTS)
		snprintf(v->events[v->nevents++], sizeof(v->events[0]),
			 "{\"device\": \"%s\", \"reason\": \"%s\"}", v->name, reason);
	pthread_mutex_unlock(&v->event_lock);
	aio_bh_schedule(v->event_bh);
}

/* The backend failed the driver's request: NEEDS_RESET and a report. Lock held. */
static void vublk_fail(struct vublk *v, const struct errbuf *err)
{
	size_t n = strlen(v->name);
	const char *why = err->msg;

	/* virtio_set_needs_reset names the device itself. */
	if (!strncmp(why, v->name, n) && why[n] == ':' && why[n + 1] == ' ')
		why += n + 2;
	virtio_set_needs_reset(&v->vdev, "%s", why);
	vublk_report(v, err->msg);
}

/* The connection is gone and reconnect= will bring it back: one line. */
static void vublk_say_lost(struct vublk *v, const struct errbuf *err)
{
	fprintf(stderr, "kvmini: %s; reconnecting every %llu s\n", err->msg,
		(unsigned long long)(v->cfg.reconnect_ns / 1000000000ULL));
	vublk_report(v, err->msg);
	v->retry_said = false;
}

/*
 * A request the driver caused (DRIVER_OK, queue_enable) failed. With
 * reconnect= and the connection gone, that is no failure of the device:
 * the main loop's watch sees the end and reconnects, and the rings go to
 * the backend then. Otherwise NEEDS_RESET. Lock held, vCPU.
 */
static void vublk_failed(struct vublk *v, const struct errbuf *err)
{
	if (v->cfg.reconnect_ns && !vhost_user_connected(&v->vu)) {
		if (v->vu.fd >= 0) /* it broke just now (else it was said already) */
			vublk_say_lost(v, err);
		return;
	}
	vublk_fail(v, err);
}

/* ---- handing rings to the backend ---- */

/*
 * Forget the inflight region: after a reset it must not be handed over
 * again, or the backend would resubmit what the driver abandoned (a fresh
 * one comes with the next DRIVER_OK, as QEMU does).
 */
static void vublk_inflight_free(struct vublk *v)
{
	if (v->inflight_p)
		munmap(v->inflight_p, v->inflight.mmap_size);
	v->inflight_p = NULL;
	if (v->inflight_fd >= 0)
		close(v->inflight_fd);
	v->inflight_fd = -1;
}

static int vublk_inflight_setup(struct vublk *v, struct errbuf *err)
{
	int r;

	if (!vhost_user_has(&v->vu, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return 0;
	if (v->inflight_fd < 0) {
		r = vhost_user_get_inflight_fd(&v->vu, (uint16_t)v->vdev.nqueues, VUBLK_QUEUE_SIZE,
					       &v->inflight, &v->inflight_fd, err);
		if (r < 0)
			return r;
		v->inflight_p = mmap(NULL, v->inflight.mmap_size, PROT_READ | PROT_WRITE,
				     MAP_SHARED, v->inflight_fd, (off_t)v->inflight.mmap_offset);
		if (v->inflight_p == MAP_FAILED) {
			v->inflight_p = NULL;
			close(v->inflight_fd);
			v->inflight_fd = -1;
			return err_set(err, errno, "%s: cannot map the inflight region: %s",
				       v->name, strerror(errno));
		}
	}
	return vhost_user_set_inflight_fd(&v->vu, &v->inflight, v->inflight_fd, err);
}

/* Features and the memory table: once per DRIVER_OK. Lock held. */
static int vublk_start(struct vublk *v, struct errbuf *err)
{
	uint64_t f = v->vdev.guest_features;
	int r;

	f |= v->vu.features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES);
	r = vhost_user_set_u64(&v->vu, VHOST_USER_SET_FEATURES, f, err);
	if (r == 0)
		r = vhost_user_set_mem_table(&v->vu, &v->vm->mem, err);
	if (r == 0)
		r = vublk_inflight_setup(v, err);
	if (r == 0)
		v->started = true;
	return r;
}

/* Give ring @q to the backend from avail index @base and enable it,
 * acknowledged. Lock held. */
static int vublk_ring_start(struct vublk *v, unsigned q, uint16_t base, struct errbuf *err)
{
	struct virtio_dev *vdev = &v->vdev;
	struct virtqueue *vq = &vdev->vqs[q];
	struct vhost_user_vring_addr a = {
	    .index = q,
	    .desc = (uint64_t)(uintptr_t)vq->desc_p,
	    .used = (uint64_t)(uintptr_t)vq->used_p,
	    .avail = (uint64_t)(uintptr_t)vq->avail_p,
	};
	uint16_t vec = vq->s.vector;
	int r;

	/* From the first message on the backend may hold the ring: a reset
	 * must take it back even if a later step fails. */
	v->ring_on[q] = true;
	v->used_idx[q] = (volatile uint16_t *)(vq->used_p + 2);
	v->avail_idx[q] = (volatile uint16_t *)(vq->avail_p + 2);
	r = vhost_user_set_vring(&v->vu, VHOST_USER_SET_VRING_NUM, q, vq->s.size, err);
	if (r == 0)
		r = vhost_user_set_vring(&v->vu, VHOST_USER_SET_VRING_BASE, q, base, err);
	if (r == 0)
		r = vhost_user_set_vring_addr(&v->vu, &a, err);
	if (r == 0)
		r = vhost_user_set_vring_fd(&v->vu, VHOST_USER_SET_VRING_KICK, q, vdev->kicks[q].fd,
					    err);
	/* The vector's eventfd is a KVM irqfd while the vector is
	 * deliverable, and its pending bit while masked. */
	if (r == 0)
		r = vhost_user_set_vring_fd(&v->vu, VHOST_USER_SET_VRING_CALL, q,
					    vec == VIRTIO_MSI_NO_VECTOR
						? v->null_call_fd
						: msix_vector_fd(&vdev->msix, vec),
					    err);
	if (r == 0)
		r = vhost_user_set_vring_enable(&v->vu, q, true, err);
	return r;
}

/*
 * Wait until ring @q's used index equals *@target (re-read each time:
 * @target may be the guest's avail index), for at most the timeout.
 */
static int vublk_wait_used(struct vublk *v, unsigned q, const volatile uint16_t *target,
			   struct errbuf *err)
{
	int64_t deadline = aio_clock_ns() + (int64_t)v->cfg.timeout_ns;
	const struct timespec pause = {0, 100000};
	uint16_t t;

	while (__atomic_load_n(v->used_idx[q], __ATOMIC_ACQUIRE) !=
	       (t = __atomic_load_n(target, __ATOMIC_ACQUIRE))) {
		if (aio_clock_ns() > deadline)
			return err_set(
			    err, ETIMEDOUT,
			    "%s: ring %u: %u requests still in flight in the backend after "
			    "%llu s",
			    v->name, q, (uint16_t)(t - *v->used_idx[q]),
			    (unsigned long long)(v->cfg.timeout_ns / 1000000000ULL));
		nanosleep(&pause, NULL);
	}
	return 0;
}

/*
 * Take ring @q back; *base: where the backend stopped. Lock held or no vCPU.
 *
 * The driver may reuse its buffers once a reset completes, so every request
 * the backend took must be back first. qemu-storage-daemon (7.2) answers
 * GET_VRING_BASE before its requests in progress finish and closes the
 * ring's call fd there; a request finishing later then fails to interrupt
 * and breaks the whole export ("Error writing eventfd"). So the ring is
 * drained while it still runs: a kick, so that the backend looks at
 * everything the driver made available, then a wait until the used index
 * caught up with the avail index (a resetting driver adds nothing). Then
 * disable, GET_VRING_BASE, and a check that nothing is missing.
 */
static int vublk_ring_stop(struct vublk *v, unsigned q, uint16_t *base, struct errbuf *err)
{
	uint64_t one = 1;
	uint32_t b = 0;
	uint16_t b16;
	int r, drained;

	v->ring_on[q] = false;
	if (write(v->vdev.kicks[q].fd, &one, sizeof(one)) != sizeof(one))
		return err_set(err, errno, "%s: ring %u doorbell: %s", v->name, q, strerror(errno));
	drained = vublk_wait_used(v, q, v->avail_idx[q], err);
	r = vhost_user_set_vring_enable(&v->vu, q, false, err);
	if (r == 0)
		r = vhost_user_get_vring_base(&v->vu, q, &b, err);
	b16 = (uint16_t)b;
	if (r == 0)
		r = vublk_wait_used(v, q, &b16, err);
	*base = b16;
	return r < 0 ? r : drained;
}

/* Take every ring back: the driver reset the device, or kvmini exits. */
static int vublk_stop(struct vublk *v, struct errbuf *err)
{
	int ret = 0;

	if (!vhost_user_connected(&v->vu)) { /* the backend is gone, its rings with it */
		memset(v->ring_on, 0, sizeof(v->ring_on));
		v->started = false;
		vublk_inflight_free(v);
		return 0;
	}
	for (unsigned q = 0; q < v->vdev.nqueues; q++) {
		uint16_t base;
		int r;

		if (!v->ring_on[q])
			continue;
		r = vublk_ring_stop(v, q, &base, err);
		if (r < 0 && ret == 0)
			ret = r;
	}
	v->started = false;
	vublk_inflight_free(v);
	return ret;
}

static void vublk_driver_ok(struct virtio_dev *vdev)
{
	struct vublk *v = vdev->opaque;
	struct errbuf err = {{0}};
	int r = vublk_start(v, &err);

	for (unsigned q = 0; r == 0 && q < vdev->nqueues; q++) {
		if (!vdev->vqs[q].s.enabled)
			continue;
		r = vublk_ring_start(v, q, vdev->vqs[q].s.last_avail_idx, &err);
	}
	if (r < 0)
		vublk_failed(v, &err);
}

static void vublk_queue_enabled(struct virtio_dev *vdev, unsigned q)
{
	struct vublk *v = vdev->opaque;
	struct errbuf err = {{0}};

	/* Before DRIVER_OK the ring goes to the backend with the others. */
	if (!v->started || vdev->broken)
		return;
	if (vublk_ring_start(v, q, vdev->vqs[q].s.last_avail_idx, &err) < 0)
		vublk_failed(v, &err);
}

/* The driver reset the device: the backend stops every ring. */
static void vublk_reset(struct virtio_dev *vdev)
{
	struct vublk *v = vdev->opaque;
	struct errbuf err = {{0}};

	if (vublk_stop(v, &err) < 0) {
		fprintf(stderr, "kvmini: %s (stopping the backend)\n", err.msg);
		vublk_report(v, err.msg);
	}
}

static const struct virtio_dev_ops vublk_virtio_ops = {
    .driver_ok = vublk_driver_ok,
    .queue_enabled = vublk_queue_enabled,
    .reset = vublk_reset,
};

/*
 * The socket became readable outside a request (main loop): the backend
 * closed it (it died), sent something nobody asked for, or a vCPU's
 * request just got its reply (then the lock waits for that vCPU, and
 * nothing is left to read). A dead backend is reported, and the device
 * needs a reset if the driver was using it: what it had in flight is gone.
 * Also cleans up after a vCPU shut the connection down. Main thread.
 */
static void vublk_sock_ready(void *opaque)
{
	struct vublk *v = opaque;
	struct errbuf err = {{0}};
	ssize_t n;
	char c;

	pthread_mutex_lock(&v->vdev.lock);
	if (!v->vu.broken) {
		n = recv(v->vu.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			pthread_mutex_unlock(&v->vdev.lock);
			return;
		}
		err_set(&err, EPIPE, "%s: %s", v->name,
			n > 0 ? "the backend sent a message kvmini did not ask for"
			      : "the backend closed the connection");
		shutdown(v->vu.fd, SHUT_RDWR);
		v->vu.broken = true;
		if (v->cfg.reconnect_ns)
			vublk_say_lost(v, &err);
		else if (v->started)
			vublk_fail(v, &err);
		else {
			fprintf(stderr, "kvmini: %s\n", err.msg);
			vublk_report(v, err.msg);
		}
	}
	aio_set_fd_handler(v->vm->main_ctx, v->vu.fd, NULL, NULL, NULL);
	v->watching = false;
	vhost_user_close(&v->vu);
	/* The backend is gone, its used indices final: anything made
	 * available and not used may have been taken, partly done. */
	v->lost_busy = false;
	for (unsigned q = 0; q < v->vdev.nqueues; q++)
		if (v->ring_on[q])
			v->lost_busy |= __atomic_load_n(v->used_idx[q], __ATOMIC_ACQUIRE) !=
					__atomic_load_n(v->avail_idx[q], __ATOMIC_ACQUIRE);
	if (v->cfg.reconnect_ns)
		aio_timer_mod(v->retry, aio_clock_ns() + (int64_t)v->cfg.reconnect_ns);
	pthread_mutex_unlock(&v->vdev.lock);
}

/* ---- reconnect= ---- */

/*
 * The handshake on @vu (connected) and what the device needs of a backend
 * (virtio 1.0, indirect descriptors, event index, its configuration,
 * num-queues); the disk's config into @bc. Realize, or the main loop on a
 * connection that is not the device's yet (no lock needed).
 */
static int vublk_greet(const struct vublk *v, struct vhost_user *vu, struct virtio_blk_config *bc,
		       struct errbuf *err)
{
	const uint64_t need = (1ULL << VIRTIO_F_VERSION_1) | VIRTIO_TRANSPORT_FEATURES;
	unsigned nq = v->cfg.num_queues;
	int r;

	r = vhost_user_handshake(vu, VUBLK_PROTOCOL, err);
	if (r < 0)
		return r;
	if ((vu->features & need) != need)
		return err_set(err, ENOTSUP,
			       "%s: the backend lacks virtio 1.0, indirect descriptors or event "
			       "index (features 0x%llx)",
			       v->name, (unsigned long long)vu->features);
	if (!vhost_user_has(vu, VHOST_USER_PROTOCOL_F_CONFIG))
		return err_set(err, ENOTSUP,
			       "%s: the backend does not give its configuration (no CONFIG "
			       "protocol feature): the disk size is unknown",
			       v->name);
	if (nq > vu->max_queues || (nq > 1 && !(vu->features & (1ULL << VIRTIO_BLK_F_MQ))))
		return err_set(err, EINVAL, "%s: num-queues=%u, but the backend serves %u", v->name,
			       nq, vu->features & (1ULL << VIRTIO_BLK_F_MQ) ? vu->max_queues : 1);
	memset(bc, 0, sizeof(*bc));
	return vhost_user_get_config(vu, bc, VUBLK_CONFIG_LEN, err);
}

/*
 * May @vu, a restarted backend, take over? It must have what the driver
 * negotiated (before FEATURES_OK: what the guest was offered), serve a
 * disk of the same size, and keep an inflight region if the device has
 * one and requests were in flight (they are resubmitted from it). Lock
 * held.
 */
static int vublk_compatible(const struct vublk *v, const struct vhost_user *vu,
			    const struct virtio_blk_config *bc, struct errbuf *err)
{
	uint64_t want = v->vdev.status & VIRTIO_CONFIG_S_FEATURES_OK
			    ? v->vdev.guest_features & VUBLK_FEATURES
			    : v->offered;

	if ((vu->features & want) != want)
		return err_set(err, ENOTSUP,
			       "%s: the restarted backend lacks features the driver uses (0x%llx)",
			       v->name, (unsigned long long)(want & ~vu->features));
	if (bc->capacity != v->capacity)
		return err_set(
		    err, ENOTSUP, "%s: the restarted backend's disk has %llu sectors, not %llu",
		    v->name, (unsigned long long)bc->capacity, (unsigned long long)v->capacity);
	if (v->inflight_fd >= 0 && v->lost_busy &&
	    !vhost_user_has(vu, VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD))
		return err_set(err, ENOTSUP,
			       "%s: the restarted backend keeps no inflight region: what was in "
			       "flight cannot be resubmitted",
			       v->name);
	return 0;
}

/*
 * Give the new connection what its predecessor had. Without DRIVER_OK (or
 * in NEEDS_RESET) there is nothing: the driver's next steps send it. Else
 * the features, memory table, the SAME inflight region, and each enabled
 * ring. A ring the old backend had restarts at the used index in guest RAM
 * (what the old backend finished, as the driver sees it): the backend
 * resubmits what the region marks in flight (taken, not finished; a
 * libvhost-user backend also derives its next avail index as that used
 * index plus those), so nothing is lost or run twice. A ring it never had
 * starts where the transport says. Without a region (qemu-storage-daemon
 * offers none) that is exact only if nothing was in flight when the old
 * backend went away (every ring's used index had reached its avail index):
 * else which requests it had taken, and whether it completed them out of
 * order, is unknown, and the device needs a reset. Lock held.
 */
static int vublk_resume(struct vublk *v, struct errbuf *err)
{
	struct virtio_dev *vdev = &v->vdev;
	bool had = false;
	int r;

	if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) || vdev->broken)
		return 0;
	for (unsigned q = 0; q < vdev->nqueues; q++)
		had |= v->ring_on[q];
	if (had && v->inflight_fd < 0 && v->lost_busy)
		return err_set(err, EPROTO,
			       "%s: the backend died with requests in flight and kept no inflight "
			       "region: they cannot be resubmitted",
			       v->name);
	r = vublk_start(v, err);
	for (unsigned q = 0; r == 0 && q < vdev->nqueues; q++) {
		uint16_t base = vdev->vqs[q].s.last_avail_idx;

		if (!vdev->vqs[q].s.enabled)
			continue;
		if (v->ring_on[q])
			base = __atomic_load_n(v->used_idx[q], __ATOMIC_ACQUIRE);
		r = vublk_ring_start(v, q, base, err);
	}
	return r;
}

/* An attempt failed: say so once per outage, try again later. Lock held. */
static void vublk_retry_failed(struct vublk *v, const struct errbuf *err)
{
	if (!v->retry_said) {
		fprintf(stderr, "kvmini: %s; retrying every %llu s\n", err->msg,
			(unsigned long long)(v->cfg.reconnect_ns / 1000000000ULL));
		vublk_report(v, err->msg);
	}
	v->retry_said = true;
	aio_timer_mod(v->retry, aio_clock_ns() + (int64_t)v->cfg.reconnect_ns);
}

/*
 * reconnect=: one attempt (main loop, the retry timer). The handshake runs
 * on a connection that is not the device's yet, without the lock; the
 * rest under it. Every message waits at most the timeout, and a failure
 * ends the connection, so a vCPU or QMP waits at most about that long.
 */
static void vublk_retry(void *opaque)
{
	struct vublk *v = opaque;
	struct virtio_dev *vdev = &v->vdev;
	struct errbuf err = {{0}};
	struct virtio_blk_config bc;
	struct vhost_user nvu;
	char data[80];
	int r;

	if (vhost_user_connect(&nvu, v->cfg.socket, v->name, v->cfg.timeout_ns, &err) < 0) {
		/* nobody listens yet: quietly */
		aio_timer_mod(v->retry, aio_clock_ns() + (int64_t)v->cfg.reconnect_ns);
		return;
	}
	r = vublk_greet(v, &nvu, &bc, &err);
	pthread_mutex_lock(&vdev->lock);
	if (r == 0 && vublk_compatible(v, &nvu, &bc, &err) < 0) {
		vhost_user_close(&nvu);
		/* The driver cannot go on with this backend (that is said). */
		if ((vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) && !vdev->broken) {
			vublk_fail(v, &err);
			v->retry_said = true;
		}
		r = -ENOTSUP;
	}
	if (r < 0) {
		vhost_user_close(&nvu);
		vublk_retry_failed(v, &err);
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	v->vu = nvu;
	r = vublk_resume(v, &err);
	if (r < 0 && !vhost_user_connected(&v->vu)) { /* gone again */
		vhost_user_close(&v->vu);
		vublk_retry_failed(v, &err);
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	if (r < 0) /* refused: the connection stays, the driver resets */
		vublk_fail(v, &err);
	if (aio_set_fd_handler(v->vm->main_ctx, v->vu.fd, vublk_sock_ready, NULL, v) == 0)
		v->watching = true;
	else
		fprintf(stderr, "kvmini: %s: cannot watch the backend's socket\n", v->name);
	pthread_mutex_unlock(&vdev->lock);
	if (r < 0)
		return;
	fprintf(stderr, "kvmini: %s: reconnected to the backend\n", v->name);
	snprintf(data, sizeof(data), "{\"device\": \"%s\"}", v->name);
	if (v->vm->events.event)
		v->vm->events.event(v->vm->events.opaque, "VHOST_USER_BLK_RECONNECTED", data);
}

/* ---- realize, exit ---- */

/* Connect at realize: the handshake, the disk's config, the features to offer. */
static int vublk_connect(struct vublk *v, struct virtio_blk_config *bc, uint64_t *features,
			 struct errbuf *err)
{
	int r;

	r = vhost_user_connect(&v->vu, v->cfg.socket, v->name, v->cfg.timeout_ns, err);
	if (r == 0)
		r = vublk_greet(v, &v->vu, bc, err);
	if (r < 0)
		return r;
	*features = v->vu.features & VUBLK_FEATURES;
	if (*features & (1ULL << VIRTIO_BLK_F_MQ))
		bc->num_queues = (uint16_t)v->cfg.num_queues;
	v->offered = *features;
	v->capacity = bc->capacity;
	return 0;
}

static void vublk_free(struct vublk *v)
{
	vhost_user_close(&v->vu);
	vublk_inflight_free(v);
	if (v->retry)
		aio_timer_free(v->retry);
	if (v->null_call_fd >= 0)
		close(v->null_call_fd);
	if (v->event_bh)
		aio_bh_delete(v->event_bh);
	pthread_mutex_destroy(&v->event_lock);
	free(v);
}

static int vublk_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct virtio_blk_config bc;
	struct virtio_dev_params p;
	uint64_t features = 0;
	struct vublk *v;
	int index = 0, ret;

	for (int i = 0; i < vm->ndevices; i++)
		index += vm->devices[i].ops == &vhost_user_blk_ops;
	v = calloc(1, sizeof(*v));
	if (!v)
		return err_set(err, ENOMEM, "out of memory");
	v->vm = vm;
	v->inflight_fd = -1;
	v->vu.fd = -1;
	v->null_call_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->null_call_fd < 0) {
		free(v);
		return err_set(err, errno, "eventfd: %s", strerror(errno));
	}
	pthread_mutex_init(&v->event_lock, NULL);
	snprintf(v->name, sizeof(v->name), "vhost-user-blk%d", index);
	ret = vhost_user_blk_config_parse(opts ? opts : "", &v->cfg, err);
	if (ret < 0)
		goto fail;
	if (vm->mem.nregions == 0 || vm->mem.regions[0].fd < 0) {
		ret = err_set(err, EINVAL, "%s: guest RAM is not shared memory", v->name);
		goto fail;
	}
	v->event_bh = aio_bh_new(vm->main_ctx, vublk_event_bh, v);
	if (!v->event_bh) {
		ret = err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	if (v->cfg.reconnect_ns) {
		v->retry = aio_timer_new(vm->main_ctx, vublk_retry, v);
		if (!v->retry) {
			ret = err_set(err, ENOMEM, "out of memory");
			goto fail;
		}
	}
	ret = vublk_connect(v, &bc, &features, err);
	if (ret < 0)
		goto fail;
	p = (struct virtio_dev_params){
	    .name = v->name,
	    .device_id = VIRTIO_ID_BLOCK,
	    .pci_class = VUBLK_CLASS_STORAGE,
	    .features = features,
	    .nqueues = v->cfg.num_queues,
	    .queue_size = VUBLK_QUEUE_SIZE,
	    .config = &bc,
	    .config_len = VUBLK_CONFIG_LEN,
	    .ctx = vm->main_ctx,
	    .external = true,
	    .ops = &vublk_virtio_ops,
	    .opaque = v,
	};
	ret = virtio_pci_init(&v->vdev, vm, &p, err);
	if (ret < 0)
		goto fail;
	ret = aio_set_fd_handler(vm->main_ctx, v->vu.fd, vublk_sock_ready, NULL, v);
	if (ret < 0) {
		err_set(err, -ret, "%s: cannot watch the backend's socket", v->name);
		virtio_pci_exit(&v->vdev);
		goto fail;
	}
	v->watching = true;
	*state = v;
	return 0;
fail:
	vublk_free(v);
	return ret;
}

static void vublk_exit(void *state)
{
	struct vublk *v = state;
	struct errbuf err = {{0}};

	pthread_mutex_lock(&v->vdev.lock);
	if (vublk_stop(v, &err) < 0)
		fprintf(stderr, "kvmini: %s (stopping the backend)\n", err.msg);
	pthread_mutex_unlock(&v->vdev.lock);
	if (v->watching)
		aio_set_fd_handler(v->vm->main_ctx, v->vu.fd, NULL, NULL, NULL);
	virtio_pci_stop(&v->vdev);
	virtio_pci_exit(&v->vdev);
	vublk_free(v);
}

/* ---- snapshots ---- */

/*
 * The device's section: this header, then the virtio transport's state
 * (virtio_pci_save) with no request in flight: saving takes the rings back
 * from the backend after it finished everything the driver had made
 * available, and each queue's last_avail_idx (= used index) is where the
 * next backend starts.
 */
struct vublk_snap {
	uint32_t version;
	uint32_t nqueues;
	uint64_t capacity; /* sectors: the backend at restore must serve as many */
};

#define VUBLK_SNAP_VERSION 1

/*
 * Kick each ring the backend serves (so that it looks at everything the
 * driver made available) and wait, at most the timeout for each, until its
 * used index reaches its avail index. The rings stay with the backend.
 * Lock held, vCPUs parked (the avail indices stay put), backend connected.
 */
static int vublk_drain_rings(struct vublk *v, struct errbuf *err)
{
	struct virtio_dev *vdev = &v->vdev;
	uint64_t one = 1;
	int r;

	for (unsigned q = 0; q < vdev->nqueues; q++) {
		if (!v->ring_on[q])
			continue;
		if (write(vdev->kicks[q].fd, &one, sizeof(one)) != sizeof(one))
			return err_set(err, errno, "%s: ring %u doorbell: %s", v->name, q,
				       strerror(errno));
		r = vublk_wait_used(v, q, v->avail_idx[q], err);
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * Take the rings back for a snapshot: drain every ring first
 * (vublk_drain_rings), so that if one does not drain, nothing was stopped
 * and the VM goes on as before. (Stopping first and keeping what is in
 * flight would need the backend's inflight region, which
 * qemu-storage-daemon does not keep, and it answers GET_VRING_BASE before
 * its requests finish.) Then SET_VRING_ENABLE 0 and GET_VRING_BASE, whose
 * base must be the used index. Lock held, main thread, vCPUs parked.
 */
static int vublk_quiesce(struct vublk *v, struct errbuf *err)
{
	struct virtio_dev *vdev = &v->vdev;
	int r = vublk_drain_rings(v, err);

	if (r < 0)
		return r;
	for (unsigned q = 0; q < vdev->nqueues; q++) {
		struct virtqueue *vq = &vdev->vqs[q];
		uint16_t used;
		uint32_t b;

		if (!v->ring_on[q])
			continue;
		/* Drained: whoever serves the ring next starts at its used
		 * index, even if stopping it fails below. */
		used = __atomic_load_n(v->used_idx[q], __ATOMIC_ACQUIRE);
		vq->s.last_avail_idx = vq->s.used_idx = used;
		v->ring_on[q] = false;
		r = vhost_user_set_vring_enable(&v->vu, q, false, err);
		if (r == 0)
			r = vhost_user_get_vring_base(&v->vu, q, &b, err);
		if (r < 0)
			return r;
		if ((uint16_t)b != used)
			return err_set(
			    err, EPROTO,
			    "%s: ring %u: the backend stopped at avail index %u, but the "
			    "used index is %u",
			    v->name, q, b, used);
	}
	return 0;
}

static int vublk_save(void *state, void *buf, size_t len)
{
	struct vublk *v = state;
	struct vublk_snap h = {
	    .version = VUBLK_SNAP_VERSION, .nqueues = v->vdev.nqueues, .capacity = v->capacity};
	struct errbuf err = {{0}};
	bool had = false;
	int r = 0, n;

	if (len < sizeof(h))
		return -ENOSPC;
	pthread_mutex_lock(&v->vdev.lock);
	for (unsigned q = 0; q < v->vdev.nqueues; q++)
		had |= v->ring_on[q];
	if (had && !vhost_user_connected(&v->vu))
		r = err_set(&err, ENOTCONN,
			    "%s: the backend is gone with the rings: what it had in flight is "
			    "unknown",
			    v->name);
	else if (had)
		r = vublk_quiesce(v, &err);
	pthread_mutex_unlock(&v->vdev.lock);
	if (r < 0) {
		fprintf(stderr, "kvmini: %s (saving the device)\n", err.msg);
		return r;
	}
	n = virtio_pci_save(&v->vdev, (uint8_t *)buf + sizeof(h), len - sizeof(h), 0);
	if (n < 0)
		return n;
	memcpy(buf, &h, sizeof(h));
	return (int)(sizeof(h) + (size_t)n);
}

/* Never called: the state holds no request in flight (virtio_pci_load checks). */
static int vublk_load_elem(void *opaque, struct vq_elem *elem, struct errbuf *err)
{
	struct vublk *v = opaque;

	return err_set(err, EINVAL, "%s: in-flight request at head %u in a ring the backend serves",
		       v->name, elem->head);
}

static int vublk_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct vublk *v = state;
	struct vublk_snap h;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: state is truncated (%zu bytes)", v->name, len);
	memcpy(&h, buf, sizeof(h));
	if (h.version != VUBLK_SNAP_VERSION)
		return err_set(err, EINVAL, "%s: state version %u, kvmini reads %u", v->name,
			       h.version, VUBLK_SNAP_VERSION);
	if (h.nqueues != v->vdev.nqueues)
		return err_set(err, EINVAL, "%s: the snapshot has %u queues, num-queues=%u",
			       v->name, h.nqueues, v->vdev.nqueues);
	if (h.capacity != v->capacity)
		return err_set(
		    err, EINVAL, "%s: the snapshot's disk has %llu sectors, the backend's %llu",
		    v->name, (unsigned long long)h.capacity, (unsigned long long)v->capacity);
	if (v->started)
		return err_set(err, EBUSY, "%s: can only load into a fresh device", v->name);
	return virtio_pci_load(&v->vdev, (const uint8_t *)buf + sizeof(h), len - sizeof(h), 0,
			       vublk_load_elem, v, err);
}

/*
 * The VM runs again: rings that a snapshot took back (or a restore
 * brought) go to the backend, from their last_avail_idx; with a restore,
 * first the features and memory table. Each gets an interrupt: the
 * completions the drain waited for interrupted the vCPUs after their state
 * was saved, so a restored guest would not have seen them (a spare one is
 * harmless). Nothing to do after a plain stop: the rings stayed. Main
 * thread.
 */
static void vublk_resume_op(void *state)
{
	struct vublk *v = state;
	struct virtio_dev *vdev = &v->vdev;
	struct errbuf err = {{0}};
	bool back[VIRTIO_PCI_MAX_QUEUES] = {false};
	uint64_t one = 1;
	int r = 0;

	pthread_mutex_lock(&vdev->lock);
	if (!(vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) || vdev->broken ||
	    !vhost_user_connected(&v->vu)) {
		pthread_mutex_unlock(&vdev->lock);
		return;
	}
	if (!v->started)
		r = vublk_start(v, &err);
	for (unsigned q = 0; r == 0 && q < vdev->nqueues; q++) {
		if (!vdev->vqs[q].s.enabled || v->ring_on[q])
			continue;
		r = vublk_ring_start(v, q, vdev->vqs[q].s.last_avail_idx, &err);
		back[q] = true;
	}
	if (r < 0)
		vublk_failed(v, &err);
	for (unsigned q = 0; r == 0 && q < vdev->nqueues; q++) {
		uint16_t vec = vdev->vqs[q].s.vector;

		if (back[q] && vec != VIRTIO_MSI_NO_VECTOR &&
		    write(msix_vector_fd(&vdev->msix, vec), &one, sizeof(one)) != sizeof(one))
			fprintf(stderr, "kvmini: %s: ring %u interrupt: %s\n", v->name, q,
				strerror(errno));
	}
	pthread_mutex_unlock(&vdev->lock);
}

/*
 * The VM stopped (vCPUs parked): wait until the backend has served
 * everything the driver made available, so that a stopped VM's disk stays
 * as it is (a copy or a backend restart is then safe, as after a
 * snapshot). The rings stay with the backend: cont has nothing to give
 * back. A backend that has not finished within the timeout is reported,
 * and the VM stays stopped. Main thread (or whoever stops the VM), vCPUs
 * parked.
 */
static void vublk_drain(void *state)
{
	struct vublk *v = state;
	struct errbuf err = {{0}};
	int r = 0;

	pthread_mutex_lock(&v->vdev.lock);
	/* A backend that is gone (reconnect pending) serves nothing. */
	if (vhost_user_connected(&v->vu))
		r = vublk_drain_rings(v, &err);
	pthread_mutex_unlock(&v->vdev.lock);
	if (r < 0)
		fprintf(stderr, "kvmini: %s (stopping the VM: it may still write the disk)\n",
			err.msg);
}

const struct device_ops vhost_user_blk_ops = {
    .name = "vhost-user-blk",
    .realize = vublk_realize,
    .drain = vublk_drain,
    .save = vublk_save,
    .load = vublk_load,
    .resume = vublk_resume_op,
    .exit = vublk_exit,
};
