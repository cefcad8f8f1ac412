// SPDX-License-Identifier: MIT
/*
 * Split virtqueue, driver side (virtio 1.x 2.7). Barriers: x86 keeps stores
 * in order and loads in order, so the write and read barriers the protocol
 * names are compiler barriers here; the two store -> load points (kick
 * decision, re-enabling interrupts) take a full barrier.
 */
#include "guest.h"
#include "virtio.h"

#define AVAIL_FLAGS 0
#define AVAIL_IDX   1
#define AVAIL_RING  2 /* ring[size], then used_event */
#define USED_FLAGS  0
#define USED_IDX    1

static volatile uint16_t *used_event(const struct virtq *vq)
{
	return &vq->avail[AVAIL_RING + vq->size];
}

static uint16_t avail_event(const struct virtq *vq)
{
	/* after flags, idx and size 8-byte elements */
	return vq->used[2 + 4 * (unsigned int)vq->size];
}

static volatile struct virtq_used_elem *used_elem(const struct virtq *vq, uint16_t i)
{
	return (volatile struct virtq_used_elem *)(vq->used + 2) + (i & (vq->size - 1));
}

static uint16_t used_idx(const struct virtq *vq)
{
	return vq->used[USED_IDX];
}

void virtq_reinit(struct virtq *vq)
{
	memset(vq->desc, 0, 16 * (size_t)vq->size);
	memset((void *)vq->avail, 0, 4 + 2 * (size_t)vq->size + 2);
	memset((void *)vq->used, 0, 4 + 8 * (size_t)vq->size + 2);
	for (uint16_t i = 0; i < vq->size; i++) {
		vq->desc[i].next = i + 1 < vq->size ? i + 1 : 0;
		vq->tokens[i] = NULL;
		vq->ndesc[i] = 0;
	}
	vq->free_head = 0;
	vq->num_free = vq->size;
	vq->avail_idx = vq->kicked_idx = vq->last_used = 0;
	vq->inflight = 0;
	vq->error = 0;
}

/* Make @head visible: ring entry, then the index. */
static void publish(struct virtq *vq, uint16_t head, void *token)
{
	vq->tokens[head & (vq->size - 1)] = token;
	vq->inflight++;
	vq->avail[AVAIL_RING + (vq->avail_idx & (vq->size - 1))] = head;
	/* wmb: descriptors and ring entry before the index (pairs with the
	 * device's read barrier between reading avail->idx and the ring) */
	barrier();
	vq->avail[AVAIL_IDX] = ++vq->avail_idx;
}

int virtq_add(struct virtq *vq, const struct virtq_buf *bufs, unsigned int nout, unsigned int nin,
	      void *token)
{
	unsigned int n = nout + nin;
	bool ind;
	uint16_t head, i;

	if (n == 0 || !token)
		return -EINVAL;
	for (unsigned int k = 0; k < n; k++)
		if (bufs[k].len == 0)
			return -EINVAL;
	ind = vq->imax && n > 1 && n <= vq->imax;
	if (!ind && n > vq->size)
		return -EINVAL; /* could never fit: a chain longer than the queue is invalid */
	if ((ind ? 1 : n) > vq->num_free)
		return -ENOSPC;
	head = vq->free_head;
	if (ind) {
		struct virtq_desc *t = vq->itables + (size_t)head * vq->imax;
		for (unsigned int k = 0; k < n; k++) {
			t[k].addr = (uint64_t)bufs[k].addr;
			t[k].len = bufs[k].len;
			t[k].flags = (k >= nout ? VIRTQ_DESC_F_WRITE : 0) |
				     (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			t[k].next = k + 1;
		}
		vq->free_head = vq->desc[head].next;
		vq->desc[head].addr = (uint64_t)t;
		vq->desc[head].len = n * sizeof(*t);
		vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		vq->num_free--;
		vq->ndesc[head] = 1;
	} else {
		i = head;
		for (unsigned int k = 0; k < n; k++) {
			struct virtq_desc *d = &vq->desc[i];
			d->addr = (uint64_t)bufs[k].addr;
			d->len = bufs[k].len;
			d->flags = (k >= nout ? VIRTQ_DESC_F_WRITE : 0) |
				   (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			i = d->next; /* the free list's link is the chain's link */
		}
		vq->free_head = i;
		vq->num_free -= n;
		vq->ndesc[head] = n;
	}
	publish(vq, head, token);
	return 0;
}

void virtq_publish_raw(struct virtq *vq, uint16_t head, void *token)
{
	/* A head out of range is published as is (tests want that); its token
	 * goes to slot head % size, so a device that returns the head number
	 * it was given is reported by virtq_get as a protocol error. */
	vq->ndesc[head & (vq->size - 1)] = 0;
	publish(vq, head, token);
}

bool virtq_kick(struct virtq *vq)
{
	uint16_t old = vq->kicked_idx, now = vq->avail_idx;
	bool need;

	/* mb: the avail->idx store before reading avail_event or the used
	 * flags (pairs with the device's full barrier between writing
	 * avail_event and re-reading avail->idx) */
	mb();
	vq->kicked_idx = now;
	if (old == now)
		return false;
	if (vq->event_idx)
		need = (uint16_t)(now - avail_event(vq) - 1) < (uint16_t)(now - old);
	else
		need = !(vq->used[USED_FLAGS] & VIRTQ_USED_F_NO_NOTIFY);
	if (!need) {
		vq->kicks_suppressed++;
		return false;
	}
	mmio_write16(vq->notify_addr, vq->index);
	vq->kicks++;
	return true;
}

bool virtq_has_used(const struct virtq *vq)
{
	return used_idx(vq) != vq->last_used;
}

void *virtq_get(struct virtq *vq, uint32_t *len)
{
	while (used_idx(vq) != vq->last_used) {
		/* rmb: the used entry after the index (pairs with the device's
		 * write barrier between the entry and used->idx) */
		barrier();
		volatile struct virtq_used_elem *e = used_elem(vq, vq->last_used);
		uint32_t id = e->id, l = e->len;
		vq->last_used++;
		if (id >= vq->size || !vq->tokens[id]) {
			vq->error = -EPROTO; /* not in flight: a device bug; skip it */
			continue;
		}
		uint32_t slot = id;
		void *token = vq->tokens[slot];
		vq->tokens[slot] = NULL;
		vq->inflight--;
		uint16_t n = vq->ndesc[slot], last = slot;
		for (uint16_t k = 1; k < n; k++)
			last = vq->desc[last].next;
		if (n) {
			vq->desc[last].next = vq->free_head;
			vq->free_head = slot;
			vq->num_free += n;
		}
		if (len)
			*len = l;
		return token;
	}
	return NULL;
}

bool virtq_enable_irq(struct virtq *vq)
{
	if (vq->event_idx)
		*used_event(vq) = vq->last_used;
	else
		vq->avail[AVAIL_FLAGS] &= ~VIRTQ_AVAIL_F_NO_INTERRUPT;
	/* mb: used_event (or flags) before re-reading used->idx (pairs with the
	 * device's full barrier between writing used->idx and reading
	 * used_event): either it sees our request or we see its entry */
	mb();
	return virtq_has_used(vq);
}

void virtq_disable_irq(struct virtq *vq)
{
	/* Under EVENT_IDX the device interrupts only when used->idx passes
	 * used_event; leaving it where it is allows at most one more. */
	if (!vq->event_idx)
		vq->avail[AVAIL_FLAGS] |= VIRTQ_AVAIL_F_NO_INTERRUPT;
}
