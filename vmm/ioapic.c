// SPDX-License-Identifier: MIT
/* The userspace IOAPIC of --iommu (split irqchip). See vmm/ioapic.h. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/ioapic.h"
#include "vmm/kvm_irq.h"
#include "vmm/layout.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

#define IOAPIC_MMIO_LEN	 0x20
#define IOAPIC_REGSEL	 0x00
#define IOAPIC_WINDOW	 0x10
#define IOAPIC_REG_ID	 0x00
#define IOAPIC_REG_VER	 0x01
#define IOAPIC_REG_ARB	 0x02
#define IOAPIC_REG_REDIR 0x10
#define IOAPIC_VERSION	 0x11 /* 82093AA, as KVM's in-kernel one */

#define RTE_VECTOR     0xffULL
#define RTE_DELIVERY   (7ULL << 8)
#define RTE_DEST_MODE  (1ULL << 11)
#define RTE_PENDING    (1ULL << 12) /* delivery status, read-only */
#define RTE_POLARITY   (1ULL << 13)
#define RTE_REMOTE_IRR (1ULL << 14) /* read-only */
#define RTE_LEVEL      (1ULL << 15)
#define RTE_MASKED     (1ULL << 16)
#define RTE_RO	       (RTE_PENDING | RTE_REMOTE_IRR)

struct ioapic {
	struct vm *vm;
	pthread_mutex_t lock; /* everything below */
	uint32_t regsel;
	uint32_t id;
	uint64_t rte[IOAPIC_PINS];
	uint32_t lines; /* bit n: input n asserted */
};

/*
 * The MSI that redirection entry @e stands for: address bits 19:4 carry
 * entry bits 63:48 (destination, or the remappable format bit and handle)
 * and bit 2 the destination mode (or handle bit 15); data the vector,
 * delivery mode and trigger (level: asserted).
 */
static void ioapic_msi(uint64_t e, uint64_t *addr, uint32_t *data)
{
	*addr = LAYOUT_LAPIC | ((e >> 48) << 4) | ((e & RTE_DEST_MODE) ? 1u << 2 : 0);
	*data = (uint32_t)(e & (RTE_VECTOR | RTE_DELIVERY));
	if (e & RTE_LEVEL)
		*data |= 1u << 15 | 1u << 14;
}

/*
 * Keep KVM's route for GSI @pin equal to the pin's message (remapped) while
 * the pin is level-triggered and unmasked, so that KVM exits on its EOI;
 * drop it otherwise. Lock held.
 */
static void ioapic_update_route(struct ioapic *io, unsigned pin)
{
	struct msi_router *r = &io->vm->pci->msi;
	uint64_t e = io->rte[pin], addr;
	uint32_t data;

	if ((e & RTE_LEVEL) && !(e & RTE_MASKED)) {
		ioapic_msi(e, &addr, &data);
		if (vm_msi_translate(io->vm, &addr, &data, VM_MSI_NO_SID) < 0 ||
		    msi_router_set(r, pin, addr, data) < 0)
			msi_router_clear(r, pin);
	} else {
		msi_router_clear(r, pin);
	}
	msi_router_commit(r);
}

/* Send pin @pin's interrupt if its line and entry say so. Lock held. */
static void ioapic_service(struct ioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin], addr;
	uint32_t data;

	if ((e & RTE_MASKED) || !(io->lines & (1u << pin)))
		return;
	if (e & RTE_LEVEL) {
		if (e & RTE_REMOTE_IRR)
			return;
		io->rte[pin] |= RTE_REMOTE_IRR;
		ioapic_update_route(io, pin);
	}
	ioapic_msi(e, &addr, &data);
	vm_msi_send(io->vm, addr, data, VM_MSI_NO_SID);
}

void ioapic_set_irq(struct ioapic *io, unsigned pin, bool level)
{
	uint32_t bit = 1u << pin;
	bool was;

	if (pin >= IOAPIC_PINS)
		return;
	pthread_mutex_lock(&io->lock);
	was = io->lines & bit;
	io->lines = level ? io->lines | bit : io->lines & ~bit;
	/* Edge: the rising edge; level: while asserted (Remote IRR holds it). */
	if (level && (!was || (io->rte[pin] & RTE_LEVEL)))
		ioapic_service(io, pin);
	pthread_mutex_unlock(&io->lock);
}

void ioapic_eoi(struct ioapic *io, uint8_t vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];

		if ((e & RTE_VECTOR) != vector || !(e & RTE_LEVEL) || !(e & RTE_REMOTE_IRR))
			continue;
		io->rte[pin] &= ~RTE_REMOTE_IRR;
		ioapic_service(io, pin); /* still asserted: again */
	}
	pthread_mutex_unlock(&io->lock);
}

static uint32_t ioapic_read_reg(struct ioapic *io)
{
	uint32_t sel = io->regsel;

	switch (sel) {
	case IOAPIC_REG_ID:
		return io->id << 24;
	case IOAPIC_REG_VER:
		return (IOAPIC_PINS - 1) << 16 | IOAPIC_VERSION;
	case IOAPIC_REG_ARB:
		return io->id << 24;
	default:
		if (sel >= IOAPIC_REG_REDIR && sel < IOAPIC_REG_REDIR + 2 * IOAPIC_PINS) {
			uint64_t e = io->rte[(sel - IOAPIC_REG_REDIR) / 2];

			return (sel & 1) ? (uint32_t)(e >> 32) : (uint32_t)e;
		}
		return 0;
	}
}

static void ioapic_write_reg(struct ioapic *io, uint32_t v)
{
	uint32_t sel = io->regsel;
	unsigned pin;
	uint64_t e;

	if (sel == IOAPIC_REG_ID) {
		io->id = (v >> 24) & 0xf;
		return;
	}
	if (sel < IOAPIC_REG_REDIR || sel >= IOAPIC_REG_REDIR + 2 * IOAPIC_PINS)
		return; /* version, arbitration: read-only */
	pin = (sel - IOAPIC_REG_REDIR) / 2;
	e = io->rte[pin];
	if (sel & 1)
		e = (e & 0xffffffffULL) | (uint64_t)v << 32;
	else
		e = (e & 0xffffffff00000000ULL) | (e & RTE_RO) | (v & ~(uint32_t)RTE_RO);
	/* Edge-triggered entries have no Remote IRR. */
	if (!(e & RTE_LEVEL))
		e &= ~RTE_REMOTE_IRR;
	io->rte[pin] = e;
	ioapic_update_route(io, pin);
	if (e & RTE_LEVEL)
		ioapic_service(io, pin); /* unmasked while asserted */
}

/* vCPU threads: 32-bit accesses to IOREGSEL and IOWIN. */
static void ioapic_mmio(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct ioapic *io = opaque;
	uint32_t v = 0;

	if (is_write)
		memcpy(&v, data, len < 4 ? len : 4);
	pthread_mutex_lock(&io->lock);
	if (off == IOAPIC_REGSEL) {
		if (is_write)
			io->regsel = v & 0xff;
		else
			v = io->regsel;
	} else if (off == IOAPIC_WINDOW) {
		if (is_write)
			ioapic_write_reg(io, v);
		else
			v = ioapic_read_reg(io);
	} else {
		v = 0;
	}
	pthread_mutex_unlock(&io->lock);
	if (!is_write) {
		memset(data, 0, len);
		memcpy(data, &v, len < 4 ? len : 4);
	}
}

static void ioapic_reset(void *state)
{
	struct ioapic *io = state;

	pthread_mutex_lock(&io->lock);
	io->regsel = 0;
	io->id = 0;
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		io->rte[pin] = RTE_MASKED;
	pthread_mutex_unlock(&io->lock);
}

static int ioapic_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct ioapic *io = calloc(1, sizeof(*io));
	int ret;

	if (!io)
		return err_set(err, ENOMEM, "ioapic: out of memory");
	io->vm = vm;
	pthread_mutex_init(&io->lock, NULL);
	for (unsigned pin = 0; pin < IOAPIC_PINS; pin++)
		io->rte[pin] = RTE_MASKED;
	ret =
	    bus_register(&vm->mmio, LAYOUT_IOAPIC, IOAPIC_MMIO_LEN, ioapic_mmio, io, "ioapic", err);
	if (ret < 0) {
		pthread_mutex_destroy(&io->lock);
		free(io);
		return ret;
	}
	vm->ioapic_set_irq = ioapic_set_irq;
	vm->ioapic_eoi = ioapic_eoi;
	vm->ioapic = io;
	*state = io;
	return 0;
}

static void ioapic_exit(void *state)
{
	struct ioapic *io = state;

	bus_unregister(&io->vm->mmio, LAYOUT_IOAPIC);
	io->vm->ioapic = NULL;
	pthread_mutex_destroy(&io->lock);
	free(io);
}

const struct device_ops ioapic_ops = {
    .name = "ioapic",
    .realize = ioapic_realize,
    .reset = ioapic_reset,
    .exit = ioapic_exit,
};
