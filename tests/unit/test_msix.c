// SPDX-License-Identifier: MIT
/*
 * MSI-X logic behind the KVM seam: a fake "kernel" records the routing
 * table and irqfds and, like KVM, turns a write to an attached irqfd into a
 * delivered message. Masking, pending bits, routes and table accesses are
 * checked through the same BAR and config paths a guest uses.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "vmm/msix.h"
#include "vmm/pci.h"

#define MAX_GSI 1024

struct fake_kvm {
	struct kvm_irq_routing_entry routes[MAX_GSI * 2];
	uint32_t nroutes;
	int set_calls;
	int irqfd_of[MAX_GSI]; /* fd attached to each GSI, or -1 */
	int irqfd_calls;
	int fail_irqfd; /* -errno to return from attach */
	struct {
		uint32_t addr_lo, data;
	} got[64];
	int ngot;
};

static int fake_routing(void *o, const struct kvm_irq_routing *t)
{
	struct fake_kvm *k = o;

	assert_true(t->nr <= MAX_GSI * 2);
	memcpy(k->routes, t->entries, t->nr * sizeof(t->entries[0]));
	k->nroutes = t->nr;
	k->set_calls++;
	return 0;
}

static int fake_irqfd(void *o, int fd, uint32_t gsi, bool assign)
{
	struct fake_kvm *k = o;

	assert_true(gsi < MAX_GSI);
	k->irqfd_calls++;
	if (assign) {
		if (k->fail_irqfd)
			return k->fail_irqfd;
		assert_int_equal(k->irqfd_of[gsi], -1); /* never attached twice */
		k->irqfd_of[gsi] = fd;
	} else {
		assert_int_equal(k->irqfd_of[gsi], fd);
		k->irqfd_of[gsi] = -1;
	}
	return 0;
}

static int fake_ioeventfd(void *o, uint64_t a, uint32_t l, int fd, bool pio, bool assign)
{
	return 0;
}

static const struct kvm_irq_ops fake_ops = {fake_routing, fake_irqfd, fake_ioeventfd};

/* What KVM does with an irqfd: consume the count, send the routed message. */
static void fake_kernel_run(struct fake_kvm *k)
{
	for (uint32_t gsi = 0; gsi < MAX_GSI; gsi++) {
		uint64_t n;

		if (k->irqfd_of[gsi] < 0 || read(k->irqfd_of[gsi], &n, sizeof(n)) != sizeof(n))
			continue;
		for (uint32_t i = 0; i < k->nroutes; i++) {
			if (k->routes[i].gsi != gsi || k->routes[i].type != KVM_IRQ_ROUTING_MSI)
				continue;
			assert_true(k->ngot < 64);
			k->got[k->ngot].addr_lo = k->routes[i].u.msi.address_lo;
			k->got[k->ngot].data = k->routes[i].u.msi.data;
			k->ngot++;
		}
	}
}

#define NVEC	 4
#define BAR_ADDR 0xc0000000ULL
#define PBA_OFF	 0x800

struct env {
	struct fake_kvm k;
	struct bus pio, mmio;
	struct pci_host h;
	struct pci_device *d;
	struct msix m;
};

static void dev_config_write(void *opaque, uint32_t off, uint32_t len)
{
	struct env *e = opaque;

	msix_config_write(&e->m, off, len);
}

static const struct pci_device_info dev_info = {
    .name = "msixdev",
    .vendor_id = 0x1af4,
    .device_id = 0x1042,
    .config_write = dev_config_write,
};

static void cfg_write16(struct env *e, unsigned reg, uint16_t v)
{
	uint32_t latch = 0x80000000u | e->d->slot << 11 | (reg & 0xfc);

	assert_true(bus_dispatch(&e->pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&e->pio, 0xcfc + (reg & 3), &v, 2, true));
}

static int setup(void **st)
{
	struct env *e = test_calloc(1, sizeof(*e));
	struct errbuf err;

	for (int i = 0; i < MAX_GSI; i++)
		e->k.irqfd_of[i] = -1;
	assert_int_equal(bus_init(&e->pio, "pio"), 0);
	assert_int_equal(bus_init(&e->mmio, "mmio"), 0);
	assert_int_equal(
	    pci_host_init(&e->h, &e->pio, &e->mmio, 8ULL << 30, &fake_ops, &e->k, &err), 0);
	assert_int_equal(pci_host_add_device(&e->h, &dev_info, e, &e->d, &err), 0);
	assert_int_equal(pci_add_bar(e->d, 1, PCI_BAR_MEM32, 0x1000, false, &err), 0);
	assert_int_equal(msix_init(&e->m, e->d, &e->h.msi, NVEC, 1, 0, PBA_OFF, &err), 0);
	cfg_write16(e, PCI_COMMAND, PCI_COMMAND_MEMORY);
	assert_int_equal(pci_bar_address(e->d, 1), BAR_ADDR);
	*st = e;
	return 0;
}

static int teardown(void **st)
{
	struct env *e = *st;

	msix_exit(&e->m);
	pci_unregister_device(e->d);
	pci_host_destroy(&e->h);
	bus_destroy(&e->mmio);
	bus_destroy(&e->pio);
	test_free(e);
	return 0;
}

static uint32_t mmio_read32(struct env *e, uint64_t off)
{
	uint32_t v = 0;

	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + off, &v, 4, false));
	return v;
}

static void mmio_write32(struct env *e, uint64_t off, uint32_t v)
{
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + off, &v, 4, true));
}

static void program(struct env *e, unsigned vec, uint32_t addr, uint32_t data, bool masked)
{
	mmio_write32(e, vec * 16 + PCI_MSIX_ENTRY_LOWER_ADDR, addr);
	mmio_write32(e, vec * 16 + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
	mmio_write32(e, vec * 16 + PCI_MSIX_ENTRY_DATA, data);
	mmio_write32(e, vec * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, masked);
}

static uint64_t pba(struct env *e)
{
	return mmio_read32(e, PBA_OFF);
}

static void set_control(struct env *e, bool enable, bool fmask)
{
	cfg_write16(e, e->m.cap + PCI_MSIX_FLAGS,
		    (enable ? PCI_MSIX_FLAGS_ENABLE : 0) | (fmask ? PCI_MSIX_FLAGS_MASKALL : 0));
}

static void test_capability(void **st)
{
	struct env *e = *st;
	unsigned c = e->m.cap;

	assert_int_equal(pci_config_get8(e->d, PCI_CAPABILITY_LIST), c);
	assert_int_equal(pci_config_get8(e->d, c), PCI_CAP_ID_MSIX);
	assert_int_equal(pci_config_get16(e->d, c + PCI_MSIX_FLAGS), NVEC - 1);
	assert_int_equal(pci_config_get32(e->d, c + PCI_MSIX_TABLE), 0 | 1);
	assert_int_equal(pci_config_get32(e->d, c + PCI_MSIX_PBA), PBA_OFF | 1);
	/* Table size and offsets are read-only; only enable/mask stick. */
	cfg_write16(e, c + PCI_MSIX_FLAGS, 0xffff);
	assert_int_equal(pci_config_get16(e->d, c + PCI_MSIX_FLAGS), 0xc000 | (NVEC - 1));
	assert_true(e->m.enabled);
	assert_true(e->m.fmask);
	/* Every vector starts masked with a zero message. */
	for (unsigned v = 0; v < NVEC; v++) {
		assert_int_equal(mmio_read32(e, v * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
		assert_int_equal(mmio_read32(e, v * 16 + PCI_MSIX_ENTRY_DATA), 0);
	}
	assert_int_equal(pba(e), 0);
}

static void test_default_routes_kept(void **st)
{
	struct env *e = *st;
	int ioapic = 0, pic = 0, msi = 0;

	set_control(e, true, false);
	program(e, 2, 0xfee00000, 0x41, false);
	assert_int_equal(e->k.set_calls, 1);
	for (uint32_t i = 0; i < e->k.nroutes; i++) {
		const struct kvm_irq_routing_entry *r = &e->k.routes[i];

		if (r->type == KVM_IRQ_ROUTING_MSI) {
			msi++;
			assert_true(r->gsi >= MSI_ROUTER_FIRST_GSI);
			assert_int_equal(r->u.msi.address_lo, 0xfee00000);
			assert_int_equal(r->u.msi.data, 0x41);
		} else if (r->u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
			assert_int_equal(r->u.irqchip.pin, r->gsi);
			ioapic++;
		} else {
			assert_true(r->gsi < 16);
			assert_int_equal(r->u.irqchip.irqchip, r->gsi < 8 ? KVM_IRQCHIP_PIC_MASTER
									  : KVM_IRQCHIP_PIC_SLAVE);
			assert_int_equal(r->u.irqchip.pin, r->gsi % 8);
			pic++;
		}
	}
	assert_int_equal(ioapic, 24);
	assert_int_equal(pic, 16);
	assert_int_equal(msi, 1);
}

static void test_deliver_when_unmasked(void **st)
{
	struct env *e = *st;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x30, false);
	program(e, 1, 0xfee01000, 0x31, false);
	msix_notify(&e->m, 1);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1);
	assert_int_equal(e->k.got[0].addr_lo, 0xfee01000);
	assert_int_equal(e->k.got[0].data, 0x31);
	msix_notify(&e->m, 0);
	msix_notify(&e->m, NVEC); /* out of range: ignored */
	msix_notify(&e->m, 1000);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 2);
	assert_int_equal(e->k.got[1].data, 0x30);
	assert_int_equal(pba(e), 0);
}

static void test_pending_while_disabled(void **st)
{
	struct env *e = *st;

	program(e, 3, 0xfee00000, 0x33, false);
	msix_notify(&e->m, 3); /* MSI-X not enabled yet */
	msix_notify(&e->m, 3); /* coalesces into one pending message */
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 0);
	assert_int_equal(e->k.set_calls, 0); /* nothing routed while disabled */
	assert_int_equal(pba(e), 1u << 3);
	assert_int_equal(pba(e), 1u << 3); /* reading does not clear it */
	set_control(e, true, false);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1);
	assert_int_equal(e->k.got[0].data, 0x33);
	assert_int_equal(pba(e), 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1); /* delivered exactly once */
}

static void test_function_mask(void **st)
{
	struct env *e = *st;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x20, false);
	program(e, 1, 0xfee00000, 0x21, false);
	set_control(e, true, true);
	msix_notify(&e->m, 0);
	msix_notify(&e->m, 1);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 0);
	assert_int_equal(pba(e), 3);
	/* Vector 1 masked on its own too: clearing the function mask
	 * delivers only vector 0. */
	mmio_write32(e, 1 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	set_control(e, true, false);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1);
	assert_int_equal(e->k.got[0].data, 0x20);
	assert_int_equal(pba(e), 2);
	mmio_write32(e, 1 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 2);
	assert_int_equal(e->k.got[1].data, 0x21);
	assert_int_equal(pba(e), 0);
}

static void test_vector_mask_is_per_vector(void **st)
{
	struct env *e = *st;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x50, true);
	program(e, 1, 0xfee00000, 0x51, false);
	msix_notify(&e->m, 0);
	msix_notify(&e->m, 1);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1);
	assert_int_equal(e->k.got[0].data, 0x51);
	assert_int_equal(pba(e), 1);
	/* Masking detaches the irqfd, unmasking attaches it again. */
	assert_int_not_equal(e->k.irqfd_of[e->m.v[1].gsi], -1);
	mmio_write32(e, 1 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	assert_int_equal(e->k.irqfd_of[e->m.v[1].gsi], -1);
	assert_int_equal(e->k.irqfd_of[e->m.v[0].gsi], -1);
	mmio_write32(e, 0 * 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	assert_int_not_equal(e->k.irqfd_of[e->m.v[0].gsi], -1);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 2);
	assert_int_equal(e->k.got[1].data, 0x50);
}

static void test_table_change_reroutes(void **st)
{
	struct env *e = *st;
	int calls;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x60, false);
	calls = e->k.set_calls;
	/* Same message again: no new routing table. */
	mmio_write32(e, PCI_MSIX_ENTRY_DATA, 0x60);
	assert_int_equal(e->k.set_calls, calls);
	/* The spec says mask first; a guest that does not still gets the
	 * message it wrote. */
	mmio_write32(e, PCI_MSIX_ENTRY_DATA, 0x61);
	assert_int_equal(e->k.set_calls, calls + 1);
	msix_notify(&e->m, 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.got[e->k.ngot - 1].data, 0x61);
	/* While masked, changes wait for the unmask. */
	mmio_write32(e, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	mmio_write32(e, PCI_MSIX_ENTRY_DATA, 0x62);
	mmio_write32(e, PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee02000);
	assert_int_equal(e->k.set_calls, calls + 1);
	mmio_write32(e, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	assert_int_equal(e->k.set_calls, calls + 2);
	msix_notify(&e->m, 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.got[e->k.ngot - 1].data, 0x62);
	assert_int_equal(e->k.got[e->k.ngot - 1].addr_lo, 0xfee02000);
}

static void test_routes_committed_once_per_batch(void **st)
{
	struct env *e = *st;

	set_control(e, true, true);
	for (unsigned v = 0; v < NVEC; v++)
		program(e, v, 0xfee00000, 0x70 + v, false);
	assert_int_equal(e->k.set_calls, 0);
	set_control(e, true, false); /* four vectors become deliverable */
	assert_int_equal(e->k.set_calls, 1);
	for (unsigned v = 0; v < NVEC; v++)
		assert_int_not_equal(e->k.irqfd_of[e->m.v[v].gsi], -1);
	set_control(e, false, false);
	for (unsigned v = 0; v < NVEC; v++)
		assert_int_equal(e->k.irqfd_of[e->m.v[v].gsi], -1);
}

static void test_hostile_table_accesses(void **st)
{
	struct env *e = *st;
	uint64_t q = 0;
	uint8_t b = 0x12;
	uint16_t w = 0;

	/* Qword access covers two fields. */
	q = 0x00000000fee01007ULL;
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 16, &q, 8, true));
	assert_int_equal(mmio_read32(e, 16), 0xfee01004); /* bits 1:0 read as zero */
	q = 0xffffffff00000055ULL;			  /* data 0x55, ctrl all-ones */
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 16 + 8, &q, 8, true));
	assert_int_equal(mmio_read32(e, 16 + PCI_MSIX_ENTRY_DATA), 0x55);
	assert_int_equal(mmio_read32(e, 16 + PCI_MSIX_ENTRY_VECTOR_CTRL), 1); /* reserved bits */
	q = 0;
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 16 + 8, &q, 8, false));
	assert_int_equal(q, 0x0000000100000055ULL);
	/* Byte, word and misaligned accesses are dropped and read all-ones. */
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 16 + 8, &b, 1, true));
	assert_int_equal(mmio_read32(e, 16 + PCI_MSIX_ENTRY_DATA), 0x55);
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 2, &w, 2, false));
	assert_int_equal(w, 0xffff);
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + 4, &q, 8, false));
	assert_int_equal(q, UINT64_MAX);
	/* Past the table, inside the BAR: not the table's. */
	assert_false(bus_dispatch(&e->mmio, BAR_ADDR + NVEC * 16, &q, 4, false));
	/* The PBA is read-only. */
	msix_notify(&e->m, 2);
	mmio_write32(e, PBA_OFF, 0);
	assert_int_equal(pba(e), 1u << 2);
	q = 0;
	assert_true(bus_dispatch(&e->mmio, BAR_ADDR + PBA_OFF, &q, 8, false));
	assert_int_equal(q, 1u << 2);
}

static void test_irqfd_failure_keeps_pending(void **st)
{
	struct env *e = *st;

	e->k.fail_irqfd = -ENOSPC;
	program(e, 0, 0xfee00000, 0x10, false);
	set_control(e, true, false); /* attach fails: reported, nothing crashes */
	msix_notify(&e->m, 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 0);
	assert_int_equal(pba(e), 1);
	e->k.fail_irqfd = 0;
	/* The next unmask attaches it and delivers what waited. */
	mmio_write32(e, PCI_MSIX_ENTRY_VECTOR_CTRL, 1);
	mmio_write32(e, PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	fake_kernel_run(&e->k);
	assert_int_equal(e->k.ngot, 1);
	assert_int_equal(pba(e), 0);
}

static void test_reset(void **st)
{
	struct env *e = *st;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x10, false);
	program(e, 1, 0xfee00000, 0x11, true);
	msix_notify(&e->m, 1);
	assert_int_equal(pba(e), 2);
	msix_reset(&e->m);
	assert_false(e->m.enabled);
	assert_int_equal(pci_config_get16(e->d, e->m.cap + PCI_MSIX_FLAGS), NVEC - 1);
	assert_int_equal(pba(e), 0);
	assert_int_equal(mmio_read32(e, PCI_MSIX_ENTRY_VECTOR_CTRL), 1);
	assert_int_equal(mmio_read32(e, PCI_MSIX_ENTRY_DATA), 0);
	assert_int_equal(e->k.irqfd_of[e->m.v[0].gsi], -1);
}

static void test_router_limits(void **st)
{
	struct msi_router r;
	struct fake_kvm *k = test_calloc(1, sizeof(*k));
	uint32_t gsi = 0, last = 0;
	int n = 0;

	assert_int_equal(msi_router_init(&r, &fake_ops, k), 0);
	assert_int_equal(msi_router_set(&r, 5, 0xfee00000, 1), -EINVAL);  /* irqchip GSI */
	assert_int_equal(msi_router_set(&r, 24, 0xfee00000, 1), -EINVAL); /* not allocated */
	assert_int_equal(msi_router_commit(&r), 0);
	assert_int_equal(k->set_calls, 0); /* nothing changed */
	while (msi_router_alloc_gsi(&r, &gsi) == 0) {
		last = gsi;
		n++;
	}
	assert_int_equal(n, MSI_ROUTER_MAX_GSI - MSI_ROUTER_FIRST_GSI);
	assert_int_equal(last, MSI_ROUTER_MAX_GSI - 1);
	for (uint32_t g = MSI_ROUTER_FIRST_GSI; g < MSI_ROUTER_MAX_GSI; g++)
		assert_int_equal(msi_router_set(&r, g, 0xfee00000, g), 0);
	assert_int_equal(msi_router_commit(&r), 0);
	assert_int_equal(k->set_calls, 1);
	assert_int_equal(k->nroutes, 40 + MSI_ROUTER_MAX_GSI - MSI_ROUTER_FIRST_GSI);
	msi_router_destroy(&r);
	test_free(k);
}

/* A split irqchip: no irqchip routes; the IOAPIC's pins take MSI routes. */
static void test_router_split(void **st)
{
	struct msi_router r;
	struct fake_kvm *k = test_calloc(1, sizeof(*k));

	(void)st;
	assert_int_equal(msi_router_init(&r, &fake_ops, k), 0);
	msi_router_split(&r);
	assert_int_equal(msi_router_set(&r, 5, 0xfee01000, 0xc061), 0);
	assert_int_equal(msi_router_set(&r, 23, 0xfee00000, 0xc062), 0);
	assert_int_equal(msi_router_set(&r, 24, 0xfee00000, 1), -EINVAL); /* not allocated */
	assert_int_equal(msi_router_commit(&r), 0);
	assert_int_equal(k->set_calls, 1);
	assert_int_equal(k->nroutes, 2);
	for (uint32_t i = 0; i < k->nroutes; i++)
		assert_int_equal(k->routes[i].type, KVM_IRQ_ROUTING_MSI);
	assert_int_equal(msi_router_clear(&r, 5), 0);
	assert_int_equal(msi_router_clear(&r, 5), -ENOENT);
	assert_int_equal(msi_router_commit(&r), 0);
	assert_int_equal(k->nroutes, 1);
	assert_int_equal(k->routes[0].gsi, 23);
	msi_router_destroy(&r);
	test_free(k);
}

static void test_snapshot(void **st)
{
	struct env *e = *st, *f;
	void *fst;
	struct msix_entry table[NVEC], bad[NVEC];
	uint64_t pending[1], badp[1];
	uint8_t config[PCI_CFG_SIZE];
	struct errbuf err;

	set_control(e, true, false);
	program(e, 0, 0xfee00000, 0x50, false);
	program(e, 1, 0xfee01000, 0x51, true);
	program(e, 2, 0xfee02000, 0x52, false);
	msix_notify(&e->m, 1); /* masked: pending */
	msix_save(&e->m, table, pending);
	pci_device_save_config(e->d, config);
	assert_int_equal(pending[0], 2);
	assert_int_equal(table[0].data, 0x50);
	assert_int_equal(table[1].ctrl, 1);
	assert_int_equal(pba(e), 2); /* saving does not consume it */

	assert_int_equal(setup(&fst), 0);
	f = fst;
	/* Hostile tables are refused. */
	memcpy(bad, table, sizeof(bad));
	bad[2].addr_lo |= 2;
	assert_int_equal(msix_check(&f->m, bad, pending, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "entry 2"));
	memcpy(bad, table, sizeof(bad));
	bad[3].ctrl = 0x80000001u;
	assert_int_equal(msix_check(&f->m, bad, pending, &err), -EINVAL);
	badp[0] = 1ULL << NVEC;
	assert_int_equal(msix_check(&f->m, table, badp, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "pending bit 4"));
	assert_int_equal(msix_check(&f->m, table, pending, &err), 0);

	assert_int_equal(pci_device_load_config(f->d, config, &err), 0);
	msix_load(&f->m, table, pending);
	assert_true(f->m.enabled);
	assert_false(f->m.fmask);
	assert_int_equal(mmio_read32(f, 16 + PCI_MSIX_ENTRY_DATA), 0x51);
	assert_int_equal(pba(f), 2);
	/* Deliverable vectors are routed and attached: a notify arrives. */
	msix_notify(&f->m, 2);
	fake_kernel_run(&f->k);
	assert_int_equal(f->k.ngot, 1);
	assert_int_equal(f->k.got[0].addr_lo, 0xfee02000);
	assert_int_equal(f->k.got[0].data, 0x52);
	/* The pending message goes out once, when the guest unmasks. */
	mmio_write32(f, 16 + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);
	fake_kernel_run(&f->k);
	assert_int_equal(f->k.ngot, 2);
	assert_int_equal(f->k.got[1].data, 0x51);
	assert_int_equal(pba(f), 0);

	/* A pending bit on a deliverable vector is delivered at load. */
	table[1].ctrl = 0;
	msix_load(&f->m, table, pending);
	fake_kernel_run(&f->k);
	assert_int_equal(f->k.ngot, 3);
	assert_int_equal(f->k.got[2].data, 0x51);
	fake_kernel_run(&f->k);
	assert_int_equal(f->k.ngot, 3);
	teardown(&fst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_capability, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_default_routes_kept, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_deliver_when_unmasked, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pending_while_disabled, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_function_mask, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_vector_mask_is_per_vector, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table_change_reroutes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_routes_committed_once_per_batch, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hostile_table_accesses, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_irqfd_failure_keeps_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reset, setup, teardown),
	    cmocka_unit_test(test_router_limits),
	    cmocka_unit_test(test_router_split),
	    cmocka_unit_test_setup_teardown(test_snapshot, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
