/* SPDX-License-Identifier: MIT */
/*
 * The virtio device test harness (test_virtio_blk, test_virtio_scsi): a
 * VM without vCPUs around a real virtio-pci device, and a driver the test
 * plays through the paths a guest uses.
 *
 * - a fake KVM behind struct kvm_irq_ops records the GSI routing, irqfds
 *   and ioeventfds, and turns irqfd writes into MSI messages "delivered to
 *   the LAPIC" (fake_deliver);
 * - struct env: guest RAM, the PIO/MMIO buses, a PCI host, the main
 *   context, up to two devices (realized and exited through their
 *   device_ops) and their images, and a struct vm_config;
 * - struct drv: enumerates a slot like a guest (capabilities, BARs, MSI-X
 *   vector 0 for config changes, vector 1 + q for queue q), brings the
 *   device up with every queue it has, and builds chains in guest RAM.
 *   Queue q's rings live at mem + q * DRV_Q_STRIDE (R_DESC, R_AVAIL,
 *   R_USED from there); a test puts its buffers above nq * DRV_Q_STRIDE.
 *
 * Everything runs on the test's thread but the device's own threads
 * (iothread, pool workers), which the test observes through guest RAM.
 */
#ifndef KVMINI_TEST_VIRTIO_HARNESS_H
#define KVMINI_TEST_VIRTIO_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "devices/block/block.h"
#include "devices/virtio/virtio.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/vm.h"

#define RAM	     (32ULL << 20)
#define MIB	     (1ULL << 20)
#define MAX_GSI	     1024
#define MAX_IOEVFD   16
#define DRV_MAX_Q    4
#define DRV_Q_STRIDE 0x8000 /* guest RAM per queue's rings */
#define R_DESC	     0x0000 /* ... desc table, avail and used rings in it */
#define R_AVAIL	     0x4000
#define R_USED	     0x5000
#define ALL_FEATURES (~0ULL)

/* ---- fake KVM ---- */

struct fake_kvm {
	pthread_mutex_t lock;
	struct kvm_irq_routing_entry routes[MAX_GSI * 2];
	uint32_t nroutes;
	int irqfd_of[MAX_GSI];
	struct {
		uint64_t addr;
		uint32_t len;
		int fd;
	} ioevfd[MAX_IOEVFD];
	int nioevfd;
};

/* Messages delivered to the "LAPIC" since the last call, by MSI data. */
unsigned fake_deliver(struct fake_kvm *k, uint32_t data);
/* fake_deliver until something arrives or 10 s pass: the interrupt of a
 * completion follows its used entry (a BH on the iothread decides it). */
unsigned wait_deliver(struct fake_kvm *k, uint32_t data);

/* ---- what devices report to the VM (vmm/vm.c's side, recorded) ---- */

#define MAX_IO_ERRORS 256

struct io_error_log {
	int n;
	struct {
		char dev[32];
		bool is_read;
		enum disk_error_action action;
		int error;
	} e[MAX_IO_ERRORS];
};

/* Every vm_block_io_error() call (the harness defines it); tests reset n. */
extern struct io_error_log io_errors;

/* ---- the VM around the devices ---- */

struct env {
	struct fake_kvm k;
	struct vm vm;
	struct vm_config cfg; /* vm.cfg points here */
	struct pci_host host;
	struct aio_context *main_ctx;
	char path[2][64];
	void *state[2];
	const struct device_ops *ops[2];
};

struct env *env_new(void);
/* Exits the devices still there, unlinks the images, frees all. */
void env_free(struct env *e);
/* A fresh image e->path[@i] of @size bytes, sector s filled with (s & 0xff). */
void make_image(struct env *e, int i, uint64_t size);
/* Realize @ops with @opts as device @i (added to vm.devices). */
int env_add_device(struct env *e, int i, const struct device_ops *ops, const char *opts,
		   struct errbuf *err);
void env_remove_device(struct env *e, int i);
/* Exit device @i and realize it again on the same configuration: the VM is
 * restored with a fresh device. Devices are re-added last-in first-out. */
void env_readd_device(struct env *e, int i, const char *opts);

/* Run the main context's BHs (the devices' error reports) for up to 10 s
 * until @n reports were made. */
bool wait_io_errors(struct env *e, int n);
/* Writes at or past @bytes into any file fail with EFBIG (a real host
 * error, no test hook in kvmini); 0 lifts the limit. */
void limit_file_size(uint64_t bytes);
/* The aio= suffix a test runs with (cmocka prestate, "" without); io_uring
 * tests are skipped, saying why, where the host refuses io_uring. */
const char *aio_opt(void **st);

/* ---- the test's virtio driver ---- */

struct drv_vq {
	uint16_t size;
	uint16_t avail_idx;
	uint16_t used_seen; /* the test's bookkeeping */
	uint64_t notify;    /* doorbell address */
};

struct drv {
	struct env *e;
	unsigned slot;
	uint64_t bar0, bar1;
	unsigned caps[6]; /* config offset of each virtio cap type */
	unsigned msix;	  /* config offset of the MSI-X capability */
	unsigned nvec;
	uint64_t mem; /* this driver's guest RAM: rings, then the test's buffers */
	unsigned nq;
	uint32_t cfg_data;	    /* MSI data of the config vector ... */
	uint32_t q_data[DRV_MAX_Q]; /* ... and of each queue's */
	struct drv_vq vq[DRV_MAX_Q];
	uint64_t features;
};

void *gp(struct drv *d, uint64_t gpa);
uint32_t cfg_read(struct drv *d, unsigned reg, unsigned len);
void cfg_write(struct drv *d, unsigned reg, uint32_t v, unsigned len);
uint64_t mmio_read(struct drv *d, uint64_t addr, unsigned len);
void mmio_write(struct drv *d, uint64_t addr, uint64_t v, unsigned len);
uint64_t common(struct drv *d); /* the common config's address */
uint8_t status(struct drv *d);
void set_status(struct drv *d, uint8_t s);
uint64_t read_features(struct drv *d);
void write_features(struct drv *d, uint64_t f);

/* Enumerate slot @slot like a guest: IDs (virtio device @device_id),
 * capabilities in kvmini's layout, BARs, MSI-X (every vector programmed). */
void drv_probe(struct drv *d, struct env *e, unsigned slot, uint64_t mem, unsigned device_id);
/* Reset and bring the device to DRIVER_OK with features @want (what the
 * device offers of them) and all its queues of @qsize enabled. */
void drv_init(struct drv *d, uint16_t qsize, uint64_t want);

/* The gpa of queue @q's rings. */
static inline uint64_t drv_ring(const struct drv *d, unsigned q, uint64_t r)
{
	return d->mem + (uint64_t)q * DRV_Q_STRIDE + r;
}

void put_desc(struct drv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next);
/* Make @head available on queue @q. */
void publish(struct drv *d, unsigned q, uint16_t head);
/* Queue @q's doorbell, as KVM's ioeventfd would ring it (or, @mmio,
 * through an exit with a width KVM does not match). */
void kick(struct drv *d, unsigned q, bool mmio);
uint16_t used_idx(struct drv *d, unsigned q);
/* Used ring entry @i of queue @q: its head (and *@len if not NULL). */
uint32_t used_head(struct drv *d, unsigned q, uint16_t i, uint32_t *len);
/* Wait (at most 10 s) until queue @q's used index reaches @target. */
bool wait_used(struct drv *d, unsigned q, uint16_t target);
/* Wait for a config-change interrupt; true if one came. */
bool wait_config_irq(struct drv *d);
/* One way to damage a saved device state. */
struct mutation {
	const char *what;
	int off;	    /* byte to change */
	unsigned width;	    /* 1, 2, 4 or 8 bytes */
	uint64_t xor ;	    /* bits to flip, or ... */
	uint64_t set;	    /* ... with xor 0, the value to store, or ... */
	int from;	    /* ... if not 0, the value at this offset of the state */
	const char *needle; /* the refusal's message mentions it */
};

/* Load each of @m (@n of them) applied to @good (@len bytes) into @state
 * with @ops->load: each must be refused with -EINVAL and one line naming
 * its needle. @after (may be NULL) runs after each refusal. */
void check_mutations(const struct device_ops *ops, void *state, const uint8_t *good, size_t len,
		     const struct mutation *m, size_t n, void (*after)(const struct mutation *));

/* Used entries [0, n) of queue @q hold each of @heads (count @n) once. */
void assert_used_once(struct drv *d, unsigned q, const uint16_t *heads, unsigned n);

#endif
