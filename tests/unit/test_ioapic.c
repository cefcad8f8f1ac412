/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/ioapic.c, the userspace IOAPIC of --iommu: its
 * registers, edge and level delivery with Remote IRR and EOI, masking, the
 * MSI a remappable entry becomes, and the KVM routes that make level EOIs
 * exit. vm_msi_send and vm_msi_translate are recorded here.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/ioapic.h"
#include "vmm/kvm_irq.h"
#include "vmm/layout.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

static struct {
	uint64_t addr;
	uint32_t data;
} sent[16];
static int nsent;

int vm_msi_translate(struct vm *vm, uint64_t *addr, uint32_t *data, int sid)
{
	(void)vm, (void)addr, (void)data;
	assert_int_equal(sid, VM_MSI_NO_SID);
	return 0;
}

int vm_msi_send(struct vm *vm, uint64_t addr, uint32_t data, int sid)
{
	(void)vm;
	assert_int_equal(sid, VM_MSI_NO_SID);
	assert_true(nsent < 16);
	sent[nsent].addr = addr;
	sent[nsent].data = data;
	nsent++;
	return 0;
}

static struct kvm_irq_routing_entry routes[64];
static uint32_t nroutes;

static int fake_routing(void *o, const struct kvm_irq_routing *t)
{
	(void)o;
	nroutes = t->nr;
	memcpy(routes, t->entries, t->nr * sizeof(routes[0]));
	return 0;
}

static const struct kvm_irq_ops fake_ops = {.set_gsi_routing = fake_routing};

struct env {
	struct vm vm;
	struct pci_host h;
	struct ioapic *io;
};

static int setup(void **st)
{
	struct env *e = calloc(1, sizeof(*e));
	struct errbuf err;
	void *state;

	if (!e)
		return -1;
	bus_init(&e->vm.mmio, "mmio");
	if (msi_router_init(&e->h.msi, &fake_ops, NULL) < 0)
		return -1;
	msi_router_split(&e->h.msi);
	e->vm.pci = &e->h;
	if (ioapic_ops.realize(&e->vm, NULL, &state, &err) < 0)
		return -1;
	e->io = state;
	nsent = 0;
	nroutes = 0;
	*st = e;
	return 0;
}

static int teardown(void **st)
{
	struct env *e = *st;

	ioapic_ops.exit(e->io);
	msi_router_destroy(&e->h.msi);
	bus_destroy(&e->vm.mmio);
	free(e);
	return 0;
}

static uint32_t reg_read(struct env *e, uint32_t reg)
{
	uint32_t v = 0;

	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC, &reg, 4, true));
	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC + 0x10, &v, 4, false));
	return v;
}

static void reg_write(struct env *e, uint32_t reg, uint32_t v)
{
	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC, &reg, 4, true));
	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC + 0x10, &v, 4, true));
}

static void route(struct env *e, unsigned pin, uint32_t hi, uint32_t lo)
{
	reg_write(e, 0x10 + 2 * pin + 1, hi);
	reg_write(e, 0x10 + 2 * pin, lo);
}

static void test_registers(void **st)
{
	struct env *e = *st;

	assert_int_equal(reg_read(e, 1), 0x170011);
	reg_write(e, 0, 0x0f000000);
	assert_int_equal(reg_read(e, 0), 0x0f000000);
	reg_write(e, 1, 0);
	assert_int_equal(reg_read(e, 1), 0x170011); /* read-only */
	/* Every entry starts masked; Remote IRR and delivery status are read-only. */
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		assert_int_equal(reg_read(e, 0x10 + 2 * pin), 1u << 16);
	route(e, 3, 0x02000000, 0x30 | 1u << 14 | 1u << 12 | 1u << 16);
	assert_int_equal(reg_read(e, 0x16), 0x30 | 1u << 16);
	assert_int_equal(reg_read(e, 0x17), 0x02000000);
	assert_int_equal(reg_read(e, 0x10 + 2 * IOAPIC_PINS), 0); /* past the table */
	ioapic_set_irq(e->io, IOAPIC_PINS, true);		  /* ignored */
	assert_int_equal(nsent, 0);
}

static void test_edge(void **st)
{
	struct env *e = *st;

	route(e, 4, 0x01000000, 0x31);
	ioapic_set_irq(e->io, 4, true);
	assert_int_equal(nsent, 1);
	assert_int_equal(sent[0].addr, LAYOUT_LAPIC | 1u << 12);
	assert_int_equal(sent[0].data, 0x31);
	ioapic_set_irq(e->io, 4, true); /* no new edge */
	assert_int_equal(nsent, 1);
	ioapic_set_irq(e->io, 4, false);
	ioapic_set_irq(e->io, 4, true);
	assert_int_equal(nsent, 2);
	assert_int_equal(nroutes, 0); /* edge pins need no EOI */
	ioapic_set_irq(e->io, 4, false);
	route(e, 4, 0, 0x31 | 1u << 16);
	ioapic_set_irq(e->io, 4, true);
	assert_int_equal(nsent, 2); /* masked */
}

static void test_level(void **st)
{
	struct env *e = *st;

	route(e, 9, 0, 0x41 | 1u << 15);
	assert_int_equal(nroutes, 1); /* the pin's message is GSI 9's route */
	assert_int_equal(routes[0].gsi, 9);
	assert_int_equal(routes[0].u.msi.data, 0x41 | 1u << 15 | 1u << 14);
	ioapic_set_irq(e->io, 9, true);
	assert_int_equal(nsent, 1);
	assert_int_equal(reg_read(e, 0x10 + 18) & (1u << 14), 1u << 14); /* Remote IRR */
	ioapic_set_irq(e->io, 9, true);
	assert_int_equal(nsent, 1); /* held until the EOI */
	ioapic_eoi(e->io, 0x42);    /* another vector */
	assert_int_equal(nsent, 1);
	ioapic_eoi(e->io, 0x41); /* still asserted: again */
	assert_int_equal(nsent, 2);
	ioapic_set_irq(e->io, 9, false);
	ioapic_eoi(e->io, 0x41);
	assert_int_equal(nsent, 2);
	assert_int_equal(reg_read(e, 0x10 + 18) & (1u << 14), 0);
	/* Unmasked while asserted: delivered then. */
	route(e, 9, 0, 0x41 | 1u << 15 | 1u << 16);
	assert_int_equal(nroutes, 0); /* masked: no route */
	ioapic_set_irq(e->io, 9, true);
	assert_int_equal(nsent, 2);
	route(e, 9, 0, 0x41 | 1u << 15);
	assert_int_equal(nsent, 3);
}

static void test_remappable_entry(void **st)
{
	struct env *e = *st;

	/* Format bit 48, handle 0x8003 (bit 15 in the destination-mode bit). */
	route(e, 16, 1u << 16 | 3u << 17, 0x50 | 1u << 11);
	ioapic_set_irq(e->io, 16, true);
	assert_int_equal(nsent, 1);
	assert_int_equal(sent[0].addr, LAYOUT_LAPIC | 1u << 4 | 3u << 5 | 1u << 2);
}

static void test_odd_accesses(void **st)
{
	struct env *e = *st;
	uint8_t b = 0;
	uint32_t v = 0xdeadbeef;

	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC + 4, &v, 4, true));
	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC + 4, &v, 4, false));
	assert_int_equal(v, 0);
	assert_true(bus_dispatch(&e->vm.mmio, LAYOUT_IOAPIC, &b, 1, false));
	assert_int_equal(b, 0); /* IOREGSEL 0 */
	assert_int_equal(reg_read(e, 1), 0x170011);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_registers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_edge, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_level, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_remappable_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_odd_accesses, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
