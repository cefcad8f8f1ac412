// SPDX-License-Identifier: MIT
/* KVM irq routing: the real kvm_irq_ops and the GSI routing table. See vmm/kvm_irq.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/kvm_irq.h"

/* ---- KVM ---- */

static int kvm_vm_set_gsi_routing(void *opaque, const struct kvm_irq_routing *table)
{
	return ioctl(*(int *)opaque, KVM_SET_GSI_ROUTING, table) < 0 ? -errno : 0;
}

static int kvm_vm_irqfd(void *opaque, int fd, uint32_t gsi, bool assign)
{
	struct kvm_irqfd f = {
	    .fd = (uint32_t)fd, .gsi = gsi, .flags = assign ? 0 : KVM_IRQFD_FLAG_DEASSIGN};

	return ioctl(*(int *)opaque, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int kvm_vm_irqfd_resample(void *opaque, int fd, int resample_fd, uint32_t gsi)
{
	struct kvm_irqfd f = {.fd = (uint32_t)fd,
			      .gsi = gsi,
			      .flags = KVM_IRQFD_FLAG_RESAMPLE,
			      .resamplefd = (uint32_t)resample_fd};

	return ioctl(*(int *)opaque, KVM_IRQFD, &f) < 0 ? -errno : 0;
}

static int kvm_vm_hyperv_eventfd(void *opaque, uint32_t conn_id, int fd, bool assign)
{
	struct kvm_hyperv_eventfd e = {
	    .conn_id = conn_id, .fd = fd, .flags = assign ? 0 : KVM_HYPERV_EVENTFD_DEASSIGN};

	return ioctl(*(int *)opaque, KVM_HYPERV_EVENTFD, &e) < 0 ? -errno : 0;
}

static int kvm_vm_ioeventfd(void *opaque, uint64_t addr, uint32_t len, int fd, bool pio,
			    bool assign)
{
	struct kvm_ioeventfd e = {
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags =
		(pio ? KVM_IOEVENTFD_FLAG_PIO : 0) | (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(*(int *)opaque, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static int kvm_vm_ioeventfd_datamatch(void *opaque, uint64_t addr, uint32_t len, uint64_t data,
				      int fd, bool pio, bool assign)
{
	struct kvm_ioeventfd e = {
	    .datamatch = data,
	    .addr = addr,
	    .len = len,
	    .fd = fd,
	    .flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
		     (assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN),
	};

	return ioctl(*(int *)opaque, KVM_IOEVENTFD, &e) < 0 ? -errno : 0;
}

static int kvm_vm_irq_line(void *opaque, uint32_t irq, bool level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};

	return ioctl(*(int *)opaque, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

const struct kvm_irq_ops kvm_irq_ops_vm = {
    .set_gsi_routing = kvm_vm_set_gsi_routing,
    .irqfd = kvm_vm_irqfd,
    .ioeventfd = kvm_vm_ioeventfd,
    .ioeventfd_datamatch = kvm_vm_ioeventfd_datamatch,
    .irq_line = kvm_vm_irq_line,
    .irqfd_resample = kvm_vm_irqfd_resample,
    .hyperv_eventfd = kvm_vm_hyperv_eventfd,
};

/* ---- GSI routing ---- */

static void msi_router_add_irqchip(struct kvm_irq_routing *t, uint32_t gsi, uint32_t chip,
				   uint32_t pin)
{
	struct kvm_irq_routing_entry *e = &t->entries[t->nr++];

	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_IRQCHIP;
	e->u.irqchip.irqchip = chip;
	e->u.irqchip.pin = pin;
}

static int msi_router_grow(struct msi_router *r, uint32_t need)
{
	struct kvm_irq_routing *t;
	uint32_t cap = r->cap;

	if (need <= cap)
		return 0;
	while (cap < need)
		cap = cap ? cap * 2 : 64;
	t = realloc(r->table, sizeof(*t) + cap * sizeof(t->entries[0]));
	if (!t)
		return -ENOMEM;
	if (!r->table)
		memset(t, 0, sizeof(*t));
	r->table = t;
	r->cap = cap;
	return 0;
}

int msi_router_init(struct msi_router *r, const struct kvm_irq_ops *ops, void *opaque)
{
	memset(r, 0, sizeof(*r));
	r->ops = ops;
	r->opaque = opaque;
	if (msi_router_grow(r, 64) < 0)
		return -ENOMEM;
	/* KVM's default table (arch/x86/kvm/irq_comm.c): GSIs 0-15 go to the
	 * IOAPIC pin and the PIC pin of the same number, 16-23 to the IOAPIC.
	 * Replacing the table must keep them or KVM_IRQ_LINE stops working. */
	for (uint32_t gsi = 0; gsi < MSI_ROUTER_FIRST_GSI; gsi++) {
		msi_router_add_irqchip(r->table, gsi, KVM_IRQCHIP_IOAPIC, gsi);
		if (gsi < 16)
			msi_router_add_irqchip(
			    r->table, gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE,
			    gsi % 8);
	}
	r->next_gsi = MSI_ROUTER_FIRST_GSI;
	pthread_mutex_init(&r->lock, NULL);
	return 0;
}

void msi_router_split(struct msi_router *r)
{
	pthread_mutex_lock(&r->lock);
	r->table->nr = 0;
	r->split = true;
	pthread_mutex_unlock(&r->lock);
}

void msi_router_destroy(struct msi_router *r)
{
	free(r->table);
	r->table = NULL;
	r->cap = 0;
	pthread_mutex_destroy(&r->lock);
}

int msi_router_alloc_gsi(struct msi_router *r, uint32_t *gsi)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->next_gsi >= MSI_ROUTER_MAX_GSI)
		ret = -ENOSPC;
	else
		*gsi = r->next_gsi++;
	pthread_mutex_unlock(&r->lock);
	return ret;
}

/*
 * The table's entry for @gsi (one the router allocated), appended zeroed
 * if it has none yet: 0, -EINVAL or -ENOMEM. Lock held.
 */
static int msi_router_entry(struct msi_router *r, uint32_t gsi, struct kvm_irq_routing_entry **out)
{
	int ret;

	if ((gsi < MSI_ROUTER_FIRST_GSI && !r->split) || gsi >= r->next_gsi)
		return -EINVAL;
	for (uint32_t i = 0; i < r->table->nr; i++) {
		if (r->table->entries[i].gsi == gsi) {
			*out = &r->table->entries[i];
			return 0;
		}
	}
	ret = msi_router_grow(r, r->table->nr + 1);
	if (ret < 0)
		return ret;
	*out = &r->table->entries[r->table->nr++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

int msi_router_set(struct msi_router *r, uint32_t gsi, uint64_t addr, uint32_t data)
{
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = msi_router_entry(r, gsi, &e);
	if (ret < 0)
		goto out;
	if (e->type == KVM_IRQ_ROUTING_MSI && e->u.msi.address_lo == (uint32_t)addr &&
	    e->u.msi.address_hi == (uint32_t)(addr >> 32) && e->u.msi.data == data)
		goto out;
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_MSI;
	e->u.msi.address_lo = (uint32_t)addr;
	e->u.msi.address_hi = (uint32_t)(addr >> 32);
	e->u.msi.data = data;
	r->dirty = true;
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int msi_router_set_hv_sint(struct msi_router *r, uint32_t gsi, uint32_t vcpu, uint32_t sint)
{
	struct kvm_irq_routing_entry *e;
	int ret;

	pthread_mutex_lock(&r->lock);
	ret = msi_router_entry(r, gsi, &e);
	if (ret < 0)
		goto out;
	memset(e, 0, sizeof(*e));
	e->gsi = gsi;
	e->type = KVM_IRQ_ROUTING_HV_SINT;
	e->u.hv_sint.vcpu = vcpu;
	e->u.hv_sint.sint = sint;
	r->dirty = true;
out:
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int msi_router_clear(struct msi_router *r, uint32_t gsi)
{
	int ret = -ENOENT;

	pthread_mutex_lock(&r->lock);
	/* GSIs below MSI_ROUTER_FIRST_GSI are the irqchip's: never dropped,
	 * unless the IOAPIC is kvmini's (split). */
	for (uint32_t i = 0; (gsi >= MSI_ROUTER_FIRST_GSI || r->split) && i < r->table->nr; i++) {
		if (r->table->entries[i].gsi != gsi)
			continue;
		/* Order does not matter to KVM: the last entry fills the hole. */
		r->table->entries[i] = r->table->entries[--r->table->nr];
		r->dirty = true;
		ret = 0;
		break;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}

int msi_router_commit(struct msi_router *r)
{
	int ret = 0;

	pthread_mutex_lock(&r->lock);
	if (r->dirty) {
		ret = r->ops->set_gsi_routing(r->opaque, r->table);
		if (ret == 0)
			r->dirty = false;
	}
	pthread_mutex_unlock(&r->lock);
	return ret;
}
