// SPDX-License-Identifier: MIT
/*
 * virtio-pci, modern (1.x) transport only. See devices/virtio/virtio.h and
 * docs/devices.md for what the guest sees.
 *
 * Device status state machine (what kvmini enforces):
 *   - writing 0 resets: in-flight requests complete first (the vCPU waits),
 *     then features, queues, vectors and status are cleared;
 *   - otherwise a write may only add bits (one that clears a bit is
 *     ignored); NEEDS_RESET is the device's and cannot be written;
 *   - FEATURES_OK sticks only if the driver accepted VERSION_1 and nothing
 *     the device did not offer; DRIVER_OK only after FEATURES_OK;
 *   - queues may be enabled only after FEATURES_OK and are processed only
 *     while DRIVER_OK is set and neither FAILED nor NEEDS_RESET is.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"
#include "vmm/vm.h"

#define PCI_VENDOR_ID_REDHAT_QUMRANET 0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE     0x1040
#define VIRTIO_MAX_ERROR_REPORTS      8

/* ---- helpers ---- */

static unsigned virtio_total_inuse(const struct virtio_dev *vdev)
{
	unsigned n = 0;

	for (unsigned q = 0; q < vdev->nqueues; q++)
		n += vdev->vqs[q].s.inuse;
	return n;
}

/* Wait until every popped element came back. Lock held; vdev->quiescing set. */
static void virtio_wait_idle_locked(struct virtio_dev *vdev)
{
	while (virtio_total_inuse(vdev))
		pthread_cond_wait(&vdev->idle, &vdev->lock);
}

static void virtio_send_config_irq(struct virtio_dev *vdev, uint16_t vector)
{
	if (vector != VIRTIO_MSI_NO_VECTOR)
		msix_notify(&vdev->msix, vector);
}

void virtio_set_needs_reset(struct virtio_dev *vdev, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	if (vdev->broken)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vdev->broken = true;
	vdev->errors++;
	vdev->status |= VIRTIO_STATUS_NEEDS_RESET;
	vdev->isr |= VIRTIO_ISR_CONFIG;
	vdev->config_generation++;
	/* A guest can break and reset a device in a loop: keep stderr sane. */
	if (vdev->errors <= VIRTIO_MAX_ERROR_REPORTS)
		fprintf(stderr, "kvmini: %s: %s; the device needs a reset%s\n", vdev->name, why,
			vdev->errors == VIRTIO_MAX_ERROR_REPORTS ? " (further reports suppressed)"
								 : "");
	/* A config-change interrupt tells the driver to look at the status. */
	virtio_send_config_irq(vdev, vdev->config_vector);
}

void virtio_error(struct virtio_dev *vdev, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&vdev->lock);
	virtio_set_needs_reset(vdev, "%s", why);
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_config_changed(struct virtio_dev *vdev)
{
	uint16_t vector;

	pthread_mutex_lock(&vdev->lock);
	vdev->config_generation++;
	vdev->isr |= VIRTIO_ISR_CONFIG;
	vector = vdev->config_vector;
	pthread_mutex_unlock(&vdev->lock);
	virtio_send_config_irq(vdev, vector);
}

static bool virtio_running(const struct virtio_dev *vdev)
{
	return !vdev->broken && !vdev->quiescing && !vdev->paused &&
	       (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK) &&
	       !(vdev->status & VIRTIO_CONFIG_S_FAILED);
}

/* Ring one queue's doorbell from kvmini itself (DRIVER_OK, notify fallback). */
static void virtio_kick(struct virtio_dev *vdev, unsigned q)
{
	uint64_t one = 1;

	if (write(vdev->kicks[q].fd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "kvmini: %s: queue %u doorbell: %m\n", vdev->name, q);
}

/* ---- reset and status ---- */

static void virtio_reset_locked(struct virtio_dev *vdev)
{
	/* The driver may not touch buffers it handed us until they come
	 * back; let every in-flight request finish first (they are
	 * discarded, not returned: the driver asked for a reset). */
	vdev->quiescing = true;
	/* Requests held without host work (werror=stop) would never come
	 * back by themselves. */
	if (vdev->ops->drop_held)
		vdev->ops->drop_held(vdev);
	virtio_wait_idle_locked(vdev);
	for (unsigned q = 0; q < vdev->nqueues; q++)
		vq_reset(&vdev->vqs[q]);
	vdev->guest_features = 0;
	vdev->dfselect = vdev->gfselect = 0;
	vdev->status = 0;
	vdev->isr = 0;
	vdev->queue_select = 0;
	vdev->config_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->broken = false;
	if (vdev->ops->reset)
		vdev->ops->reset(vdev);
	vdev->quiescing = false;
}

static bool virtio_features_ok(struct virtio_dev *vdev)
{
	return (vdev->guest_features & (1ULL << VIRTIO_F_VERSION_1)) &&
	       !(vdev->guest_features & ~vdev->host_features);
}

static void virtio_set_status(struct virtio_dev *vdev, uint8_t val)
{
	uint8_t old = vdev->status & ~VIRTIO_STATUS_NEEDS_RESET;

	if (val == 0) {
		virtio_reset_locked(vdev);
		return;
	}
	val &= (uint8_t)~VIRTIO_STATUS_NEEDS_RESET;
	if ((val & old) != old)
		return; /* only a reset clears bits */
	if ((val & VIRTIO_CONFIG_S_FEATURES_OK) && !(old & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    !virtio_features_ok(vdev))
		val &= (uint8_t)~VIRTIO_CONFIG_S_FEATURES_OK; /* the driver reads back and fails */
	if (!(val & VIRTIO_CONFIG_S_FEATURES_OK))
		val &= (uint8_t)~VIRTIO_CONFIG_S_DRIVER_OK;
	vdev->status = val | (vdev->status & VIRTIO_STATUS_NEEDS_RESET);
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    vdev->ops->driver_ok)
		vdev->ops->driver_ok(vdev);
	if ((val & VIRTIO_CONFIG_S_DRIVER_OK) && !(old & VIRTIO_CONFIG_S_DRIVER_OK) &&
	    !vdev->broken)
		for (unsigned q = 0; q < vdev->nqueues; q++)
			if (vdev->vqs[q].s.enabled)
				virtio_kick(vdev, q); /* buffers queued before DRIVER_OK */
}

static uint16_t virtio_check_vector(const struct virtio_dev *vdev, uint16_t v)
{
	/* A vector the device cannot use reads back as NO_VECTOR (spec 4.1.5.1.2). */
	return v < vdev->msix.nvec ? v : VIRTIO_MSI_NO_VECTOR;
}

static void virtio_queue_enable(struct virtio_dev *vdev, struct virtqueue *vq, unsigned q)
{
	if (vq->s.enabled)
		return;
	if (!(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK)) {
		virtio_set_needs_reset(vdev, "queue %u enabled before FEATURES_OK", q);
		return;
	}
	if (vq_enable(vq, virtio_has_feature(vdev, VIRTIO_RING_F_EVENT_IDX),
		      virtio_has_feature(vdev, VIRTIO_RING_F_INDIRECT_DESC)) < 0)
		virtio_set_needs_reset(vdev, "queue %u: %s", q, vq->why);
	else if (vdev->ops->queue_enabled)
		vdev->ops->queue_enabled(vdev, q);
}

/* ---- common configuration ---- */

/* The common config as the guest sees it right now. Lock held. */
static void virtio_common_read_all(struct virtio_dev *vdev, uint8_t *b)
{
	struct virtio_pci_common_cfg c;
	uint16_t qs = vdev->queue_select;

	memset(&c, 0, sizeof(c));
	c.device_feature_select = vdev->dfselect;
	c.device_feature =
	    vdev->dfselect < 2 ? (uint32_t)(vdev->host_features >> (32 * vdev->dfselect)) : 0;
	c.guest_feature_select = vdev->gfselect;
	c.guest_feature =
	    vdev->gfselect < 2 ? (uint32_t)(vdev->guest_features >> (32 * vdev->gfselect)) : 0;
	c.msix_config = vdev->config_vector;
	c.num_queues = (uint16_t)vdev->nqueues;
	c.device_status = vdev->status;
	c.config_generation = vdev->config_generation;
	c.queue_select = qs;
	if (qs < vdev->nqueues) {
		const struct vq_state *s = &vdev->vqs[qs].s;

		c.queue_size = s->size;
		c.queue_msix_vector = s->vector;
		c.queue_enable = s->enabled;
		c.queue_notify_off = qs;
		c.queue_desc_lo = (uint32_t)s->desc;
		c.queue_desc_hi = (uint32_t)(s->desc >> 32);
		c.queue_avail_lo = (uint32_t)s->avail;
		c.queue_avail_hi = (uint32_t)(s->avail >> 32);
		c.queue_used_lo = (uint32_t)s->used;
		c.queue_used_hi = (uint32_t)(s->used >> 32);
	}
	memcpy(b, &c, sizeof(c));
}

static void set_half(uint64_t *v, bool hi, uint32_t val)
{
	if (hi)
		*v = (*v & 0xffffffffULL) | (uint64_t)val << 32;
	else
		*v = (*v & ~0xffffffffULL) | val;
}

/* The guest wrote field @f (offset) whose new value, merged with the
 * bytes it did not write, is @v. Lock held. */
static void virtio_common_write_field(struct virtio_dev *vdev, unsigned f, uint32_t v)
{
	unsigned qs = vdev->queue_select;
	struct virtqueue *vq = qs < vdev->nqueues ? &vdev->vqs[qs] : NULL;

	switch (f) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vdev->dfselect = v;
		return;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vdev->gfselect = v;
		return;
	case VIRTIO_PCI_COMMON_GF:
		/* Features are frozen once FEATURES_OK is set. */
		if (vdev->gfselect < 2 && !(vdev->status & VIRTIO_CONFIG_S_FEATURES_OK))
			set_half(&vdev->guest_features, vdev->gfselect == 1, v);
		return;
	case VIRTIO_PCI_COMMON_MSIX:
		vdev->config_vector = virtio_check_vector(vdev, (uint16_t)v);
		return;
	case VIRTIO_PCI_COMMON_STATUS:
		virtio_set_status(vdev, (uint8_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vdev->queue_select = (uint16_t)v;
		return;
	}
	if (!vq || vdev->broken)
		return; /* no such queue (fields read as 0), or waiting for a reset */
	switch (f) {
	case VIRTIO_PCI_COMMON_Q_MSIX:
		vq->s.vector = virtio_check_vector(vdev, (uint16_t)v);
		return;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		/* Only 1 means anything: a queue is disabled by a reset. */
		if ((uint16_t)v == 1)
			virtio_queue_enable(vdev, vq, qs);
		return;
	}
	if (vq->s.enabled)
		return; /* size and addresses are fixed while enabled */
	switch (f) {
	case VIRTIO_PCI_COMMON_Q_SIZE:
		v &= 0xffff;
		if (v == 0 || v > vq->max_size || (v & (v - 1)))
			virtio_set_needs_reset(vdev,
					       "queue %u: size %u is not a power of two up "
					       "to %u",
					       qs, v, vq->max_size);
		else
			vq->s.size = (uint16_t)v;
		return;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		set_half(&vq->s.desc, f == VIRTIO_PCI_COMMON_Q_DESCHI, v);
		return;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		set_half(&vq->s.avail, f == VIRTIO_PCI_COMMON_Q_AVAILHI, v);
		return;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		set_half(&vq->s.used, f == VIRTIO_PCI_COMMON_Q_USEDHI, v);
		return;
	}
}

/* Fields the driver may write, in offset order, with their widths. */
static const struct {
	uint8_t off, len;
} virtio_common_fields[] = {
    {VIRTIO_PCI_COMMON_DFSELECT, 4},  {VIRTIO_PCI_COMMON_GFSELECT, 4},
    {VIRTIO_PCI_COMMON_GF, 4},	      {VIRTIO_PCI_COMMON_MSIX, 2},
    {VIRTIO_PCI_COMMON_STATUS, 1},    {VIRTIO_PCI_COMMON_Q_SELECT, 2},
    {VIRTIO_PCI_COMMON_Q_SIZE, 2},    {VIRTIO_PCI_COMMON_Q_MSIX, 2},
    {VIRTIO_PCI_COMMON_Q_ENABLE, 2},  {VIRTIO_PCI_COMMON_Q_DESCLO, 4},
    {VIRTIO_PCI_COMMON_Q_DESCHI, 4},  {VIRTIO_PCI_COMMON_Q_AVAILLO, 4},
    {VIRTIO_PCI_COMMON_Q_AVAILHI, 4}, {VIRTIO_PCI_COMMON_Q_USEDLO, 4},
    {VIRTIO_PCI_COMMON_Q_USEDHI, 4},
};

/*
 * Any width at any offset: reads copy from a snapshot of all fields;
 * writes merge into the snapshot and apply every writable field they
 * touched, in offset order (so a 32-bit write at 0x14 sets the status,
 * then queue_select). Bytes past the structure read as zero.
 */
static void virtio_common_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vdev = opaque;
	uint8_t b[VIRTIO_PCI_COMMON_LEN + 8];

	if (off >= VIRTIO_PCI_COMMON_LEN) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (len > VIRTIO_PCI_COMMON_LEN - off)
		len = (uint32_t)(VIRTIO_PCI_COMMON_LEN - off);
	pthread_mutex_lock(&vdev->lock);
	virtio_common_read_all(vdev, b);
	if (!is_write) {
		memcpy(data, b + off, len);
		goto out;
	}
	memcpy(b + off, data, len);
	for (size_t i = 0; i < ARRAY_SIZE(virtio_common_fields); i++) {
		unsigned f = virtio_common_fields[i].off, flen = virtio_common_fields[i].len;
		uint32_t v = 0;

		if (f >= off + len || f + flen <= off)
			continue;
		memcpy(&v, b + f, flen);
		virtio_common_write_field(vdev, f, v);
	}
out:
	pthread_mutex_unlock(&vdev->lock);
}

/* ---- ISR, device config, notify ---- */

static void virtio_isr_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vdev = opaque;

	if (is_write)
		return;
	memset(data, 0, len);
	if (off != 0)
		return;
	pthread_mutex_lock(&vdev->lock);
	*(uint8_t *)data = vdev->isr; /* reading clears it (spec 4.1.4.5) */
	vdev->isr = 0;
	pthread_mutex_unlock(&vdev->lock);
}

static void virtio_device_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vdev = opaque;
	uint32_t n;

	if (off >= vdev->config_len) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	n = len < vdev->config_len - off ? len : (uint32_t)(vdev->config_len - off);
	pthread_mutex_lock(&vdev->lock);
	if (!is_write) {
		memset(data, 0, len);
		memcpy(data, vdev->config + off, n);
	} else if (vdev->ops->config_write) {
		memcpy(vdev->config + off, data, n);
		vdev->ops->config_write(vdev, (uint32_t)off, n);
	}
	pthread_mutex_unlock(&vdev->lock);
}

/* A notify write KVM did not absorb (no ioeventfd, or another width). */
static void virtio_notify_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct virtio_dev *vdev = opaque;
	uint64_t q = off / VIRTIO_PCI_NOTIFY_MULT;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	if (q < vdev->nqueues)
		virtio_kick(vdev, (unsigned)q);
}

/* The notify region moved: move the ioeventfds. PCI config lock held. */
static void virtio_notify_map(void *opaque, uint64_t addr)
{
	struct virtio_dev *vdev = opaque;
	const struct kvm_irq_ops *kvm = vdev->host->kvm;

	for (unsigned q = 0; q < vdev->nqueues; q++) {
		struct virtio_kick *k = &vdev->kicks[q];
		uint64_t a = addr + q * VIRTIO_PCI_NOTIFY_MULT;

		if (k->ioeventfd)
			kvm->ioeventfd(vdev->host->kvm_opaque,
				       vdev->notify_addr + q * VIRTIO_PCI_NOTIFY_MULT,
				       k->ioeventfd_len, k->fd, false, false);
		k->ioeventfd = false;
		if (addr == PCI_BAR_UNMAPPED)
			continue;
		/*
		 * Length 0 (any width, KVM_CAP_IOEVENTFD_ANY_LENGTH) also puts
		 * the doorbell on KVM's fast MMIO path, which needs no
		 * instruction decoding; else a 16-bit write (the spec's
		 * width) is absorbed. If neither can be attached, the region's
		 * exit path does the same job, only slower.
		 */
		for (uint32_t len = 0; len <= 2; len += 2) {
			if (kvm->ioeventfd(vdev->host->kvm_opaque, a, len, k->fd, false, true) ==
			    0) {
				k->ioeventfd = true;
				k->ioeventfd_len = len;
				break;
			}
		}
	}
	vdev->notify_addr = addr;
}

static void virtio_kick_read(void *opaque)
{
	struct virtio_kick *k = opaque;
	uint64_t n;

	if (read(k->fd, &n, sizeof(n)) != sizeof(n))
		return;
	k->vdev->ops->queue_notify(k->vdev, k->q);
}

static void virtio_handlers_set(void *opaque)
{
	struct virtio_dev *vdev = opaque;

	for (unsigned q = 0; q < vdev->nqueues; q++)
		aio_set_fd_handler(vdev->ctx, vdev->kicks[q].fd,
				   vdev->handlers_on ? virtio_kick_read : NULL, NULL,
				   &vdev->kicks[q]);
}

/* ---- PCI config hooks: MSI-X and the PCI configuration access window ---- */

/* The VIRTIO_PCI_CAP_PCI_CFG window: bar/offset/length select a BAR access
 * that pci_cfg_data performs. Returns false for an unusable selection. */
static bool virtio_pci_cfg_window(struct virtio_dev *vdev, uint8_t *bar, uint32_t *off,
				  uint32_t *len)
{
	unsigned c = vdev->pci_cfg_cap;

	*bar = pci_config_get8(vdev->pdev, c + offsetof(struct virtio_pci_cap, bar));
	*off = pci_config_get32(vdev->pdev, c + offsetof(struct virtio_pci_cap, offset));
	*len = pci_config_get32(vdev->pdev, c + offsetof(struct virtio_pci_cap, length));
	return (*len == 1 || *len == 2 || *len == 4) && *off % *len == 0 && *bar < PCI_BARS;
}

static bool overlaps_data(const struct virtio_dev *vdev, uint32_t off, uint32_t len)
{
	unsigned d = vdev->pci_cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);

	return off < d + 4 && d < off + len;
}

static void virtio_pci_config_read(void *opaque, uint32_t off, uint32_t len)
{
	struct virtio_dev *vdev = opaque;
	unsigned d = vdev->pci_cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t boff, blen, v = 0;
	uint8_t bar;

	if (!overlaps_data(vdev, off, len) || !virtio_pci_cfg_window(vdev, &bar, &boff, &blen))
		return;
	pci_bar_access(vdev->pdev, bar, boff, &v, blen, false);
	pci_config_set32(vdev->pdev, d, v);
}

static void virtio_pci_config_write(void *opaque, uint32_t off, uint32_t len)
{
	struct virtio_dev *vdev = opaque;
	unsigned d = vdev->pci_cfg_cap + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data);
	uint32_t boff, blen, v;
	uint8_t bar;

	msix_config_write(&vdev->msix, off, len);
	if (!overlaps_data(vdev, off, len) || !virtio_pci_cfg_window(vdev, &bar, &boff, &blen))
		return;
	v = pci_config_get32(vdev->pdev, d);
	pci_bar_access(vdev->pdev, bar, boff, &v, blen, true);
}

/* ---- capabilities ---- */

static int virtio_add_cap(struct virtio_dev *vdev, uint8_t type, uint32_t off, uint32_t len,
			  uint8_t cap_len, struct errbuf *err)
{
	struct pci_device *d = vdev->pdev;
	int c = pci_add_capability(d, PCI_CAP_ID_VNDR, cap_len, err);

	if (c < 0)
		return c;
	pci_config_set8(d, (uint32_t)c + offsetof(struct virtio_pci_cap, cap_len), cap_len);
	pci_config_set8(d, (uint32_t)c + offsetof(struct virtio_pci_cap, cfg_type), type);
	pci_config_set8(d, (uint32_t)c + offsetof(struct virtio_pci_cap, bar), VIRTIO_PCI_BAR);
	pci_config_set32(d, (uint32_t)c + offsetof(struct virtio_pci_cap, offset), off);
	pci_config_set32(d, (uint32_t)c + offsetof(struct virtio_pci_cap, length), len);
	return c;
}

static int virtio_add_caps(struct virtio_dev *vdev, struct errbuf *err)
{
	struct pci_device *d = vdev->pdev;
	int c;

	c = virtio_add_cap(vdev, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFF,
			   VIRTIO_PCI_COMMON_LEN, sizeof(struct virtio_pci_cap), err);
	if (c < 0)
		return c;
	c = virtio_add_cap(vdev, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFF,
			   vdev->nqueues * VIRTIO_PCI_NOTIFY_MULT,
			   sizeof(struct virtio_pci_notify_cap), err);
	if (c < 0)
		return c;
	pci_config_set32(
	    d, (uint32_t)c + offsetof(struct virtio_pci_notify_cap, notify_off_multiplier),
	    VIRTIO_PCI_NOTIFY_MULT);
	c = virtio_add_cap(vdev, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFF, 1,
			   sizeof(struct virtio_pci_cap), err);
	if (c < 0)
		return c;
	c = virtio_add_cap(vdev, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFF, vdev->config_len,
			   sizeof(struct virtio_pci_cap), err);
	if (c < 0)
		return c;
	c = virtio_add_cap(vdev, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, sizeof(struct virtio_pci_cfg_cap),
			   err);
	if (c < 0)
		return c;
	vdev->pci_cfg_cap = (unsigned)c;
	/* The window's bar, offset, length and data are the driver's. */
	pci_config_set_wmask(d, (uint32_t)c + offsetof(struct virtio_pci_cap, bar), 0xff, 1);
	pci_config_set_wmask(d, (uint32_t)c + offsetof(struct virtio_pci_cap, offset), 0xffffffff,
			     4);
	pci_config_set_wmask(d, (uint32_t)c + offsetof(struct virtio_pci_cap, length), 0xffffffff,
			     4);
	pci_config_set_wmask(d, (uint32_t)c + offsetof(struct virtio_pci_cfg_cap, pci_cfg_data),
			     0xffffffff, 4);
	return 0;
}

static int virtio_add_regions(struct virtio_dev *vdev, struct errbuf *err)
{
	const struct pci_region regions[] = {
	    {VIRTIO_PCI_COMMON_OFF, VIRTIO_PCI_REGION_LEN, virtio_common_io, vdev, NULL,
	     "virtio-common"},
	    {VIRTIO_PCI_ISR_OFF, VIRTIO_PCI_REGION_LEN, virtio_isr_io, vdev, NULL, "virtio-isr"},
	    {VIRTIO_PCI_DEVICE_OFF, VIRTIO_PCI_REGION_LEN, virtio_device_io, vdev, NULL,
	     "virtio-device"},
	    {VIRTIO_PCI_NOTIFY_OFF, VIRTIO_PCI_REGION_LEN, virtio_notify_io, vdev,
	     virtio_notify_map, "virtio-notify"},
	};
	int ret;

	for (size_t i = 0; i < ARRAY_SIZE(regions); i++) {
		ret = pci_bar_add_region(vdev->pdev, VIRTIO_PCI_BAR, &regions[i], err);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* ---- lifecycle ---- */

static void virtio_free_parts(struct virtio_dev *vdev)
{
	if (vdev->kicks)
		for (unsigned q = 0; q < vdev->nqueues; q++)
			if (vdev->kicks[q].fd >= 0)
				close(vdev->kicks[q].fd);
	free(vdev->kicks);
	vdev->kicks = NULL;
	if (vdev->vqs)
		for (unsigned q = 0; q < vdev->nqueues; q++)
			vq_free(&vdev->vqs[q]);
	free(vdev->vqs);
	vdev->vqs = NULL;
	free(vdev->config);
	vdev->config = NULL;
}

int virtio_pci_init_host(struct virtio_dev *vdev, struct pci_host *host,
			 const struct guest_mem *mem, struct aio_context *main_ctx,
			 const struct virtio_dev_params *p, struct errbuf *err)
{
	int ret;

	memset(vdev, 0, sizeof(*vdev));
	snprintf(vdev->name, sizeof(vdev->name), "%s", p->name);
	if (p->nqueues == 0 || p->nqueues > VIRTIO_PCI_MAX_QUEUES || p->queue_size == 0 ||
	    p->queue_size > VQ_MAX_SIZE || (p->queue_size & (p->queue_size - 1)) ||
	    p->config_len > VIRTIO_PCI_MAX_CONFIG || !p->ops ||
	    (!p->ops->queue_notify && !p->external))
		return err_set(err, EINVAL, "%s: bad virtio device parameters", vdev->name);
	vdev->ops = p->ops;
	vdev->opaque = p->opaque;
	vdev->host = host;
	vdev->ctx = p->ctx;
	vdev->external = p->external;
	vdev->main_ctx = main_ctx;
	vdev->device_id = p->device_id;
	vdev->nqueues = p->nqueues;
	vdev->host_features = p->features | VIRTIO_TRANSPORT_FEATURES;
	vdev->config_vector = VIRTIO_MSI_NO_VECTOR;
	vdev->notify_addr = PCI_BAR_UNMAPPED;
	pthread_mutex_init(&vdev->lock, NULL);
	pthread_cond_init(&vdev->idle, NULL);

	vdev->config = calloc(1, p->config_len ? p->config_len : 1);
	vdev->vqs = calloc(p->nqueues, sizeof(*vdev->vqs));
	vdev->kicks = calloc(p->nqueues, sizeof(*vdev->kicks));
	if (!vdev->config || !vdev->vqs || !vdev->kicks) {
		ret = err_set(err, ENOMEM, "%s: out of memory", vdev->name);
		goto fail;
	}
	memcpy(vdev->config, p->config, p->config_len);
	vdev->config_len = p->config_len;
	for (unsigned q = 0; q < p->nqueues; q++)
		vdev->kicks[q].fd = -1;
	for (unsigned q = 0; q < p->nqueues; q++) {
		if (vq_init(&vdev->vqs[q], mem, p->queue_size) < 0) {
			ret = err_set(err, ENOMEM, "%s: out of memory", vdev->name);
			goto fail;
		}
		vdev->kicks[q] = (struct virtio_kick){.vdev = vdev, .q = q};
		vdev->kicks[q].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (vdev->kicks[q].fd < 0) {
			ret = err_set(err, errno, "%s: eventfd: %s", vdev->name, strerror(errno));
			goto fail;
		}
	}

	vdev->pci_info = (struct pci_device_info){
	    .name = vdev->name,
	    .vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET,
	    .device_id = (uint16_t)(VIRTIO_PCI_DEVICE_ID_BASE + p->device_id),
	    .subsystem_vendor_id = PCI_VENDOR_ID_REDHAT_QUMRANET,
	    .subsystem_id = p->device_id,
	    .revision = 1, /* non-transitional (modern only) */
	    .class_code = p->pci_class,
	    .config_read = virtio_pci_config_read,
	    .config_write = virtio_pci_config_write,
	};
	ret = pci_host_add_device(host, &vdev->pci_info, vdev, &vdev->pdev, err);
	if (ret < 0)
		goto fail;
	ret =
	    pci_add_bar(vdev->pdev, VIRTIO_PCI_BAR, PCI_BAR_MEM32, VIRTIO_PCI_BAR_SIZE, false, err);
	if (ret < 0)
		goto fail_pci;
	ret = pci_add_bar(vdev->pdev, VIRTIO_PCI_MSIX_BAR, PCI_BAR_MEM32, VIRTIO_PCI_MSIX_BAR_SIZE,
			  false, err);
	if (ret < 0)
		goto fail_pci;
	ret = virtio_add_regions(vdev, err);
	if (ret < 0)
		goto fail_pci;
	ret = virtio_add_caps(vdev, err);
	if (ret < 0)
		goto fail_pci;
	ret = msix_init(&vdev->msix, vdev->pdev, &host->msi, 1 + p->nqueues, VIRTIO_PCI_MSIX_BAR,
			VIRTIO_PCI_MSIX_TABLE_OFF, VIRTIO_PCI_MSIX_PBA_OFF, err);
	if (ret < 0)
		goto fail_pci;
	if (vdev->external)
		return 0; /* the doorbells are the backend's to read */
	vdev->handlers_on = true;
	ret = aio_call_sync(vdev->ctx, main_ctx, virtio_handlers_set, vdev);
	if (ret < 0) {
		err_set(err, -ret, "%s: cannot watch the queue doorbells", vdev->name);
		vdev->handlers_on = false;
		goto fail_msix;
	}
	return 0;
fail_msix:
	msix_exit(&vdev->msix);
fail_pci:
	pci_unregister_device(vdev->pdev);
	vdev->pdev = NULL;
fail:
	virtio_free_parts(vdev);
	pthread_cond_destroy(&vdev->idle);
	pthread_mutex_destroy(&vdev->lock);
	return ret;
}

int virtio_pci_init(struct virtio_dev *vdev, struct vm *vm, const struct virtio_dev_params *p,
		    struct errbuf *err)
{
	int ret;

	if (!vm->pci)
		return err_set(err, ENODEV, "%s: the VM has no PCI host bridge", p->name);
	ret = virtio_pci_init_host(vdev, vm->pci, &vm->mem, vm->main_ctx, p, err);
	if (ret == 0)
		vdev->vm = vm;
	return ret;
}

void virtio_pci_stop(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->quiescing = true;
	virtio_wait_idle_locked(vdev);
	pthread_mutex_unlock(&vdev->lock);
	if (vdev->handlers_on) {
		vdev->handlers_on = false;
		aio_call_sync(vdev->ctx, vdev->main_ctx, virtio_handlers_set, vdev);
	}
}

void virtio_pci_exit(struct virtio_dev *vdev)
{
	if (vdev->pdev)
		pci_unregister_device(vdev->pdev); /* ioeventfds go with the mapping */
	vdev->pdev = NULL;
	msix_exit(&vdev->msix);
	virtio_free_parts(vdev);
	pthread_cond_destroy(&vdev->idle);
	pthread_mutex_destroy(&vdev->lock);
}

/* ---- the device side of the rings ---- */

int virtio_pop(struct virtio_dev *vdev, unsigned q, struct vq_elem **elem)
{
	struct virtqueue *vq = &vdev->vqs[q];
	int r = 0;

	pthread_mutex_lock(&vdev->lock);
	if (!virtio_running(vdev) || !vq->s.enabled)
		goto out;
	for (;;) {
		r = vq_pop(vq, elem);
		if (r > 0) {
			(*elem)->queue = (uint16_t)q;
			if (!vq->notify_suppressed)
				vq_set_notification(vq, false);
			break;
		}
		if (r < 0) {
			virtio_set_needs_reset(vdev, "queue %u: %s", q, vq->why);
			r = 0;
			break;
		}
		/* Empty: ask for notifications again, then look once more in
		 * case the driver added a buffer before it saw our request. */
		if (!vq->notify_suppressed)
			break;
		vq_set_notification(vq, true);
		if (vq_avail_empty(vq))
			break;
	}
out:
	pthread_mutex_unlock(&vdev->lock);
	return r;
}

void virtio_push(struct virtio_dev *vdev, unsigned q, struct vq_elem *elem, uint32_t len)
{
	struct virtqueue *vq = &vdev->vqs[q];

	pthread_mutex_lock(&vdev->lock);
	/* After NEEDS_RESET or during a reset the rings are not ours to
	 * write: the element only stops counting as in use. */
	if (vdev->broken || vdev->quiescing || !vq->s.enabled)
		vq_discard(vq, elem);
	else
		vq_push(vq, elem, len);
	if (vq->s.inuse == 0)
		pthread_cond_broadcast(&vdev->idle);
	pthread_mutex_unlock(&vdev->lock);
	free(elem);
}

void virtio_notify(struct virtio_dev *vdev, unsigned q)
{
	struct virtqueue *vq = &vdev->vqs[q];
	uint16_t vector = VIRTIO_MSI_NO_VECTOR;

	pthread_mutex_lock(&vdev->lock);
	if (!vdev->broken && vq->s.enabled && vq_should_notify(vq)) {
		vdev->isr |= VIRTIO_ISR_QUEUE;
		vector = vq->s.vector;
	}
	pthread_mutex_unlock(&vdev->lock);
	if (vector != VIRTIO_MSI_NO_VECTOR)
		msix_notify(&vdev->msix, vector);
}

/* ---- pausing and held elements ---- */

void virtio_pause(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->paused = true;
	pthread_mutex_unlock(&vdev->lock);
}

void virtio_resume(struct virtio_dev *vdev)
{
	pthread_mutex_lock(&vdev->lock);
	vdev->paused = false;
	/* Doorbells rung while paused were read and forgotten: look again. */
	if (vdev->status & VIRTIO_CONFIG_S_DRIVER_OK)
		for (unsigned q = 0; q < vdev->nqueues; q++)
			if (vdev->vqs[q].s.enabled)
				virtio_kick(vdev, q);
	pthread_mutex_unlock(&vdev->lock);
}

bool virtio_hold_ok(const struct virtio_dev *vdev)
{
	return !vdev->broken && !vdev->quiescing;
}

void virtio_discard_locked(struct virtio_dev *vdev, struct vq_elem *elem)
{
	struct virtqueue *vq = &vdev->vqs[elem->queue];

	vq_discard(vq, elem);
	if (vq->s.inuse == 0)
		pthread_cond_broadcast(&vdev->idle);
	free(elem);
}

/* ---- snapshots ---- */

#define VIRTIO_PCI_SNAP_VERSION 1
#define VIRTIO_STATUS_ALL                                                                          \
	(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK |        \
	 VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_STATUS_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED)

/*
 * The transport's snapshot, little-endian, followed by (each 8-byte
 * aligned): the device config bytes (config_len, padded with zeroes),
 * struct msix_entry[nvec], uint64_t pending[(nvec + 63) / 64], and
 * struct vq_snap[nqueues].
 */
struct virtio_pci_snap {
	uint32_t version;
	uint16_t nqueues;
	uint16_t nvec;
	uint32_t config_len;
	uint32_t dfselect;
	uint32_t gfselect;
	uint32_t reserved0; /* zero */
	uint64_t host_features;
	uint64_t guest_features;
	uint8_t status;
	uint8_t isr;
	uint8_t config_generation;
	uint8_t broken;
	uint16_t queue_select;
	uint16_t config_vector;
	uint8_t pci_config[PCI_CFG_SIZE];
};

_Static_assert(sizeof(struct virtio_pci_snap) == 48 + PCI_CFG_SIZE, "snapshot layout");
_Static_assert(sizeof(struct msix_entry) == 16, "MSI-X entry layout");
_Static_assert(sizeof(struct vq_snap) % 8 == 0, "queue snapshot layout");

/* Where each part of a snapshot of @vdev lies. */
struct virtio_snap_layout {
	size_t config, table, pending, queues, total;
};

static struct virtio_snap_layout virtio_snap_layout(const struct virtio_dev *vdev)
{
	struct virtio_snap_layout l;

	l.config = sizeof(struct virtio_pci_snap);
	l.table = l.config + ALIGN_UP(vdev->config_len, 8);
	l.pending = l.table + vdev->msix.nvec * sizeof(struct msix_entry);
	l.queues = l.pending + msix_pba_size(vdev->msix.nvec);
	l.total = l.queues + vdev->nqueues * sizeof(struct vq_snap);
	return l;
}

size_t virtio_pci_snap_size(const struct virtio_dev *vdev)
{
	return virtio_snap_layout(vdev).total;
}

const void *virtio_pci_snap_config(const struct virtio_dev *vdev, const void *buf, size_t len)
{
	struct virtio_snap_layout l = virtio_snap_layout(vdev);

	return len < l.config + vdev->config_len ? NULL : (const uint8_t *)buf + l.config;
}

int virtio_pci_save(struct virtio_dev *vdev, void *buf, size_t len, unsigned ninflight)
{
	struct virtio_snap_layout l = virtio_snap_layout(vdev);
	uint8_t *b = buf;
	struct virtio_pci_snap h;
	unsigned inuse;

	if (len < l.total)
		return -ENOSPC;
	pthread_mutex_lock(&vdev->lock);
	inuse = virtio_total_inuse(vdev);
	pthread_mutex_unlock(&vdev->lock);
	if (inuse != ninflight) {
		/* Saving would lose (or invent) requests: refuse, say why. */
		fprintf(stderr,
			"kvmini: %s: %u elements in flight in the queues, but the device holds "
			"%u\n",
			vdev->name, inuse, ninflight);
		return -EPROTO;
	}
	memset(buf, 0, l.total);
	memset(&h, 0, sizeof(h));
	pci_device_save_config(vdev->pdev, h.pci_config);
	msix_save(&vdev->msix, (struct msix_entry *)(b + l.table), (uint64_t *)(b + l.pending));
	pthread_mutex_lock(&vdev->lock);
	h.version = VIRTIO_PCI_SNAP_VERSION;
	h.nqueues = (uint16_t)vdev->nqueues;
	h.nvec = (uint16_t)vdev->msix.nvec;
	h.config_len = vdev->config_len;
	h.dfselect = vdev->dfselect;
	h.gfselect = vdev->gfselect;
	h.host_features = vdev->host_features;
	h.guest_features = vdev->guest_features;
	h.status = vdev->status;
	h.isr = vdev->isr;
	h.config_generation = vdev->config_generation;
	h.broken = vdev->broken;
	h.queue_select = vdev->queue_select;
	h.config_vector = vdev->config_vector;
	memcpy(b + l.config, vdev->config, vdev->config_len);
	for (unsigned q = 0; q < vdev->nqueues; q++)
		vq_save(&vdev->vqs[q], (struct vq_snap *)(b + l.queues) + q);
	pthread_mutex_unlock(&vdev->lock);
	memcpy(b, &h, sizeof(h));
	return (int)l.total;
}

/* Everything in @h that does not need guest RAM. */
static int virtio_snap_check_header(struct virtio_dev *vdev, const struct virtio_pci_snap *h,
				    const uint8_t *config, struct errbuf *err)
{
	const char *n = vdev->name;
	uint8_t st = h->status;

	if (h->version != VIRTIO_PCI_SNAP_VERSION)
		return err_set(err, EINVAL, "%s: virtio state version %u, kvmini reads %u", n,
			       h->version, VIRTIO_PCI_SNAP_VERSION);
	if (h->nqueues != vdev->nqueues || h->nvec != vdev->msix.nvec ||
	    h->config_len != vdev->config_len || h->reserved0)
		return err_set(err, EINVAL,
			       "%s: snapshot has %u queues, %u MSI-X vectors and %u config bytes; "
			       "this device %u, %u and %u",
			       n, h->nqueues, h->nvec, h->config_len, vdev->nqueues,
			       vdev->msix.nvec, vdev->config_len);
	if (h->host_features != vdev->host_features)
		return err_set(err, EINVAL,
			       "%s: snapshot device offered features 0x%llx, this one 0x%llx (disk "
			       "options differ?)",
			       n, (unsigned long long)h->host_features,
			       (unsigned long long)vdev->host_features);
	if (!vdev->ops->config_write && memcmp(config, vdev->config, vdev->config_len))
		return err_set(err, EINVAL,
			       "%s: device configuration differs from the snapshot's (disk size "
			       "changed?)",
			       n);
	if (st & ~VIRTIO_STATUS_ALL)
		return err_set(err, EINVAL, "%s: device status 0x%02x has unknown bits", n, st);
	if (h->broken > 1 || !!(st & VIRTIO_STATUS_NEEDS_RESET) != h->broken)
		return err_set(err, EINVAL,
			       "%s: NEEDS_RESET (status 0x%02x) and broken (%u) disagree", n, st,
			       h->broken);
	if ((st & VIRTIO_CONFIG_S_DRIVER_OK) && !(st & VIRTIO_CONFIG_S_FEATURES_OK))
		return err_set(err, EINVAL, "%s: status 0x%02x has DRIVER_OK without FEATURES_OK",
			       n, st);
	if ((st & VIRTIO_CONFIG_S_FEATURES_OK) &&
	    (!(h->guest_features & (1ULL << VIRTIO_F_VERSION_1)) ||
	     (h->guest_features & ~h->host_features)))
		return err_set(
		    err, EINVAL, "%s: accepted features 0x%llx are not a valid subset of 0x%llx", n,
		    (unsigned long long)h->guest_features, (unsigned long long)h->host_features);
	if (h->isr & ~(VIRTIO_ISR_QUEUE | VIRTIO_ISR_CONFIG))
		return err_set(err, EINVAL, "%s: ISR 0x%02x has unknown bits", n, h->isr);
	if (h->config_vector != VIRTIO_MSI_NO_VECTOR && h->config_vector >= vdev->msix.nvec)
		return err_set(err, EINVAL, "%s: config vector %u, the device has %u", n,
			       h->config_vector, vdev->msix.nvec);
	return 0;
}

static int virtio_snap_check_queue(struct virtio_dev *vdev, const struct virtio_pci_snap *h,
				   const struct vq_snap *qs, unsigned q, struct errbuf *err)
{
	char why[200];

	if (qs->vector != VIRTIO_MSI_NO_VECTOR && qs->vector >= vdev->msix.nvec)
		return err_set(err, EINVAL, "%s: queue %u: vector %u, the device has %u",
			       vdev->name, q, qs->vector, vdev->msix.nvec);
	if (qs->enabled && !(h->status & VIRTIO_CONFIG_S_FEATURES_OK))
		return err_set(err, EINVAL, "%s: queue %u enabled without FEATURES_OK", vdev->name,
			       q);
	if (vq_snap_check(qs, vdev->vqs[q].max_size, vdev->vqs[q].mem, !h->broken, why,
			  sizeof(why)) < 0)
		return err_set(err, EINVAL, "%s: queue %u: %s", vdev->name, q, why);
	return 0;
}

/* Re-read queue @q's in-flight chains from guest RAM and hand them to @fn. */
static int virtio_snap_reload(struct virtio_dev *vdev, const struct vq_snap *qs, unsigned q,
			      bool event_idx, bool indirect, virtio_load_elem_fn *fn, void *opaque,
			      struct errbuf *err)
{
	struct virtqueue tmp;
	int ret = 0;

	if (qs->inuse == 0)
		return 0;
	if (vq_init(&tmp, vdev->vqs[q].mem, vdev->vqs[q].max_size) < 0)
		return err_set(err, ENOMEM, "%s: out of memory", vdev->name);
	vq_load(&tmp, qs, event_idx, indirect);
	for (unsigned i = 0; i < qs->inuse; i++) {
		struct vq_elem *elem;

		if (vq_reload(&tmp, qs->inflight[i], &elem) < 0) {
			ret = err_set(err, EINVAL, "%s: queue %u: in-flight request: %s",
				      vdev->name, q, tmp.why);
			break;
		}
		elem->queue = (uint16_t)q;
		ret = fn(opaque, elem, err);
		if (ret < 0) {
			free(elem);
			break;
		}
	}
	vq_free(&tmp);
	return ret;
}

int virtio_pci_load(struct virtio_dev *vdev, const void *buf, size_t len, unsigned ninflight,
		    virtio_load_elem_fn *fn, void *opaque, struct errbuf *err)
{
	unsigned inuse = 0;
	struct virtio_snap_layout l = virtio_snap_layout(vdev);
	const uint8_t *b = buf;
	const struct msix_entry *table;
	const uint64_t *pending;
	struct virtio_pci_snap h;
	struct vq_snap *qs;
	bool event_idx, indirect;
	int ret;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: virtio state is truncated (%zu bytes)", vdev->name,
			       len);
	memcpy(&h, buf, sizeof(h));
	if (h.version == VIRTIO_PCI_SNAP_VERSION && len != l.total)
		return err_set(err, EINVAL, "%s: virtio state has %zu bytes, expected %zu",
			       vdev->name, len, l.total);
	ret = virtio_snap_check_header(vdev, &h, b + l.config, err);
	if (ret < 0)
		return ret;
	/* The arrays may be unaligned in @buf: work on an aligned copy. */
	qs = malloc(l.total - l.table);
	if (!qs)
		return err_set(err, ENOMEM, "%s: out of memory", vdev->name);
	memcpy(qs, b + l.table, l.total - l.table);
	table = (const struct msix_entry *)qs;
	pending = (const uint64_t *)((const uint8_t *)qs + (l.pending - l.table));
	qs = (struct vq_snap *)((uint8_t *)qs + (l.queues - l.table));
	ret = msix_check(&vdev->msix, table, pending, err);
	for (unsigned q = 0; ret == 0 && q < vdev->nqueues; q++) {
		ret = virtio_snap_check_queue(vdev, &h, &qs[q], q, err);
		inuse += qs[q].inuse;
	}
	if (ret == 0 && inuse != ninflight)
		ret = err_set(err, EINVAL,
			      "%s: %u elements in flight in the queues, but the device held %u",
			      vdev->name, inuse, ninflight);
	/* The PCI config is checked by applying it, so it goes last of the
	 * checks: nothing may fail after it. Chains first. */
	event_idx = h.guest_features & (1ULL << VIRTIO_RING_F_EVENT_IDX);
	indirect = h.guest_features & (1ULL << VIRTIO_RING_F_INDIRECT_DESC);
	for (unsigned q = 0; ret == 0 && q < vdev->nqueues; q++)
		ret = virtio_snap_reload(vdev, &qs[q], q, event_idx, indirect, fn, opaque, err);
	if (ret == 0)
		ret = pci_device_load_config(vdev->pdev, h.pci_config, err);
	if (ret < 0)
		goto out;

	msix_load(&vdev->msix, table, pending);
	pthread_mutex_lock(&vdev->lock);
	vdev->dfselect = h.dfselect;
	vdev->gfselect = h.gfselect;
	vdev->guest_features = h.guest_features;
	vdev->status = h.status;
	vdev->isr = h.isr;
	vdev->config_generation = h.config_generation;
	vdev->broken = h.broken;
	vdev->queue_select = h.queue_select;
	vdev->config_vector = h.config_vector;
	memcpy(vdev->config, b + l.config, vdev->config_len);
	for (unsigned q = 0; q < vdev->nqueues; q++)
		vq_load(&vdev->vqs[q], &qs[q], event_idx, indirect);
	pthread_mutex_unlock(&vdev->lock);
out:
	free((uint8_t *)table);
	return ret;
}
