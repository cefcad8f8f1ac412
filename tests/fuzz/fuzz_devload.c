// SPDX-License-Identifier: MIT
/*
 * Every device's snapshot section loader (device_ops.load): serial, the
 * PCI host, virtio-blk, virtio-scsi and ivshmem (plain, and doorbell with a
 * server on a thread), each freshly realized
 * (as snapshot_restore has them) in the virtio test harness's VM
 * (tests/unit/virtio_harness.c: guest RAM, buses, a fake KVM), loaded with
 * the input, then exited (which must cope with whatever load left).
 *
 * Input: one byte choosing the device, then the section's bytes. Seeds:
 * each device's own save op, after a driver brought it up (fuzz_seeds).
 * Checked: no crash, leak or sanitizer report; refusals come with a
 * one-line message.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/virtio_ids.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "devices/ivshmem/ivshmem_int.h"
#include "tests/fuzz/fuzz.h"
#include "tests/unit/virtio_harness.h"
#include "vmm/pci.h"
#include "vmm/serial.h"

enum { DEV_SERIAL, DEV_PCI_HOST, DEV_BLK, DEV_SCSI, DEV_IVSHMEM, DEV_DOORBELL, NDEV };

static const char *const dev_names[NDEV] = {"serial",	   "pci-host", "virtio-blk",
					    "virtio-scsi", "ivshmem",  "ivshmem-doorbell"};

#define STATE_MAX (256 * 1024) /* snapshot.c's SNAP_DEV_MAX */
#define DRV_MEM	  0x100000

static struct env *e;
static char blk_opts[128], scsi_opts[128], shm_dir[64];

static int no_slot(void *o)
{
	(void)o;
	return 7;
}

static void no_slot_free(void *o, int slot)
{
	(void)o;
	(void)slot;
}

static int no_map(void *o, int slot, uint64_t gpa, uint64_t size, void *host)
{
	(void)o;
	(void)slot;
	(void)gpa;
	(void)size;
	(void)host;
	return 0;
}

/* ivshmem's VM hooks (ivshmem_create takes fakes above instead). */
int vm_mem_slot_alloc(struct vm *vm)
{
	(void)vm;
	return -ENOSPC;
}

void vm_mem_slot_free(struct vm *vm, int slot)
{
	(void)vm;
	(void)slot;
}

int vm_mem_slot_map(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *host)
{
	(void)vm;
	(void)slot;
	(void)gpa;
	(void)size;
	(void)host;
	return -ENOSYS;
}

int vm_add_snapshot_mem(struct vm *vm, const char *name, void *host, uint64_t size,
			struct errbuf *err)
{
	(void)vm;
	(void)name;
	(void)host;
	(void)size;
	return err_set(err, ENOSYS, "not in the fuzzer");
}

static void teardown(void);

static void teardown_at_exit(void)
{
	if (e)
		teardown();
}

static void setup(void)
{
	static bool registered;

	if (!registered) /* no images or shm files left in /tmp */
		registered = !atexit(teardown_at_exit);
	/* A harness assertion outside a cmocka run aborts: a finding. */
	setenv("CMOCKA_TEST_ABORT", "1", 1);
	e = env_new();
	e->vm.vm_fd = -1;
	e->cfg.serial = SERIAL_NONE;
	make_image(e, 0, 64 * 1024);
	make_image(e, 1, 64 * 1024);
	snprintf(blk_opts, sizeof(blk_opts), "path=%s,aio=threads", e->path[0]);
	snprintf(scsi_opts, sizeof(scsi_opts), "path=%s,aio=threads,lun=2", e->path[1]);
	e->cfg.scsi_disks[0] = scsi_opts;
	e->cfg.nscsi_disks = 1;
	snprintf(shm_dir, sizeof(shm_dir), "/tmp/kvmini-fuzz-dev.XXXXXX");
	if (!mkdtemp(shm_dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
}

/* PCI BAR space and interrupt routes are not given back when a device
 * exits, and the PCI host's state is the VM's (a VM realizes its devices
 * and loads its host once): a fresh VM every so often, after each PCI host
 * load, and for each seed. */
static void teardown(void)
{
	char cmd[128];

	env_free(e);
	e = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", shm_dir);
	if (system(cmd) != 0)
		fuzz_fail("%s failed", cmd);
}

/*
 * An ivshmem server for the doorbell device, on its own thread (the device
 * waits for its setup messages in ivshmem_create): each client gets
 * protocol version 0, ID 3, 4 KiB of shared memory and 2 vectors, and its
 * connection is kept until the next client comes.
 */
#define DB_VECTORS 2
static char db_dir[64], db_sock[128];

static void *db_server(void *arg)
{
	int lfd = (int)(intptr_t)arg, prev = -1;

	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), fd;
		char path[160];

		if (c < 0)
			return NULL;
		snprintf(path, sizeof(path), "%s/shm", db_dir);
		fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (fd < 0 || ftruncate(fd, 4096) < 0)
			fuzz_fail("doorbell shm: %s", strerror(errno));
		ivshmem_msg_send(c, IVSHMEM_PROTOCOL_VERSION, -1);
		ivshmem_msg_send(c, 3, -1);
		ivshmem_msg_send(c, -1, fd);
		close(fd);
		for (int v = 0; v < DB_VECTORS; v++) {
			fd = eventfd(0, EFD_CLOEXEC);
			ivshmem_msg_send(c, 3, fd);
			close(fd);
		}
		if (prev >= 0)
			close(prev);
		prev = c;
	}
}

static void db_cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", db_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "fuzz: %s failed\n", cmd);
}

static void db_start(void)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	pthread_t th;
	int lfd;

	snprintf(db_dir, sizeof(db_dir), "/tmp/kvmini-fuzz-db.XXXXXX");
	if (!mkdtemp(db_dir))
		fuzz_fail("mkdtemp: %s", strerror(errno));
	atexit(db_cleanup);
	snprintf(db_sock, sizeof(db_sock), "%s/sock", db_dir);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", db_sock);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lfd, 4) < 0 ||
	    pthread_create(&th, NULL, db_server, (void *)(intptr_t)lfd) != 0)
		fuzz_fail("doorbell server: %s", strerror(errno));
	pthread_detach(th);
}

static struct ivshmem *ivshmem_new(bool doorbell)
{
	struct ivshmem_env env = {.host = &e->host,
				  .ctx = e->main_ctx,
				  .mem = &e->vm.mem,
				  .slot_alloc = no_slot,
				  .slot_free = no_slot_free,
				  .mem_map = no_map};
	struct ivshmem_config c = {.backend = IVSHMEM_BACKEND_FILE, .size = 4096, .vectors = 1};
	struct ivshmem *s;
	struct errbuf err;

	snprintf(c.path, sizeof(c.path), "%s/shm", shm_dir);
	if (doorbell) {
		if (!db_sock[0])
			db_start();
		c = (struct ivshmem_config){.backend = IVSHMEM_BACKEND_SERVER,
					    .vectors = DB_VECTORS,
					    .timeout_ns = 10000000000ULL};
		snprintf(c.path, sizeof(c.path), "%s", db_sock);
	}
	if (ivshmem_create(&env, 0, &c, &s, &err) < 0)
		fuzz_fail("ivshmem_create: %s", err.msg);
	return s;
}

/* Realize device @kind as a restore would; *@ops and the state for load. */
static void *realize(int kind, const struct device_ops **ops)
{
	struct errbuf err;
	void *state;

	switch (kind) {
	case DEV_SERIAL:
		*ops = &serial_ops;
		if (serial_ops.realize(&e->vm, NULL, &state, &err) < 0)
			fuzz_fail("serial: %s", err.msg);
		return state;
	case DEV_PCI_HOST: /* the host with a device behind it */
	case DEV_BLK:
		*ops = &virtio_blk_ops;
		if (env_add_device(e, 0, &virtio_blk_ops, blk_opts, &err) < 0)
			fuzz_fail("virtio-blk: %s", err.msg);
		return e->state[0];
	case DEV_SCSI:
		*ops = &virtio_scsi_ops;
		if (env_add_device(e, 0, &virtio_scsi_ops, "", &err) < 0)
			fuzz_fail("virtio-scsi: %s", err.msg);
		return e->state[0];
	default:
		*ops = NULL;
		return ivshmem_new(kind == DEV_DOORBELL);
	}
}

static void unrealize(int kind, const struct device_ops *ops, void *state)
{
	if (kind == DEV_SERIAL) {
		ops->exit(state);
	} else if (kind == DEV_IVSHMEM || kind == DEV_DOORBELL) {
		ivshmem_destroy(state);
	} else {
		env_remove_device(e, 0);
		e->vm.ndevices--;
	}
}

/* As snapshot_save: the device is paused (vm_pause) before its save op. */
static int save(int kind, const struct device_ops *ops, void *state, uint8_t *buf)
{
	int n;

	if (ops && ops->pause)
		ops->pause(state);
	if (kind == DEV_PCI_HOST)
		n = pci_host_save(&e->host, buf, STATE_MAX);
	else if (kind == DEV_IVSHMEM || kind == DEV_DOORBELL)
		n = ivshmem_save(state, buf, STATE_MAX);
	else
		n = ops->save(state, buf, STATE_MAX);
	if (ops && ops->resume)
		ops->resume(state);
	return n;
}

static int load(int kind, const struct device_ops *ops, void *state, const uint8_t *buf, size_t len,
		struct errbuf *err)
{
	if (kind == DEV_PCI_HOST)
		return pci_host_load(&e->host, buf, len, err);
	if (kind == DEV_IVSHMEM || kind == DEV_DOORBELL)
		return ivshmem_load(state, buf, len, err);
	return ops->load(state, buf, len, err);
}

int fuzz_seeds(const char *dir)
{
	static uint8_t buf[1 + STATE_MAX];
	static uint64_t aligned[STATE_MAX / 8]; /* snapshot.c saves into a malloc'd buffer */

	for (int kind = 0; kind < NDEV; kind++) {
		const struct device_ops *ops;
		void *state;
		char name[64];
		struct drv d;
		int n;

		setup();
		state = realize(kind, &ops);

		/* A driver brings virtio devices up: queues enabled, MSI-X set. */
		if (kind == DEV_BLK || kind == DEV_SCSI || kind == DEV_PCI_HOST) {
			n = save(kind, ops, state, (uint8_t *)aligned);
			buf[0] = (uint8_t)kind;
			if (n > 0)
				memcpy(buf + 1, aligned, (size_t)n);
			snprintf(name, sizeof(name), "%s-reset", dev_names[kind]);
			if (n > 0)
				fuzz_write_seed(dir, name, buf, (size_t)n + 1);
			drv_probe(&d, e, 1, DRV_MEM,
				  kind == DEV_SCSI ? VIRTIO_ID_SCSI : VIRTIO_ID_BLOCK);
			drv_init(&d, 16, ALL_FEATURES);
		}
		n = save(kind, ops, state, (uint8_t *)aligned);
		if (n < 0)
			fuzz_fail("%s: save: %s", dev_names[kind], strerror(-n));
		buf[0] = (uint8_t)kind;
		memcpy(buf + 1, aligned, (size_t)n);
		fuzz_write_seed(dir, dev_names[kind], buf, (size_t)n + 1);
		unrealize(kind, ops, state);
		teardown();
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct device_ops *ops;
	struct errbuf err = {0};
	uint8_t *buf;
	void *state;
	int kind, ret;

	static unsigned runs;

	if (e && ++runs % 256 == 0)
		teardown();
	if (!e)
		setup();
	if (size < 1 || size - 1 > STATE_MAX)
		return 0;
	kind = data[0] % NDEV;
	buf = malloc(size); /* exactly the section: ASan sees reads past it */
	memcpy(buf, data + 1, size - 1);
	state = realize(kind, &ops);
	ret = load(kind, ops, state, buf, size - 1, &err);
	if (ret < 0)
		fuzz_check_msg(dev_names[kind], err.msg);
	unrealize(kind, ops, state);
	if (kind == DEV_PCI_HOST)
		teardown();
	free(buf);
	return 0;
}
