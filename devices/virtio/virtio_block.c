// SPDX-License-Identifier: MIT
/*
 * virtio-pci as the request engine's transport (devices/block/engine.h):
 * what the engine asks of the device it serves, in virtio terms.
 */
#include <stdbool.h>

#include "devices/block/engine.h"
#include "devices/virtio/virtio.h"

static bool vblock_hold_ok(void *t)
{
	return virtio_hold_ok(t);
}

static void vblock_discard(void *t, struct vq_elem *elem)
{
	virtio_discard_locked(t, elem);
}

static void vblock_push(void *t, unsigned q, struct vq_elem *elem, uint32_t len)
{
	virtio_push(t, q, elem, len);
}

static void vblock_notify(void *t, unsigned q)
{
	virtio_notify(t, q);
}

static void vblock_pause(void *t)
{
	virtio_pause(t);
}

static void vblock_resume(void *t)
{
	virtio_resume(t);
}

static void vblock_broken(void *t, unsigned q, const char *why)
{
	virtio_error(t, "queue %u: %s", q, why);
}

static void vblock_stop(void *t)
{
	virtio_pci_stop(t);
}

static const struct block_transport_ops virtio_block_transport = {
    .hold_ok = vblock_hold_ok,
    .discard = vblock_discard,
    .push = vblock_push,
    .notify = vblock_notify,
    .pause = vblock_pause,
    .resume = vblock_resume,
    .broken = vblock_broken,
    .stop = vblock_stop,
};

void virtio_block_attach(struct block_engine *e, struct virtio_dev *vdev)
{
	block_engine_attach(e, &virtio_block_transport, vdev, &vdev->lock);
}

void virtio_block_drop_held(struct virtio_dev *vdev)
{
	block_engine_drop_held(vdev->opaque);
}

void virtio_block_req_init(struct block_req *r, struct block_engine *e, struct vq_elem *elem)
{
	block_req_init(r, e, elem, elem->queue, elem->head);
}
