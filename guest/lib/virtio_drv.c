// SPDX-License-Identifier: MIT
/* Helpers every virtio driver here needs: finding the PCI function, the
 * command-line options, splitting data into descriptors, waiting for the
 * used ring. */
#include "guest.h"
#include "virtio.h"

#define STATUS_CHECK_MS 10 /* how often a wait looks for NEEDS_RESET */

void virtio_opts_from_cmdline(struct virtio_opts *o, unsigned int max_segs)
{
	uint64_t v;

	*o = (struct virtio_opts){.irq = cmdline_has("irq"),
				  .no_indirect = cmdline_has("noindirect"),
				  .no_event_idx = cmdline_has("noevent_idx")};
	if (!cmdline_get_u64("qsize", &v) && v <= VIRTQ_MAX_SIZE)
		o->queue_size = v;
	if (!cmdline_get_u64("segs", &v) && v <= max_segs)
		o->max_segs = v;
}

uint64_t virtio_opts_features(const struct virtio_opts *o)
{
	uint64_t f = 0;

	if (!o->no_indirect)
		f |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (!o->no_event_idx)
		f |= 1ull << VIRTIO_F_EVENT_IDX;
	return f;
}

struct pci_dev *virtio_pci_open(unsigned int type, uint16_t transitional, unsigned int index,
				const char *name, const char *what)
{
	struct pci_dev *d;
	unsigned int left = index;
	int r = pci_init();

	if (r < 0) {
		printf("%s: no PCI configuration mechanism\n", name);
		return NULL;
	}
	for (unsigned int i = 0; (d = pci_get(i)); i++)
		if (d->vendor == VIRTIO_PCI_VENDOR &&
		    (d->device == VIRTIO_PCI_DEVICE(type) ||
		     (transitional && d->device == transitional)) &&
		    left-- == 0)
			break;
	if (!d) {
		printf("%s: no %s %u on PCI bus 0 (%s)\n", name, what, index, pci_method());
		return NULL;
	}
	if (cmdline_has("relocate")) {
		uint64_t high = 0;
		cmdline_get_u64("relocate_high", &high);
		r = pci_dev_relocate(d, high);
		if (r) {
			printf("%s: moving the BARs failed: %d\n", name, r);
			return NULL;
		}
	}
	return d;
}

int virtq_split(struct virtq_buf *out, unsigned int max, const void *p, uint32_t len, uint32_t seg)
{
	const uint8_t *q = p;
	unsigned int n = 0;

	while (len) {
		uint32_t k = seg && len > seg ? seg : len;
		if (n == max)
			return -E2BIG;
		out[n++] = (struct virtq_buf){q, k};
		q += k;
		len -= k;
	}
	return n;
}

static bool has_used(void *vq)
{
	return virtq_has_used(vq);
}

int virtio_wait_used(const struct virtio_dev *v, struct virtq *vq, bool irq, uint64_t timeout_tsc,
		     uint64_t *irq_waits)
{
	uint64_t t0 = rdtsc(), check = tsc_ms(STATUS_CHECK_MS), next = t0 + check;

	while (!virtq_has_used(vq)) {
		uint64_t now = rdtsc();
		if (now - t0 > timeout_tsc)
			return -ETIMEDOUT;
		if (now >= next) {
			if (virtio_status(v) & VIRTIO_STATUS_NEEDS_RESET)
				return -EIO;
			next = now + check;
		}
		if (irq) {
			/* Ask for an interrupt, then sleep unless one is already due. */
			if (!virtq_enable_irq(vq)) {
				(*irq_waits)++;
				irq_wait(has_used, vq, check);
			}
		} else {
			for (int i = 0; i < 1000 && !virtq_has_used(vq); i++)
				cpu_relax();
		}
	}
	return 0;
}
