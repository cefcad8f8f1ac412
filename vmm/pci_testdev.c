// SPDX-License-Identifier: MIT
/*
 * pci-testdev (pci_testdev.h). One test is selected at a time, device-wide
 * (as QEMU's). Its ioeventfd, if it has one, is attached while the test is
 * selected and its BAR is mapped; the BAR map hooks move it.
 *
 * Threads: BAR accesses on vCPU threads (no PCI lock held), map hooks on
 * the vCPU that moved a BAR (PCI config lock held, then ours: the PCI lock
 * order), realize/save/load/exit on the main thread. t->lock covers
 * everything below it in struct pci_testdev.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "vmm/pci_testdev.h"
#include "vmm/vm.h"

#define PCI_TESTDEV_CLASS   0xff0000 /* unclassified device */
#define PCI_TESTDEV_HDR	    16	     /* the header before the name */
#define PCI_TESTDEV_WIDTH   1	     /* every test writes bytes */
#define PCI_TESTDEV_MATCH   0xfa     /* datamatch tests' value */
#define PCI_TESTDEV_NOMATCH 0xce     /* the others' */
#define PCI_TESTDEV_NONE    (-1)

enum pci_testdev_kind { PT_NO_EVENTFD, PT_WILDCARD, PT_DATAMATCH };

/* The six tests: BAR b's test n is tests[b * PCI_TESTDEV_NTESTS + n]. */
static const struct pci_testdev_test {
	const char *name;
	int bar;
	enum pci_testdev_kind kind;
	uint32_t offset; /* in the BAR: past the header page / ports */
} pci_testdev_tests[] = {
    {"mmio-no-eventfd", 0, PT_NO_EVENTFD, 2048},
    {"mmio-wildcard-eventfd", 0, PT_WILDCARD, 2049},
    {"mmio-datamatch-eventfd", 0, PT_DATAMATCH, 2050},
    {"portio-no-eventfd", 1, PT_NO_EVENTFD, 131},
    {"portio-wildcard-eventfd", 1, PT_WILDCARD, 132},
    {"portio-datamatch-eventfd", 1, PT_DATAMATCH, 133},
};
#define PCI_TESTDEV_ALL ((int)ARRAY_SIZE(pci_testdev_tests))

struct pci_testdev {
	struct pci_host *host;
	struct pci_device *pdev;
	int efd; /* the one eventfd KVM signals for the selected test */
	pthread_mutex_t lock;
	int current;	      /* selected test, or PCI_TESTDEV_NONE */
	uint32_t count;	      /* writes that reached the device */
	uint64_t bar_addr[2]; /* where each BAR is mapped (map hooks) */
	uint64_t attached;    /* address of the attached ioeventfd, or PCI_BAR_UNMAPPED */
};

static uint32_t pci_testdev_data(const struct pci_testdev_test *te)
{
	return te->kind == PT_DATAMATCH ? PCI_TESTDEV_MATCH : PCI_TESTDEV_NOMATCH;
}

/* Attach (@assign) or detach the selected test's ioeventfd at @addr. */
static int pci_testdev_kvm(struct pci_testdev *t, uint64_t addr, bool assign)
{
	const struct pci_testdev_test *te = &pci_testdev_tests[t->current];
	const struct kvm_irq_ops *k = t->host->kvm;
	bool pio = te->bar == 1;

	if (te->kind == PT_WILDCARD)
		return k->ioeventfd(t->host->kvm_opaque, addr, PCI_TESTDEV_WIDTH, t->efd, pio,
				    assign);
	if (!k->ioeventfd_datamatch)
		return -ENOSYS;
	return k->ioeventfd_datamatch(t->host->kvm_opaque, addr, PCI_TESTDEV_WIDTH,
				      pci_testdev_data(te), t->efd, pio, assign);
}

static void pci_testdev_detach(struct pci_testdev *t)
{
	if (t->attached == PCI_BAR_UNMAPPED)
		return;
	pci_testdev_kvm(t, t->attached, false);
	t->attached = PCI_BAR_UNMAPPED;
}

/* If the selected test has an ioeventfd and its BAR is mapped, attach it.
 * When KVM refuses, the writes come to pci_testdev_io and are counted. */
static void pci_testdev_attach(struct pci_testdev *t)
{
	const struct pci_testdev_test *te;
	uint64_t drain, addr;

	if (t->current == PCI_TESTDEV_NONE)
		return;
	te = &pci_testdev_tests[t->current];
	if (te->kind == PT_NO_EVENTFD || t->bar_addr[te->bar] == PCI_BAR_UNMAPPED)
		return;
	/* Nobody waits on the eventfd: empty it so it never fills up. */
	while (read(t->efd, &drain, sizeof(drain)) == sizeof(drain))
		;
	addr = t->bar_addr[te->bar] + te->offset;
	if (pci_testdev_kvm(t, addr, true) == 0)
		t->attached = addr;
}

static void pci_testdev_select(struct pci_testdev *t, int test)
{
	pci_testdev_detach(t);
	t->current = test;
	t->count = 0;
	pci_testdev_attach(t);
}

/* Byte @off of the selected test's header and name; 0 past them. */
static uint8_t pci_testdev_byte(const struct pci_testdev *t, uint64_t off)
{
	const struct pci_testdev_test *te;
	uint8_t hdr[PCI_TESTDEV_HDR] = {0};
	uint32_t data;
	size_t nlen;

	if (t->current == PCI_TESTDEV_NONE)
		return 0;
	te = &pci_testdev_tests[t->current];
	if (off >= PCI_TESTDEV_HDR) {
		nlen = strlen(te->name);
		return off - PCI_TESTDEV_HDR < nlen ? (uint8_t)te->name[off - PCI_TESTDEV_HDR] : 0;
	}
	data = pci_testdev_data(te);
	hdr[0] = (uint8_t)t->current;
	hdr[1] = PCI_TESTDEV_WIDTH;
	memcpy(&hdr[4], &te->offset, 4);
	memcpy(&hdr[8], &data, 4);
	memcpy(&hdr[12], &t->count, 4);
	return hdr[off];
}

static void pci_testdev_io(struct pci_testdev *t, int bar, uint64_t off, void *data, uint32_t len,
			   bool is_write)
{
	const struct pci_testdev_test *te;
	uint64_t v = 0;

	pthread_mutex_lock(&t->lock);
	if (!is_write) {
		for (uint32_t i = 0; i < len; i++)
			((uint8_t *)data)[i] = pci_testdev_byte(t, off + i);
		goto out;
	}
	memcpy(&v, data, len < 8 ? len : 8);
	if (off == 0) {
		pci_testdev_select(t, v < PCI_TESTDEV_NTESTS ? bar * PCI_TESTDEV_NTESTS + (int)v
							     : PCI_TESTDEV_NONE);
		goto out;
	}
	if (t->current == PCI_TESTDEV_NONE)
		goto out;
	te = &pci_testdev_tests[t->current];
	if (te->bar != bar || off != te->offset)
		goto out;
	if (te->kind == PT_DATAMATCH && (len != PCI_TESTDEV_WIDTH || v != pci_testdev_data(te)))
		goto out;
	t->count++;
out:
	pthread_mutex_unlock(&t->lock);
}

static void pci_testdev_mem_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	pci_testdev_io(opaque, 0, off, data, len, is_write);
}

static void pci_testdev_pio_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	pci_testdev_io(opaque, 1, off, data, len, is_write);
}

static void pci_testdev_map(struct pci_testdev *t, int bar, uint64_t addr)
{
	pthread_mutex_lock(&t->lock);
	pci_testdev_detach(t);
	t->bar_addr[bar] = addr;
	pci_testdev_attach(t);
	pthread_mutex_unlock(&t->lock);
}

static void pci_testdev_mem_map(void *opaque, uint64_t addr)
{
	pci_testdev_map(opaque, 0, addr);
}

static void pci_testdev_pio_map(void *opaque, uint64_t addr)
{
	pci_testdev_map(opaque, 1, addr);
}

/* BAR 0 and BAR 1, each one region. */
static const struct pci_testdev_bar {
	enum pci_bar_type type;
	uint64_t size;
	bus_io_fn *fn;
	void (*map)(void *opaque, uint64_t addr);
	const char *name;
} pci_testdev_bars[2] = {
    {PCI_BAR_MEM32, PCI_TESTDEV_MEM_SIZE, pci_testdev_mem_io, pci_testdev_mem_map,
     "pci-testdev-mmio"},
    {PCI_BAR_IO, PCI_TESTDEV_IO_SIZE, pci_testdev_pio_io, pci_testdev_pio_map,
     "pci-testdev-portio"},
};

static const struct pci_device_info pci_testdev_info = {
    .name = "pci-testdev",
    .vendor_id = PCI_TESTDEV_VENDOR,
    .device_id = PCI_TESTDEV_DEVICE,
    .subsystem_vendor_id = 0x1af4, /* QEMU's: Red Hat, QEMU */
    .subsystem_id = 0x1100,
    .class_code = PCI_TESTDEV_CLASS,
};

static void pci_testdev_exit(void *state)
{
	struct pci_testdev *t = state;

	if (t->pdev) /* unmaps the BARs: the map hooks detach the ioeventfd */
		pci_unregister_device(t->pdev);
	if (t->efd >= 0)
		close(t->efd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

int pci_testdev_create(struct pci_host *h, void **state, struct errbuf *err)
{
	struct pci_testdev *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return err_set(err, ENOMEM, "pci-testdev: out of memory");
	t->host = h;
	t->current = PCI_TESTDEV_NONE;
	t->bar_addr[0] = t->bar_addr[1] = t->attached = PCI_BAR_UNMAPPED;
	pthread_mutex_init(&t->lock, NULL);
	t->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->efd < 0) {
		r = err_set(err, errno, "pci-testdev: eventfd: %s", strerror(errno));
		goto fail;
	}
	r = pci_host_add_device(h, &pci_testdev_info, t, &t->pdev, err);
	if (r < 0)
		goto fail;
	for (int bar = 0; bar < 2; bar++) {
		const struct pci_testdev_bar *b = &pci_testdev_bars[bar];
		struct pci_region reg = {
		    .len = b->size, .fn = b->fn, .opaque = t, .map = b->map, .name = b->name};

		r = pci_add_bar(t->pdev, bar, b->type, b->size, false, err);
		if (r == 0)
			r = pci_bar_add_region(t->pdev, bar, &reg, err);
		if (r < 0)
			goto fail;
	}
	*state = t;
	return 0;

fail:
	pci_testdev_exit(t);
	return r;
}

static int pci_testdev_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	if (!vm->pci)
		return err_set(err, ENODEV, "pci-testdev: the VM has no PCI host bridge");
	return pci_testdev_create(vm->pci, state, err);
}

static void pci_testdev_reset(void *state)
{
	struct pci_testdev *t = state;

	pthread_mutex_lock(&t->lock);
	pci_testdev_select(t, PCI_TESTDEV_NONE);
	pthread_mutex_unlock(&t->lock);
}

/* Snapshot section: config space, the selected test and its count. */
struct pci_testdev_saved {
	uint32_t version;
	int32_t current;
	uint32_t count;
	uint32_t pad;
	uint8_t config[PCI_CFG_SIZE];
};

static int pci_testdev_save(void *state, void *buf, size_t len)
{
	struct pci_testdev *t = state;
	struct pci_testdev_saved v = {.version = 1};

	if (len < sizeof(v))
		return -ENOSPC;
	pthread_mutex_lock(&t->lock);
	v.current = t->current;
	v.count = t->count;
	pthread_mutex_unlock(&t->lock);
	pci_device_save_config(t->pdev, v.config);
	memcpy(buf, &v, sizeof(v));
	return (int)sizeof(v);
}

static int pci_testdev_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct pci_testdev *t = state;
	struct pci_testdev_saved v;
	int r;

	if (len != sizeof(v))
		return err_set(err, EINVAL, "pci-testdev: state of %zu bytes, want %zu", len,
			       sizeof(v));
	memcpy(&v, buf, sizeof(v));
	if (v.version != 1)
		return err_set(err, EINVAL, "pci-testdev: unknown state version %u", v.version);
	if (v.pad)
		return err_set(err, EINVAL, "pci-testdev: nonzero padding");
	if (v.current < PCI_TESTDEV_NONE || v.current >= PCI_TESTDEV_ALL)
		return err_set(err, EINVAL, "pci-testdev: no test %d", v.current);
	if (v.current == PCI_TESTDEV_NONE && v.count)
		return err_set(err, EINVAL, "pci-testdev: a count without a test");
	/* BARs first (the map hooks record where they are), then the test. */
	r = pci_device_load_config(t->pdev, v.config, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	pci_testdev_select(t, v.current);
	t->count = v.count;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

const struct device_ops pci_testdev_ops = {
    .name = "pci-testdev",
    .realize = pci_testdev_realize,
    .reset = pci_testdev_reset,
    .save = pci_testdev_save,
    .load = pci_testdev_load,
    .exit = pci_testdev_exit,
};
