/* SPDX-License-Identifier: MIT */
/*
 * Timers: CLOCK_MONOTONIC nanosecond deadlines, owner thread only.
 *
 * Armed timers sit on ctx->timers sorted by deadline (equal deadlines in
 * arming order). aio_timers_run moves the due ones to ctx->expired and runs
 * them from there, one at a time, so a callback may delete, re-arm or free
 * any timer (itself included) and may nest aio_poll, which then continues
 * with the same expired list in order. A timer re-armed into the past from
 * its callback runs on the next pass, not in a loop.
 */
#include <stdio.h>
#include <stdlib.h>

#include "aio/aio_int.h"

static void timer_list_init(struct aio_timer *head)
{
	head->prev = head;
	head->next = head;
}

static bool timer_list_empty(const struct aio_timer *head)
{
	return head->next == head;
}

static void timer_unlink(struct aio_timer *t)
{
	if (t->next) {
		t->prev->next = t->next;
		t->next->prev = t->prev;
		t->prev = NULL;
		t->next = NULL;
	}
}

static void timer_insert_after(struct aio_timer *pos, struct aio_timer *t)
{
	t->prev = pos;
	t->next = pos->next;
	pos->next->prev = t;
	pos->next = t;
}

void aio_timers_init(struct aio_context *ctx)
{
	timer_list_init(&ctx->timers);
	timer_list_init(&ctx->expired);
}

/* Owner thread, from aio_context_free. Timers belong to their creators. */
void aio_timers_cleanup(struct aio_context *ctx)
{
	while (!timer_list_empty(&ctx->timers)) {
		fprintf(stderr, "aio: timer still armed at aio_context_free\n");
		timer_unlink(ctx->timers.next);
	}
}

/* Owner thread. Returns NULL if out of memory. */
struct aio_timer *aio_timer_new(struct aio_context *ctx, aio_timer_fn *cb, void *opaque)
{
	struct aio_timer *t = calloc(1, sizeof(*t));

	if (t) {
		t->ctx = ctx;
		t->cb = cb;
		t->opaque = opaque;
	}
	return t;
}

/* Owner thread. Arms (or re-arms) @t to fire at @expire_ns. */
void aio_timer_mod(struct aio_timer *t, int64_t expire_ns)
{
	struct aio_timer *head = &t->ctx->timers;
	struct aio_timer *pos;

	timer_unlink(t);
	t->expire_ns = expire_ns;
	/* Walk from the back: new deadlines are usually the latest. */
	for (pos = head->prev; pos != head && pos->expire_ns > expire_ns; pos = pos->prev) {
	}
	timer_insert_after(pos, t);
}

/* Owner thread, also from the timer's callback. */
void aio_timer_del(struct aio_timer *t)
{
	if (t) {
		timer_unlink(t);
	}
}

/* Owner thread, also from the timer's callback. */
void aio_timer_free(struct aio_timer *t)
{
	if (t) {
		timer_unlink(t);
		free(t);
	}
}

/* Owner thread. */
bool aio_timer_pending(struct aio_timer *t)
{
	return t->next != NULL;
}

int64_t aio_timers_timeout(struct aio_context *ctx)
{
	int64_t left;

	if (!timer_list_empty(&ctx->expired)) {
		return 0;
	}
	if (timer_list_empty(&ctx->timers)) {
		return -1;
	}
	left = ctx->timers.next->expire_ns - aio_clock_ns();
	return left > 0 ? left : 0;
}

bool aio_timers_run(struct aio_context *ctx)
{
	struct aio_timer *t;
	bool progress = false;

	if (!timer_list_empty(&ctx->timers)) {
		int64_t now = aio_clock_ns();

		while (!timer_list_empty(&ctx->timers) && ctx->timers.next->expire_ns <= now) {
			t = ctx->timers.next;
			timer_unlink(t);
			timer_insert_after(ctx->expired.prev, t);
		}
	}
	while (!timer_list_empty(&ctx->expired)) {
		t = ctx->expired.next;
		timer_unlink(t);
		t->cb(t->opaque);
		progress = true;
	}
	return progress;
}
