// SPDX-License-Identifier: MIT
/* virtio-pci modern transport: capabilities, status, features, queues. */
#include "guest.h"
#include "virtio.h"

/* struct virtio_pci_cap (vendor capability) */
#define CAP_CFG_TYPE	3
#define CAP_BAR		4
#define CAP_OFFSET	8
#define CAP_LENGTH	12
#define CAP_NOTIFY_MULT 16

#define CFG_COMMON 1
#define CFG_NOTIFY 2
#define CFG_ISR	   3
#define CFG_DEVICE 4

/* struct virtio_pci_common_cfg */
#define COMMON_DFSELECT	   0x00
#define COMMON_DF	   0x04
#define COMMON_GFSELECT	   0x08
#define COMMON_GF	   0x0c
#define COMMON_MSIX_CONFIG 0x10
#define COMMON_NUM_QUEUES  0x12
#define COMMON_STATUS	   0x14
#define COMMON_CFG_GEN	   0x15
#define COMMON_Q_SELECT	   0x16
#define COMMON_Q_SIZE	   0x18
#define COMMON_Q_MSIX	   0x1a
#define COMMON_Q_ENABLE	   0x1c
#define COMMON_Q_NOFF	   0x1e
#define COMMON_Q_DESC	   0x20
#define COMMON_Q_AVAIL	   0x28
#define COMMON_Q_USED	   0x30
#define COMMON_LEN	   0x38

#define RESET_TIMEOUT_MS 1000

/* Address of a structure a capability describes, checked against its BAR. */
static uint64_t cap_region(const struct pci_dev *d, uint8_t cap, uint32_t min_len, uint32_t *len)
{
	uint8_t bar = pci_read8(d, cap + CAP_BAR);
	uint32_t off = pci_read32(d, cap + CAP_OFFSET);
	uint32_t l = pci_read32(d, cap + CAP_LENGTH);
	const struct pci_bar *b;

	if (bar > 5)
		return 0;
	b = &d->bar[bar];
	if (!b->size || !b->addr || (b->flags & PCI_BAR_IO) || l < min_len || off > b->size ||
	    l > b->size - off)
		return 0;
	if (len)
		*len = l;
	return b->addr + off;
}

int virtio_pci_probe(struct virtio_dev *v, struct pci_dev *d)
{
	int r;

	*v = (struct virtio_dev){.pci = d, .config_vector = -1};
	r = pci_dev_enable(d);
	if (r)
		return r;
	/* The first capability of each type that we can use wins (virtio 1.x 4.1.4). */
	for (uint8_t cap = pci_cap_find(d, PCI_CAP_VENDOR, 0); cap;
	     cap = pci_cap_find(d, PCI_CAP_VENDOR, cap)) {
		uint8_t type = pci_read8(d, cap + CAP_CFG_TYPE);
		uint32_t len;
		uint64_t a;
		if (type == CFG_COMMON && !v->common) {
			v->common = cap_region(d, cap, COMMON_LEN, NULL);
		} else if (type == CFG_NOTIFY && !v->notify_base) {
			a = cap_region(d, cap, 2, &len);
			if (a) {
				v->notify_base = a;
				v->notify_len = len;
				v->notify_mult = pci_read32(d, cap + CAP_NOTIFY_MULT);
			}
		} else if (type == CFG_ISR && !v->isr) {
			v->isr = cap_region(d, cap, 1, NULL);
		} else if (type == CFG_DEVICE && !v->device) {
			a = cap_region(d, cap, 1, &len);
			if (a) {
				v->device = a;
				v->device_len = len;
			}
		}
	}
	if (!v->common || !v->notify_base)
		return -ENODEV;
	r = pci_msix_enable(d, &v->msix);
	if (r && r != -ENODEV)
		return r;
	v->have_msix = r == 0;
	v->num_queues = mmio_read16(v->common + COMMON_NUM_QUEUES);
	return virtio_reset(v);
}

uint8_t virtio_status(const struct virtio_dev *v)
{
	return mmio_read8(v->common + COMMON_STATUS);
}

void virtio_set_status(const struct virtio_dev *v, uint8_t status)
{
	mmio_write8(v->common + COMMON_STATUS, status);
}

int virtio_reset(const struct virtio_dev *v)
{
	uint64_t t0 = rdtsc(), limit = tsc_ms(RESET_TIMEOUT_MS);

	virtio_set_status(v, 0);
	/* The device may finish resetting later; it reads 0 once done (4.1.4.3.2). */
	while (virtio_status(v) != 0) {
		if (rdtsc() - t0 > limit)
			return -ETIMEDOUT;
		cpu_relax();
	}
	return 0;
}

static void write64(uint64_t addr, uint64_t v)
{
	/* 64-bit fields as two 32-bit accesses, low half first (4.1.3.1) */
	mmio_write32(addr, (uint32_t)v);
	mmio_write32(addr + 4, v >> 32);
}

int virtio_negotiate(struct virtio_dev *v, uint64_t wanted)
{
	int r = virtio_reset(v);

	if (r)
		return r;
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
	virtio_set_status(v, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	mmio_write32(v->common + COMMON_DFSELECT, 0);
	uint64_t f = mmio_read32(v->common + COMMON_DF);
	mmio_write32(v->common + COMMON_DFSELECT, 1);
	f |= (uint64_t)mmio_read32(v->common + COMMON_DF) << 32;
	v->device_features = f;
	if (!((f >> VIRTIO_F_VERSION_1) & 1)) {
		virtio_set_status(v, VIRTIO_STATUS_FAILED);
		return -ENOTSUP;
	}
	v->features = f & (wanted | 1ull << VIRTIO_F_VERSION_1);
	mmio_write32(v->common + COMMON_GFSELECT, 0);
	mmio_write32(v->common + COMMON_GF, (uint32_t)v->features);
	mmio_write32(v->common + COMMON_GFSELECT, 1);
	mmio_write32(v->common + COMMON_GF, v->features >> 32);
	uint8_t s = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK;
	virtio_set_status(v, s);
	if (!(virtio_status(v) & VIRTIO_STATUS_FEATURES_OK)) {
		virtio_set_status(v, s | VIRTIO_STATUS_FAILED);
		return -EIO;
	}
	return 0;
}

int virtio_msix_vector(struct virtio_dev *v, unsigned int entry, irq_fn fn, void *arg)
{
	if (!v->have_msix)
		return -ENODEV;
	if (entry >= v->msix.nvec)
		return -ENOSPC;
	irq_init();
	int vec = irq_alloc(fn, arg);
	if (vec < 0)
		return vec;
	pci_msix_route(&v->msix, entry, vec, lapic_id());
	return vec;
}

int virtio_config_irq(struct virtio_dev *v, unsigned int entry)
{
	mmio_write16(v->common + COMMON_MSIX_CONFIG, entry);
	return mmio_read16(v->common + COMMON_MSIX_CONFIG) == entry ? 0 : -EIO;
}

static void *alloc_zeroed(size_t size, size_t align)
{
	void *p = mem_alloc(size, align);

	if (p)
		memset(p, 0, size);
	return p;
}

/* Ring sizes (2.7): avail and used rings end with the event index. */
static size_t avail_bytes(unsigned int n)
{
	return 4 + 2 * n + 2;
}

static size_t used_bytes(unsigned int n)
{
	return 4 + 8 * n + 2;
}

static int queue_alloc(struct virtq *vq, uint16_t n, uint16_t imax)
{
	vq->desc = alloc_zeroed(16 * n, 4096);
	vq->avail = alloc_zeroed(avail_bytes(n), 4096);
	vq->used = alloc_zeroed(used_bytes(n), 4096);
	vq->tokens = alloc_zeroed(n * sizeof(void *), 8);
	vq->ndesc = alloc_zeroed(n * sizeof(uint16_t), 2);
	vq->itables =
	    imax ? alloc_zeroed((size_t)n * imax * sizeof(struct virtq_desc), 4096) : NULL;
	if (!vq->desc || !vq->avail || !vq->used || !vq->tokens || !vq->ndesc ||
	    (imax && !vq->itables))
		return -ENOMEM;
	vq->alloc_size = n;
	vq->alloc_imax = imax;
	return 0;
}

int virtio_queue_setup(struct virtio_dev *v, struct virtq *vq, uint16_t index, uint16_t max_size,
		       uint16_t msix_entry, uint16_t imax)
{
	uint64_t c = v->common;
	uint16_t n;
	int r;

	if (index >= v->num_queues)
		return -ENOENT;
	mmio_write16(c + COMMON_Q_SELECT, index);
	n = mmio_read16(c + COMMON_Q_SIZE);
	if (n == 0)
		return -ENOENT;
	if (n > max_size)
		n = max_size;
	if (n > VIRTQ_MAX_SIZE)
		n = VIRTQ_MAX_SIZE;
	while (n & (n - 1))
		n &= n - 1; /* largest power of two not above it */
	if (!virtio_has(v, VIRTIO_F_INDIRECT_DESC))
		imax = 0;
	if (vq->alloc_size) { /* re-initialisation after a reset: keep the memory */
		if (n > vq->alloc_size)
			n = vq->alloc_size;
		if (imax > vq->alloc_imax)
			imax = vq->alloc_imax;
	} else if ((r = queue_alloc(vq, n, imax)) != 0) {
		return r;
	}
	vq->index = index;
	vq->size = n;
	vq->imax = imax;
	vq->event_idx = virtio_has(v, VIRTIO_F_EVENT_IDX);
	vq->indirect = imax != 0;
	virtq_reinit(vq);

	/* The device must keep the size and vector we write (no silent ignore). */
	mmio_write16(c + COMMON_Q_SIZE, n);
	if (mmio_read16(c + COMMON_Q_SIZE) != n)
		return -EIO;
	mmio_write16(c + COMMON_Q_MSIX, msix_entry);
	if (mmio_read16(c + COMMON_Q_MSIX) != msix_entry)
		return -EIO;
	write64(c + COMMON_Q_DESC, (uint64_t)vq->desc);
	write64(c + COMMON_Q_AVAIL, (uint64_t)vq->avail);
	write64(c + COMMON_Q_USED, (uint64_t)vq->used);
	uint64_t noff = (uint64_t)mmio_read16(c + COMMON_Q_NOFF) * v->notify_mult;
	if (noff > v->notify_len - 2)
		return -EIO;
	vq->notify_addr = v->notify_base + noff;
	mmio_write16(c + COMMON_Q_ENABLE, 1);
	return 0;
}

int virtio_driver_ok(const struct virtio_dev *v)
{
	virtio_set_status(v, virtio_status(v) | VIRTIO_STATUS_DRIVER_OK);
	return virtio_status(v) & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED) ? -EIO : 0;
}

uint8_t virtio_isr(const struct virtio_dev *v)
{
	return v->isr ? mmio_read8(v->isr) : 0;
}

static uint8_t generation(const struct virtio_dev *v)
{
	return mmio_read8(v->common + COMMON_CFG_GEN);
}

static bool cfg_in_range(const struct virtio_dev *v, unsigned int off, unsigned int len)
{
	return v->device && off <= v->device_len && len <= v->device_len - off;
}

uint8_t virtio_cfg8(const struct virtio_dev *v, unsigned int off)
{
	return cfg_in_range(v, off, 1) ? mmio_read8(v->device + off) : 0;
}

/* 16- and 32-bit fields are single accesses: atomic on their own. Only
 * fields wider than one access need the generation check (4.1.4.3.1). */
uint16_t virtio_cfg16(const struct virtio_dev *v, unsigned int off)
{
	return cfg_in_range(v, off, 2) ? mmio_read16(v->device + off) : 0;
}

uint32_t virtio_cfg32(const struct virtio_dev *v, unsigned int off)
{
	return cfg_in_range(v, off, 4) ? mmio_read32(v->device + off) : 0;
}

uint64_t virtio_cfg64(const struct virtio_dev *v, unsigned int off)
{
	uint32_t lo, hi;
	uint8_t g;

	if (!cfg_in_range(v, off, 8))
		return 0;
	do {
		g = generation(v);
		lo = mmio_read32(v->device + off);
		hi = mmio_read32(v->device + off + 4);
	} while (generation(v) != g);
	return lo | (uint64_t)hi << 32;
}
