/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/hyperv.c (SIMP slot posting, event flags, the
 * hypercall exits) and vmm/hyperv_testdev.c through its port, with a
 * recording kvm_irq_ops: routes, irqfds and KVM's eventfds are recorded,
 * the eventfds themselves are real, so that a test signals an
 * acknowledgement or an HvSignalEvent as KVM would and reads the SINT
 * signals as KVM would.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/hyperv.h"
#include "vmm/hyperv_testdev.h"

/* The device watches no fds in these tests (ctx NULL): poll instead. */
int aio_set_fd_handler(struct aio_context *ctx, int fd, aio_fd_fn *io_read, aio_fd_fn *io_write,
		       void *opaque)
{
	return -ENOSYS;
}

/* ---- recording KVM ---- */

#define MAX_FDS 256

static struct {
	struct kvm_irq_routing_entry routes[128];
	uint32_t nroutes;
	int gsi_of_fd[1024];	  /* attached irqfds: fd -> gsi + 1 */
	int resample_of_fd[1024]; /* fd -> resample fd + 1 */
	int evt_fd_of_conn[256];  /* conn_id -> eventfd + 1 */
	int nset_routing;
} kvm;

static int rec_set_gsi_routing(void *opaque, const struct kvm_irq_routing *t)
{
	kvm.nroutes = 0;
	for (uint32_t i = 0; i < t->nr; i++)
		if (t->entries[i].type == KVM_IRQ_ROUTING_HV_SINT)
			kvm.routes[kvm.nroutes++] = t->entries[i];
	kvm.nset_routing++;
	return 0;
}

static int rec_irqfd(void *opaque, int fd, uint32_t gsi, bool assign)
{
	assert_in_range(fd, 0, 1023);
	kvm.gsi_of_fd[fd] = assign ? (int)gsi + 1 : 0;
	if (!assign)
		kvm.resample_of_fd[fd] = 0;
	return 0;
}

static int rec_irqfd_resample(void *opaque, int fd, int resample_fd, uint32_t gsi)
{
	rec_irqfd(opaque, fd, gsi, true);
	kvm.resample_of_fd[fd] = resample_fd + 1;
	return 0;
}

static int rec_hyperv_eventfd(void *opaque, uint32_t conn_id, int fd, bool assign)
{
	assert_in_range(conn_id, 0, 255);
	kvm.evt_fd_of_conn[conn_id] = assign ? fd + 1 : 0;
	return 0;
}

static const struct kvm_irq_ops rec_ops = {
    .set_gsi_routing = rec_set_gsi_routing,
    .irqfd = rec_irqfd,
    .irqfd_resample = rec_irqfd_resample,
    .hyperv_eventfd = rec_hyperv_eventfd,
};

/* The irqfd attached to the route to (vcpu, sint), -1 if none. */
static int irqfd_of(uint32_t vcpu, uint32_t sint)
{
	for (uint32_t i = 0; i < kvm.nroutes; i++) {
		if (kvm.routes[i].u.hv_sint.vcpu != vcpu || kvm.routes[i].u.hv_sint.sint != sint)
			continue;
		for (int fd = 0; fd < 1024; fd++)
			if (kvm.gsi_of_fd[fd] == (int)kvm.routes[i].gsi + 1)
				return fd;
	}
	return -1;
}

/* How many times @fd was signalled since the last look. */
static uint64_t signals(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static void kick(int fd)
{
	uint64_t one = 1;

	assert_int_equal(write(fd, &one, sizeof(one)), sizeof(one));
}

/* ---- the fixture: 4 MiB of RAM, 2 vCPUs, the device ---- */

#define NCPUS	  2
#define MSG_PAGE  0x10000ull /* vCPU n's pages: + n * 0x10000 */
#define EVT_PAGE  0x11000ull
#define POST_PAGE 0x30000ull

struct hv_fixture {
	struct guest_mem m;
	struct hyperv hv;
	struct bus pio;
	struct msi_router router;
	void *dev;
};

static int setup(void **state)
{
	struct hv_fixture *f = calloc(1, sizeof(*f));
	struct errbuf err;

	memset(&kvm, 0, sizeof(kvm));
	assert_non_null(f);
	assert_int_equal(guest_mem_init(&f->m, 4 << 20), 0);
	assert_int_equal(hyperv_init(&f->hv, &f->m, NCPUS), 0);
	bus_init(&f->pio, "port I/O");
	assert_int_equal(msi_router_init(&f->router, &rec_ops, NULL), 0);
	assert_int_equal(
	    hyperv_testdev_new(&f->hv, &f->pio, &f->router, &rec_ops, NULL, NULL, &f->dev, &err),
	    0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct hv_fixture *f = *state;

	hyperv_testdev_ops.exit(f->dev);
	msi_router_destroy(&f->router);
	bus_destroy(&f->pio);
	hyperv_destroy(&f->hv);
	guest_mem_free(&f->m);
	free(f);
	return 0;
}

static void ctl(struct hv_fixture *f, uint32_t ctl, uint32_t vcpu, uint32_t sint, uint32_t conn)
{
	uint32_t v = conn << 24 | ctl << 16 | vcpu << 8 | sint;

	assert_true(bus_dispatch(&f->pio, HV_TESTDEV_PORT, &v, 4, true));
}

/* vCPU @vcpu turns its SynIC on with its pages (the exit KVM makes). */
static void synic_on(struct hv_fixture *f, int vcpu)
{
	struct kvm_hyperv_exit e = {.type = KVM_EXIT_HYPERV_SYNIC};

	e.u.synic.control = 1;
	e.u.synic.msg_page = (MSG_PAGE + (uint64_t)vcpu * 0x10000) | 1;
	e.u.synic.evt_page = (EVT_PAGE + (uint64_t)vcpu * 0x10000) | 1;
	hyperv_handle_exit(&f->hv, vcpu, &e);
}

static uint64_t hcall(struct hv_fixture *f, int vcpu, uint16_t code, bool fast, uint64_t param)
{
	struct kvm_hyperv_exit e = {.type = KVM_EXIT_HYPERV_HCALL};

	e.u.hcall.input = code | (fast ? 1u << 16 : 0);
	e.u.hcall.params[0] = param;
	e.u.hcall.result = 0xdead;
	hyperv_handle_exit(&f->hv, vcpu, &e);
	return e.u.hcall.result;
}

static uint64_t post(struct hv_fixture *f, uint32_t conn, uint64_t payload)
{
	struct hv_post_message_input in = {
	    .connection_id = conn, .message_type = 0x12345678, .payload_size = 8};

	memcpy(in.payload, &payload, 8);
	assert_int_equal(guest_mem_write(&f->m, POST_PAGE, &in, sizeof(in)), 0);
	return hcall(f, 0, HVCALL_POST_MESSAGE, false, POST_PAGE);
}

static struct hv_message *slot_of(struct hv_fixture *f, int vcpu, unsigned sint)
{
	return guest_mem_ptr(&f->m, MSG_PAGE + (uint64_t)vcpu * 0x10000 + sint * 256, 256);
}

/* ---- pure parts ---- */

static void test_slot_post(void **state)
{
	_Alignas(8) uint8_t slot[HV_MESSAGE_SIZE] = {0};
	struct hv_message m = {.message_type = 7, .payload_size = 8, .payload = {1, 2}};
	struct hv_message *s = (struct hv_message *)slot;

	assert_int_equal(hyperv_slot_post(slot, &m), 0);
	assert_int_equal(s->message_type, 7);
	assert_int_equal(s->payload_size, 8);
	assert_int_equal(s->payload[1], 2);
	assert_int_equal(s->flags, 0);
	/* Busy: the old message stays, msg_pending is set. */
	m.payload[1] = 9;
	assert_int_equal(hyperv_slot_post(slot, &m), -EAGAIN);
	assert_int_equal(s->payload[1], 2);
	assert_int_equal(s->flags, HV_MESSAGE_FLAG_PENDING);
	/* Freed by the guest: the new one, msg_pending clear again. */
	s->message_type = 0;
	assert_int_equal(hyperv_slot_post(slot, &m), 0);
	assert_int_equal(s->payload[1], 9);
	assert_int_equal(s->flags, 0);
}

static void test_flag_set(void **state)
{
	uint64_t flags[HV_EVENT_FLAGS_BYTES / 8] = {0};

	assert_true(hyperv_flag_set(flags, 0x21));
	assert_int_equal(flags[0], 1ull << 0x21);
	assert_false(hyperv_flag_set(flags, 0x21));
	assert_true(hyperv_flag_set(flags, 2047));
	assert_int_equal(flags[31], 1ull << 63);
}

static void test_post_input_check(void **state)
{
	struct hv_post_message_input in = {
	    .connection_id = 5, .message_type = 1, .payload_size = 240};
	struct hv_message m;

	assert_int_equal(hyperv_post_input_check(&in, &m), HV_STATUS_SUCCESS);
	assert_int_equal(m.payload_size, 240);
	in.payload_size = 241;
	assert_int_equal(hyperv_post_input_check(&in, &m), HV_STATUS_INVALID_PARAMETER);
	in.payload_size = 0;
	in.message_type = 0;
	assert_int_equal(hyperv_post_input_check(&in, &m), HV_STATUS_INVALID_PARAMETER);
	in.message_type = 0x80000010; /* the hypervisor's timer message */
	assert_int_equal(hyperv_post_input_check(&in, &m), HV_STATUS_INVALID_PARAMETER);
	in.message_type = 1;
	in.connection_id = 1u << 24;
	assert_int_equal(hyperv_post_input_check(&in, &m), HV_STATUS_INVALID_CONNECTION_ID);
}

/* ---- hypercalls ---- */

static void test_hcall_codes(void **state)
{
	struct hv_fixture *f = *state;

	assert_int_equal(hcall(f, 0, 0x1234, true, 0), HV_STATUS_INVALID_HYPERCALL_CODE);
	assert_int_equal(hcall(f, 0, HVCALL_POST_MESSAGE, true, 0),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	assert_int_equal(hcall(f, 0, HVCALL_POST_MESSAGE, false, POST_PAGE + 4),
			 HV_STATUS_INVALID_ALIGNMENT);
	assert_int_equal(hcall(f, 0, HVCALL_POST_MESSAGE, false, 1ull << 40),
			 HV_STATUS_INVALID_HYPERCALL_INPUT);
	/* No such connection (hyperv_connections' probe wants not code 2). */
	assert_int_equal(hcall(f, 0, HVCALL_SIGNAL_EVENT, true, 0x1234),
			 HV_STATUS_INVALID_CONNECTION_ID);
	assert_int_equal(post(f, 0x10, 1), HV_STATUS_INVALID_CONNECTION_ID);
}

/* ---- the device ---- */

static void test_sint_routes(void **state)
{
	struct hv_fixture *f = *state;
	int fd;

	ctl(f, HV_TESTDEV_SINT_ROUTE_CREATE, 1, 3, 0);
	assert_int_equal(kvm.nroutes, 1);
	assert_int_equal(kvm.routes[0].type, KVM_IRQ_ROUTING_HV_SINT);
	fd = irqfd_of(1, 3);
	assert_true(fd >= 0);
	assert_int_equal(kvm.resample_of_fd[fd], 0);
	ctl(f, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 3, 0);
	ctl(f, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 3, 0);
	assert_int_equal(signals(fd), 2);
	ctl(f, HV_TESTDEV_SINT_ROUTE_DESTROY, 1, 3, 0);
	assert_int_equal(kvm.nroutes, 0);
	assert_int_equal(kvm.gsi_of_fd[fd], 0);
	/* Gone: setting it does nothing. */
	ctl(f, HV_TESTDEV_SINT_ROUTE_SET_SINT, 1, 3, 0);
	assert_int_equal(signals(fd), 0);
}

static void test_bad_commands(void **state)
{
	struct hv_fixture *f = *state;
	int n = kvm.nset_routing;

	ctl(f, HV_TESTDEV_SINT_ROUTE_CREATE, NCPUS, 0, 0); /* no such vCPU */
	ctl(f, HV_TESTDEV_SINT_ROUTE_CREATE, 0, 16, 0);	   /* no such SINT */
	ctl(f, 0, 0, 0, 0);
	ctl(f, 8, 0, 0, 0);
	ctl(f, HV_TESTDEV_SINT_ROUTE_DESTROY, 0, 0, 0);
	ctl(f, HV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 9);
	ctl(f, HV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 9);
	assert_int_equal(kvm.nset_routing, n);
	/* Past the pool: the extra ones are refused, the others stay. */
	for (int i = 0; i < HV_TESTDEV_ROUTES + 3; i++)
		ctl(f, HV_TESTDEV_SINT_ROUTE_CREATE, (uint32_t)(i % NCPUS), (uint32_t)(i % 16), 0);
	assert_int_equal(kvm.nroutes, HV_TESTDEV_ROUTES);
	/* A second connection with the same id is refused. */
	ctl(f, HV_TESTDEV_SINT_ROUTE_DESTROY, 0, 0, 0);
	ctl(f, HV_TESTDEV_SINT_ROUTE_DESTROY, 1, 1, 0);
	ctl(f, HV_TESTDEV_MSG_CONN_CREATE, 0, 8, 0x10);
	ctl(f, HV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x10);
	assert_int_equal(kvm.nroutes, HV_TESTDEV_ROUTES - 1);
}

static void test_message_connection(void **state)
{
	struct hv_fixture *f = *state;
	struct hv_message *slot;
	int fd;

	ctl(f, HV_TESTDEV_MSG_CONN_CREATE, 1, 8, 0x11);
	fd = irqfd_of(1, 8);
	assert_true(fd >= 0);
	assert_true(kvm.resample_of_fd[fd] > 0);
	/* The target's message page is off: refused. */
	assert_int_equal(post(f, 0x11, 1), HV_STATUS_INVALID_HYPERCALL_INPUT);
	synic_on(f, 1);
	slot = slot_of(f, 1, 8);

	/* Delivered and signalled. */
	assert_int_equal(post(f, 0x11, 1), HV_STATUS_SUCCESS);
	assert_int_equal(slot->message_type, 0x12345678);
	assert_int_equal(slot->payload_size, 8);
	assert_int_equal(slot->payload[0], 1);
	assert_int_equal(slot->flags, 0);
	assert_int_equal(signals(fd), 1);

	/* Busy slot: accepted and held, msg_pending set, no signal. */
	assert_int_equal(post(f, 0x11, 2), HV_STATUS_SUCCESS);
	assert_int_equal(slot->payload[0], 1);
	assert_int_equal(slot->flags, HV_MESSAGE_FLAG_PENDING);
	assert_int_equal(signals(fd), 0);
	/* One held per connection. */
	assert_int_equal(post(f, 0x11, 3), HV_STATUS_INSUFFICIENT_BUFFERS);

	/* An acknowledgement while still busy changes nothing. */
	kick(kvm.resample_of_fd[fd] - 1);
	hyperv_testdev_poll(f->dev);
	assert_int_equal(slot->payload[0], 1);
	assert_int_equal(signals(fd), 0);

	/* The guest frees the slot and writes EOM: the held one arrives. */
	slot->message_type = 0;
	kick(kvm.resample_of_fd[fd] - 1);
	hyperv_testdev_poll(f->dev);
	assert_int_equal(slot->message_type, 0x12345678);
	assert_int_equal(slot->payload[0], 2);
	assert_int_equal(slot->flags, 0);
	assert_int_equal(signals(fd), 1);

	ctl(f, HV_TESTDEV_MSG_CONN_DESTROY, 0, 0, 0x11);
	assert_int_equal(kvm.nroutes, 0);
	assert_int_equal(kvm.gsi_of_fd[fd], 0);
	assert_int_equal(post(f, 0x11, 4), HV_STATUS_INVALID_CONNECTION_ID);
}

static void test_event_connection(void **state)
{
	struct hv_fixture *f = *state;
	uint64_t *flags;
	int fd, evt;

	synic_on(f, 0);
	ctl(f, HV_TESTDEV_EVT_CONN_CREATE, 0, 9, 0x20);
	fd = irqfd_of(0, 9);
	assert_true(fd >= 0);
	evt = kvm.evt_fd_of_conn[0x20] - 1;
	assert_true(evt >= 0);
	flags = guest_mem_ptr(&f->m, EVT_PAGE + 9 * 256, 256);

	/* KVM signals the eventfd on HvSignalEvent: flag 0x20 set, SINT signalled. */
	kick(evt);
	hyperv_testdev_poll(f->dev);
	assert_int_equal(flags[0], 1ull << 0x20);
	assert_int_equal(signals(fd), 1);
	/* Already set: no new signal. */
	kick(evt);
	hyperv_testdev_poll(f->dev);
	assert_int_equal(signals(fd), 0);
	/* The same through the hypercall KVM passed on. */
	flags[0] = 0;
	assert_int_equal(hcall(f, 0, HVCALL_SIGNAL_EVENT, true, 0x20), HV_STATUS_SUCCESS);
	assert_int_equal(flags[0], 1ull << 0x20);
	assert_int_equal(signals(fd), 1);

	ctl(f, HV_TESTDEV_EVT_CONN_DESTROY, 0, 0, 0x20);
	assert_int_equal(kvm.evt_fd_of_conn[0x20], 0);
	assert_int_equal(kvm.nroutes, 0);
	assert_int_equal(hcall(f, 0, HVCALL_SIGNAL_EVENT, true, 0x20),
			 HV_STATUS_INVALID_CONNECTION_ID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slot_post),
	    cmocka_unit_test(test_flag_set),
	    cmocka_unit_test(test_post_input_check),
	    cmocka_unit_test_setup_teardown(test_hcall_codes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sint_routes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_message_connection, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_connection, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
