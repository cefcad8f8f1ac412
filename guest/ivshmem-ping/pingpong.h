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
 * Waiting: mode=irq halts until a doorbell interrupt (irq_wait also wakes
 * every ~10 ms on its LAPIC timer, so a doorbell dropped because the peer
 * was not known yet, or knew us under an old ID, costs time, not the run);
 * a wait that takes over PP_SLOW_MS counts as slow and makes the side check
 * its IVPOSITION. mode=poll spins at CPL3 on the sequence number. Every shared-memory access goes
 * through __atomic builtins with acquire/release ordering: a sequence number is released after the
 * message it covers, and acquired before the message is read.
 */
#ifndef PINGPONG_H
#define PINGPONG_H

#include "guest.h"
#include "clock.h"
#include "irq.h"
#include "ivshmem.h"

#define PP_MAGIC      0x49565050u /* "IVPP" */
#define PP_MSG_LEN    64
#define PP_WAIT_MS    100
#define PP_SLOW_MS    5	    /* a round trip is well under 1 ms when doorbells arrive */
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
	uint64_t slow_waits; /* irq waits over PP_SLOW_MS: no doorbell came in time */
	const char *who;
	uint32_t *my_id; /* where we publish our ID (pp_hello) */
	uint64_t id_changes;
};

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
	p->tsc_khz = tsc_khz();
	irq_init();
	if (p->d.doorbell && ivshmem_route(&p->d, 0) < 0) {
		printf("%s: cannot route MSI-X vector 0\n", who);
		guest_exit(2);
	}
	printf("%s: %s at %02x:%02x.%u, ID %u, %lu KiB shared memory at 0x%lx, %u vectors, "
	       "%lu rounds, mode %s\n",
	       who, p->d.doorbell ? "ivshmem-doorbell" : "ivshmem-plain", p->d.pci->bus,
	       p->d.pci->dev, p->d.pci->fn, p->d.id, p->d.shm_size >> 10, p->d.shm,
	       p->d.doorbell ? p->d.msix.nvec : 0, p->rounds, pp_mode(p));
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
 * dropped. After a slow wait, check IVPOSITION and publish a new ID, so the
 * peer rings the right one again.
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
	       p->who, p->d.id, id, ivshmem_irq_count(&p->d, 0));
	p->d.id = id;
	p->id_changes++;
	pp_store(p->my_id, id);
}

/* Any CPL: wait until *@word == @want; fail after PP_GIVE_UP_MS without
 * progress. */
static inline void pp_wait(struct pp *p, uint32_t *word, uint32_t want)
{
	uint64_t start = rdtsc(), limit = tsc_ms(PP_GIVE_UP_MS), t;
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
		t = rdtsc();
		if (!ivshmem_wait(word, v, PP_WAIT_MS) || rdtsc() - t > tsc_ms(PP_SLOW_MS)) {
			p->slow_waits++;
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
