// SPDX-License-Identifier: MIT
/*
 * pc-testdev (pc_testdev.h), as kvm-unit-tests uses QEMU's: the emulator
 * and real-mode tests do (string) port I/O on the data register, eventinj
 * makes a page fault into KVM again, the IOAPIC tests drive ISA lines.
 *
 * vCPU threads call the port handlers. The data register is one atomic
 * word (byte-lane updates by compare-and-swap); the rest has no state.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vmm/pc_testdev.h"
#include "vmm/vm.h"

#define PC_TESTDEV_PAGE 4096ULL

struct pc_testdev {
	struct vm *vm;
	struct bus *pio;
	struct bus *mmio;
	/* The iomem window's bytes; the lock orders vCPUs' accesses to it. */
	pthread_mutex_t iomem_lock;
	uint8_t iomem[PC_TESTDEV_IOMEM_LEN];
	const struct guest_mem *mem;
	const struct kvm_irq_ops *kvm;
	void *kvm_opaque;
	_Atomic uint32_t data;
};

static uint32_t pc_testdev_lanes(uint64_t off, uint32_t len)
{
	return (len >= 4 ? 0xffffffffu : ((1u << (8 * len)) - 1)) << (8 * off);
}

static void pc_testdev_data_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct pc_testdev *t = opaque;
	uint32_t mask, v = 0, old;

	/* The bus only delivers accesses inside the 4 ports. */
	mask = pc_testdev_lanes(off, len);
	if (!is_write) {
		v = (atomic_load(&t->data) & mask) >> (8 * off);
		memcpy(data, &v, len);
		return;
	}
	memcpy(&v, data, len);
	v <<= 8 * off;
	old = atomic_load(&t->data);
	while (!atomic_compare_exchange_weak(&t->data, &old, (old & ~mask) | (v & mask)))
		;
}

static void pc_testdev_flush(struct pc_testdev *t, uint64_t gpa)
{
	uint64_t page = gpa & ~(PC_TESTDEV_PAGE - 1);
	void *host = guest_mem_ptr(t->mem, page, PC_TESTDEV_PAGE);

	if (!host)
		return;
	/* Dropping the host mapping makes KVM drop its own (MMU notifier):
	 * the guest's next access to the page exits to KVM's fault path. */
	if (mprotect(host, PC_TESTDEV_PAGE, PROT_NONE) < 0)
		return;
	if (mprotect(host, PC_TESTDEV_PAGE, PROT_READ | PROT_WRITE) < 0) {
		/* The page is gone for the guest and for kvmini's devices. */
		fprintf(stderr, "kvmini: pc-testdev: cannot map guest page 0x%llx back: %s\n",
			(unsigned long long)page, strerror(errno));
		if (t->vm)
			vm_request_exit(t->vm, VM_EXIT_STATUS, EXIT_HOST_ERROR);
	}
}

static void pc_testdev_flush_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	uint32_t gpa = 0;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	/* A 32-bit write at the port, as QEMU's device takes it. */
	if (off != 0 || len != 4)
		return;
	memcpy(&gpa, data, 4);
	pc_testdev_flush(opaque, gpa);
}

static void pc_testdev_irq_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct pc_testdev *t = opaque;
	uint32_t v = 0;

	if (!is_write) {
		memset(data, 0, len);
		return;
	}
	/* Each port is one line (a wider write drives the first); any
	 * nonzero value asserts it, as QEMU passes the value on as a level. */
	memcpy(&v, data, len < 4 ? len : 4);
	t->kvm->irq_line(t->kvm_opaque, (uint32_t)off, v != 0);
}

/* Memory that every access exits for: the emulator tests run
 * instructions on it so that KVM's instruction emulator does them. */
static void pc_testdev_iomem_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct pc_testdev *t = opaque;

	/* The bus only delivers accesses inside the window. */
	pthread_mutex_lock(&t->iomem_lock);
	if (is_write)
		memcpy(t->iomem + off, data, len);
	else
		memcpy(data, t->iomem + off, len);
	pthread_mutex_unlock(&t->iomem_lock);
}

int pc_testdev_new(struct vm *vm, struct bus *pio, struct bus *mmio, const struct guest_mem *mem,
		   const struct kvm_irq_ops *kvm, void *kvm_opaque, void **state,
		   struct errbuf *err)
{
	struct pc_testdev *t;
	int ret;

	if (!kvm->irq_line)
		return err_set(err, ENOSYS, "pc-testdev: no way to drive interrupt lines");
	t = calloc(1, sizeof(*t));
	if (!t)
		return err_set(err, ENOMEM, "pc-testdev: out of memory");
	t->vm = vm;
	t->pio = pio;
	t->mmio = mmio;
	t->mem = mem;
	t->kvm = kvm;
	t->kvm_opaque = kvm_opaque;
	pthread_mutex_init(&t->iomem_lock, NULL);
	ret = bus_register(pio, PC_TESTDEV_DATA, 4, pc_testdev_data_io, t, "pc-testdev", err);
	if (ret < 0)
		goto fail;
	ret = bus_register(pio, PC_TESTDEV_FLUSH, 4, pc_testdev_flush_io, t, "pc-testdev", err);
	if (ret < 0)
		goto fail_data;
	ret = bus_register(pio, PC_TESTDEV_IRQ, PC_TESTDEV_NIRQS, pc_testdev_irq_io, t,
			   "pc-testdev", err);
	if (ret < 0)
		goto fail_flush;
	ret = bus_register(mmio, PC_TESTDEV_IOMEM, PC_TESTDEV_IOMEM_LEN, pc_testdev_iomem_io, t,
			   "pc-testdev-iomem", err);
	if (ret < 0)
		goto fail_irq;
	*state = t;
	return 0;

fail_irq:
	bus_unregister(pio, PC_TESTDEV_IRQ);
fail_flush:
	bus_unregister(pio, PC_TESTDEV_FLUSH);
fail_data:
	bus_unregister(pio, PC_TESTDEV_DATA);
fail:
	pthread_mutex_destroy(&t->iomem_lock);
	free(t);
	return ret;
}

/* Its lines go where the VM's other devices' go (KVM's IOAPIC, or
 * kvmini's with --iommu). */
static int pc_testdev_line(void *opaque, uint32_t irq, bool level)
{
	return vm_irq_line(opaque, irq, level);
}

static const struct kvm_irq_ops pc_testdev_lines = {.irq_line = pc_testdev_line};

static int pc_testdev_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	return pc_testdev_new(vm, &vm->pio, &vm->mmio, &vm->mem, &pc_testdev_lines, vm, state, err);
}

static void pc_testdev_reset(void *state)
{
	struct pc_testdev *t = state;

	atomic_store(&t->data, 0);
	pthread_mutex_lock(&t->iomem_lock);
	memset(t->iomem, 0, sizeof(t->iomem));
	pthread_mutex_unlock(&t->iomem_lock);
}

/* The bus outlives the device (vm_destroy frees devices first), and a
 * unit test may free the state alone: unregister here. */
static void pc_testdev_exit(void *state)
{
	struct pc_testdev *t = state;

	bus_unregister(t->mmio, PC_TESTDEV_IOMEM);
	bus_unregister(t->pio, PC_TESTDEV_IRQ);
	bus_unregister(t->pio, PC_TESTDEV_FLUSH);
	bus_unregister(t->pio, PC_TESTDEV_DATA);
	pthread_mutex_destroy(&t->iomem_lock);
	free(t);
}

/* Snapshot section: the data register and the iomem window (version 2;
 * version 1 had no window). The lines' levels are the irqchip's, which
 * the snapshot carries. */
struct pc_testdev_saved {
	uint32_t version;
	uint32_t data;
	uint8_t iomem[PC_TESTDEV_IOMEM_LEN];
};
#define PC_TESTDEV_SAVED_V1 (2 * sizeof(uint32_t))

static int pc_testdev_save(void *state, void *buf, size_t len)
{
	struct pc_testdev *t = state;
	struct pc_testdev_saved *v = buf;

	if (len < sizeof(*v))
		return -ENOSPC;
	v->version = 2;
	v->data = atomic_load(&t->data);
	pthread_mutex_lock(&t->iomem_lock);
	memcpy(v->iomem, t->iomem, sizeof(v->iomem));
	pthread_mutex_unlock(&t->iomem_lock);
	return (int)sizeof(*v);
}

static int pc_testdev_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct pc_testdev *t = state;
	const uint8_t *b = buf; /* a snapshot's bytes: no alignment promised */
	uint32_t version, data;
	size_t want;

	if (len < PC_TESTDEV_SAVED_V1)
		return err_set(err, EINVAL, "pc-testdev: state of %zu bytes, too short", len);
	memcpy(&version, buf, sizeof(version));
	if (version != 1 && version != 2)
		return err_set(err, EINVAL, "pc-testdev: unknown state version %u", version);
	want = version == 1 ? PC_TESTDEV_SAVED_V1 : sizeof(struct pc_testdev_saved);
	if (len != want)
		return err_set(err, EINVAL, "pc-testdev: state version %u of %zu bytes, want %zu",
			       version, len, want);
	/* Any value is one the guest could write. */
	memcpy(&data, b + offsetof(struct pc_testdev_saved, data), sizeof(data));
	atomic_store(&t->data, data);
	pthread_mutex_lock(&t->iomem_lock);
	if (version == 2)
		memcpy(t->iomem, b + offsetof(struct pc_testdev_saved, iomem), sizeof(t->iomem));
	else
		memset(t->iomem, 0, sizeof(t->iomem));
	pthread_mutex_unlock(&t->iomem_lock);
	return 0;
}

const struct device_ops pc_testdev_ops = {
    .name = "pc-testdev",
    .realize = pc_testdev_realize,
    .reset = pc_testdev_reset,
    .save = pc_testdev_save,
    .load = pc_testdev_load,
    .exit = pc_testdev_exit,
};
