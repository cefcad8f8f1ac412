// SPDX-License-Identifier: MIT
/* ivshmem driver on pci.h and irq.h: see ivshmem.h. */
#include "guest.h"
#include "clock.h"
#include "gerrno.h"
#include "irq.h"
#include "ivshmem.h"

int ivshmem_open(unsigned int index, struct ivshmem_dev *d)
{
	struct pci_dev *p;
	int r;

	memset(d, 0, sizeof(*d));
	if (pci_init() < 0)
		return -ENODEV;
	p = pci_find(IVSHMEM_VENDOR, IVSHMEM_DEVICE, index);
	if (!p)
		return -ENOENT;
	r = pci_dev_enable(p);
	if (r < 0)
		return r;
	d->pci = p;
	d->regs = p->bar[0].addr;
	d->shm = p->bar[2].addr;
	d->shm_size = p->bar[2].size;
	r = pci_msix_enable(p, &d->msix);
	if (r < 0 && r != -ENODEV)
		return r;
	d->doorbell = r == 0;
	d->id = ivshmem_read_reg(d, IVSHMEM_REG_IVPOSITION);
	return 0;
}

int ivshmem_route(struct ivshmem_dev *d, unsigned int v)
{
	int vec;

	if (!d->doorbell || v >= d->msix.nvec || v >= IVSHMEM_MAX_ROUTED)
		return -EINVAL;
	if (!d->irq[v]) {
		vec = irq_alloc(NULL, NULL);
		if (vec < 0)
			return vec;
		d->irq[v] = vec;
	}
	pci_msix_route(&d->msix, v, (uint8_t)d->irq[v], lapic_id());
	return 0;
}

uint64_t ivshmem_irq_count(const struct ivshmem_dev *d, unsigned int v)
{
	return v < IVSHMEM_MAX_ROUTED && d->irq[v] ? irq_count((unsigned int)d->irq[v]) : 0;
}

struct wait_args {
	volatile uint32_t *word;
	uint32_t old;
};

/* irq_wait's condition: CPL0, interrupts off. */
static bool word_changed(void *arg)
{
	struct wait_args *a = arg;

	return *a->word != a->old;
}

bool ivshmem_wait(volatile uint32_t *word, uint32_t old, uint32_t max_ms)
{
	struct wait_args a = {word, old};

	return irq_wait(word_changed, &a, tsc_ms(max_ms));
}
