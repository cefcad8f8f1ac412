// SPDX-License-Identifier: MIT
/*
 * Split virtqueues (virtio 1.x section 2.7), with INDIRECT_DESC and
 * EVENT_IDX, for a hostile driver. See devices/virtio/virtio.h.
 *
 * Layout (little-endian, the only byte order x86 guests have):
 *   descriptor table: size x { le64 addr; le32 len; le16 flags; le16 next; }
 *   avail: le16 flags; le16 idx; le16 ring[size]; le16 used_event;
 *   used:  le16 flags; le16 idx; { le32 id; le32 len; } ring[size]; le16 avail_event;
 *
 * Indices shared with the driver are read and written with atomics on the
 * host view of guest RAM; each barrier below names its partner in the
 * driver (the virtio spec's, as Linux's virtio_ring.c implements it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/virtio.h"

#define AVAIL_FLAGS 0
#define AVAIL_IDX   2
#define AVAIL_RING  4
#define USED_FLAGS  0
#define USED_IDX    2
#define USED_RING   4

struct vq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

_Static_assert(sizeof(struct vq_desc) == 16, "descriptor layout");

static uint16_t ld16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static void st16(uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

static int vq_fail(struct virtqueue *vq, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int vq_fail(struct virtqueue *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->why, sizeof(vq->why), fmt, ap);
	va_end(ap);
	return -EIO;
}

int vq_init(struct virtqueue *vq, const struct guest_mem *mem, uint16_t max_size)
{
	memset(vq, 0, sizeof(*vq));
	vq->mem = mem;
	vq->max_size = max_size;
	vq->scratch = calloc(VQ_MAX_IOV, sizeof(*vq->scratch));
	vq->popped_at = calloc(max_size, sizeof(*vq->popped_at));
	if (!vq->scratch || !vq->popped_at) {
		vq_free(vq);
		return -ENOMEM;
	}
	vq_reset(vq);
	return 0;
}

void vq_free(struct virtqueue *vq)
{
	free(vq->scratch);
	vq->scratch = NULL;
	free(vq->popped_at);
	vq->popped_at = NULL;
}

void vq_reset(struct virtqueue *vq)
{
	memset(&vq->s, 0, sizeof(vq->s));
	vq->s.size = vq->max_size;
	vq->s.vector = VIRTIO_MSI_NO_VECTOR;
	vq->event_idx = vq->indirect = vq->notify_suppressed = false;
	vq->desc_p = vq->avail_p = vq->used_p = NULL;
	vq->pops = 0;
	vq->why[0] = '\0';
}

static bool vq_size_ok(uint64_t n, uint16_t max_size)
{
	return n != 0 && n <= max_size && !(n & (n - 1));
}

/*
 * Host views of the three areas of a queue of @n entries at @desc, @avail,
 * @used: false if any is misaligned or not entirely RAM. Alignments and
 * sizes from the spec's table (2.7).
 */
static bool vq_map_areas(const struct guest_mem *mem, uint64_t n, uint64_t desc, uint64_t avail,
			 uint64_t used, uint8_t **d, uint8_t **a, uint8_t **u)
{
	*d = desc % 16 ? NULL : guest_mem_ptr(mem, desc, 16 * n);
	*a = avail % 2 ? NULL : guest_mem_ptr(mem, avail, 6 + 2 * n);
	*u = used % 4 ? NULL : guest_mem_ptr(mem, used, 6 + 8 * n);
	return *d && *a && *u;
}

int vq_enable(struct virtqueue *vq, bool event_idx, bool indirect)
{
	uint64_t n = vq->s.size;

	if (!vq_size_ok(n, vq->max_size)) {
		vq_fail(vq, "queue size %u is not a power of two up to %u", vq->s.size,
			vq->max_size);
		return -EINVAL;
	}
	if (!vq_map_areas(vq->mem, n, vq->s.desc, vq->s.avail, vq->s.used, &vq->desc_p,
			  &vq->avail_p, &vq->used_p)) {
		vq_fail(vq,
			"rings are misaligned or outside guest RAM (desc 0x%llx, driver 0x%llx, "
			"device 0x%llx, size %u)",
			(unsigned long long)vq->s.desc, (unsigned long long)vq->s.avail,
			(unsigned long long)vq->s.used, vq->s.size);
		vq->desc_p = vq->avail_p = vq->used_p = NULL;
		return -EINVAL;
	}
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->s.enabled = 1;
	return 0;
}

/* The driver's avail->idx. */
static uint16_t vq_avail_idx(struct virtqueue *vq)
{
	/* Acquire: pairs with the driver's write barrier between filling the
	 * ring entry (and descriptors) and publishing avail->idx. */
	return __atomic_load_n((const uint16_t *)(vq->avail_p + AVAIL_IDX), __ATOMIC_ACQUIRE);
}

bool vq_avail_empty(struct virtqueue *vq)
{
	return vq_avail_idx(vq) == vq->s.last_avail_idx;
}

static bool vq_inflight_test(const struct virtqueue *vq, uint16_t head)
{
	return vq->s.inflight[head / 64] & (1ULL << (head % 64));
}

static void vq_inflight_set(struct virtqueue *vq, uint16_t head, bool on)
{
	if (on)
		vq->s.inflight[head / 64] |= 1ULL << (head % 64);
	else
		vq->s.inflight[head / 64] &= ~(1ULL << (head % 64));
}

/* Chain walking state for one vq_pop. */
struct vq_walk {
	unsigned n, out_num, in_num;
	uint64_t out_len, in_len;
};

/* Add one buffer descriptor (not INDIRECT) to the chain being built. */
static int vq_add_buf(struct virtqueue *vq, struct vq_walk *w, const struct vq_desc *d)
{
	bool writable = d->flags & VRING_DESC_F_WRITE;
	void *p;

	if (d->len == 0)
		return vq_fail(vq, "zero-length buffer at 0x%llx", (unsigned long long)d->addr);
	p = guest_mem_ptr(vq->mem, d->addr, d->len);
	if (!p)
		return vq_fail(vq, "buffer 0x%llx+0x%x is outside guest RAM",
			       (unsigned long long)d->addr, d->len);
	if (!writable && w->in_num)
		return vq_fail(vq, "device-readable buffer after a device-writable one");
	if (w->n == VQ_MAX_IOV)
		return vq_fail(vq, "more than %d buffers in one chain", VQ_MAX_IOV);
	vq->scratch[w->n].iov_base = p;
	vq->scratch[w->n].iov_len = d->len;
	w->n++;
	if (writable) {
		w->in_num++;
		w->in_len += d->len;
	} else {
		w->out_num++;
		w->out_len += d->len;
	}
	return 0;
}

/* Walk the indirect table @ind points to; it ends the chain. */
static int vq_walk_indirect(struct virtqueue *vq, struct vq_walk *w, const struct vq_desc *ind)
{
	const uint8_t *table;
	uint32_t count, i = 0, budget;
	struct vq_desc d;
	int r;

	if (!vq->indirect)
		return vq_fail(vq, "indirect descriptor, but INDIRECT_DESC was not negotiated");
	if (ind->flags & VRING_DESC_F_NEXT)
		return vq_fail(vq, "indirect descriptor with NEXT set");
	if (ind->len == 0 || ind->len % sizeof(d))
		return vq_fail(vq, "indirect table length %u is not a non-zero multiple of 16",
			       ind->len);
	count = ind->len / (uint32_t)sizeof(d);
	if (count > VQ_MAX_INDIRECT)
		return vq_fail(vq, "indirect table of %u entries (at most %d)", count,
			       VQ_MAX_INDIRECT);
	table = guest_mem_ptr(vq->mem, ind->addr, ind->len);
	if (!table)
		return vq_fail(vq, "indirect table 0x%llx+0x%x is outside guest RAM",
			       (unsigned long long)ind->addr, ind->len);
	/* Each entry is read once; count bounds the walk, so a loop ends it. */
	for (budget = count;; budget--) {
		if (budget == 0)
			return vq_fail(vq, "indirect chain longer than its table (a loop)");
		memcpy(&d, table + (size_t)i * sizeof(d), sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT)
			return vq_fail(vq, "nested indirect descriptor");
		r = vq_add_buf(vq, w, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= count)
			return vq_fail(vq, "indirect next index %u out of range (table of %u)",
				       d.next, count);
		i = d.next;
	}
}

/*
 * Walk the chain from @head (already checked < size) and return it as a new
 * element. Reads the descriptors once each; changes nothing in the queue.
 */
static int vq_walk_chain(struct virtqueue *vq, uint16_t head, struct vq_elem **out)
{
	uint16_t idx, size = vq->s.size;
	struct vq_walk w = {0};
	struct vq_elem *e;
	struct vq_desc d;
	unsigned budget;
	int r;

	/* Direct chain: at most size descriptors, so a loop runs out. */
	for (idx = head, budget = size;; budget--) {
		if (budget == 0)
			return vq_fail(vq,
				       "descriptor chain from head %u is longer than the queue "
				       "(a loop)",
				       head);
		memcpy(&d, vq->desc_p + (size_t)idx * sizeof(d), sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			r = vq_walk_indirect(vq, &w, &d);
			if (r < 0)
				return r;
			break;
		}
		r = vq_add_buf(vq, &w, &d);
		if (r < 0)
			return r;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		if (d.next >= size)
			return vq_fail(vq, "next index %u out of range (queue size %u)", d.next,
				       size);
		idx = d.next;
	}

	e = malloc(sizeof(*e) + w.n * sizeof(e->iov[0]));
	if (!e) {
		vq_fail(vq, "out of host memory");
		return -ENOMEM;
	}
	e->head = head;
	e->queue = 0;
	e->out_num = w.out_num;
	e->in_num = w.in_num;
	e->out_len = w.out_len;
	e->in_len = w.in_len;
	memcpy(e->iov, vq->scratch, w.n * sizeof(e->iov[0]));
	e->out = e->iov;
	e->in = e->iov + w.out_num;
	*out = e;
	return 1;
}

int vq_pop(struct virtqueue *vq, struct vq_elem **out)
{
	uint16_t avail_idx, head, pending, size = vq->s.size;
	int r;

	avail_idx = vq_avail_idx(vq);
	pending = (uint16_t)(avail_idx - vq->s.last_avail_idx);
	if (pending == 0)
		return 0;
	if (pending > size)
		return vq_fail(vq, "available index %u is %u entries ahead of %u (queue size %u)",
			       avail_idx, pending, vq->s.last_avail_idx, size);
	head = ld16(vq->avail_p + AVAIL_RING + 2 * (size_t)(vq->s.last_avail_idx % size));
	if (head >= size)
		return vq_fail(vq, "head index %u out of range (queue size %u)", head, size);
	if (vq_inflight_test(vq, head))
		return vq_fail(vq, "head %u made available while still in use", head);
	r = vq_walk_chain(vq, head, out);
	if (r < 0)
		return r;
	vq_inflight_set(vq, head, true);
	vq->popped_at[head] = vq->pops++;
	vq->s.inuse++;
	vq->s.last_avail_idx++;
	return 1;
}

int vq_reload(struct virtqueue *vq, uint16_t head, struct vq_elem **out)
{
	if (!vq->s.enabled || head >= vq->s.size || !vq_inflight_test(vq, head))
		return vq_fail(vq, "head %u is not in flight", head);
	return vq_walk_chain(vq, head, out);
}

static void vq_retire(struct virtqueue *vq, const struct vq_elem *elem)
{
	vq_inflight_set(vq, elem->head, false);
	vq->s.inuse--;
}

void vq_push(struct virtqueue *vq, const struct vq_elem *elem, uint32_t len)
{
	uint8_t *ent = vq->used_p + USED_RING + 8 * (size_t)(vq->s.used_idx % vq->s.size);
	uint32_t id = elem->head;

	if (len > elem->in_len)
		len = (uint32_t)elem->in_len;
	memcpy(ent, &id, 4);
	memcpy(ent + 4, &len, 4);
	vq->s.used_idx++;
	/* Release: the entry (and the data written into the buffers) is
	 * visible before the index; pairs with the driver's read barrier
	 * after it reads used->idx. */
	__atomic_store_n((uint16_t *)(vq->used_p + USED_IDX), vq->s.used_idx, __ATOMIC_RELEASE);
	vq_retire(vq, elem);
}

void vq_discard(struct virtqueue *vq, const struct vq_elem *elem)
{
	vq_retire(vq, elem);
}

unsigned vq_inflight_heads(const struct virtqueue *vq, uint16_t *heads)
{
	unsigned n = 0;

	for (unsigned h = 0; h < vq->s.size && h < vq->max_size; h++)
		if (vq_inflight_test(vq, (uint16_t)h))
			heads[n++] = (uint16_t)h;
	/* Insertion sort by pop order: inuse is at most the queue size, and
	 * this runs once per snapshot. */
	for (unsigned i = 1; i < n; i++) {
		uint16_t h = heads[i];
		unsigned j = i;

		for (; j > 0 && vq->popped_at[heads[j - 1]] > vq->popped_at[h]; j--)
			heads[j] = heads[j - 1];
		heads[j] = h;
	}
	return n;
}

void vq_save(const struct virtqueue *vq, struct vq_snap *s)
{
	memset(s, 0, sizeof(*s));
	s->desc = vq->s.desc;
	s->avail = vq->s.avail;
	s->used = vq->s.used;
	s->size = vq->s.size;
	s->vector = vq->s.vector;
	s->enabled = vq->s.enabled;
	s->last_avail_idx = vq->s.last_avail_idx;
	s->used_idx = vq->s.used_idx;
	s->signalled_used = vq->s.signalled_used;
	s->signalled_used_valid = vq->s.signalled_used_valid;
	s->notify_suppressed = vq->notify_suppressed;
	s->inuse = (uint16_t)vq_inflight_heads(vq, s->inflight);
}

static int vq_snap_fail(char *why, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vq_snap_fail(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int vq_snap_check(const struct vq_snap *s, uint16_t max_size, const struct guest_mem *mem,
		  bool balanced, char *why, size_t why_len)
{
	uint64_t seen[VQ_MAX_SIZE / 64] = {0};
	uint8_t *d, *a, *u;

	if (!vq_size_ok(s->size, max_size))
		return vq_snap_fail(why, why_len, "size %u is not a power of two up to %u", s->size,
				    max_size);
	if (s->enabled > 1 || s->signalled_used_valid > 1 || s->notify_suppressed > 1)
		return vq_snap_fail(why, why_len, "a flag is neither 0 nor 1");
	for (size_t i = 0; i < sizeof(s->reserved); i++)
		if (s->reserved[i])
			return vq_snap_fail(why, why_len, "reserved bytes are not zero");
	if (s->inuse > s->size)
		return vq_snap_fail(why, why_len, "%u elements in flight in a queue of %u",
				    s->inuse, s->size);
	if (!s->enabled) {
		/* Only a reset disables a queue, and it clears all of this. */
		if (s->last_avail_idx || s->used_idx || s->signalled_used ||
		    s->signalled_used_valid || s->notify_suppressed || s->inuse)
			return vq_snap_fail(why, why_len,
					    "disabled, yet its indices or in-flight count are "
					    "not zero");
	} else if (!vq_map_areas(mem, s->size, s->desc, s->avail, s->used, &d, &a, &u)) {
		return vq_snap_fail(why, why_len,
				    "rings are misaligned or outside guest RAM (desc 0x%llx, "
				    "driver 0x%llx, device 0x%llx, size %u)",
				    (unsigned long long)s->desc, (unsigned long long)s->avail,
				    (unsigned long long)s->used, s->size);
	}
	for (unsigned i = 0; i < VQ_MAX_SIZE; i++) {
		uint16_t h = s->inflight[i];

		if (i >= s->inuse) {
			if (h)
				return vq_snap_fail(why, why_len,
						    "in-flight list has entries past its %u",
						    s->inuse);
			continue;
		}
		if (h >= s->size)
			return vq_snap_fail(why, why_len,
					    "in-flight head %u out of range (queue size %u)", h,
					    s->size);
		if (seen[h / 64] & (1ULL << (h % 64)))
			return vq_snap_fail(why, why_len, "in-flight head %u listed twice", h);
		seen[h / 64] |= 1ULL << (h % 64);
	}
	/* Every pop adds one to last_avail_idx and inuse, every push one to
	 * used_idx and takes one from inuse; only a broken device discards. */
	if (balanced && (uint16_t)(s->last_avail_idx - s->used_idx) != s->inuse)
		return vq_snap_fail(why, why_len,
				    "%u elements in flight, but last_avail_idx %u - used_idx %u "
				    "says %u",
				    s->inuse, s->last_avail_idx, s->used_idx,
				    (uint16_t)(s->last_avail_idx - s->used_idx));
	return 0;
}

void vq_load(struct virtqueue *vq, const struct vq_snap *s, bool event_idx, bool indirect)
{
	vq_reset(vq);
	vq->s.desc = s->desc;
	vq->s.avail = s->avail;
	vq->s.used = s->used;
	vq->s.size = s->size;
	vq->s.vector = s->vector;
	vq->s.last_avail_idx = s->last_avail_idx;
	vq->s.used_idx = s->used_idx;
	vq->s.signalled_used = s->signalled_used;
	vq->s.signalled_used_valid = s->signalled_used_valid;
	vq->s.inuse = s->inuse;
	for (unsigned i = 0; i < s->inuse; i++) {
		vq_inflight_set(vq, s->inflight[i], true);
		vq->popped_at[s->inflight[i]] = vq->pops++;
	}
	if (s->enabled) {
		/* Checked by vq_snap_check: the areas map. */
		vq_enable(vq, event_idx, indirect);
		vq->notify_suppressed = s->notify_suppressed;
	}
}

void vq_set_notification(struct virtqueue *vq, bool enable)
{
	vq->notify_suppressed = !enable;
	if (enable) {
		if (vq->event_idx)
			st16(vq->used_p + USED_RING + 8 * (size_t)vq->s.size, vq->s.last_avail_idx);
		else
			st16(vq->used_p + USED_FLAGS, 0);
		/* Full barrier: our avail_event/flags store is visible before
		 * we re-read avail->idx; pairs with the driver's full barrier
		 * between publishing avail->idx and reading avail_event/flags
		 * to decide whether to notify. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	} else if (!vq->event_idx) {
		st16(vq->used_p + USED_FLAGS, VRING_USED_F_NO_NOTIFY);
	}
	/* With EVENT_IDX, suppression is leaving avail_event behind. */
}

bool vq_should_notify(struct virtqueue *vq)
{
	uint16_t old = vq->s.signalled_used, now = vq->s.used_idx;
	bool valid = vq->s.signalled_used_valid;

	/* Full barrier: used->idx is visible before we read the driver's
	 * used_event/flags; pairs with the driver's full barrier between
	 * writing used_event (enabling callbacks) and re-reading used->idx. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(ld16(vq->avail_p + AVAIL_FLAGS) & VRING_AVAIL_F_NO_INTERRUPT);
	vq->s.signalled_used = now;
	vq->s.signalled_used_valid = 1;
	if (!valid)
		return true;
	return vq_need_event(ld16(vq->avail_p + AVAIL_RING + 2 * (size_t)vq->s.size), now, old);
}
