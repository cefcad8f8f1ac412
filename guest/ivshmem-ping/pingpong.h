/* SPDX-License-Identifier: MIT */
/*
 * What ivshmem-ping and ivshmem-pong share: the layout they agree on at
 * the start of the shared memory, the command line, the message pattern,
 * and the wait (doorbell interrupt or polling).
 *
 * Command line (both): rounds=N (default 1000), mode=irq|poll|irq0
 * (default irq; irq0 runs the loop at CPL0 instead of CPL3), nonce=N (default 0: must match between
 * the two, so that what a previous pair left in the shared memory is not mistaken for the peer),
 * dev=K (which ivshmem device, default 0), vector=V (the peer's vector
 * to ring, default 0). On ivshmem-plain (no doorbell) both poll.
 *
 * Start: each side clears its sequence number, then publishes its
 * IVPOSITION and magic (PP_MAGIC ^ nonce), and waits for the other's.
 * Round i: ping writes the message for i, sets ping_seq = i and rings
 * pong; pong waits for ping_seq == i, checks the message, writes the reply,
 * sets pong_seq = i and rings ping; ping waits for pong_seq == i and checks
 * the reply. Each side reads the other's ID every round and republishes its
 * own when IVPOSITION changes (a restored doorbell device has a new ID).
 * Waiting: mode=irq halts until a doorbell interrupt (or a
 * 100 ms LAPIC timer, so a doorbell dropped because the peer was not known
 * yet costs time, not the run); mode=poll spins at CPL3 on the sequence
 * number. Every shared-memory access goes through __atomic builtins with
 * acquire/release ordering: a sequence number is released after the
 * message it covers, and acquired before the message is read.
 */
#ifndef PINGPONG_H
#define PINGPONG_H

#include "guest.h"
#include "ivshmem.h"

#define PP_MAGIC      0x49565050u /* "IVPP" */
#define PP_MSG_LEN    64
#define PP_WAIT_MS    100
#define PP_GIVE_UP_MS 20000 /* no progress for this long: fail (exit 3) */

struct pp_shared {
	uint32_t ping_magic, ping_id, pong_magic, pong_id;
	uint32_t ping_seq, pong_seq;
	uint32_t pad[10];
	uint8_t msg[PP_MSG_LEN];   /* offset 64: ping's message */
	uint8_t reply[PP_MSG_LEN]; /* offset 128: pong's reply */
};

struct pp {
	struct ivshmem_dev d;
	struct pp_shared *sh;
	uint64_t rounds;
	bool poll;
	bool cpl0; /* mode=irq0: the whole loop at CPL0 (emulated here), for comparison */
	uint32_t magic;
	uint32_t vector;
	uint64_t tsc_khz;
	uint64_t timeouts; /* irq waits that the timer ended: no doorbell came in time */
	const char *who;
	uint32_t *my_id; /* where we publish our ID (pp_hello) */
	uint64_t id_changes;
};

#define MSR_KVM_SYSTEM_TIME_NEW	 0x4b564d01u
#define KVM_FEATURE_CLOCKSOURCE2 (1u << 3)

/* TSC rate in kHz from kvmclock's scale factor, or 0. CPL0 (MSR write).
 * (A copy of guest/bench's; guest/lib gains a clock.h on another branch.) */
static inline uint64_t pp_tsc_khz(void)
{
	static struct {
		uint32_t version, pad0;
		uint64_t tsc_timestamp, system_time;
		uint32_t mul;
		int8_t shift;
		uint8_t flags, pad[2];
	} pvclock __attribute__((aligned(64)));
	uint32_t a, b, c, d;
	uint64_t hz;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	if (b != 0x4b4d564b || a < 0x40000001)
		return 0;
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	if (!(a & KVM_FEATURE_CLOCKSOURCE2))
		return 0;
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, (uint64_t)&pvclock | 1);
	hz = __atomic_load_n(&pvclock.mul, __ATOMIC_ACQUIRE);
	wrmsr(MSR_KVM_SYSTEM_TIME_NEW, 0);
	if (!hz)
		return 0;
	hz = (1000000000ull << 32) / hz;
	hz = pvclock.shift >= 0 ? hz >> pvclock.shift : hz << -pvclock.shift;
	return hz / 1000;
}

static inline uint32_t pp_load(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static inline void pp_store(uint32_t *p, uint32_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

/* The message of round @round, from @who ('i' ping, 'o' pong). */
static inline void pp_fill(uint8_t *buf, uint64_t round, char who)
{
	for (unsigned i = 0; i < PP_MSG_LEN; i++)
		buf[i] = (uint8_t)(round * 31 + i * 7 + (uint8_t)who);
}

static inline bool pp_check(const uint8_t *buf, uint64_t round, char who)
{
	for (unsigned i = 0; i < PP_MSG_LEN; i++)
		if (buf[i] != (uint8_t)(round * 31 + i * 7 + (uint8_t)who))
			return false;
	return true;
}

static inline const char *pp_mode(const struct pp *p)
{
	return p->poll ? "poll" : p->cpl0 ? "irq0" : "irq";
}

/* CPL0: command line, device, interrupts. Exits 2 without a usable device. */
static inline void pp_init(struct pp *p, const char *who)
{
	uint64_t v, dev = 0, nonce = 0;
	const char *mode;
	size_t len;
	int r;

	p->who = who;
	p->rounds = 1000;
	p->vector = 0;
	if (!cmdline_get_u64("rounds", &v))
		p->rounds = v;
	if (!cmdline_get_u64("dev", &v))
		dev = v;
	if (!cmdline_get_u64("nonce", &v))
		nonce = v;
	if (!cmdline_get_u64("vector", &v))
		p->vector = (uint32_t)v;
	if (!cmdline_get("mode", &mode, &len)) {
		p->poll = len == 4 && !memcmp(mode, "poll", 4);
		p->cpl0 = len == 4 && !memcmp(mode, "irq0", 4);
	}
	p->magic = PP_MAGIC ^ (uint32_t)nonce;
	r = ivshmem_open((unsigned)dev, &p->d);
	if (r < 0) {
		printf("%s: no ivshmem device %lu (%d)\n", who, dev, r);
		guest_exit(2);
	}
	if (p->d.shm_size < sizeof(struct pp_shared)) {
		printf("%s: ivshmem device %lu: shared memory too small\n", who, dev);
		guest_exit(2);
	}
	if (!p->d.doorbell)
		p->poll = true; /* ivshmem-plain: no interrupts, poll the memory */
	p->sh = (struct pp_shared *)p->d.shm;
	p->tsc_khz = pp_tsc_khz();
	ivshmem_irq_init();
	if (p->d.doorbell)
		ivshmem_route(&p->d, 0);
	printf("%s: %s at 00:%02x.0, ID %u, %lu KiB shared memory at 0x%lx%s, %u vectors, "
	       "%lu rounds, mode %s\n",
	       who, p->d.doorbell ? "ivshmem-doorbell" : "ivshmem-plain", p->d.dev, p->d.id,
	       p->d.shm_size >> 10, p->d.shm, p->d.moved ? " (moved)" : "", p->d.nvec, p->rounds,
	       pp_mode(p));
}

/* Ring the peer (ivshmem-plain has no doorbell: polling only). Any CPL. */
static inline void pp_ring(struct pp *p, uint32_t peer)
{
	if (p->d.doorbell)
		ivshmem_ring(&p->d, peer, p->vector);
}

/*
 * A doorbell device gets a new ID when its VM is restored from a snapshot
 * (it joins the server again), and the peer's doorbells to the old one are
 * dropped. After a wait that the timer ended, check IVPOSITION and publish
 * a new ID, so the peer rings the right one again.
 */
static inline void pp_refresh_id(struct pp *p)
{
	uint32_t id;

	if (!p->d.doorbell || !p->my_id)
		return;
	id = ivshmem_read_reg(&p->d, IVSHMEM_REG_IVPOSITION);
	if (id == p->d.id)
		return;
	printf("%s: IVPOSITION changed from %u to %u (restored?), %lu doorbell interrupts so "
	       "far\n",
	       p->who, p->d.id, id, ivshmem_irq_count(0));
	p->d.id = id;
	p->id_changes++;
	pp_store(p->my_id, id);
}

/* Any CPL: wait until *@word == @want; fail after PP_GIVE_UP_MS without
 * progress. */
static inline void pp_wait(struct pp *p, uint32_t *word, uint32_t want)
{
	uint64_t khz = p->tsc_khz ? p->tsc_khz : 3000000;
	uint64_t start = rdtsc(), limit = khz * PP_GIVE_UP_MS;
	uint32_t v;

	while ((v = pp_load(word)) != want) {
		if (rdtsc() - start > limit) {
			printf("%s: gave up waiting for %u (still %u) after %u ms\n", p->who, want,
			       v, PP_GIVE_UP_MS);
			guest_exit(3);
		}
		if (p->poll) {
			cpu_relax();
			continue;
		}
		if (!ivshmem_wait(word, v, PP_WAIT_MS)) {
			p->timeouts++;
			pp_refresh_id(p);
		}
	}
}

/* Publish our side (sequence 0, ID, then magic) and wait for the other's
 * magic, polling: nobody rings a doorbell for this. Any CPL. */
static inline void pp_hello(struct pp *p, uint32_t *my_seq, uint32_t *my_id, uint32_t *my_magic,
			    uint32_t *their_magic)
{
	bool poll = p->poll;

	p->my_id = my_id;
	pp_store(my_seq, 0);
	pp_store(my_id, p->d.id);
	pp_store(my_magic, p->magic);
	p->poll = true;
	pp_wait(p, their_magic, p->magic);
	p->poll = poll;
}

#endif
