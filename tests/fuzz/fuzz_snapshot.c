// SPDX-License-Identifier: MIT
/*
 * The snapshot file reader (vmm/snapshot.c): snapshot_inspect (with and
 * without --verify) and snapshot_restore into a VM without KVM: RAM, one
 * vCPU, two devices (one saves state) and a snapshotted shared memory.
 * vcpu_state_load runs for real up to KVM (its checks), then the fake KVM
 * accepts; the irqchip load is accepted likewise (-Wl,--wrap, fuzz.mk).
 *
 * Input: one byte (bit 0: recompute every CRC, so the fuzzer gets past
 * them; bit 1: inspect --verify; bit 2: the file goes on with RAM's size
 * of zeros, as a saved file's holes do), then the file. Seeds: real snapshots
 * of that VM written by snapshot_save (fuzz_seeds). Checked: no crash,
 * refusals with one-line messages, a restore that succeeds consumed a file
 * with every section right.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "vmm/irqchip.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

#define RAM	  (2ULL << 20)
#define DEV_SIZE  40
#define PAD_SLACK (64 * 1024) /* the RAM data starts page aligned after the table */

/* ---- the fake VM ---- */

static struct vm vm;
static struct vm_config cfg = {.mem_size = RAM, .ncpus = 1};
static struct vcpu vcpu0 = {.id = 0, .fd = -1};
static uint8_t shared[4096];

struct fake_dev {
	uint8_t state[DEV_SIZE];
};

static struct fake_dev dev0;

static int fake_save(void *state, void *buf, size_t len)
{
	if (len < DEV_SIZE)
		return -ENOSPC;
	memcpy(buf, ((struct fake_dev *)state)->state, DEV_SIZE);
	return DEV_SIZE;
}

static int fake_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	if (len != DEV_SIZE)
		return err_set(err, EINVAL, "fake: %zu bytes", len);
	memcpy(((struct fake_dev *)state)->state, buf, DEV_SIZE);
	return 0;
}

static const struct device_ops fake_saved_ops = {
    .name = "fake-saved", .save = fake_save, .load = fake_load};
static const struct device_ops fake_plain_ops = {.name = "fake-plain"};

void vm_pause(struct vm *v)
{
	v->devices_paused = true;
}

/* KVM's side of the vCPU and irqchip state (the wrapped calls). */
int __real_vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct errbuf *err);
int __wrap_vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct errbuf *err);
int __wrap_vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct errbuf *err);
int __wrap_irqchip_state_load(int vm_fd, const struct irqchip_state *s, struct errbuf *err);
int __wrap_irqchip_state_save(int vm_fd, struct irqchip_state *s, struct errbuf *err);

int __wrap_vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct errbuf *err)
{
	int ret = __real_vcpu_state_load(v, s, err);

	/* fd -1: the checks passed once KVM is asked; a real KVM takes it. */
	return ret == -EBADF && strstr(err->msg, "KVM refused") ? 0 : ret;
}

int __wrap_vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct errbuf *err)
{
	(void)v;
	(void)err;
	memset(s, 0, sizeof(*s));
	s->regs.rip = 0x100000;
	s->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	s->nmsrs = 2;
	s->msrs[0].index = 0x10; /* TSC */
	s->msrs[1].index = 0xc0000080;
	s->ncpuid = 1;
	s->cpuid[0].eax = 0xd;
	return 0;
}

int __wrap_irqchip_state_load(int vm_fd, const struct irqchip_state *s, struct errbuf *err)
{
	(void)vm_fd;
	(void)s;
	(void)err;
	return 0;
}

int __wrap_irqchip_state_save(int vm_fd, struct irqchip_state *s, struct errbuf *err)
{
	(void)vm_fd;
	(void)err;
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < 3; i++)
		s->chip[i].chip_id = i;
	return 0;
}

static void vm_setup(void)
{
	vm.cfg = &cfg;
	if (guest_mem_init(&vm.mem, RAM) < 0)
		fuzz_fail("guest_mem_init");
	vcpu0.group = &vm.cpus;
	vm.cpus.vcpus = &vcpu0;
	vm.cpus.n = 1;
	vm.vm_fd = -1;
	vm.ram_src_fd = -1;
	vm.devices[0] = (struct device){&fake_saved_ops, &dev0};
	vm.devices[1] = (struct device){&fake_plain_ops, NULL};
	vm.ndevices = 2;
	snprintf(vm.snap_mem[0].name, sizeof(vm.snap_mem[0].name), "ivshmem0");
	vm.snap_mem[0].host = shared;
	vm.snap_mem[0].size = sizeof(shared);
	vm.nsnap_mem = 1;
}

/* ---- seeds: snapshots written by snapshot_save ---- */

static void seed_save(const char *dir, const char *name, uint8_t flags)
{
	char path[4096];
	struct snapshot_stats st;
	struct errbuf err;
	uint8_t *buf;
	long len;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.tmp", dir, name);
	vm.devices_paused = true;
	if (snapshot_save(&vm, path, &st, &err) < 0)
		fuzz_fail("snapshot_save: %s", err.msg);
	f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) < 0 || (len = ftell(f)) < 0)
		fuzz_fail("reading back %s", path);
	buf = malloc((size_t)len + 1);
	buf[0] = flags | 4;
	rewind(f);
	if (fread(buf + 1, 1, (size_t)len, f) != (size_t)len)
		fuzz_fail("reading back %s", path);
	fclose(f);
	unlink(path);
	while (len && !buf[len]) /* the zeros at the end come back with flag 4 */
		len--;
	fuzz_write_seed(dir, name, buf, (size_t)len + 1);
	free(buf);
}

int fuzz_seeds(const char *dir)
{
	uint8_t *ram;

	vm_setup();
	ram = guest_mem_ptr(&vm.mem, 0, RAM);
	seed_save(dir, "empty", 1);
	/* RAM with data in a few pages, device state and shared memory set. */
	memset(ram + 0x2000, 0x90, 8192);
	memcpy(ram + 0x5000, "kvmini", 6);
	memset(dev0.state, 0x5a, DEV_SIZE);
	memset(shared, 0xa5, sizeof(shared));
	seed_save(dir, "data", 1);
	seed_save(dir, "verify", 3);
	return 0;
}

/* ---- the target ---- */

struct snap_header {
	char magic[8];
	uint32_t format, header_size, nsections, reserved;
	uint64_t table_offset;
	uint32_t table_crc, header_crc;
	uint8_t pad[24];
};

struct snap_section {
	char name[24];
	uint32_t version, crc;
	uint64_t offset, length;
	uint8_t pad[16];
};

/* Make every checksum right (what the file claims stays as it is). */
static void fix_crcs(uint8_t *f, size_t len)
{
	struct snap_header h;
	uint64_t tlen;

	if (len < sizeof(h))
		return;
	memcpy(&h, f, sizeof(h));
	tlen = (uint64_t)(h.nsections % 65) * sizeof(struct snap_section);
	if (h.table_offset <= len && tlen <= len - h.table_offset) {
		for (uint64_t o = h.table_offset; o < h.table_offset + tlen;
		     o += sizeof(struct snap_section)) {
			struct snap_section s;

			memcpy(&s, f + o, sizeof(s));
			if (s.offset <= len && s.length <= len - s.offset) {
				s.crc = crc32_update(0, f + s.offset, s.length);
				memcpy(f + o, &s, sizeof(s));
			}
		}
		h.table_crc = crc32_update(0, f + h.table_offset, tlen);
	}
	h.header_crc = 0;
	h.header_crc = crc32_update(0, &h, sizeof(h));
	memcpy(f, &h, sizeof(h));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static FILE *devnull;
	char path[64];
	struct errbuf err = {0};
	uint8_t *file;
	int ret;

	if (fd < 0) {
		vm_setup();
		fd = memfd_create("fuzz-snapshot", MFD_CLOEXEC);
		devnull = fopen("/dev/null", "w");
		if (fd < 0 || !devnull)
			fuzz_fail("setup: %s", strerror(errno));
	}
	if (size < 1)
		return 0;
	file = malloc(size);
	memcpy(file, data + 1, size - 1);
	if (data[0] & 1)
		fix_crcs(file, size - 1);
	if (ftruncate(fd, 0) < 0 || pwrite(fd, file, size - 1, 0) != (ssize_t)(size - 1) ||
	    ((data[0] & 4) && ftruncate(fd, (off_t)(size - 1 + RAM + PAD_SLACK)) < 0))
		fuzz_fail("memfd: %s", strerror(errno));
	free(file);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

	ret = snapshot_inspect(path, devnull, data[0] & 2, &err);
	if (ret < 0)
		fuzz_check_msg("snapshot_inspect", err.msg);
	memset(&err, 0, sizeof(err));
	ret = snapshot_restore(&vm, path, &err);
	if (ret < 0)
		fuzz_check_msg("snapshot_restore", err.msg);
	if (getenv("FUZZ_VERBOSE")) /* see what an input reaches */
		fprintf(stderr, "restore: %s\n", ret < 0 ? err.msg : "ok");
	/* RAM now maps the file (MAP_PRIVATE): put anonymous RAM back. */
	if (vm.ram_src_fd >= 0) {
		close(vm.ram_src_fd);
		vm.ram_src_fd = -1;
		if (mmap(vm.mem.regions[0].host, RAM, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
			 0) == MAP_FAILED)
			fuzz_fail("mmap: %s", strerror(errno));
	}
	return 0;
}
