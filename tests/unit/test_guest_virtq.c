// SPDX-License-Identifier: MIT
/*
 * guest/lib/virtq.c (the guest's split-virtqueue driver) on the host,
 * against a small model device written here from the virtio 1.x spec:
 * chains direct and indirect, the free list under out-of-order completion,
 * notification suppression (NO_NOTIFY, EVENT_IDX avail_event), interrupt
 * requests (used_event), a device returning a head that is not in flight,
 * and re-initialisation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "gerrno.h"
#include "virtio.h"

#define QSIZE 8
#define IMAX  4

struct fixture {
	struct virtq vq;
	uint16_t doorbell; /* notify_addr points here */
};

static struct fixture *setup_vq(bool event_idx, bool indirect)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct virtq *vq = &f->vq;

	vq->size = QSIZE;
	vq->index = 3;
	vq->desc = calloc(QSIZE, sizeof(struct virtq_desc));
	vq->avail = calloc(1, 4 + 2 * QSIZE + 2);
	vq->used = calloc(1, 4 + 8 * QSIZE + 2);
	vq->tokens = calloc(QSIZE, sizeof(void *));
	vq->ndesc = calloc(QSIZE, sizeof(uint16_t));
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->imax = indirect ? IMAX : 0;
	vq->itables = indirect ? calloc(QSIZE * IMAX, sizeof(struct virtq_desc)) : NULL;
	vq->alloc_size = QSIZE;
	vq->alloc_imax = vq->imax;
	vq->notify_addr = (uint64_t)(uintptr_t)&f->doorbell;
	f->doorbell = 0xffff;
	virtq_reinit(vq);
	return f;
}

static void teardown_vq(struct fixture *f)
{
	free(f->vq.desc);
	free((void *)f->vq.avail);
	free((void *)f->vq.used);
	free(f->vq.tokens);
	free(f->vq.ndesc);
	free(f->vq.itables);
	free(f);
}

/* ---- model device ---- */

struct dev {
	uint16_t last_avail;
	uint16_t used_idx;
};

struct chain {
	uint16_t head;
	unsigned int nout, nin;
	uint32_t in_bytes;
	bool indirect;
};

/* Walk the next available chain; asserts it is well formed. */
static bool dev_pop(struct virtq *vq, struct dev *d, struct chain *c)
{
	uint16_t avail_idx = vq->avail[1];

	if (avail_idx == d->last_avail)
		return false;
	uint16_t head = vq->avail[2 + (d->last_avail % vq->size)];
	d->last_avail++;
	if (vq->event_idx) /* avail_event: the next index we expect */
		vq->used[2 + 4 * vq->size] = d->last_avail;
	assert_true(head < vq->size);
	*c = (struct chain){.head = head};
	const struct virtq_desc *table = vq->desc;
	unsigned int max = vq->size, i = head;
	if (vq->desc[head].flags & VIRTQ_DESC_F_INDIRECT) {
		assert_false(vq->desc[head].flags & VIRTQ_DESC_F_NEXT);
		assert_int_equal(vq->desc[head].len % 16, 0);
		table = (const struct virtq_desc *)(uintptr_t)vq->desc[head].addr;
		max = vq->desc[head].len / 16;
		i = 0;
		c->indirect = true;
	}
	for (unsigned int n = 0;; n++) {
		assert_true(n < max && i < max);
		const struct virtq_desc *x = &table[i];
		assert_false(x->flags & VIRTQ_DESC_F_INDIRECT);
		assert_true(x->len > 0);
		if (x->flags & VIRTQ_DESC_F_WRITE) {
			c->nin++;
			c->in_bytes += x->len;
		} else {
			assert_int_equal(c->nin, 0); /* readable after writable */
			c->nout++;
		}
		if (!(x->flags & VIRTQ_DESC_F_NEXT))
			break;
		i = x->next;
	}
	return true;
}

static void dev_push(struct virtq *vq, struct dev *d, uint32_t id, uint32_t len)
{
	volatile struct virtq_used_elem *e =
	    (volatile struct virtq_used_elem *)(vq->used + 2) + (d->used_idx % vq->size);
	e->id = id;
	e->len = len;
	d->used_idx++;
	vq->used[1] = d->used_idx;
}

static int tok[64];

static int add(struct virtq *vq, unsigned int nout, unsigned int nin, int t)
{
	static char mem[4096];
	struct virtq_buf b[16];

	for (unsigned int k = 0; k < nout + nin; k++)
		b[k] = (struct virtq_buf){mem + 64 * k, 10 + k};
	return virtq_add(vq, b, nout, nin, &tok[t]);
}

/* ---- tests ---- */

static void test_direct_fill_and_drain(void **state)
{
	struct fixture *f = setup_vq(false, false);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;

	/* 3 chains of 2 descriptors fit in 8; a 4th does not */
	assert_int_equal(add(vq, 1, 1, 0), 0);
	assert_int_equal(add(vq, 1, 1, 1), 0);
	assert_int_equal(add(vq, 1, 1, 2), 0);
	assert_int_equal(vq->num_free, 2);
	assert_int_equal(add(vq, 2, 1, 3), -ENOSPC);
	assert_int_equal(add(vq, 1, 1, 3), 0);
	assert_int_equal(vq->num_free, 0);
	assert_int_equal(virtq_inflight(vq), 4);
	assert_int_equal(add(vq, 0, 0, 5), -EINVAL);
	assert_int_equal(add(vq, 9, 0, 5), -EINVAL); /* longer than the queue: never fits */

	uint16_t heads[4];
	for (int k = 0; k < 4; k++) {
		assert_true(dev_pop(vq, &d, &c));
		assert_int_equal(c.nout, 1);
		assert_int_equal(c.nin, 1);
		assert_false(c.indirect);
		heads[k] = c.head;
	}
	assert_false(dev_pop(vq, &d, &c));
	/* complete out of order: 2, 0, 3, 1 */
	int order[4] = {2, 0, 3, 1};
	for (int k = 0; k < 4; k++)
		dev_push(vq, &d, heads[order[k]], 7);
	for (int k = 0; k < 4; k++) {
		uint32_t len = 0;
		assert_ptr_equal(virtq_get(vq, &len), &tok[order[k]]);
		assert_int_equal(len, 7);
	}
	assert_null(virtq_get(vq, NULL));
	assert_int_equal(vq->num_free, QSIZE);
	assert_int_equal(virtq_inflight(vq), 0);
	assert_int_equal(vq->error, 0);

	/* the free list survived: a chain of all 8 descriptors fits */
	assert_int_equal(add(vq, 4, 4, 6), 0);
	assert_true(dev_pop(vq, &d, &c));
	assert_int_equal(c.nout + c.nin, 8);
	teardown_vq(f);
}

static void test_indirect(void **state)
{
	struct fixture *f = setup_vq(false, true);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;

	/* 8 chains of up to IMAX buffers each take one ring slot */
	for (int k = 0; k < QSIZE; k++)
		assert_int_equal(add(vq, 1, 3, k), 0);
	assert_int_equal(vq->num_free, 0);
	assert_int_equal(add(vq, 1, 1, 9), -ENOSPC);
	for (int k = 0; k < QSIZE; k++) {
		assert_true(dev_pop(vq, &d, &c));
		assert_true(c.indirect);
		assert_int_equal(c.nout, 1);
		assert_int_equal(c.nin, 3);
		assert_int_equal(c.in_bytes, 11 + 12 + 13);
		dev_push(vq, &d, c.head, 1);
	}
	for (int k = 0; k < QSIZE; k++)
		assert_ptr_equal(virtq_get(vq, NULL), &tok[k]);
	assert_int_equal(vq->num_free, QSIZE);

	/* single buffers and chains longer than IMAX go direct */
	assert_int_equal(add(vq, 1, 0, 0), 0);
	assert_int_equal(add(vq, 2, 3, 1), 0);
	assert_true(dev_pop(vq, &d, &c));
	assert_false(c.indirect);
	assert_true(dev_pop(vq, &d, &c));
	assert_false(c.indirect);
	assert_int_equal(c.nout + c.nin, 5);
	assert_int_equal(vq->num_free, QSIZE - 6);
	teardown_vq(f);
}

static void test_no_notify_flag(void **state)
{
	struct fixture *f = setup_vq(false, false);
	struct virtq *vq = &f->vq;

	assert_false(virtq_kick(vq)); /* nothing new */
	assert_int_equal(add(vq, 1, 1, 0), 0);
	assert_true(virtq_kick(vq));
	assert_int_equal(f->doorbell, 3); /* the queue index */
	vq->used[0] = VIRTQ_USED_F_NO_NOTIFY;
	f->doorbell = 0xffff;
	assert_int_equal(add(vq, 1, 1, 1), 0);
	assert_false(virtq_kick(vq));
	assert_int_equal(f->doorbell, 0xffff);
	assert_int_equal(vq->kicks, 1);
	assert_int_equal(vq->kicks_suppressed, 1);
	teardown_vq(f);
}

static void test_event_idx_kicks(void **state)
{
	struct fixture *f = setup_vq(true, true);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;

	/* avail_event starts at 0: the first chain (idx 0 -> 1) needs a kick */
	assert_int_equal(add(vq, 1, 1, 0), 0);
	assert_true(virtq_kick(vq));
	/* the device has not consumed it: avail_event still 0, idx 1 -> 2 needs none */
	assert_int_equal(add(vq, 1, 1, 1), 0);
	assert_false(virtq_kick(vq));
	/* the device consumes both and asks to hear about index 2 (the next one) */
	assert_true(dev_pop(vq, &d, &c));
	assert_true(dev_pop(vq, &d, &c));
	assert_int_equal(add(vq, 1, 1, 2), 0);
	assert_int_equal(add(vq, 1, 1, 3), 0);
	assert_true(virtq_kick(vq)); /* 2 -> 4 crosses avail_event 2 */
	teardown_vq(f);
}

static void test_event_idx_irq(void **state)
{
	struct fixture *f = setup_vq(true, false);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;
	volatile uint16_t *used_event = &vq->avail[2 + QSIZE];

	assert_int_equal(add(vq, 1, 1, 0), 0);
	assert_int_equal(add(vq, 1, 1, 1), 0);
	assert_false(virtq_enable_irq(vq)); /* nothing used yet */
	assert_int_equal(*used_event, 0);
	assert_true(dev_pop(vq, &d, &c));
	dev_push(vq, &d, c.head, 1);
	assert_true(virtq_enable_irq(vq)); /* already pending: reap first */
	assert_ptr_equal(virtq_get(vq, NULL), &tok[0]);
	assert_false(virtq_enable_irq(vq));
	assert_int_equal(*used_event, 1);
	teardown_vq(f);
}

static void test_no_interrupt_flag(void **state)
{
	struct fixture *f = setup_vq(false, false);
	struct virtq *vq = &f->vq;

	virtq_disable_irq(vq);
	assert_int_equal(vq->avail[0], VIRTQ_AVAIL_F_NO_INTERRUPT);
	assert_false(virtq_enable_irq(vq));
	assert_int_equal(vq->avail[0], 0);
	teardown_vq(f);
}

static void test_device_returns_bogus_ids(void **state)
{
	struct fixture *f = setup_vq(false, false);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;

	assert_int_equal(add(vq, 1, 1, 0), 0);
	assert_true(dev_pop(vq, &d, &c));
	dev_push(vq, &d, QSIZE + 1, 1);		   /* out of range */
	dev_push(vq, &d, (c.head + 1) % QSIZE, 1); /* in range, not in flight */
	dev_push(vq, &d, c.head, 1);		   /* the real one */
	assert_ptr_equal(virtq_get(vq, NULL), &tok[0]);
	assert_int_equal(vq->error, -EPROTO);
	assert_null(virtq_get(vq, NULL));
	assert_int_equal(vq->num_free, QSIZE);
	teardown_vq(f);
}

static void test_raw_publish_and_reinit(void **state)
{
	struct fixture *f = setup_vq(false, false);
	struct virtq *vq = &f->vq;

	vq->desc[5] = (struct virtq_desc){0x1000, 16, VIRTQ_DESC_F_NEXT, 5}; /* a loop */
	virtq_publish_raw(vq, 5, &tok[1]);
	virtq_publish_raw(vq, QSIZE + 2, &tok[2]); /* head out of range, slot 2 */
	assert_int_equal(vq->avail[1], 2);
	assert_int_equal(vq->avail[2], 5);
	assert_int_equal(vq->avail[3], QSIZE + 2);
	assert_int_equal(virtq_inflight(vq), 2);
	/* a device that completes the raw head 5: returned, nothing freed */
	struct dev d = {0};
	dev_push(vq, &d, 5, 0);
	uint16_t before = vq->num_free;
	assert_ptr_equal(virtq_get(vq, NULL), &tok[1]);
	assert_int_equal(vq->num_free, before);

	virtq_reinit(vq);
	assert_int_equal(vq->num_free, QSIZE);
	assert_int_equal(virtq_inflight(vq), 0);
	assert_int_equal(vq->avail[1], 0);
	assert_int_equal(vq->used[1], 0);
	assert_int_equal(add(vq, 4, 4, 0), 0);
	teardown_vq(f);
}

static void test_wraparound(void **state)
{
	struct fixture *f = setup_vq(true, true);
	struct virtq *vq = &f->vq;
	struct dev d = {0};
	struct chain c;

	/* 70000 requests: the 16-bit indices wrap; depth 3 */
	int inflight = 0, submitted = 0, done = 0;
	while (done < 70000) {
		while (inflight < 3 && submitted < 70000) {
			assert_int_equal(add(vq, 1, 2, submitted % 64), 0);
			submitted++;
			inflight++;
		}
		virtq_kick(vq);
		assert_true(dev_pop(vq, &d, &c));
		dev_push(vq, &d, c.head, 3);
		void *t = virtq_get(vq, NULL);
		assert_ptr_equal(t, &tok[done % 64]);
		done++;
		inflight--;
	}
	assert_int_equal(vq->error, 0);
	assert_int_equal(vq->last_used, (uint16_t)70000);
	teardown_vq(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_direct_fill_and_drain),
	    cmocka_unit_test(test_indirect),
	    cmocka_unit_test(test_no_notify_flag),
	    cmocka_unit_test(test_event_idx_kicks),
	    cmocka_unit_test(test_event_idx_irq),
	    cmocka_unit_test(test_no_interrupt_flag),
	    cmocka_unit_test(test_device_returns_bogus_ids),
	    cmocka_unit_test(test_raw_publish_and_reinit),
	    cmocka_unit_test(test_wraparound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
