// SPDX-License-Identifier: MIT
/*
 * hyperv-testdev (hyperv_testdev.h), as kvm-unit-tests uses QEMU's.
 *
 * Every route's eventfds and GSI are made at realize, a fixed pool: the
 * commands run on vCPU threads, whose sandbox creates no fds and which
 * cannot add fd handlers to the main loop. A route in use has its irqfd
 * (and for a message connection the resample fd, signalled when the guest
 * acknowledges the SINT) attached in KVM; a free one has nothing attached.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/hyperv_testdev.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

enum hv_route_kind { HV_ROUTE_FREE, HV_ROUTE_SINT, HV_ROUTE_MSG, HV_ROUTE_EVT };

struct hyperv_testdev;

struct hv_route {
	struct hyperv_testdev *dev;
	enum hv_route_kind kind;
	uint32_t vcpu, sint, conn_id;
	uint32_t gsi;
	int irq_fd;  /* the irqfd: a write signals the SINT */
	int ack_fd;  /* resample fd (message connections): the guest's EOM */
	int evt_fd;  /* KVM's HvSignalEvent on conn_id (event connections) */
	bool staged; /* msg waits for the slot to be free */
	struct hv_message msg;
};

struct hyperv_testdev {
	struct hyperv *hv;
	struct bus *pio;
	struct msi_router *router;
	const struct kvm_irq_ops *kvm;
	void *kvm_opaque;
	struct aio_context *ctx;
	pthread_mutex_t lock; /* routes[] */
	struct hv_route routes[HV_TESTDEV_ROUTES];
};

static const char *const hv_route_what[] = {
    [HV_ROUTE_SINT] = "SINT route",
    [HV_ROUTE_MSG] = "message connection",
    [HV_ROUTE_EVT] = "event connection",
};

static void hv_signal(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0)
		perror("kvmini: hyperv-testdev: signal a SINT");
}

static void hv_drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
		;
}

/* Lock held. The route with @kind matching (@vcpu, @sint), or for the
 * connections @conn_id only; NULL if none. */
static struct hv_route *hv_find(struct hyperv_testdev *t, enum hv_route_kind kind, uint32_t vcpu,
				uint32_t sint, uint32_t conn_id)
{
	for (int i = 0; i < HV_TESTDEV_ROUTES; i++) {
		struct hv_route *r = &t->routes[i];

		if (r->kind != kind)
			continue;
		if (kind == HV_ROUTE_SINT ? r->vcpu == vcpu && r->sint == sint
					  : r->conn_id == conn_id)
			return r;
	}
	return NULL;
}

/* Lock held. Detach and free @r. */
static void hv_route_free(struct hyperv_testdev *t, struct hv_route *r)
{
	int ret;

	if (r->kind == HV_ROUTE_EVT)
		t->kvm->hyperv_eventfd(t->kvm_opaque, r->conn_id, r->evt_fd, false);
	t->kvm->irqfd(t->kvm_opaque, r->irq_fd, r->gsi, false);
	msi_router_clear(t->router, r->gsi);
	ret = msi_router_commit(t->router);
	if (ret < 0)
		fprintf(stderr, "kvmini: hyperv-testdev: KVM_SET_GSI_ROUTING: %s\n",
			strerror(-ret));
	hv_drain(r->irq_fd);
	hv_drain(r->ack_fd);
	hv_drain(r->evt_fd);
	r->kind = HV_ROUTE_FREE;
	r->staged = false;
}

/* Lock held. A route of @kind to (@vcpu, @sint) for @conn_id, attached. */
static int hv_route_new(struct hyperv_testdev *t, enum hv_route_kind kind, uint32_t vcpu,
			uint32_t sint, uint32_t conn_id)
{
	struct hv_route *r = NULL;
	int ret;

	for (int i = 0; i < HV_TESTDEV_ROUTES && !r; i++)
		if (t->routes[i].kind == HV_ROUTE_FREE)
			r = &t->routes[i];
	if (!r)
		return -ENOSPC;
	ret = msi_router_set_hv_sint(t->router, r->gsi, vcpu, sint);
	if (ret == 0)
		ret = msi_router_commit(t->router);
	if (ret < 0)
		goto fail_route;
	ret = kind == HV_ROUTE_MSG
		  ? t->kvm->irqfd_resample(t->kvm_opaque, r->irq_fd, r->ack_fd, r->gsi)
		  : t->kvm->irqfd(t->kvm_opaque, r->irq_fd, r->gsi, true);
	if (ret < 0)
		goto fail_route;
	if (kind == HV_ROUTE_EVT) {
		ret = t->kvm->hyperv_eventfd(t->kvm_opaque, conn_id, r->evt_fd, true);
		if (ret < 0)
			goto fail_irqfd;
	}
	r->kind = kind;
	r->vcpu = vcpu;
	r->sint = sint;
	r->conn_id = conn_id;
	r->staged = false;
	return 0;

fail_irqfd:
	t->kvm->irqfd(t->kvm_opaque, r->irq_fd, r->gsi, false);
fail_route:
	msi_router_clear(t->router, r->gsi);
	msi_router_commit(t->router);
	return ret;
}

/* Lock held. Put @r's staged message in its slot if free; signal the SINT
 * once it is there. */
static void hv_route_deliver(struct hyperv_testdev *t, struct hv_route *r)
{
	void *slot = hyperv_synic_slot(t->hv, (int)r->vcpu, r->sint, false);

	if (!slot)
		return; /* the guest turned its message page off: held */
	if (hyperv_slot_post(slot, &r->msg) < 0)
		return; /* busy: msg_pending is set, the EOM retries */
	r->staged = false;
	hv_signal(r->irq_fd);
}

/* Lock held. Set @r's event flag; signal the SINT if it was clear. */
static void hv_route_event(struct hyperv_testdev *t, struct hv_route *r)
{
	void *flags = hyperv_synic_slot(t->hv, (int)r->vcpu, r->sint, true);

	if (flags && hyperv_flag_set(flags, r->conn_id))
		hv_signal(r->irq_fd);
}

static void hv_testdev_command(struct hyperv_testdev *t, uint32_t v)
{
	uint32_t sint = v & 0xff, vcpu = (v >> 8) & 0xff, ctl = (v >> 16) & 0xff, conn = v >> 24;
	enum hv_route_kind kind;
	struct hv_route *r;
	int ret;

	if (ctl < HV_TESTDEV_SINT_ROUTE_CREATE || ctl > HV_TESTDEV_EVT_CONN_DESTROY) {
		fprintf(stderr, "kvmini: hyperv-testdev: unknown command %u (value 0x%08x)\n", ctl,
			v);
		return;
	}
	kind = ctl <= HV_TESTDEV_SINT_ROUTE_SET_SINT ? HV_ROUTE_SINT
	       : ctl <= HV_TESTDEV_MSG_CONN_DESTROY  ? HV_ROUTE_MSG
						     : HV_ROUTE_EVT;
	/* The connections' destroy commands name the connection only. */
	if (ctl != HV_TESTDEV_MSG_CONN_DESTROY && ctl != HV_TESTDEV_EVT_CONN_DESTROY &&
	    ((int)vcpu >= t->hv->ncpus || sint >= HV_SINT_COUNT)) {
		fprintf(stderr,
			"kvmini: hyperv-testdev: vCPU %u SINT %u: out of range (value 0x%08x)\n",
			vcpu, sint, v);
		return;
	}
	pthread_mutex_lock(&t->lock);
	switch (ctl) {
	case HV_TESTDEV_SINT_ROUTE_CREATE:
	case HV_TESTDEV_MSG_CONN_CREATE:
	case HV_TESTDEV_EVT_CONN_CREATE:
		if (kind != HV_ROUTE_SINT && hv_find(t, kind, vcpu, sint, conn)) {
			fprintf(stderr, "kvmini: hyperv-testdev: %s %u exists already\n",
				hv_route_what[kind], conn);
			break;
		}
		ret = hv_route_new(t, kind, vcpu, sint, kind == HV_ROUTE_SINT ? 0 : conn);
		if (ret == -ENOSPC)
			fprintf(stderr, "kvmini: hyperv-testdev: more than %d SINT routes\n",
				HV_TESTDEV_ROUTES);
		else if (ret < 0)
			fprintf(stderr, "kvmini: hyperv-testdev: %s to vCPU %u SINT %u: %s\n",
				hv_route_what[kind], vcpu, sint, strerror(-ret));
		break;
	default:
		r = hv_find(t, kind, vcpu, sint, conn);
		if (!r) {
			if (kind == HV_ROUTE_SINT)
				fprintf(
				    stderr,
				    "kvmini: hyperv-testdev: no SINT route to vCPU %u SINT %u\n",
				    vcpu, sint);
			else
				fprintf(stderr, "kvmini: hyperv-testdev: no %s %u\n",
					hv_route_what[kind], conn);
			break;
		}
		if (ctl == HV_TESTDEV_SINT_ROUTE_SET_SINT)
			hv_signal(r->irq_fd);
		else
			hv_route_free(t, r);
		break;
	}
	pthread_mutex_unlock(&t->lock);
}

static void hv_testdev_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	uint32_t v;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (off != 0 || len != 4)
		return; /* QEMU's device takes 32-bit writes only */
	memcpy(&v, data, sizeof(v));
	hv_testdev_command(opaque, v);
}

/* HvPostMessage to a connection: vCPU thread. */
static unsigned hv_testdev_post_message(void *opaque, uint32_t conn_id,
					const struct hv_message *msg)
{
	struct hyperv_testdev *t = opaque;
	unsigned status = HV_STATUS_SUCCESS;
	struct hv_route *r;

	pthread_mutex_lock(&t->lock);
	r = hv_find(t, HV_ROUTE_MSG, 0, 0, conn_id);
	if (!r) {
		status = HV_STATUS_INVALID_CONNECTION_ID;
	} else if (r->staged) {
		status = HV_STATUS_INSUFFICIENT_BUFFERS;
	} else if (!hyperv_synic_slot(t->hv, (int)r->vcpu, r->sint, false)) {
		status = HV_STATUS_INVALID_HYPERCALL_INPUT; /* no message page */
	} else {
		r->msg = *msg;
		r->staged = true;
		hv_route_deliver(t, r);
	}
	pthread_mutex_unlock(&t->lock);
	return status;
}

/* HvSignalEvent that KVM passed on (no eventfd for it): vCPU thread. */
static unsigned hv_testdev_signal_event(void *opaque, uint32_t conn_id, uint16_t flag)
{
	struct hyperv_testdev *t = opaque;
	unsigned status = HV_STATUS_SUCCESS;
	struct hv_route *r;

	pthread_mutex_lock(&t->lock);
	r = hv_find(t, HV_ROUTE_EVT, 0, 0, conn_id);
	if (!r)
		status = HV_STATUS_INVALID_CONNECTION_ID;
	else
		hv_route_event(t, r);
	pthread_mutex_unlock(&t->lock);
	return status;
}

static const struct hyperv_conn_ops hv_testdev_conn_ops = {
    .post_message = hv_testdev_post_message,
    .signal_event = hv_testdev_signal_event,
};

/* Route @r's fds became readable (or a poll): act on them. */
static void hv_route_poll(struct hyperv_testdev *t, struct hv_route *r)
{
	uint64_t v;
	bool acked, evt;

	acked = read(r->ack_fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
	evt = read(r->evt_fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
	if (!acked && !evt)
		return;
	pthread_mutex_lock(&t->lock);
	if (acked && r->kind == HV_ROUTE_MSG && r->staged)
		hv_route_deliver(t, r);
	if (evt && r->kind == HV_ROUTE_EVT)
		hv_route_event(t, r);
	pthread_mutex_unlock(&t->lock);
}

static void hv_route_readable(void *opaque)
{
	struct hv_route *r = opaque;

	hv_route_poll(r->dev, r);
}

void hyperv_testdev_poll(void *state)
{
	struct hyperv_testdev *t = state;

	for (int i = 0; i < HV_TESTDEV_ROUTES; i++)
		hv_route_poll(t, &t->routes[i]);
}

/* Close the pool (after every route was freed). */
static void hv_testdev_free(struct hyperv_testdev *t)
{
	for (int i = 0; i < HV_TESTDEV_ROUTES; i++) {
		struct hv_route *r = &t->routes[i];
		int fds[] = {r->irq_fd, r->ack_fd, r->evt_fd};

		for (int k = 0; k < 3; k++) {
			if (fds[k] < 0)
				continue;
			if (t->ctx && k > 0)
				aio_set_fd_handler(t->ctx, fds[k], NULL, NULL, NULL);
			close(fds[k]);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int hyperv_testdev_new(struct hyperv *hv, struct bus *pio, struct msi_router *router,
		       const struct kvm_irq_ops *kvm, void *kvm_opaque, struct aio_context *ctx,
		       void **state, struct errbuf *err)
{
	struct hyperv_testdev *t;
	int ret;

	if (!kvm->irqfd_resample || !kvm->hyperv_eventfd)
		return err_set(err, ENOSYS,
			       "hyperv-testdev: no resample irqfds or Hyper-V eventfds");
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(err, ENOMEM, "hyperv-testdev: out of memory");
	t->hv = hv;
	t->pio = pio;
	t->router = router;
	t->kvm = kvm;
	t->kvm_opaque = kvm_opaque;
	t->ctx = ctx;
	pthread_mutex_init(&t->lock, NULL);
	for (int i = 0; i < HV_TESTDEV_ROUTES; i++) {
		struct hv_route *r = &t->routes[i];

		r->dev = t;
		r->irq_fd = r->ack_fd = r->evt_fd = -1;
	}
	for (int i = 0; i < HV_TESTDEV_ROUTES; i++) {
		struct hv_route *r = &t->routes[i];

		r->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->evt_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->irq_fd < 0 || r->ack_fd < 0 || r->evt_fd < 0) {
			ret = err_set(err, errno, "hyperv-testdev: eventfd: %s", strerror(errno));
			goto fail;
		}
		ret = msi_router_alloc_gsi(router, &r->gsi);
		if (ret < 0) {
			err_set(err, -ret, "hyperv-testdev: no GSI left for its SINT routes");
			goto fail;
		}
		if (ctx && (aio_set_fd_handler(ctx, r->ack_fd, hv_route_readable, NULL, r) < 0 ||
			    aio_set_fd_handler(ctx, r->evt_fd, hv_route_readable, NULL, r) < 0)) {
			ret = err_set(err, ENOMEM, "hyperv-testdev: cannot watch its eventfds");
			goto fail;
		}
	}
	ret = bus_register(pio, HV_TESTDEV_PORT, 4, hv_testdev_io, t, "hyperv-testdev", err);
	if (ret < 0)
		goto fail;
	hyperv_set_handlers(hv, &hv_testdev_conn_ops, t);
	*state = t;
	return 0;

fail:
	hv_testdev_free(t);
	return ret;
}

static int hv_testdev_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	if (!vm->hyperv)
		return err_set(err, EINVAL, "hyperv-testdev needs --hyperv");
	if (!vm->pci)
		return err_set(err, EINVAL, "hyperv-testdev needs the PCI host's GSI routing");
	return hyperv_testdev_new(vm->hyperv, &vm->pio, &vm->pci->msi, &kvm_irq_ops_vm, &vm->vm_fd,
				  vm->main_ctx, state, err);
}

/* A reset forgets every route and connection, as the guest does. */
static void hv_testdev_reset(void *state)
{
	struct hyperv_testdev *t = state;

	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < HV_TESTDEV_ROUTES; i++)
		if (t->routes[i].kind != HV_ROUTE_FREE)
			hv_route_free(t, &t->routes[i]);
	pthread_mutex_unlock(&t->lock);
}

static void hv_testdev_exit(void *state)
{
	struct hyperv_testdev *t = state;

	hyperv_set_handlers(t->hv, NULL, NULL);
	hv_testdev_reset(t);
	bus_unregister(t->pio, HV_TESTDEV_PORT);
	hv_testdev_free(t);
}

const struct device_ops hyperv_testdev_ops = {
    .name = "hyperv-testdev",
    .realize = hv_testdev_realize,
    .reset = hv_testdev_reset,
    .exit = hv_testdev_exit,
};
