// SPDX-License-Identifier: MIT
/*
 * MSI-X: the capability, table and PBA, vector masking with irqfds and
 * pending bits. See vmm/msix.h for the model.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "vmm/msix.h"
#include "vmm/pci.h"

/* ---- MSI-X ---- */

static bool msix_vector_masked(const struct msix *m, unsigned i)
{
	return !m->enabled || m->fmask || (m->table[i].ctrl & PCI_MSIX_ENTRY_CTRL_MASKBIT);
}

/* Fold messages that arrived while @i had no irqfd into its pending bit. */
static void msix_collect(struct msix *m, unsigned i)
{
	uint64_t n;

	if (!m->v[i].irqfd && read(m->v[i].efd, &n, sizeof(n)) == sizeof(n))
		m->v[i].pending = true;
}

static void msix_report(struct msix *m, const char *what, int err)
{
	/* A host failure, not a guest one: say it once per device. */
	if (m->nirqfd_errors++ == 0)
		fprintf(stderr, "kvmini: %s: MSI-X %s failed: %s; its interrupts may be lost\n",
			m->pdev->info->name, what, strerror(-err));
}

/*
 * Bring vectors [first, first + n) in line with the masks and table:
 * deliverable vectors get their route and an irqfd (and a message that was
 * pending), masked vectors lose the irqfd. Routes are committed once for
 * the batch, before any irqfd is attached. m->lock held.
 */
static void msix_sync(struct msix *m, unsigned first, unsigned n)
{
	bool need_commit = false;
	int ret;

	for (unsigned i = first; i < first + n; i++) {
		struct msix_vector_state *v = &m->v[i];
		const struct msix_entry *e = &m->table[i];

		if (msix_vector_masked(m, i) || v->routed)
			continue;
		ret = msi_router_set(m->router, v->gsi, (uint64_t)e->addr_hi << 32 | e->addr_lo,
				     e->data);
		if (ret < 0) {
			msix_report(m, "route", ret);
			continue;
		}
		v->routed = true;
		need_commit = true;
	}
	if (need_commit) {
		ret = msi_router_commit(m->router);
		if (ret < 0)
			msix_report(m, "KVM_SET_GSI_ROUTING", ret);
	}
	for (unsigned i = first; i < first + n; i++) {
		struct msix_vector_state *v = &m->v[i];
		bool masked = msix_vector_masked(m, i);

		if (masked && v->irqfd) {
			ret = m->router->ops->irqfd(m->router->opaque, v->efd, v->gsi, false);
			if (ret < 0)
				msix_report(m, "irqfd detach", ret);
			v->irqfd = false;
		} else if (!masked && !v->irqfd && v->routed) {
			msix_collect(m, i);
			ret = m->router->ops->irqfd(m->router->opaque, v->efd, v->gsi, true);
			if (ret < 0) {
				msix_report(m, "irqfd attach", ret);
				continue;
			}
			v->irqfd = true;
			if (v->pending) {
				uint64_t one = 1;

				v->pending = false;
				if (write(v->efd, &one, sizeof(one)) != sizeof(one))
					msix_report(m, "eventfd write", -errno);
			}
		}
	}
}

int msix_init(struct msix *m, struct pci_device *d, struct msi_router *r, unsigned nvec, int bar,
	      uint64_t table_off, uint64_t pba_off, struct errbuf *err)
{
	const char *name = d->info->name;
	struct pci_region reg;
	int cap, ret;
	unsigned i;

	memset(m, 0, sizeof(*m));
	if (nvec == 0 || nvec > MSIX_MAX_VECTORS)
		return err_set(err, EINVAL, "%s: bad MSI-X vector count %u", name, nvec);
	if (bar < 0 || bar >= PCI_BARS ||
	    (d->bars[bar].type != PCI_BAR_MEM32 && d->bars[bar].type != PCI_BAR_MEM64) ||
	    (table_off | pba_off) & 7 || table_off > UINT32_MAX || pba_off > UINT32_MAX)
		return err_set(err, EINVAL, "%s: bad MSI-X table/PBA placement", name);
	m->pdev = d;
	m->router = r;
	m->nvec = nvec;
	m->table = calloc(nvec, sizeof(*m->table));
	m->v = calloc(nvec, sizeof(*m->v));
	if (!m->table || !m->v) {
		ret = err_set(err, ENOMEM, "%s: out of memory", name);
		goto fail;
	}
	for (i = 0; i < nvec; i++)
		m->v[i].efd = -1;
	for (i = 0; i < nvec; i++) {
		m->table[i].ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT;
		m->v[i].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (m->v[i].efd < 0) {
			ret = err_set(err, errno, "%s: eventfd: %s", name, strerror(errno));
			goto fail;
		}
		ret = msi_router_alloc_gsi(r, &m->v[i].gsi);
		if (ret < 0) {
			err_set(err, -ret, "%s: out of interrupt routes (GSIs)", name);
			goto fail;
		}
	}
	reg = (struct pci_region){.offset = table_off,
				  .len = msix_table_size(nvec),
				  .fn = msix_table_io,
				  .opaque = m,
				  .name = "msix-table"};
	ret = pci_bar_add_region(d, bar, &reg, err);
	if (ret < 0)
		goto fail;
	reg = (struct pci_region){.offset = pba_off,
				  .len = msix_pba_size(nvec),
				  .fn = msix_pba_io,
				  .opaque = m,
				  .name = "msix-pba"};
	ret = pci_bar_add_region(d, bar, &reg, err);
	if (ret < 0)
		goto fail;
	cap = pci_add_capability(d, PCI_CAP_ID_MSIX, MSIX_CAP_LEN, err);
	if (cap < 0) {
		ret = cap;
		goto fail;
	}
	m->cap = (unsigned)cap;
	pci_config_set16(d, m->cap + PCI_MSIX_FLAGS, (uint16_t)(nvec - 1));
	pci_config_set_wmask(d, m->cap + PCI_MSIX_FLAGS,
			     PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL, 2);
	pci_config_set32(d, m->cap + PCI_MSIX_TABLE, (uint32_t)table_off | (uint32_t)bar);
	pci_config_set32(d, m->cap + PCI_MSIX_PBA, (uint32_t)pba_off | (uint32_t)bar);
	pthread_mutex_init(&m->lock, NULL);
	return 0;
fail:
	for (i = 0; m->v && i < nvec; i++)
		if (m->v[i].efd >= 0)
			close(m->v[i].efd);
	free(m->v);
	free(m->table);
	memset(m, 0, sizeof(*m));
	return ret;
}

void msix_exit(struct msix *m)
{
	if (!m->v)
		return;
	for (unsigned i = 0; i < m->nvec; i++) {
		if (m->v[i].irqfd)
			m->router->ops->irqfd(m->router->opaque, m->v[i].efd, m->v[i].gsi, false);
		close(m->v[i].efd);
	}
	free(m->v);
	free(m->table);
	pthread_mutex_destroy(&m->lock);
	memset(m, 0, sizeof(*m));
}

void msix_config_write(struct msix *m, uint32_t off, uint32_t len)
{
	uint16_t ctl;

	if (!m->v || off >= m->cap + PCI_MSIX_FLAGS + 2 || off + len <= m->cap + PCI_MSIX_FLAGS)
		return;
	ctl = pci_config_get16(m->pdev, m->cap + PCI_MSIX_FLAGS);
	pthread_mutex_lock(&m->lock);
	m->enabled = ctl & PCI_MSIX_FLAGS_ENABLE;
	m->fmask = ctl & PCI_MSIX_FLAGS_MASKALL;
	msix_sync(m, 0, m->nvec);
	pthread_mutex_unlock(&m->lock);
}

void msix_notify(struct msix *m, unsigned vector)
{
	uint64_t one = 1;

	if (vector >= m->nvec)
		return;
	/* Lock-free: an irqfd delivers it now, else it waits in the eventfd
	 * (the pending bit) until msix_sync attaches the irqfd again. */
	if (write(m->v[vector].efd, &one, sizeof(one)) != sizeof(one))
		msix_report(m, "eventfd write", -errno);
}

int msix_vector_fd(const struct msix *m, unsigned vector)
{
	return vector < m->nvec ? m->v[vector].efd : -1;
}

int msix_vector_set_fd(struct msix *m, unsigned vector, int fd)
{
	struct msix_vector_state *v;
	int ret;

	if (vector >= m->nvec) {
		close(fd);
		return -EINVAL;
	}
	v = &m->v[vector];
	pthread_mutex_lock(&m->lock);
	if (v->irqfd) {
		ret = m->router->ops->irqfd(m->router->opaque, v->efd, v->gsi, false);
		if (ret < 0)
			msix_report(m, "irqfd detach", ret);
		v->irqfd = false;
	}
	msix_collect(m, vector); /* what the old eventfd holds stays pending */
	close(v->efd);
	v->efd = fd;
	msix_sync(m, vector, 1); /* attaches the irqfd to @fd if deliverable */
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* One aligned dword of the table. m->lock held. */
static uint32_t msix_table_read32(struct msix *m, uint64_t off)
{
	const struct msix_entry *e = &m->table[off / MSIX_ENTRY_SIZE];

	switch (off % MSIX_ENTRY_SIZE) {
	case PCI_MSIX_ENTRY_LOWER_ADDR:
		return e->addr_lo;
	case PCI_MSIX_ENTRY_UPPER_ADDR:
		return e->addr_hi;
	case PCI_MSIX_ENTRY_DATA:
		return e->data;
	default:
		return e->ctrl;
	}
}

static void msix_table_write32(struct msix *m, uint64_t off, uint32_t val)
{
	unsigned i = (unsigned)(off / MSIX_ENTRY_SIZE);
	struct msix_entry *e = &m->table[i];
	uint32_t *f;

	switch (off % MSIX_ENTRY_SIZE) {
	case PCI_MSIX_ENTRY_LOWER_ADDR:
		f = &e->addr_lo;
		val &= ~3u; /* dword aligned: bits 1:0 read as zero */
		break;
	case PCI_MSIX_ENTRY_UPPER_ADDR:
		f = &e->addr_hi;
		break;
	case PCI_MSIX_ENTRY_DATA:
		f = &e->data;
		break;
	default:
		e->ctrl = val & PCI_MSIX_ENTRY_CTRL_MASKBIT;
		msix_sync(m, i, 1);
		return;
	}
	if (*f != val) {
		*f = val;
		m->v[i].routed = false;
		/* Changing an unmasked entry is undefined by the spec; kvmini
		 * re-routes at once, as the new message is what the guest set. */
		msix_sync(m, i, 1);
	}
}

/* Table accesses must be aligned dwords or qwords (PCI spec); others are
 * dropped and read all-ones. */
static bool msix_access_ok(uint64_t off, uint32_t len)
{
	return (len == 4 || len == 8) && off % len == 0;
}

void msix_table_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct msix *m = opaque;
	uint32_t w[2];

	if (!msix_access_ok(off, len) || off + len > msix_table_size(m->nvec)) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (is_write) {
		memcpy(w, data, len);
		for (uint32_t k = 0; k < len / 4; k++)
			msix_table_write32(m, off + 4 * k, w[k]);
	} else {
		for (uint32_t k = 0; k < len / 4; k++)
			w[k] = msix_table_read32(m, off + 4 * k);
		memcpy(data, w, len);
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_pba_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct msix *m = opaque;
	uint64_t bits = 0;

	if (is_write) /* the PBA is read-only */
		return;
	if (!msix_access_ok(off, len) || off + len > msix_pba_size(m->nvec)) {
		memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&m->lock);
	for (unsigned b = 0; b < len * 8; b++) {
		unsigned i = (unsigned)(off * 8) + b;

		if (i >= m->nvec)
			break;
		msix_collect(m, i);
		if (m->v[i].pending)
			bits |= 1ULL << b;
	}
	pthread_mutex_unlock(&m->lock);
	memcpy(data, &bits, len);
}

void msix_reset(struct msix *m)
{
	uint64_t n;

	if (!m->v)
		return;
	pthread_mutex_lock(&m->lock);
	m->enabled = m->fmask = false;
	pci_config_set16(m->pdev, m->cap + PCI_MSIX_FLAGS, (uint16_t)(m->nvec - 1));
	for (unsigned i = 0; i < m->nvec; i++) {
		m->table[i] = (struct msix_entry){.ctrl = PCI_MSIX_ENTRY_CTRL_MASKBIT};
		m->v[i].routed = false;
	}
	msix_sync(m, 0, m->nvec);
	for (unsigned i = 0; i < m->nvec; i++) {
		while (read(m->v[i].efd, &n, sizeof(n)) == sizeof(n))
			;
		m->v[i].pending = false;
	}
	pthread_mutex_unlock(&m->lock);
}

void msix_save(struct msix *m, struct msix_entry *table, uint64_t *pending)
{
	memset(pending, 0, msix_pba_size(m->nvec));
	pthread_mutex_lock(&m->lock);
	for (unsigned i = 0; i < m->nvec; i++) {
		table[i] = m->table[i];
		msix_collect(m, i);
		if (m->v[i].pending)
			pending[i / 64] |= 1ULL << (i % 64);
	}
	pthread_mutex_unlock(&m->lock);
}

int msix_check(const struct msix *m, const struct msix_entry *table, const uint64_t *pending,
	       struct errbuf *err)
{
	const char *name = m->pdev->info->name;

	for (unsigned i = 0; i < m->nvec; i++) {
		if (table[i].addr_lo & 3)
			return err_set(err, EINVAL,
				       "%s: MSI-X entry %u: address 0x%08x is not dword aligned",
				       name, i, table[i].addr_lo);
		if (table[i].ctrl & ~PCI_MSIX_ENTRY_CTRL_MASKBIT)
			return err_set(
			    err, EINVAL,
			    "%s: MSI-X entry %u: vector control 0x%08x has reserved bits", name, i,
			    table[i].ctrl);
	}
	for (unsigned i = m->nvec; i < msix_pba_size(m->nvec) * 8; i++)
		if (pending[i / 64] & (1ULL << (i % 64)))
			return err_set(err, EINVAL, "%s: MSI-X pending bit %u past the last vector",
				       name, i);
	return 0;
}

void msix_load(struct msix *m, const struct msix_entry *table, const uint64_t *pending)
{
	uint16_t ctl = pci_config_get16(m->pdev, m->cap + PCI_MSIX_FLAGS);
	uint64_t n;

	pthread_mutex_lock(&m->lock);
	/* Start from nothing delivered or routed, then sync to the new state. */
	for (unsigned i = 0; i < m->nvec; i++) {
		if (m->v[i].irqfd &&
		    m->router->ops->irqfd(m->router->opaque, m->v[i].efd, m->v[i].gsi, false) < 0)
			msix_report(m, "irqfd detach", -EIO);
		m->v[i].irqfd = false;
		m->v[i].routed = false;
		while (read(m->v[i].efd, &n, sizeof(n)) == sizeof(n))
			;
		m->table[i] = table[i];
		m->v[i].pending = pending[i / 64] & (1ULL << (i % 64));
	}
	m->enabled = ctl & PCI_MSIX_FLAGS_ENABLE;
	m->fmask = ctl & PCI_MSIX_FLAGS_MASKALL;
	msix_sync(m, 0, m->nvec);
	pthread_mutex_unlock(&m->lock);
}
