// SPDX-License-Identifier: MIT
/*
 * Split virtqueue parsing against a hostile driver, in real guest memory
 * (guest_mem with 16 MiB): good chains, loops, out-of-range and wrapping
 * addresses, oversized chains, bad indirect tables, order violations,
 * index games, and the EVENT_IDX / notification-suppression arithmetic.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/virtio/virtio.h"

#define RAM   (16ULL << 20)
#define QSIZE 8
#define DESC  0x10000ULL
#define AVAIL 0x20000ULL
#define USED  0x30000ULL
#define IND   0x40000ULL /* indirect tables */
#define BUF   0x100000ULL

struct env {
	struct guest_mem mem;
	struct virtqueue vq;
	uint16_t avail_idx;
};

static void *gp(struct env *e, uint64_t gpa)
{
	void *p = guest_mem_ptr(&e->mem, gpa, 1);

	assert_non_null(p);
	return p;
}

static void put16(struct env *e, uint64_t gpa, uint16_t v)
{
	memcpy(gp(e, gpa), &v, 2);
}

static uint16_t get16(struct env *e, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, gp(e, gpa), 2);
	return v;
}

static uint32_t get32(struct env *e, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, gp(e, gpa), 4);
	return v;
}

static void desc_at(struct env *e, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	uint8_t *p = gp(e, table + 16ULL * i);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void desc(struct env *e, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		 uint16_t next)
{
	desc_at(e, DESC, i, addr, len, flags, next);
}

/* Make @head available (the driver's side: entry, then index). */
static void publish(struct env *e, uint16_t head)
{
	put16(e, AVAIL + 4 + 2 * (e->avail_idx % QSIZE), head);
	e->avail_idx++;
	put16(e, AVAIL + 2, e->avail_idx);
}

static int setup_features(void **st, bool event_idx, bool indirect)
{
	struct env *e = test_calloc(1, sizeof(*e));

	assert_int_equal(guest_mem_init(&e->mem, RAM), 0);
	assert_int_equal(vq_init(&e->vq, &e->mem, 256), 0);
	e->vq.s.size = QSIZE;
	e->vq.s.desc = DESC;
	e->vq.s.avail = AVAIL;
	e->vq.s.used = USED;
	assert_int_equal(vq_enable(&e->vq, event_idx, indirect), 0);
	*st = e;
	return 0;
}

static int setup(void **st)
{
	return setup_features(st, false, true);
}

static int setup_event_idx(void **st)
{
	return setup_features(st, true, true);
}

static int setup_no_indirect(void **st)
{
	return setup_features(st, false, false);
}

static int teardown(void **st)
{
	struct env *e = *st;

	vq_free(&e->vq);
	guest_mem_free(&e->mem);
	test_free(e);
	return 0;
}

/* Pop expecting a malformed chain whose reason mentions @needle. */
static void expect_bad(struct env *e, const char *needle)
{
	struct vq_elem *el = NULL;

	assert_int_equal(vq_pop(&e->vq, &el), -EIO);
	assert_null(el);
	if (!strstr(e->vq.why, needle))
		fail_msg("reason '%s' does not mention '%s'", e->vq.why, needle);
	assert_int_equal(e->vq.s.inuse, 0);
	assert_int_equal(e->vq.s.last_avail_idx, 0); /* nothing consumed */
}

static void test_good_chain(void **st)
{
	struct env *e = *st;
	struct vq_elem *el = NULL;

	assert_int_equal(vq_pop(&e->vq, &el), 0); /* empty */
	desc(e, 3, BUF, 16, VRING_DESC_F_NEXT, 5);
	desc(e, 5, BUF + 0x1000, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc(e, 1, BUF + 0x2000, 1, VRING_DESC_F_WRITE, 0);
	publish(e, 3);
	assert_false(vq_avail_empty(&e->vq));
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	assert_int_equal(el->head, 3);
	assert_int_equal(el->out_num, 1);
	assert_int_equal(el->in_num, 2);
	assert_int_equal(el->out_len, 16);
	assert_int_equal(el->in_len, 513);
	assert_ptr_equal(el->out[0].iov_base, gp(e, BUF));
	assert_ptr_equal(el->in[0].iov_base, gp(e, BUF + 0x1000));
	assert_int_equal(el->in[1].iov_len, 1);
	assert_int_equal(e->vq.s.inuse, 1);
	assert_int_equal(e->vq.s.last_avail_idx, 1);
	assert_true(vq_avail_empty(&e->vq));

	vq_push(&e->vq, el, 100000); /* clamped to what the chain can hold */
	assert_int_equal(get16(e, USED + 2), 1);
	assert_int_equal(get32(e, USED + 4), 3);
	assert_int_equal(get32(e, USED + 8), 513);
	assert_int_equal(e->vq.s.inuse, 0);
	assert_int_equal(e->vq.s.inflight[0], 0);
	free(el);
}

static void test_ring_wraps(void **st)
{
	struct env *e = *st;
	struct vq_elem *el;

	/* 70000 requests: the 16-bit indices wrap, the ring wraps. */
	for (unsigned i = 0; i < 70000; i++) {
		desc(e, i % QSIZE, BUF, 4, 0, 0);
		publish(e, (uint16_t)(i % QSIZE));
		assert_int_equal(vq_pop(&e->vq, &el), 1);
		assert_int_equal(el->head, i % QSIZE);
		vq_push(&e->vq, el, 0);
		free(el);
	}
	assert_int_equal(get16(e, USED + 2), (uint16_t)70000);
	assert_int_equal(e->vq.s.last_avail_idx, (uint16_t)70000);
}

static void test_loop(void **st)
{
	struct env *e = *st;

	desc(e, 0, BUF, 4, VRING_DESC_F_NEXT, 1);
	desc(e, 1, BUF, 4, VRING_DESC_F_NEXT, 2);
	desc(e, 2, BUF, 4, VRING_DESC_F_NEXT, 0);
	publish(e, 0);
	expect_bad(e, "loop");
}

static void test_self_loop(void **st)
{
	struct env *e = *st;

	desc(e, 4, BUF, 4, VRING_DESC_F_NEXT, 4);
	publish(e, 4);
	expect_bad(e, "loop");
}

static void test_next_out_of_range(void **st)
{
	struct env *e = *st;

	desc(e, 0, BUF, 4, VRING_DESC_F_NEXT, QSIZE);
	publish(e, 0);
	expect_bad(e, "next index 8 out of range");
}

static void test_head_out_of_range(void **st)
{
	struct env *e = *st;

	publish(e, QSIZE);
	expect_bad(e, "head index 8 out of range");
}

static void test_avail_index_jump(void **st)
{
	struct env *e = *st;

	put16(e, AVAIL + 2, QSIZE + 1);
	expect_bad(e, "ahead");
	/* Exactly a full ring is fine. */
	for (unsigned i = 0; i < QSIZE; i++) {
		desc(e, i, BUF, 4, 0, 0);
		put16(e, AVAIL + 4 + 2 * i, (uint16_t)i);
	}
	put16(e, AVAIL + 2, QSIZE);
	for (unsigned i = 0; i < QSIZE; i++) {
		struct vq_elem *el;

		assert_int_equal(vq_pop(&e->vq, &el), 1);
		free(el);
	}
	assert_int_equal(e->vq.s.inuse, QSIZE);
}

static void test_addresses_outside_ram(void **st)
{
	struct env *e = *st;
	const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {RAM, 1},			     /* just past the end */
	    {RAM - 4, 8},		     /* straddles the end */
	    {0xfffffffffffff000ULL, 0x2000}, /* wraps around 2^64 */
	    {UINT64_MAX, 1},
	    {0xfee00000ULL, 4}, /* the LAPIC, not RAM */
	};

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e->vq.s.last_avail_idx = 0;
		e->avail_idx = 0;
		desc(e, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
		desc(e, 1, bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		publish(e, 0);
		expect_bad(e, "outside guest RAM");
	}
}

static void test_zero_length(void **st)
{
	struct env *e = *st;

	desc(e, 0, BUF, 0, 0, 0);
	publish(e, 0);
	expect_bad(e, "zero-length");
}

static void test_readable_after_writable(void **st)
{
	struct env *e = *st;

	desc(e, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc(e, 1, BUF, 16, 0, 0);
	publish(e, 0);
	expect_bad(e, "device-readable buffer after a device-writable one");
}

static void test_head_reused_while_in_flight(void **st)
{
	struct env *e = *st;
	struct vq_elem *el;

	desc(e, 2, BUF, 16, 0, 0);
	publish(e, 2);
	publish(e, 2);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	assert_int_equal(vq_pop(&e->vq, &(struct vq_elem *){NULL}), -EIO);
	assert_non_null(strstr(e->vq.why, "still in use"));
	/* Once returned, the head may be used again. */
	vq_push(&e->vq, el, 0);
	free(el);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	free(el);
}

static void test_indirect_good(void **st)
{
	struct env *e = *st;
	struct vq_elem *el;

	desc_at(e, IND, 0, BUF, 16, VRING_DESC_F_NEXT, 2);
	desc_at(e, IND, 2, BUF + 0x1000, 4096, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	desc_at(e, IND, 1, BUF + 0x3000, 1, VRING_DESC_F_WRITE, 0);
	/* A direct header descriptor, then the indirect table ends the chain. */
	desc(e, 6, BUF + 0x4000, 8, VRING_DESC_F_NEXT, 7);
	desc(e, 7, IND, 3 * 16, VRING_DESC_F_INDIRECT, 0);
	publish(e, 6);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	assert_int_equal(el->head, 6);
	assert_int_equal(el->out_num, 2);
	assert_int_equal(el->in_num, 2);
	assert_int_equal(el->out_len, 24);
	assert_int_equal(el->in_len, 4097);
	assert_ptr_equal(el->out[1].iov_base, gp(e, BUF));
	vq_push(&e->vq, el, 4097);
	free(el);
}

static void test_indirect_bad(void **st)
{
	struct env *e = *st;
	const struct {
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		const char *why;
	} bad[] = {
	    {IND, 24, VRING_DESC_F_INDIRECT, "not a non-zero multiple of 16"},
	    {IND, 0, VRING_DESC_F_INDIRECT, "not a non-zero multiple of 16"},
	    {IND, 16 * (VQ_MAX_INDIRECT + 1), VRING_DESC_F_INDIRECT, "entries"},
	    {RAM - 16, 32, VRING_DESC_F_INDIRECT, "outside guest RAM"},
	    {0xfffffffffffffff0ULL, 32, VRING_DESC_F_INDIRECT, "outside guest RAM"},
	    {IND, 32, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, "NEXT"},
	};

	desc_at(e, IND, 0, BUF, 16, 0, 0);
	desc_at(e, IND, 1, BUF, 16, 0, 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		e->vq.s.last_avail_idx = 0;
		e->avail_idx = 0;
		desc(e, 0, bad[i].addr, bad[i].len, bad[i].flags, 1);
		desc(e, 1, BUF, 16, 0, 0);
		publish(e, 0);
		expect_bad(e, bad[i].why);
	}
}

static void test_indirect_nested(void **st)
{
	struct env *e = *st;

	desc_at(e, IND, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
	desc_at(e, IND, 1, IND + 0x100, 16, VRING_DESC_F_INDIRECT, 0);
	desc(e, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	publish(e, 0);
	expect_bad(e, "nested indirect");
}

static void test_indirect_loop_and_range(void **st)
{
	struct env *e = *st;

	desc_at(e, IND, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
	desc_at(e, IND, 1, BUF, 16, VRING_DESC_F_NEXT, 0);
	desc(e, 0, IND, 32, VRING_DESC_F_INDIRECT, 0);
	publish(e, 0);
	expect_bad(e, "loop");

	e->vq.s.last_avail_idx = 0;
	e->avail_idx = 0;
	desc_at(e, IND, 1, BUF, 16, VRING_DESC_F_NEXT, 2); /* table has 2 entries */
	publish(e, 0);
	expect_bad(e, "indirect next index 2 out of range");

	e->vq.s.last_avail_idx = 0;
	e->avail_idx = 0;
	desc_at(e, IND, 0, BUF, 16, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	desc_at(e, IND, 1, BUF, 16, 0, 0);
	publish(e, 0);
	expect_bad(e, "device-readable buffer after a device-writable one");
}

static void test_indirect_not_negotiated(void **st)
{
	struct env *e = *st;

	desc_at(e, IND, 0, BUF, 16, 0, 0);
	desc(e, 0, IND, 16, VRING_DESC_F_INDIRECT, 0);
	publish(e, 0);
	expect_bad(e, "not negotiated");
}

static void test_too_many_buffers(void **st)
{
	struct env *e = *st;
	struct vq_elem *el;

	/* A full indirect table of 1024 buffers plus one direct: too many. */
	for (unsigned i = 0; i < VQ_MAX_INDIRECT; i++)
		desc_at(e, IND, i, BUF, 16, i + 1 < VQ_MAX_INDIRECT ? VRING_DESC_F_NEXT : 0,
			(uint16_t)(i + 1));
	desc(e, 0, BUF, 16, VRING_DESC_F_NEXT, 1);
	desc(e, 1, IND, 16 * VQ_MAX_INDIRECT, VRING_DESC_F_INDIRECT, 0);
	publish(e, 0);
	expect_bad(e, "more than 1024 buffers");
	/* The table alone is fine. */
	e->vq.s.last_avail_idx = 0;
	e->avail_idx = 0;
	publish(e, 1);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	assert_int_equal(el->out_num, VQ_MAX_INDIRECT);
	free(el);
}

static void test_enable_checks(void **st)
{
	struct env *e = *st;
	struct virtqueue vq;

	assert_int_equal(vq_init(&vq, &e->mem, 256), 0);
	assert_int_equal(vq.s.size, 256);
	assert_int_equal(vq.s.vector, VIRTIO_MSI_NO_VECTOR);
	vq.s.desc = DESC;
	vq.s.avail = AVAIL;
	vq.s.used = USED;
	vq.s.size = 12; /* not a power of two */
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	vq.s.size = 512; /* above the maximum */
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	vq.s.size = 0;
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	vq.s.size = 256;
	vq.s.desc = DESC + 8; /* misaligned */
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	vq.s.desc = DESC;
	vq.s.used = USED + 2;
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	vq.s.used = RAM - 16; /* runs past RAM */
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	assert_non_null(strstr(vq.why, "outside guest RAM"));
	vq.s.used = 0xfffffffffffffff0ULL;
	assert_int_equal(vq_enable(&vq, false, false), -EINVAL);
	assert_false(vq.s.enabled);
	vq.s.used = USED;
	assert_int_equal(vq_enable(&vq, false, false), 0);
	assert_true(vq.s.enabled);
	vq_reset(&vq);
	assert_false(vq.s.enabled);
	assert_int_equal(vq.s.size, 256);
	assert_null(vq.desc_p);
	vq_free(&vq);
}

static void test_need_event_math(void **st)
{
	/* Interrupt when the used index passes used_event (spec 2.7.10). */
	assert_true(vq_need_event(0, 1, 0));
	assert_false(vq_need_event(1, 1, 0));
	assert_true(vq_need_event(1, 2, 0));
	assert_true(vq_need_event(5, 10, 3));
	assert_false(vq_need_event(10, 10, 3));
	assert_false(vq_need_event(2, 10, 3)); /* event is behind old: already signalled */
	assert_false(vq_need_event(7, 7, 7));  /* nothing new */
	/* Across the 16-bit wrap. */
	assert_true(vq_need_event(0xffff, 1, 0xfffe));
	assert_true(vq_need_event(0, 1, 0xffff));
	assert_false(vq_need_event(2, 1, 0xffff));
}

static void push_one(struct env *e, uint16_t head)
{
	struct vq_elem *el;

	desc(e, head, BUF, 16, VRING_DESC_F_WRITE, 0);
	publish(e, head);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	vq_push(&e->vq, el, 16);
	free(el);
}

static void test_should_notify_event_idx(void **st)
{
	struct env *e = *st;
	uint64_t used_event = AVAIL + 4 + 2 * QSIZE;

	push_one(e, 0);
	assert_true(vq_should_notify(&e->vq)); /* the first decision always interrupts */
	put16(e, used_event, 2);	       /* "interrupt me after entry 2" */
	push_one(e, 1);			       /* used idx 2 */
	assert_false(vq_should_notify(&e->vq));
	push_one(e, 2); /* used idx 3: crossed used_event */
	assert_true(vq_should_notify(&e->vq));
	assert_false(vq_should_notify(&e->vq)); /* nothing new */
	/* Several completions at once: one interrupt if any crossed it. */
	put16(e, used_event, 4);
	push_one(e, 3);
	push_one(e, 4);
	push_one(e, 5);
	assert_true(vq_should_notify(&e->vq));
	/* The avail flag is ignored with EVENT_IDX. */
	put16(e, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	put16(e, used_event, 6);
	push_one(e, 6);
	assert_true(vq_should_notify(&e->vq));
}

static void test_should_notify_flags(void **st)
{
	struct env *e = *st;

	push_one(e, 0);
	assert_true(vq_should_notify(&e->vq));
	put16(e, AVAIL, VRING_AVAIL_F_NO_INTERRUPT);
	push_one(e, 1);
	assert_false(vq_should_notify(&e->vq));
}

static void test_notification_suppression(void **st)
{
	struct env *e = *st;
	uint64_t avail_event = USED + 4 + 8 * QSIZE;

	/* Without EVENT_IDX: the used ring's NO_NOTIFY flag. */
	vq_set_notification(&e->vq, false);
	assert_int_equal(get16(e, USED), VRING_USED_F_NO_NOTIFY);
	vq_set_notification(&e->vq, true);
	assert_int_equal(get16(e, USED), 0);
	/* With it: avail_event = next index we will look at. */
	e->vq.event_idx = true;
	e->vq.s.last_avail_idx = 5;
	put16(e, avail_event, 0);
	vq_set_notification(&e->vq, false);
	assert_int_equal(get16(e, avail_event), 0); /* left behind */
	assert_int_equal(get16(e, USED), 0);
	vq_set_notification(&e->vq, true);
	assert_int_equal(get16(e, avail_event), 5);
}

static void test_discard(void **st)
{
	struct env *e = *st;
	struct vq_elem *el;

	desc(e, 0, BUF, 16, 0, 0);
	publish(e, 0);
	assert_int_equal(vq_pop(&e->vq, &el), 1);
	vq_discard(&e->vq, el);
	assert_int_equal(e->vq.s.inuse, 0);
	assert_int_equal(get16(e, USED + 2), 0); /* nothing returned */
	free(el);
}

static void test_iov_copy(void **st)
{
	char a[3], b[5], c[4], out[12];
	struct iovec iov[] = {{a, 3}, {b, 5}, {c, 4}};

	assert_int_equal(iov_from_buf(iov, 3, 2, "0123456789", 10), 10);
	assert_memory_equal(a + 2, "0", 1);
	assert_memory_equal(b, "12345", 5);
	assert_memory_equal(c, "6789", 4);
	assert_int_equal(iov_to_buf(iov, 3, 4, out, 12), 8);
	assert_memory_equal(out, "23456789", 8);
	assert_int_equal(iov_to_buf(iov, 3, 12, out, 1), 0);
	assert_int_equal(iov_from_buf(iov, 3, 11, "xy", 2), 1);
}

/* Pop @n one-descriptor chains with heads @heads[i] (in that order). */
static void pop_heads(struct env *e, const uint16_t *heads, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct vq_elem *el;

		desc(e, heads[i], BUF + 0x1000ULL * heads[i], 16 + heads[i], 0, 0);
		publish(e, heads[i]);
		assert_int_equal(vq_pop(&e->vq, &el), 1);
		assert_int_equal(el->head, heads[i]);
		free(el);
	}
}

static void test_snap_roundtrip(void **st)
{
	struct env *e = *st;
	static const uint16_t heads[] = {5, 2, 7, 0};
	struct vq_snap *s = test_calloc(1, sizeof(*s)), *s2 = test_calloc(1, sizeof(*s2));
	uint16_t got[QSIZE];
	struct virtqueue vq;
	struct vq_elem *el;
	char why[160];

	pop_heads(e, heads, 4);
	/* Complete one in the middle: the rest keep their order. */
	desc(e, 2, BUF, 16, 0, 0);
	el = test_malloc(sizeof(*el));
	el->head = 2;
	el->in_len = 0;
	vq_push(&e->vq, el, 0);
	test_free(el);
	assert_int_equal(vq_inflight_heads(&e->vq, got), 3);
	assert_int_equal(got[0], 5);
	assert_int_equal(got[1], 7);
	assert_int_equal(got[2], 0);

	vq_save(&e->vq, s);
	assert_int_equal(s->inuse, 3);
	assert_int_equal(s->inflight[0], 5);
	assert_int_equal(s->inflight[1], 7);
	assert_int_equal(s->inflight[2], 0);
	assert_int_equal(s->inflight[3], 0);
	assert_int_equal(s->last_avail_idx, 4);
	assert_int_equal(s->used_idx, 1);
	assert_int_equal(vq_snap_check(s, 256, &e->mem, true, why, sizeof(why)), 0);

	/* Into a fresh queue: same state, same order, chains read back. */
	assert_int_equal(vq_init(&vq, &e->mem, 256), 0);
	vq_load(&vq, s, false, true);
	assert_true(vq.s.enabled);
	assert_int_equal(vq.s.inuse, 3);
	assert_int_equal(vq.s.last_avail_idx, 4);
	assert_int_equal(vq.s.used_idx, 1);
	vq_save(&vq, s2);
	assert_memory_equal(s, s2, sizeof(*s));
	assert_int_equal(vq_reload(&vq, 7, &el), 1);
	assert_int_equal(el->head, 7);
	assert_int_equal(el->out_num, 1);
	assert_int_equal(el->out_len, 16 + 7);
	assert_ptr_equal(el->out[0].iov_base, gp(e, BUF + 0x7000));
	free(el);
	assert_int_equal(vq_reload(&vq, 2, &el), -EIO); /* not in flight */
	assert_non_null(strstr(vq.why, "not in flight"));
	/* A restored chain is checked like a popped one. */
	desc(e, 0, BUF, 0, 0, 0);
	assert_int_equal(vq_reload(&vq, 0, &el), -EIO);
	assert_non_null(strstr(vq.why, "zero-length"));
	/* The restored queue goes on where the old one was. */
	desc(e, 3, BUF, 4, 0, 0);
	put16(e, AVAIL + 4 + 2 * (4 % QSIZE), 3);
	put16(e, AVAIL + 2, 5);
	assert_int_equal(vq_pop(&vq, &el), 1);
	assert_int_equal(el->head, 3);
	assert_int_equal(vq.s.inuse, 4);
	free(el);
	assert_int_equal(vq_inflight_heads(&vq, got), 4);
	assert_int_equal(got[3], 3);
	vq_free(&vq);
	test_free(s);
	test_free(s2);
}

/* @s with one field broken must be refused with a reason naming @needle. */
static void expect_snap_bad(struct env *e, const struct vq_snap *s, bool balanced,
			    const char *needle)
{
	char why[160] = "";

	assert_int_equal(vq_snap_check(s, 256, &e->mem, balanced, why, sizeof(why)), -EINVAL);
	if (!strstr(why, needle))
		fail_msg("reason '%s' does not mention '%s'", why, needle);
}

static void test_snap_check(void **st)
{
	struct env *e = *st;
	static const uint16_t heads[] = {1, 4, 6};
	struct vq_snap *good = test_calloc(1, sizeof(*good)), *s = test_calloc(1, sizeof(*s));
	char why[160];

	pop_heads(e, heads, 3);
	vq_save(&e->vq, good);
	assert_int_equal(vq_snap_check(good, 256, &e->mem, true, why, sizeof(why)), 0);

#define MUTATE(stmt, balanced, needle)                                                             \
	do {                                                                                       \
		memcpy(s, good, sizeof(*s));                                                       \
		stmt;                                                                              \
		expect_snap_bad(e, s, balanced, needle);                                           \
	} while (0)
	MUTATE(s->size = 0, true, "power of two");
	MUTATE(s->size = 12, true, "power of two");
	MUTATE(s->size = 512, true, "power of two");
	MUTATE(s->enabled = 2, true, "flag");
	MUTATE(s->signalled_used_valid = 7, true, "flag");
	MUTATE(s->notify_suppressed = 2, true, "flag");
	MUTATE(s->reserved[3] = 1, true, "reserved");
	MUTATE(s->desc = DESC + 8, true, "misaligned");
	MUTATE(s->used = USED + 2, true, "misaligned");
	MUTATE(s->avail = RAM - 4, true, "outside guest RAM");
	MUTATE(s->used = 0xfffffffffffffff8ULL, true, "outside guest RAM");
	MUTATE(s->inflight[1] = QSIZE, true, "out of range");
	MUTATE(s->inflight[2] = 1, true, "twice");
	MUTATE(s->inflight[3] = 2, true, "past");
	MUTATE(s->inuse = 2, true, "past");
	MUTATE((s->inuse = 4, s->inflight[3] = 2), true, "last_avail_idx");
	MUTATE(s->inuse = QSIZE + 1, true, "in flight in a queue of");
	MUTATE(s->used_idx = 1, true, "last_avail_idx");
	MUTATE(s->enabled = 0, true, "disabled");
	/* A device in NEEDS_RESET may have discarded elements. */
	memcpy(s, good, sizeof(*s));
	s->used_idx = 1;
	assert_int_equal(vq_snap_check(s, 256, &e->mem, false, why, sizeof(why)), 0);
	/* The reset state of a disabled queue is fine, with any addresses. */
	memset(s, 0, sizeof(*s));
	s->size = 256;
	s->desc = 0xdeadbeef;
	s->vector = VIRTIO_MSI_NO_VECTOR;
	assert_int_equal(vq_snap_check(s, 256, &e->mem, true, why, sizeof(why)), 0);
#undef MUTATE
	test_free(good);
	test_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ring_wraps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_avail_index_jump, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_addresses_outside_ram, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zero_length, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_readable_after_writable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head_reused_while_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_good, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_bad, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_nested, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_loop_and_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_not_negotiated, setup_no_indirect,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_buffers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enable_checks, setup, teardown),
	    cmocka_unit_test(test_need_event_math),
	    cmocka_unit_test_setup_teardown(test_should_notify_event_idx, setup_event_idx,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_should_notify_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notification_suppression, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
	    cmocka_unit_test(test_iov_copy),
	    cmocka_unit_test_setup_teardown(test_snap_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_snap_check, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
