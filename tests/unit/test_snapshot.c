/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/snapshot.c without KVM: a fake VM (anonymous RAM, a
 * fake device, shared memory) and stubs for what reads or loads KVM state
 * (vcpu_state_*, irqchip_state_*, vm_pause). The file format is read here
 * from docs/snapshot.md's description, not from snapshot.c's structs, so
 * the tests also pin the format.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/irqchip.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

/* ---- the format, as docs/snapshot.md gives it ---- */

struct fmt_header {
	char magic[8];
	uint32_t format, header_size, nsections, reserved;
	uint64_t table_offset;
	uint32_t table_crc, header_crc;
	uint8_t pad[24];
};

struct fmt_section {
	char name[24];
	uint32_t version, crc;
	uint64_t offset, length;
	uint8_t pad[16];
};

_Static_assert(sizeof(struct fmt_header) == 64, "header");
_Static_assert(sizeof(struct fmt_section) == 64, "section");

/* ---- stubs for the KVM side ---- */

static struct {
	struct vm *vm;	    /* the VM the stubs act for */
	int vcpu_loaded[4]; /* index+1 of the state each vCPU got */
	int irqchip_loads;
	int pauses;
	int fail_vcpu_load; /* errno to fail with */
} K;

int vcpu_state_save(struct vcpu *v, struct vcpu_state *s, struct errbuf *err)
{
	memset(s, 0, sizeof(*s));
	s->regs.rip = 0x1000 + (uint64_t)(v - K.vm->cpus.vcpus);
	s->regs.rax = 0x5a5a5a5a;
	return 0;
}

int vcpu_state_load(struct vcpu *v, const struct vcpu_state *s, struct errbuf *err)
{
	if (K.fail_vcpu_load)
		return err_set(err, K.fail_vcpu_load, "vcpu: KVM refused the state");
	K.vcpu_loaded[v - K.vm->cpus.vcpus] = (int)(s->regs.rip - 0x1000) + 1;
	return 0;
}

int irqchip_state_save(int vm_fd, struct irqchip_state *s, struct errbuf *err)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < 3; i++)
		s->chip[i].chip_id = i;
	s->clock.clock = 123456789;
	return 0;
}

int irqchip_state_check(const struct irqchip_state *s, struct errbuf *err)
{
	for (uint32_t i = 0; i < 3; i++)
		if (s->chip[i].chip_id != i)
			return err_set(err, EINVAL, "irqchip: chip %u has id %u", i,
				       s->chip[i].chip_id);
	return 0;
}

int irqchip_state_load(int vm_fd, const struct irqchip_state *s, struct errbuf *err)
{
	K.irqchip_loads++;
	return 0;
}

void vm_pause(struct vm *vm)
{
	K.pauses++;
	vm->devices_paused = true;
}

/* A device whose state is "FAKE" and a counter; load checks both. */
struct fakedev {
	uint32_t counter;
	int loads;
};

static int fake_save(void *state, void *buf, size_t len)
{
	struct fakedev *d = state;

	if (len < 8)
		return -ENOSPC;
	memcpy(buf, "FAKE", 4);
	memcpy((char *)buf + 4, &d->counter, 4);
	return 8;
}

static int fake_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct fakedev *d = state;

	if (len != 8 || memcmp(buf, "FAKE", 4) != 0)
		return err_set(err, EINVAL, "fakedev: bad state");
	memcpy(&d->counter, (const char *)buf + 4, 4);
	d->loads++;
	return 0;
}

static const struct device_ops fake_ops = {.name = "fakedev", .save = fake_save, .load = fake_load};
static const struct device_ops plain_ops = {.name = "stateless"};

/* ---- the fake VM ---- */

#define NCPUS 2
#define R0    (64 * 1024)
#define R1    (32 * 1024)

struct fake_vm {
	struct vm vm;
	struct vm_config cfg;
	struct fakedev dev;
	uint8_t shm[4096];
};

static char dir[64];

static struct fake_vm *fake_vm_new(void)
{
	struct fake_vm *f = calloc(1, sizeof(*f));
	struct vm *vm = &f->vm;

	assert_non_null(f);
	f->cfg.mem_size = R0 + R1;
	vm->cfg = &f->cfg;
	vm->vm_fd = -1;
	vm->ram_src_fd = -1;
	vm->cpus.n = NCPUS;
	vm->cpus.vcpus = calloc(NCPUS, sizeof(*vm->cpus.vcpus));
	vm->mem.nregions = 2;
	vm->mem.regions[0] = (struct guest_mem_region){.gpa = 0, .size = R0, .fd = -1};
	vm->mem.regions[1] = (struct guest_mem_region){.gpa = 1 << 20, .size = R1, .fd = -1};
	for (int i = 0; i < 2; i++) {
		void *p = mmap(NULL, vm->mem.regions[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		assert_true(p != MAP_FAILED);
		vm->mem.regions[i].host = p;
	}
	vm->mem.ram_size = R0 + R1;
	vm->devices[0] = (struct device){&plain_ops, NULL};
	vm->devices[1] = (struct device){&fake_ops, &f->dev};
	vm->ndevices = 2;
	snprintf(vm->snap_mem[0].name, sizeof(vm->snap_mem[0].name), "shm0");
	vm->snap_mem[0].host = f->shm;
	vm->snap_mem[0].size = sizeof(f->shm);
	vm->nsnap_mem = 1;
	K.vm = vm;
	return f;
}

static void fake_vm_free(struct fake_vm *f)
{
	for (int i = 0; i < f->vm.mem.nregions; i++)
		munmap(f->vm.mem.regions[i].host, f->vm.mem.regions[i].size);
	if (f->vm.ram_src_fd >= 0)
		close(f->vm.ram_src_fd);
	free(f->vm.cpus.vcpus);
	free(f);
}

/* A VM with some state worth saving: data pages among zero pages. */
static struct fake_vm *busy_vm(void)
{
	struct fake_vm *f = fake_vm_new();

	memset(f->vm.mem.regions[0].host + 4096, 0xab, 4096);
	memcpy(f->vm.mem.regions[0].host + 7 * 4096 + 100, "hello", 5);
	memset(f->vm.mem.regions[1].host + R1 - 4096, 0xcd, 4096);
	f->dev.counter = 42;
	memcpy(f->shm, "shared", 6);
	f->vm.devices_paused = true;
	return f;
}

static void path_in(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

static int setup(void **st)
{
	snprintf(dir, sizeof(dir), "/tmp/kvmini-snaptest.XXXXXX");
	assert_non_null(mkdtemp(dir));
	memset(&K, 0, sizeof(K));
	return 0;
}

static int teardown(void **st)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[512];

	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' || (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))) {
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	rmdir(dir);
	return 0;
}

static void save_ok(struct fake_vm *f, const char *path)
{
	struct snapshot_stats stats;
	struct errbuf err;

	if (snapshot_save(&f->vm, path, &stats, &err) < 0)
		fail_msg("save: %s", err.msg);
	assert_int_equal(stats.ram_pages, 3);
	assert_true(stats.file_bytes > 3 * 4096);
}

/* Restore @path into a new fake VM; returns the result, @err filled. */
static int restore(const char *path, struct errbuf *err, struct fake_vm **out)
{
	struct fake_vm *f = fake_vm_new();
	int r = snapshot_restore(&f->vm, path, err);

	if (out)
		*out = f;
	else
		fake_vm_free(f);
	return r;
}

/* ---- file surgery ---- */

struct snapfile {
	int fd;
	struct fmt_header h;
	struct fmt_section t[66]; /* room for a count one too large */
};

static void sf_open(struct snapfile *sf, const char *path)
{
	sf->fd = open(path, O_RDWR | O_CLOEXEC);
	assert_true(sf->fd >= 0);
	assert_int_equal(pread(sf->fd, &sf->h, sizeof(sf->h), 0), sizeof(sf->h));
	assert_true(sf->h.nsections <= 64);
	assert_int_equal(
	    pread(sf->fd, sf->t, sf->h.nsections * sizeof(sf->t[0]), (off_t)sf->h.table_offset),
	    (ssize_t)(sf->h.nsections * sizeof(sf->t[0])));
}

static int sf_find(struct snapfile *sf, const char *name)
{
	for (uint32_t i = 0; i < sf->h.nsections; i++)
		if (!strcmp(sf->t[i].name, name))
			return (int)i;
	fail_msg("no section %s", name);
	return -1;
}

/* Write the table and header back with valid CRCs (a consistent file
 * that says something else). */
static void sf_close_resealed(struct snapfile *sf)
{
	sf->h.table_crc = crc32_update(0, sf->t, sf->h.nsections * sizeof(sf->t[0]));
	sf->h.header_crc = 0;
	sf->h.header_crc = crc32_update(0, &sf->h, sizeof(sf->h));
	assert_int_equal(
	    pwrite(sf->fd, sf->t, sf->h.nsections * sizeof(sf->t[0]), (off_t)sf->h.table_offset),
	    (ssize_t)(sf->h.nsections * sizeof(sf->t[0])));
	assert_int_equal(pwrite(sf->fd, &sf->h, sizeof(sf->h), 0), sizeof(sf->h));
	close(sf->fd);
}

/* Rewrite section @i's payload with @len bytes of @buf (same place,
 * CRC updated). */
static void sf_set_payload(struct snapfile *sf, int i, const void *buf, uint64_t len)
{
	assert_true(len <= sf->t[i].length);
	assert_int_equal(pwrite(sf->fd, buf, len, (off_t)sf->t[i].offset), (ssize_t)len);
	sf->t[i].length = len;
	sf->t[i].crc = crc32_update(0, buf, len);
}

static void *sf_payload(struct snapfile *sf, int i)
{
	void *p = malloc(sf->t[i].length);

	assert_int_equal(pread(sf->fd, p, sf->t[i].length, (off_t)sf->t[i].offset),
			 (ssize_t)sf->t[i].length);
	return p;
}

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;

	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(in >= 0 && out >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	close(out);
}

/* A fresh copy @bad of the good snapshot @good, opened for surgery. */
static void sf_fresh(struct snapfile *sf, const char *good, const char *bad)
{
	copy_file(good, bad);
	sf_open(sf, bad);
}

/* A busy VM saved to "good.snap" (@good); @bad names a scratch file. */
static struct fake_vm *saved_vm(char *good, char *bad, const char *badname)
{
	struct fake_vm *a = busy_vm();

	path_in(good, 128, "good.snap");
	path_in(bad, 128, badname);
	save_ok(a, good);
	return a;
}

/* Restore must fail with a one-line message containing @needle. */
static void expect_refused(const char *path, const char *needle)
{
	struct errbuf err;
	struct fake_vm *f;
	int r = restore(path, &err, &f);

	if (r >= 0)
		fail_msg("restore accepted a bad file (wanted '%s')", needle);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' not in '%s'", needle, err.msg);
	assert_null(strchr(err.msg, '\n'));
	fake_vm_free(f);
}

/* ---- tests ---- */

static void test_roundtrip(void **st)
{
	struct fake_vm *a = busy_vm(), *b;
	char path[128];
	struct errbuf err;
	struct stat sb;
	FILE *out;
	char *text = NULL;
	size_t textlen = 0;

	path_in(path, sizeof(path), "vm.snap");
	save_ok(a, path);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	if (restore(path, &err, &b) < 0)
		fail_msg("restore: %s", err.msg);
	assert_memory_equal(b->vm.mem.regions[0].host, a->vm.mem.regions[0].host, R0);
	assert_memory_equal(b->vm.mem.regions[1].host, a->vm.mem.regions[1].host, R1);
	assert_int_equal(b->dev.loads, 1);
	assert_int_equal(b->dev.counter, 42);
	assert_memory_equal(b->shm, "shared", 6);
	assert_int_equal(K.vcpu_loaded[0], 1);
	assert_int_equal(K.vcpu_loaded[1], 2);
	assert_int_equal(K.irqchip_loads, 1);
	assert_true(b->vm.ram_src_fd >= 0);
	/* The restored guest's writes stay private to it. */
	b->vm.mem.regions[0].host[4096] = 1;

	/* Saving the restored VM again (RAM mapped from the file) gives the
	 * same content, holes included. */
	b->vm.mem.regions[0].host[4096] = 0xab;
	b->vm.devices_paused = true;
	{
		char path2[128];
		struct fake_vm *c;

		path_in(path2, sizeof(path2), "vm2.snap");
		save_ok(b, path2);
		assert_int_equal(restore(path2, &err, &c), 0);
		assert_memory_equal(c->vm.mem.regions[0].host, a->vm.mem.regions[0].host, R0);
		assert_memory_equal(c->vm.mem.regions[1].host, a->vm.mem.regions[1].host, R1);
		fake_vm_free(c);
	}

	out = open_memstream(&text, &textlen);
	assert_int_equal(snapshot_inspect(path, out, true, &err), 0);
	fclose(out);
	assert_non_null(strstr(text, "kvmini snapshot, format 1"));
	for (const char *s = "machine\0vcpu.0\0vcpu.1\0irqchip\0pit\0clock\0dev.1.fakedev\0mem."
			     "shm0\0ram\0";
	     *s; s += strlen(s) + 1)
		if (!strstr(text, s))
			fail_msg("inspect does not list %s", s);
	assert_null(strstr(text, "dev.0.")); /* a device without state has no section */
	assert_non_null(strstr(text, "RAM data checksum: ok"));
	assert_null(strstr(text, "MISMATCH"));
	free(text);
	fake_vm_free(a);
	fake_vm_free(b);
}

/* The header's fields are where the documentation says. */
static void test_format(void **st)
{
	struct fake_vm *a = busy_vm();
	struct snapfile sf;
	char path[128];
	struct stat sb;
	uint32_t crc;
	int i;

	path_in(path, sizeof(path), "fmt.snap");
	save_ok(a, path);
	sf_open(&sf, path);
	assert_memory_equal(sf.h.magic, "KVMINISN", 8);
	assert_int_equal(sf.h.format, 1);
	assert_int_equal(sf.h.header_size, 64);
	assert_int_equal(sf.h.nsections, 9);
	crc = sf.h.header_crc;
	sf.h.header_crc = 0;
	assert_int_equal(crc32_update(0, &sf.h, sizeof(sf.h)), crc);
	assert_int_equal(crc32_update(0, sf.t, 9 * sizeof(sf.t[0])), sf.h.table_crc);
	assert_int_equal(fstat(sf.fd, &sb), 0);
	for (uint32_t k = 0; k < sf.h.nsections; k++) {
		void *p = sf_payload(&sf, (int)k);

		assert_int_equal(sf.t[k].version, 1);
		assert_true(sf.t[k].offset >= 64);
		assert_true(sf.t[k].offset + sf.t[k].length <= (uint64_t)sb.st_size);
		assert_int_equal(crc32_update(0, p, sf.t[k].length), sf.t[k].crc);
		free(p);
	}
	/* "ram": nregions, data CRC, then (gpa, size, page-aligned offset). */
	i = sf_find(&sf, "ram");
	{
		uint8_t *p = sf_payload(&sf, i);
		uint64_t r[3];

		assert_int_equal(*(uint32_t *)p, 2);
		memcpy(r, p + 8, sizeof(r));
		assert_int_equal(r[0], 0);
		assert_int_equal(r[1], R0);
		assert_int_equal(r[2] % 4096, 0);
		free(p);
	}
	close(sf.fd);
	fake_vm_free(a);
}

/* Output files: nothing planted at a predictable name gets data, the
 * snapshot is 0600, no temporary file is left behind. */
static void test_save_planted_links(void **st)
{
	struct fake_vm *a = busy_vm();
	char path[128], victim[128], link[160];
	struct snapshot_stats stats;
	struct errbuf err;
	struct stat sb;
	DIR *d;
	struct dirent *e;
	int n = 0;

	path_in(path, sizeof(path), "out.snap");
	path_in(victim, sizeof(victim), "victim");
	close(open(victim, O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	/* The old temporary name, and the target itself. */
	snprintf(link, sizeof(link), "%s.tmp.%d", path, (int)getpid());
	assert_int_equal(symlink(victim, link), 0);
	assert_int_equal(symlink(victim, path), 0);
	umask(0);
	save_ok(a, path);
	umask(022);
	assert_int_equal(stat(victim, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	assert_int_equal(lstat(path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode)); /* the link was replaced */
	assert_int_equal(sb.st_mode & 0777, 0600);
	/* Only what we made: victim, link, out.snap. */
	d = opendir(dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	assert_int_equal(n, 3);
	unlink(link);

	/* Not paused: refused, nothing written. */
	a->vm.devices_paused = false;
	assert_int_equal(snapshot_save(&a->vm, path, &stats, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "not paused"));
	a->vm.devices_paused = true;
	/* A directory that cannot be written, and a path naming a directory. */
	assert_true(snapshot_save(&a->vm, "/nonexistent-dir/x.snap", &stats, &err) < 0);
	assert_non_null(strstr(err.msg, "/nonexistent-dir"));
	snprintf(link, sizeof(link), "%s/", dir);
	assert_int_equal(snapshot_save(&a->vm, link, &stats, &err), -EISDIR);
	fake_vm_free(a);
}

/* Every byte of the header and table is covered by a CRC; every section's
 * payload by its own. */
static void test_crc(void **st)
{
	char good[128], bad[128];
	struct fake_vm *a = saved_vm(good, bad, "bad.snap");
	struct snapfile sf;

	sf_fresh(&sf, good, bad);
	sf.h.reserved = 1; /* header changed, CRC not */
	assert_int_equal(pwrite(sf.fd, &sf.h, sizeof(sf.h), 0), sizeof(sf.h));
	close(sf.fd);
	expect_refused(bad, "header is corrupted");

	sf_fresh(&sf, good, bad);
	sf.t[0].pad[0] = 1; /* table changed, CRC not */
	assert_int_equal(pwrite(sf.fd, sf.t, sizeof(sf.t[0]), (off_t)sf.h.table_offset),
			 sizeof(sf.t[0]));
	close(sf.fd);
	expect_refused(bad, "section table is corrupted");

	/* One flipped payload byte in each section the restore reads. */
	for (const char *s = "machine\0vcpu.0\0vcpu.1\0irqchip\0pit\0clock\0dev.1.fakedev\0mem."
			     "shm0\0ram\0";
	     *s; s += strlen(s) + 1) {
		char needle[64];
		uint8_t byte;
		int i;

		sf_fresh(&sf, good, bad);
		i = sf_find(&sf, s);
		assert_int_equal(pread(sf.fd, &byte, 1, (off_t)sf.t[i].offset), 1);
		byte ^= 0x40;
		assert_int_equal(pwrite(sf.fd, &byte, 1, (off_t)sf.t[i].offset), 1);
		close(sf.fd);
		snprintf(needle, sizeof(needle), "section '%s' is corrupted", s);
		expect_refused(bad, needle);
	}

	/* RAM data is not read on restore; inspect --verify finds it. */
	{
		struct errbuf err;
		FILE *null = fopen("/dev/null", "w");
		uint8_t byte = 0;
		int i;

		sf_fresh(&sf, good, bad);
		i = sf_find(&sf, "ram");
		{
			uint8_t *p = sf_payload(&sf, i);
			uint64_t off;

			memcpy(&off, p + 8 + 16, 8); /* region 0's file offset */
			assert_int_equal(pwrite(sf.fd, &byte, 1, (off_t)(off + 4096 + 7)), 1);
			free(p);
		}
		close(sf.fd);
		assert_int_equal(snapshot_inspect(bad, null, false, &err), 0);
		assert_int_equal(snapshot_inspect(bad, null, true, &err), -EINVAL);
		assert_non_null(strstr(err.msg, "checksum mismatch"));
		fclose(null);
	}
	fake_vm_free(a);
}

/* Cut anywhere: a one-line error, never a crash or a partial load. */
static void test_truncation(void **st)
{
	char good[128], bad[128];
	struct fake_vm *a = saved_vm(good, bad, "cut.snap");
	struct stat sb;

	assert_int_equal(stat(good, &sb), 0);
	for (off_t len = 0; len < sb.st_size; len = len < 256 ? len + 17 : len * 2) {
		copy_file(good, bad);
		assert_int_equal(truncate(bad, len), 0);
		expect_refused(bad, "snapshot");
	}
	copy_file(good, bad);
	assert_int_equal(truncate(bad, 10), 0);
	expect_refused(bad, "truncated (10 bytes)");
	/* Cut inside the RAM data: caught by the region check, as the
	 * table comes first. */
	copy_file(good, bad);
	assert_int_equal(truncate(bad, sb.st_size - 1), 0);
	expect_refused(bad, "lies outside the file");
	expect_refused("/nonexistent.snap", "No such file");
	expect_refused(dir, "not a regular file");
	fake_vm_free(a);
}

/* Version skew: a newer file format, a newer section version. */
static void test_versions(void **st)
{
	char good[128], bad[128];
	struct fake_vm *a = saved_vm(good, bad, "ver.snap");
	struct snapfile sf;

	sf_fresh(&sf, good, bad);
	sf.h.format = 2;
	sf_close_resealed(&sf);
	expect_refused(bad, "format version 2, kvmini reads 1");

	sf_fresh(&sf, good, bad);
	memcpy(sf.h.magic, "QEVM\0\0\0\3", 8);
	sf_close_resealed(&sf);
	expect_refused(bad, "not a kvmini snapshot");

	for (const char *s = "machine\0vcpu.1\0irqchip\0pit\0clock\0dev.1.fakedev\0mem.shm0\0ram\0";
	     *s; s += strlen(s) + 1) {
		char needle[96];

		sf_fresh(&sf, good, bad);
		sf.t[sf_find(&sf, s)].version = 7;
		sf_close_resealed(&sf);
		snprintf(needle, sizeof(needle), "section '%s' has version 7, kvmini reads 1", s);
		expect_refused(bad, needle);
	}
	fake_vm_free(a);
}

/* The table itself: counts, names, places, duplicates, extras. */
static void test_table(void **st)
{
	char good[128], bad[128];
	struct fake_vm *a = saved_vm(good, bad, "tab.snap");
	struct snapfile sf;
	struct stat sb;

	assert_int_equal(stat(good, &sb), 0);

	sf_fresh(&sf, good, bad);
	sf.h.nsections = 0;
	sf_close_resealed(&sf);
	expect_refused(bad, "bad section table");

	sf_fresh(&sf, good, bad);
	sf.h.nsections = 65;
	sf_close_resealed(&sf);
	expect_refused(bad, "bad section table");

	sf_fresh(&sf, good, bad);
	sf.h.table_offset = (uint64_t)sb.st_size - 10;
	sf.h.header_crc = 0;
	sf.h.header_crc = crc32_update(0, &sf.h, sizeof(sf.h));
	assert_int_equal(pwrite(sf.fd, &sf.h, sizeof(sf.h), 0), sizeof(sf.h));
	close(sf.fd);
	expect_refused(bad, "bad section table");

	sf_fresh(&sf, good, bad);
	memset(sf.t[2].name, 'x', sizeof(sf.t[2].name)); /* no NUL */
	sf_close_resealed(&sf);
	expect_refused(bad, "section 2 has a bad name");

	sf_fresh(&sf, good, bad);
	sf.t[3].offset = UINT64_MAX - 4;
	sf_close_resealed(&sf);
	expect_refused(bad, "lies outside the file");

	sf_fresh(&sf, good, bad);
	sf.t[3].offset = 8; /* inside the header */
	sf_close_resealed(&sf);
	expect_refused(bad, "lies outside the file");

	sf_fresh(&sf, good, bad);
	sf.t[sf_find(&sf, "vcpu.1")].length = 1ULL << 40;
	sf_close_resealed(&sf);
	expect_refused(bad, "lies outside the file");

	sf_fresh(&sf, good, bad);
	snprintf(sf.t[sf_find(&sf, "pit")].name, 24, "vcpu.0");
	sf_close_resealed(&sf);
	expect_refused(bad, "section 'vcpu.0' appears twice");

	sf_fresh(&sf, good, bad);
	snprintf(sf.t[sf_find(&sf, "pit")].name, 24, "gpu");
	sf_close_resealed(&sf);
	expect_refused(bad, "section 'pit' is missing");

	/* A section nobody reads: a file from another machine. */
	sf_fresh(&sf, good, bad);
	snprintf(sf.t[sf_find(&sf, "mem.shm0")].name, 24, "mem.other");
	sf_close_resealed(&sf);
	expect_refused(bad, "section 'mem.shm0' is missing");
	fake_vm_free(a);
}

/* Each section's content is checked against the VM before use. */
static void test_section_validation(void **st)
{
	char good[128], bad[128];
	struct fake_vm *a = saved_vm(good, bad, "val.snap"), *b;
	struct snapfile sf;
	struct errbuf err;
	uint8_t *p;
	int i;

	/* machine: memory, vCPUs, device count and names. */
	{
		static const struct {
			size_t off;
			uint32_t val;
			const char *needle;
		} m[] = {
		    {0, 1 << 20, "snapshot has 1M of RAM but the command line says --memory 0M"},
		    {8, 3, "snapshot has 3 vCPUs but the command line says --cpus 2"},
		    {12, 5, "snapshot has 5 devices but the command line gives 2"},
		};

		for (size_t k = 0; k < sizeof(m) / sizeof(m[0]); k++) {
			sf_fresh(&sf, good, bad);
			i = sf_find(&sf, "machine");
			p = sf_payload(&sf, i);
			memcpy(p + m[k].off, &m[k].val, 4);
			if (m[k].off == 0)
				memset(p + 4, 0, 4); /* 64-bit mem_size */
			sf_set_payload(&sf, i, p, sf.t[i].length);
			free(p);
			sf_close_resealed(&sf);
			expect_refused(bad, m[k].needle);
		}
		sf_fresh(&sf, good, bad);
		i = sf_find(&sf, "machine");
		p = sf_payload(&sf, i);
		memcpy(p + 16 + 32, "virtio-blk", 11); /* device 1's name */
		sf_set_payload(&sf, i, p, sf.t[i].length);
		sf_close_resealed(&sf);
		expect_refused(bad, "snapshot device 1 is 'virtio-blk' but the command line gives "
				    "'fakedev'");
		sf_fresh(&sf, good, bad);
		memset(p + 16 + 32, 'y', 32); /* no NUL */
		sf_set_payload(&sf, i, p, sf.t[i].length);
		sf_close_resealed(&sf);
		expect_refused(bad, "device 1 has a bad name");
		/* A short machine section. */
		sf_fresh(&sf, good, bad);
		sf_set_payload(&sf, i, p, 16);
		sf_close_resealed(&sf);
		expect_refused(bad, "section 'machine' has 16 bytes, expected");
		free(p);
	}

	/* irqchip: what its check refuses is refused. */
	sf_fresh(&sf, good, bad);
	i = sf_find(&sf, "irqchip");
	p = sf_payload(&sf, i);
	((struct kvm_irqchip *)p)[1].chip_id = 9;
	sf_set_payload(&sf, i, p, sf.t[i].length);
	free(p);
	sf_close_resealed(&sf);
	expect_refused(bad, "irqchip: chip 1 has id 9");

	/* ram: region count and places, page alignment. */
	for (int k = 0; k < 3; k++) {
		static const char *const needles[] = {"RAM has 1 regions, this VM 2",
						      "RAM region 1 does not match this VM",
						      "RAM region 0 lies outside the file"};

		sf_fresh(&sf, good, bad);
		i = sf_find(&sf, "ram");
		p = sf_payload(&sf, i);
		if (k == 0)
			*(uint32_t *)p = 1;
		else if (k == 1)
			*(uint64_t *)(p + 8 + 24) = 2 << 20; /* region 1's gpa */
		else
			*(uint64_t *)(p + 8 + 16) += 1; /* region 0's offset, unaligned */
		sf_set_payload(&sf, i, p, sf.t[i].length);
		free(p);
		sf_close_resealed(&sf);
		expect_refused(bad, needles[k]);
	}

	/* A device's own load refuses its bad state. */
	sf_fresh(&sf, good, bad);
	i = sf_find(&sf, "dev.1.fakedev");
	p = sf_payload(&sf, i);
	p[0] = 'X';
	sf_set_payload(&sf, i, p, sf.t[i].length);
	free(p);
	sf_close_resealed(&sf);
	expect_refused(bad, "fakedev: bad state");

	/* Shared memory of another size. */
	sf_fresh(&sf, good, bad);
	i = sf_find(&sf, "mem.shm0");
	p = sf_payload(&sf, i);
	sf_set_payload(&sf, i, p, 2048);
	free(p);
	sf_close_resealed(&sf);
	expect_refused(bad, "section 'mem.shm0' has 2048 bytes, expected 4096");

	/* KVM refusing a vCPU's state: reported as it is. */
	K.fail_vcpu_load = EINVAL;
	assert_int_equal(restore(good, &err, &b), -EINVAL);
	assert_non_null(strstr(err.msg, "KVM refused the state"));
	fake_vm_free(b);
	K.fail_vcpu_load = 0;

	/* A command line with another device list. */
	b = fake_vm_new();
	b->vm.ndevices = 1;
	assert_int_equal(snapshot_restore(&b->vm, good, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "snapshot has 2 devices but the command line gives 1"));
	fake_vm_free(b);
	fake_vm_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_planted_links, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_crc, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_table, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_section_validation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
