/* SPDX-License-Identifier: MIT */
/*
 * Thread pool: blocking work on worker threads, completions as a BH in the
 * submitting context.
 *
 * Workers are spawned lazily, when work is queued and no idle worker can
 * take it, up to max_threads. A worker idle for pool->idle_ns (default
 * 10 s) exits; it cannot join itself, so it parks its handle on
 * pool->exited and the owner joins it at the next submit or at
 * thread_pool_free. Workers wait on a condition variable and stop when
 * thread_pool_free sets `stopping` and broadcasts (no pthread_cancel).
 *
 * A request is QUEUED (on pool->queue), RUNNING (a worker has it) or DONE
 * (on pool->done, waiting for the completion BH). All of that state is
 * under pool->lock; the mutex also orders the worker's writes (ret, the
 * work's own results) before the completion callback.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "aio/aio_int.h"

#define POOL_DEFAULT_IDLE_NS (10 * 1000000000LL)

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct thread_pool_req {
	/* immutable after submit */
	thread_pool_work_fn *fn;
	void *arg;
	thread_pool_done_fn *done;
	void *opaque;
	struct thread_pool *pool;
	/* pool->lock */
	enum req_state state;
	int ret;
	struct thread_pool_req *next; /* on queue or done */
};

struct pool_worker {
	struct thread_pool *pool; /* immutable */
	pthread_t tid;		  /* written by the spawner under pool->lock */
	struct pool_worker *next; /* pool->lock */
};

struct thread_pool {
	struct aio_context *ctx; /* immutable */
	struct aio_bh *done_bh;	 /* immutable; runs pool_done_bh in ctx */
	int max_threads;	 /* immutable */

	pthread_mutex_t lock;
	pthread_cond_t work_cond;		     /* work queued or stopping; lock */
	struct thread_pool_req *queue, **queue_tail; /* lock */
	struct thread_pool_req *done, **done_tail;   /* lock */
	int nr_queued;				     /* lock */
	int nr_threads;				     /* lock: started, not exited */
	int nr_idle;				     /* lock: waiting on work_cond */
	int64_t idle_ns;			     /* lock */
	bool stopping;				     /* lock */
	struct pool_worker *workers;		     /* lock: running */
	struct pool_worker *exited;		     /* lock: to be joined */
};

/*
 * Any thread, pool->lock held. Queues @req's completion. The BH is
 * scheduled only when the done list goes from empty to non-empty: a
 * non-empty list means a schedule was already made (under this lock) and
 * the BH run that takes the list (under this lock too) has not yet done
 * so, so it will see req. This way every completion BH run finds work.
 */
static void pool_complete_locked(struct thread_pool *pool, struct thread_pool_req *req, int ret)
{
	bool was_empty = !pool->done;

	req->ret = ret;
	req->state = REQ_DONE;
	req->next = NULL;
	*pool->done_tail = req;
	pool->done_tail = &req->next;
	if (was_empty) {
		aio_bh_schedule(pool->done_bh); /* lock-free: fine under the lock */
	}
}

/* Worker thread, pool->lock held, pool not stopping: park for joining. */
static void pool_worker_idle_exit(struct thread_pool *pool, struct pool_worker *self)
{
	struct pool_worker **pp;

	for (pp = &pool->workers; *pp != self; pp = &(*pp)->next) {
	}
	*pp = self->next;
	self->next = pool->exited;
	pool->exited = self;
}

/* Worker thread. */
static void *pool_worker_run(void *opaque)
{
	struct pool_worker *self = opaque;
	struct thread_pool *pool = self->pool;
	struct thread_pool_req *req;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (!pool->queue && !pool->stopping) {
			struct timespec ts;
			int rc;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += pool->idle_ns / 1000000000LL;
			ts.tv_nsec += pool->idle_ns % 1000000000LL;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pool->nr_idle++;
			rc = pthread_cond_timedwait(&pool->work_cond, &pool->lock, &ts);
			pool->nr_idle--;
			/*
			 * Once stopping is set, thread_pool_free owns the
			 * worker lists: leave them alone.
			 */
			if (rc == ETIMEDOUT && !pool->queue && !pool->stopping) {
				pool_worker_idle_exit(pool, self);
				goto out;
			}
		}
		if (!pool->queue) {
			goto out; /* stopping; thread_pool_free drained the queue */
		}
		req = pool->queue;
		pool->queue = req->next;
		if (!pool->queue) {
			pool->queue_tail = &pool->queue;
		}
		pool->nr_queued--;
		req->state = REQ_RUNNING;
		pthread_mutex_unlock(&pool->lock);

		int ret = req->fn(req->arg);

		pthread_mutex_lock(&pool->lock);
		pool_complete_locked(pool, req, ret);
	}
out:
	pool->nr_threads--;
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Owner thread, pool->lock held. Returns 0 or a negative errno. */
static int pool_spawn_locked(struct thread_pool *pool)
{
	struct pool_worker *w = calloc(1, sizeof(*w));
	int ret;

	if (!w) {
		return -ENOMEM;
	}
	w->pool = pool;
	/* The worker needs the lock, held by us until w is linked in. */
	ret = aio_thread_start(&w->tid, pool_worker_run, w, "aio-worker", AIO_THREAD_WORKER);
	if (ret) {
		free(w);
		return ret;
	}
	w->next = pool->workers;
	pool->workers = w;
	pool->nr_threads++;
	return 0;
}

static void pool_join_list(struct pool_worker *w)
{
	while (w) {
		struct pool_worker *next = w->next;

		pthread_join(w->tid, NULL);
		free(w);
		w = next;
	}
}

/* Owner thread of pool->ctx (the BH runs there). */
static void pool_done_bh(void *opaque)
{
	struct thread_pool *pool = opaque;
	struct thread_pool_req *req, *next;

	pthread_mutex_lock(&pool->lock);
	req = pool->done;
	pool->done = NULL;
	pool->done_tail = &pool->done;
	pthread_mutex_unlock(&pool->lock);

	/* Callbacks may submit, cancel or nest aio_poll: the list is ours. */
	for (; req; req = next) {
		next = req->next;
		req->done(req->opaque, req->ret);
		free(req);
	}
}

/* Any thread (the pool then belongs to @ctx's owner). */
int thread_pool_new(struct aio_context *ctx, int max_threads, struct thread_pool **out)
{
	struct thread_pool *pool;
	pthread_condattr_t attr;
	int ret;

	if (max_threads < 1) {
		return -EINVAL;
	}
	pool = calloc(1, sizeof(*pool));
	if (!pool) {
		return -ENOMEM;
	}
	pool->ctx = ctx;
	pool->max_threads = max_threads;
	pool->idle_ns = POOL_DEFAULT_IDLE_NS;
	pool->queue_tail = &pool->queue;
	pool->done_tail = &pool->done;
	pool->done_bh = aio_bh_new(ctx, pool_done_bh, pool);
	if (!pool->done_bh) {
		ret = -ENOMEM;
		goto err_free;
	}
	ret = -pthread_mutex_init(&pool->lock, NULL);
	if (ret) {
		goto err_bh;
	}
	/* Idle timeouts must not jump with the wall clock. */
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	ret = -pthread_cond_init(&pool->work_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (ret) {
		goto err_mutex;
	}
	*out = pool;
	return 0;

err_mutex:
	pthread_mutex_destroy(&pool->lock);
err_bh:
	aio_bh_delete(pool->done_bh);
err_free:
	free(pool);
	return ret;
}

/* Owner thread. */
void thread_pool_set_idle_ns(struct thread_pool *pool, int64_t idle_ns)
{
	pthread_mutex_lock(&pool->lock);
	pool->idle_ns = idle_ns > 0 ? idle_ns : 1;
	pthread_mutex_unlock(&pool->lock);
}

/* Any thread; a snapshot. */
int thread_pool_nr_threads(struct thread_pool *pool)
{
	int n;

	pthread_mutex_lock(&pool->lock);
	n = pool->nr_threads;
	pthread_mutex_unlock(&pool->lock);
	return n;
}

/* Owner thread. Returns NULL on failure (out of memory, no thread, stopping). */
struct thread_pool_req *thread_pool_submit(struct thread_pool *pool, thread_pool_work_fn *fn,
					   void *arg, thread_pool_done_fn *done, void *opaque)
{
	struct thread_pool_req *req = calloc(1, sizeof(*req));
	struct pool_worker *exited;

	if (!req) {
		return NULL;
	}
	req->fn = fn;
	req->arg = arg;
	req->done = done;
	req->opaque = opaque;
	req->pool = pool;
	req->state = REQ_QUEUED;

	pthread_mutex_lock(&pool->lock);
	if (pool->stopping) {
		pthread_mutex_unlock(&pool->lock);
		free(req);
		return NULL;
	}
	*pool->queue_tail = req;
	pool->queue_tail = &req->next;
	pool->nr_queued++;
	if (pool->nr_queued > pool->nr_idle && pool->nr_threads < pool->max_threads &&
	    pool_spawn_locked(pool) && pool->nr_threads == 0) {
		/* No worker at all to run it: undo (req is the tail). */
		struct thread_pool_req **pp;

		for (pp = &pool->queue; *pp != req; pp = &(*pp)->next) {
		}
		*pp = NULL;
		pool->queue_tail = pp;
		pool->nr_queued--;
		pthread_mutex_unlock(&pool->lock);
		free(req);
		return NULL;
	}
	pthread_cond_signal(&pool->work_cond);
	exited = pool->exited;
	pool->exited = NULL;
	pthread_mutex_unlock(&pool->lock);

	pool_join_list(exited); /* they only have to return: brief */
	return req;
}

/* Owner thread, before @req's completion has run. */
bool thread_pool_cancel(struct thread_pool_req *req)
{
	struct thread_pool *pool = req->pool;
	struct thread_pool_req **pp;

	pthread_mutex_lock(&pool->lock);
	if (req->state != REQ_QUEUED) {
		pthread_mutex_unlock(&pool->lock);
		return false;
	}
	for (pp = &pool->queue; *pp != req; pp = &(*pp)->next) {
	}
	*pp = req->next;
	if (!*pp) {
		pool->queue_tail = pp;
	}
	pool->nr_queued--;
	pool_complete_locked(pool, req, -ECANCELED);
	pthread_mutex_unlock(&pool->lock);
	return true;
}

/*
 * Owner thread, not from a completion callback. Queued work is cancelled,
 * running work is waited for, and every outstanding completion (-ECANCELED
 * for the cancelled ones) runs before this returns.
 */
void thread_pool_free(struct thread_pool *pool)
{
	struct pool_worker *workers, *exited;
	struct thread_pool_req *req;

	if (!pool) {
		return;
	}
	pthread_mutex_lock(&pool->lock);
	while ((req = pool->queue)) {
		pool->queue = req->next;
		pool_complete_locked(pool, req, -ECANCELED);
	}
	pool->queue_tail = &pool->queue;
	pool->nr_queued = 0;
	pool->stopping = true;
	pthread_cond_broadcast(&pool->work_cond);
	/* Under the lock with stopping set, no worker touches the lists. */
	workers = pool->workers;
	exited = pool->exited;
	pool->workers = NULL;
	pool->exited = NULL;
	pthread_mutex_unlock(&pool->lock);
	pool_join_list(workers); /* they finish their current work first */
	pool_join_list(exited);

	pool_done_bh(pool); /* every completion, synchronously */
	aio_bh_delete(pool->done_bh);
	pthread_cond_destroy(&pool->work_cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}
