// SPDX-License-Identifier: MIT
/*
 * Split virtqueue chain walking (devices/virtio/virtqueue.c) against a
 * driver that writes anything into its rings: vq_enable on any areas,
 * vq_pop / vq_push / vq_discard / notification suppression in any order,
 * then a snapshot of the queue (vq_save, vq_snap_check, vq_load) and
 * vq_reload of every chain still in flight.
 *
 * Input: a 16-byte header (queue size, ring features, how many actions,
 * the three ring addresses), the actions (one byte each), then guest RAM
 * from GPA 0. Checked: every buffer of a popped chain lies in guest RAM
 * and the lengths add up; in-flight bookkeeping matches; a queue's own
 * snapshot passes vq_snap_check; while the rings are untouched by the
 * device, vq_reload finds each in-flight chain as popped.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"
#include "tests/fuzz/fuzz.h"

#define RAM	(2ULL << 20)
#define MAX_OPS 64

struct hdr {
	uint16_t size;
	uint8_t flags; /* bit 0: EVENT_IDX, bit 1: INDIRECT_DESC */
	uint8_t nops;
	uint32_t desc, avail, used;
};

_Static_assert(sizeof(struct hdr) == 16, "header layout");

enum { ACT_PUSH, ACT_HOLD, ACT_DISCARD, ACT_NOTIFY };

static struct guest_mem mem;
static struct virtqueue vq, vq2;
static uint8_t *ram;

/* ---- seeds: a driver's rings, as tests/unit/test_virtqueue.c builds them ---- */

#define S_DESC	0x0000
#define S_AVAIL 0x1000
#define S_USED	0x2000
#define S_IND	0x3000
#define S_BUF	0x4000

static void put_desc(uint8_t *m, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags, uint16_t next)
{
	uint8_t *p = m + table + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void seed_rings(const char *dir, const char *name, bool indirect)
{
	static uint8_t buf[sizeof(struct hdr) + 8 + S_BUF];
	struct hdr h = {8, indirect ? 3 : 0, 8, S_DESC, S_AVAIL, S_USED};
	static const uint8_t ops[8] = {ACT_HOLD,    ACT_PUSH | 0x40, ACT_NOTIFY, ACT_HOLD,
				       ACT_DISCARD, ACT_PUSH,	     ACT_HOLD,	 ACT_PUSH};
	uint8_t *m = buf + sizeof(h) + sizeof(ops);
	uint16_t avail[4 + 2 * 4] = {0, 4};

	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), ops, sizeof(ops));
	/* Chains: 0 -> 1 (read, write), 2 alone (write), 3 -> 4 -> 5. */
	put_desc(m, S_DESC, 0, S_BUF, 16, VRING_DESC_F_NEXT, 1);
	put_desc(m, S_DESC, 1, S_BUF + 16, 512, VRING_DESC_F_WRITE, 0);
	put_desc(m, S_DESC, 2, S_BUF + 1024, 1, VRING_DESC_F_WRITE, 0);
	put_desc(m, S_DESC, 3, S_BUF, 16, VRING_DESC_F_NEXT, 4);
	put_desc(m, S_DESC, 4, S_BUF + 64, 64, VRING_DESC_F_NEXT, 5);
	put_desc(m, S_DESC, 5, S_BUF + 128, 1, VRING_DESC_F_WRITE, 0);
	if (indirect) {
		put_desc(m, S_DESC, 6, S_IND, 48, VRING_DESC_F_INDIRECT, 0);
		put_desc(m, S_IND, 0, S_BUF, 16, VRING_DESC_F_NEXT, 1);
		put_desc(m, S_IND, 1, S_BUF + 32, 32, VRING_DESC_F_NEXT, 2);
		put_desc(m, S_IND, 2, S_BUF + 64, 8, VRING_DESC_F_WRITE, 0);
	}
	avail[2] = 0;
	avail[3] = 2;
	avail[4] = 3;
	avail[5] = indirect ? 6 : 0;
	memcpy(m + S_AVAIL, avail, sizeof(avail));
	fuzz_write_seed(dir, name, buf, sizeof(buf));
}

int fuzz_seeds(const char *dir)
{
	seed_rings(dir, "direct", false);
	seed_rings(dir, "indirect", true);
	return 0;
}

/* ---- the target ---- */

static void check_elem(const struct vq_elem *e, uint16_t size)
{
	uint64_t out = 0, in = 0;

	if (e->head >= size)
		fuzz_fail("head %u in a queue of %u", e->head, size);
	if (e->out_num + e->in_num > VQ_MAX_IOV)
		fuzz_fail("chain of %u buffers", e->out_num + e->in_num);
	for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
		const struct iovec *v = i < e->out_num ? &e->out[i] : &e->in[i - e->out_num];
		uint8_t *b = v->iov_base;

		if (b < ram || b > ram + RAM || v->iov_len > (size_t)(ram + RAM - b))
			fuzz_fail("buffer %u [%p +%zu) outside guest RAM", i, v->iov_base,
				  v->iov_len);
		if (i < e->out_num)
			out += v->iov_len;
		else
			in += v->iov_len;
	}
	if (out != e->out_len || in != e->in_len)
		fuzz_fail("lengths %llu/%llu, buffers add up to %llu/%llu",
			  (unsigned long long)e->out_len, (unsigned long long)e->in_len,
			  (unsigned long long)out, (unsigned long long)in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static size_t dirty_len; /* RAM the last input wrote */
	struct vq_elem *held[MAX_OPS];
	uint64_t held_len[VQ_MAX_SIZE];
	static struct vq_snap snap;
	char why[160];
	unsigned nheld = 0;
	bool touched = false, discarded = false;
	struct hdr h;
	size_t blob;

	if (!ram) {
		if (guest_mem_init(&mem, RAM) < 0 || vq_init(&vq, &mem, VQ_MAX_SIZE) < 0 ||
		    vq_init(&vq2, &mem, VQ_MAX_SIZE) < 0)
			fuzz_fail("setup");
		ram = guest_mem_ptr(&mem, 0, RAM);
	}
	if (size < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	h.nops %= MAX_OPS + 1;
	if (size < sizeof(h) + h.nops)
		return 0;
	blob = size - sizeof(h) - h.nops;
	if (blob > RAM)
		blob = RAM;
	memset(ram, 0, dirty_len);
	memcpy(ram, data + sizeof(h) + h.nops, blob);
	dirty_len = RAM; /* the device may write anywhere the rings say */

	vq_reset(&vq);
	vq.s.size = h.size;
	vq.s.desc = h.desc;
	vq.s.avail = h.avail;
	vq.s.used = h.used;
	if (vq_enable(&vq, h.flags & 1, h.flags & 2) < 0) {
		dirty_len = blob;
		return 0;
	}
	for (unsigned i = 0; i < h.nops; i++) {
		uint8_t op = data[sizeof(h) + i];
		struct vq_elem *e = NULL;
		int r;

		if ((op & 3) == ACT_NOTIFY) {
			vq_set_notification(&vq, op & 4);
			vq_should_notify(&vq);
			touched = true;
			continue;
		}
		r = vq_pop(&vq, &e);
		if (r < 0) {
			if (!vq.why[0] || strchr(vq.why, '\n'))
				fuzz_fail("vq_pop failed without a reason");
			break; /* the device is broken now: no more use */
		}
		if (r == 0)
			continue;
		check_elem(e, vq.s.size);
		if ((op & 3) == ACT_PUSH) {
			vq_push(&vq, e, (uint32_t)(op >> 2) * 64);
			touched = true;
			free(e);
		} else if ((op & 3) == ACT_DISCARD) {
			vq_discard(&vq, e);
			discarded = true;
			free(e);
		} else {
			held_len[e->head] = e->out_len << 32 | e->in_len;
			held[nheld++] = e;
		}
	}
	if (vq.s.inuse != nheld)
		fuzz_fail("%u in flight, %u held", vq.s.inuse, nheld);

	/* What a snapshot of this queue keeps must load into a fresh one. */
	vq_save(&vq, &snap);
	if (vq_snap_check(&snap, VQ_MAX_SIZE, &mem, !discarded, why, sizeof(why)) < 0)
		fuzz_fail("the queue's own snapshot is refused: %s", why);
	vq_load(&vq2, &snap, h.flags & 1, h.flags & 2);
	for (unsigned i = 0; i < snap.inuse; i++) {
		struct vq_elem *e = NULL;
		int r = vq_reload(&vq2, snap.inflight[i], &e);

		if (r == 1) {
			check_elem(e, vq2.s.size);
			if (!touched && held_len[e->head] != (e->out_len << 32 | e->in_len))
				fuzz_fail("chain %u reloads with other lengths", e->head);
			free(e);
		} else if (!touched) {
			fuzz_fail("chain %u popped but not reloaded: %s", snap.inflight[i],
				  vq2.why);
		}
	}
	for (unsigned i = 0; i < nheld; i++) {
		vq_push(&vq, held[i], 0);
		free(held[i]);
	}
	if (vq.s.inuse)
		fuzz_fail("%u still in flight after pushing all", vq.s.inuse);
	return 0;
}
