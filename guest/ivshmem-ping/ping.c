// SPDX-License-Identifier: MIT
/*
 * ivshmem-ping: the active side of a doorbell ping-pong over ivshmem (see
 * pingpong.h). After rounds=N verified round trips it prints the round-trip
 * times (median, p99, min, max; ns from kvmclock's TSC rate, else ticks)
 * and exits 0. A bad reply exits 1, no doorbell device 2, a stuck peer 3.
 */
#include "pingpong.h"

#define PP_MAX_ROUNDS 1000000

struct ping_run {
	struct pp *p;
	uint64_t *lat; /* TSC ticks per round trip */
};

/* Heapsort: O(n log n) with no extra memory; runs at CPL3. */
static void sift_down(uint64_t *a, uint64_t i, uint64_t n)
{
	for (uint64_t c; (c = 2 * i + 1) < n; i = c) {
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[i] >= a[c])
			return;
		uint64_t t = a[i];
		a[i] = a[c];
		a[c] = t;
	}
}

static void sort_u64(uint64_t *a, uint64_t n)
{
	for (uint64_t i = n / 2; i-- > 0;)
		sift_down(a, i, n);
	for (uint64_t end = n; end-- > 1;) {
		uint64_t t = a[0];
		a[0] = a[end];
		a[end] = t;
		sift_down(a, 0, end);
	}
}

static long ping_loop(void *arg)
{
	struct ping_run *r = arg;
	struct pp *p = r->p;
	struct pp_shared *sh = p->sh;

	pp_hello(p, &sh->ping_seq, &sh->ping_id, &sh->ping_magic, &sh->pong_magic);
	for (uint64_t i = 1; i <= p->rounds; i++) {
		uint32_t peer = pp_load(&sh->pong_id); /* changes if pong is restored */
		uint64_t t0;

		pp_fill(sh->msg, i, 'i');
		pp_store(&sh->ping_seq, (uint32_t)i);
		t0 = rdtsc();
		pp_ring(p, peer);
		pp_wait(p, &sh->pong_seq, (uint32_t)i);
		r->lat[i - 1] = rdtsc() - t0;
		if (!pp_check(sh->reply, i, 'o')) {
			printf("ivshmem-ping: round %lu: bad reply\n", i);
			return 1;
		}
	}
	return 0;
}

static uint64_t to_ns(uint64_t ticks, uint64_t khz)
{
	return khz ? tsc_to_ns(ticks, khz) : ticks;
}

static long ping_report(void *arg)
{
	struct ping_run *r = arg;
	struct pp *p = r->p;
	uint64_t n = p->rounds, khz = p->tsc_khz;

	sort_u64(r->lat, n);
	printf("ivshmem-ping: %lu round trips verified, mode %s, peer %u\n", n, pp_mode(p),
	       pp_load(&p->sh->pong_id));
	printf("ivshmem-ping: rtt %s median %lu p99 %lu min %lu max %lu\n", khz ? "ns" : "ticks",
	       to_ns(r->lat[n / 2], khz), to_ns(r->lat[n - 1 - n / 100], khz),
	       to_ns(r->lat[0], khz), to_ns(r->lat[n - 1], khz));
	printf("ivshmem-ping: doorbell interrupts %lu, slow waits %lu, ID changes %lu\n",
	       ivshmem_irq_count(&p->d, 0), p->slow_waits, p->id_changes);
	return 0;
}

int main(void)
{
	static struct pp p;
	struct ping_run r = {.p = &p};
	long ret;

	pp_init(&p, "ivshmem-ping");
	if (p.rounds < 1 || p.rounds > PP_MAX_ROUNDS) {
		printf("ivshmem-ping: rounds must be 1..%d\n", PP_MAX_ROUNDS);
		return 2;
	}
	r.lat = mem_alloc(p.rounds * sizeof(uint64_t), 64);
	ASSERT(r.lat);
	ret = p.cpl0 ? ping_loop(&r) : user_call(ping_loop, &r);
	if (ret)
		return (int)ret;
	user_call(ping_report, &r);
	return 0;
}
