// SPDX-License-Identifier: MIT
/*
 * Snapshot save/restore. File layout (all little-endian, see docs/snapshot.md):
 *
 *   header (64 bytes)            magic, format version, section table place, CRCs
 *   section payloads             each CRC-32 checked, each with its own version
 *   section table (64 B each)    name, version, CRC, offset, length
 *   RAM data                     page aligned; one extent per RAM region,
 *                                zero pages left as holes
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/irqchip.h"
#include "vmm/snapshot.h"
#include "vmm/vcpu_state.h"
#include "vmm/vm.h"

#define SNAP_MAGIC	  "KVMINISN"
#define SNAP_FORMAT	  1
#define SNAP_MAX_SECTIONS 64
#define SNAP_PAGE	  4096ULL
#define SNAP_DEV_MAX	  (256 * 1024)

struct snap_header {
	char magic[8];
	uint32_t format;
	uint32_t header_size;
	uint32_t nsections;
	uint32_t reserved;
	uint64_t table_offset;
	uint32_t table_crc;
	uint32_t header_crc; /* over the header with this field zero */
	uint8_t pad[24];
};

struct snap_section {
	char name[24]; /* NUL-terminated */
	uint32_t version;
	uint32_t crc;
	uint64_t offset;
	uint64_t length;
	uint8_t pad[16];
};

_Static_assert(sizeof(struct snap_header) == 64, "header layout");
_Static_assert(sizeof(struct snap_section) == 64, "section layout");

/* "machine" v1: what the command line must reproduce. */
struct snap_machine {
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t ndevices;
	char devices[VM_MAX_DEVICES][32];
};

/* "vcpu.N" v1 is struct vcpu_state (vmm/vcpu_state.h); "irqchip" v1, "pit"
 * v1 and "clock" v1 are the members of struct irqchip_state (vmm/irqchip.h). */

/* "ram" v1: where each region's pages are in the file. */
struct snap_ram_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t file_offset; /* page aligned */
};

struct snap_ram {
	uint32_t nregions;
	uint32_t data_crc; /* CRC-32 of all regions' bytes, in order */
	struct snap_ram_region regions[GUEST_MEM_MAX_REGIONS];
};

/* ---------------------------------------------------------------- save */

struct snap_writer {
	int fd;
	uint64_t pos;
	struct snap_section table[SNAP_MAX_SECTIONS];
	uint32_t n;
	uint64_t written;
};

static int snap_pwrite(struct snap_writer *w, const void *buf, size_t len, uint64_t off,
		       struct errbuf *err)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = pwrite(w->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(err, n < 0 ? errno : EIO, "snapshot: write failed: %s",
				       strerror(n < 0 ? errno : EIO));
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
		w->written += (uint64_t)n;
	}
	return 0;
}

static int snap_add(struct snap_writer *w, const char *name, uint32_t version, const void *buf,
		    size_t len, struct errbuf *err)
{
	struct snap_section *s;
	int ret;

	if (w->n == SNAP_MAX_SECTIONS)
		return err_set(err, ENOSPC, "snapshot: too many sections");
	s = &w->table[w->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->version = version;
	s->crc = crc32_update(0, buf, len);
	s->offset = w->pos;
	s->length = len;
	ret = snap_pwrite(w, buf, len, w->pos, err);
	w->pos += len;
	return ret;
}

static bool snap_page_zero(const uint8_t *p)
{
	const uint64_t *q = (const uint64_t *)p;

	for (size_t i = 0; i < SNAP_PAGE / 8; i += 4)
		if (q[i] | q[i + 1] | q[i + 2] | q[i + 3])
			return false;
	return true;
}

/* The RAM checksum covers each non-zero page as (page number, bytes), so
 * zero pages cost nothing to save and holes nothing to verify. */
static uint32_t snap_crc_page(uint32_t crc, uint64_t pageno, const uint8_t *page)
{
	crc = crc32_update(crc, &pageno, sizeof(pageno));
	return crc32_update(crc, page, SNAP_PAGE);
}

/*
 * Finds the pages of a RAM region that may hold data without touching the
 * others (reading 1 GiB of never-touched RAM would fault in 262144 pages):
 * a page may hold data if it is present or swapped in this process
 * (/proc/self/pagemap), or, for RAM restored from a snapshot, if the file
 * it is mapped from has data (not a hole) there. Everything else is zero.
 */
struct snap_scan {
	int pagemap_fd;
	int src_fd;	     /* -1: anonymous RAM */
	uint64_t src_off;    /* file offset of the region's first page */
	uint64_t data_start; /* current data extent of src_fd, file offsets */
	uint64_t data_end;
	uint64_t pm[512]; /* pagemap entries for pm_first.. */
	uint64_t pm_first, pm_count;
};

static bool snap_scan_maybe_data(struct snap_scan *sc, const uint8_t *host, uint64_t off)
{
	uint64_t vpn = ((uintptr_t)host + off) / SNAP_PAGE;

	if (sc->pagemap_fd >= 0) {
		if (vpn < sc->pm_first || vpn >= sc->pm_first + sc->pm_count) {
			ssize_t n = pread(sc->pagemap_fd, sc->pm, sizeof(sc->pm), (off_t)(vpn * 8));

			sc->pm_first = vpn;
			sc->pm_count = n > 0 ? (uint64_t)n / 8 : 0;
			if (!sc->pm_count)
				return true; /* cannot tell: look at the page */
		}
		if (sc->pm[vpn - sc->pm_first] & (3ULL << 62)) /* present | swapped */
			return true;
	} else {
		return true;
	}
	if (sc->src_fd < 0)
		return false;
	off += sc->src_off;
	if (off >= sc->data_end) {
		off_t d = lseek(sc->src_fd, (off_t)off, SEEK_DATA);
		off_t h = d < 0 ? -1 : lseek(sc->src_fd, d, SEEK_HOLE);

		if (d < 0 || h < 0) {
			sc->data_start = sc->data_end = UINT64_MAX; /* no more data */
		} else {
			sc->data_start = (uint64_t)d;
			sc->data_end = (uint64_t)h;
		}
	}
	return off >= sc->data_start && off < sc->data_end;
}

/* Write RAM at page-aligned offsets after everything else; zero pages
 * stay holes (the file is extended with ftruncate). */
static int snap_save_ram(struct snap_writer *w, struct vm *vm, struct snapshot_stats *st,
			 struct errbuf *err)
{
	struct snap_ram ram = {.nregions = (uint32_t)vm->mem.nregions};
	/* Room before the data for this section's payload and the table. */
	uint64_t base = ALIGN_UP(w->pos + sizeof(struct snap_ram) +
				     SNAP_MAX_SECTIONS * sizeof(struct snap_section),
				 SNAP_PAGE);
	struct snap_scan *sc = calloc(1, sizeof(*sc));
	uint64_t pageno = 0;
	uint32_t crc = 0;
	int ret = 0;

	if (!sc)
		return err_set(err, ENOMEM, "snapshot: out of memory");
	sc->pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	for (int r = 0; r < vm->mem.nregions && ret == 0; r++) {
		const struct guest_mem_region *g = &vm->mem.regions[r];
		uint64_t run = 0, run_len = 0;

		ram.regions[r] = (struct snap_ram_region){g->gpa, g->size, base};
		sc->src_fd = vm->ram_src_fd;
		sc->src_off = vm->ram_src_off[r];
		sc->data_start = sc->data_end = 0;
		for (uint64_t off = 0; off <= g->size && ret == 0; off += SNAP_PAGE, pageno++) {
			bool data = off < g->size && snap_scan_maybe_data(sc, g->host, off) &&
				    !snap_page_zero(g->host + off);

			if (data) {
				crc = snap_crc_page(crc, pageno, g->host + off);
				if (!run_len)
					run = off;
				run_len += SNAP_PAGE;
				st->ram_pages++;
				continue;
			}
			if (run_len) /* one write per run of data pages */
				ret = snap_pwrite(w, g->host + run, run_len, base + run, err);
			run_len = 0;
		}
		pageno--; /* the loop ran once past the end */
		base += g->size;
	}
	if (sc->pagemap_fd >= 0)
		close(sc->pagemap_fd);
	free(sc);
	if (ret < 0)
		return ret;
	if (ftruncate(w->fd, (off_t)base) < 0)
		return err_set(err, errno, "snapshot: cannot size the file: %s", strerror(errno));
	ram.data_crc = crc;
	return snap_add(w, "ram", 1, &ram, sizeof(ram), err);
}

/*
 * Create the temporary file for @path in @path's directory: an
 * unpredictable name, O_EXCL|O_NOFOLLOW (nothing planted there, link or
 * file, is opened) and mode 0600 (guest RAM is private). Fills @tmp
 * (the name) and @dir (the directory, for the fsync after the rename).
 */
static int snap_create_temp(const char *path, char *tmp, size_t tmpsize, char *dir, size_t dirsize,
			    struct errbuf *err)
{
	const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
	size_t dlen = slash ? (size_t)(slash - path) : 0;

	if (!*base)
		return err_set(err, EISDIR, "snapshot: '%s' names a directory, not a file", path);
	if (dlen + 2 > dirsize)
		return err_set(err, ENAMETOOLONG, "snapshot: path too long");
	if (!slash)
		snprintf(dir, dirsize, ".");
	else if (dlen == 0)
		snprintf(dir, dirsize, "/");
	else
		snprintf(dir, dirsize, "%.*s", (int)dlen, path);
	for (int tries = 0; tries < 16; tries++) {
		uint64_t rnd;
		int fd;

		if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
			return err_set(err, EIO, "snapshot: getrandom failed: %s", strerror(errno));
		if ((size_t)snprintf(tmp, tmpsize, "%s/.%s.tmp.%016llx", dir, base,
				     (unsigned long long)rnd) >= tmpsize)
			return err_set(err, ENAMETOOLONG, "snapshot: path too long");
		fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd >= 0 ? fd
				       : err_set(err, errno,
						 "snapshot: cannot create a file in '%s': %s", dir,
						 strerror(errno));
	}
	return err_set(err, EEXIST, "snapshot: cannot create a temporary file in '%s'", dir);
}

/* Make the rename durable: the directory entry is data of the directory. */
static int snap_sync_dir(const char *dir, struct errbuf *err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0 || fsync(fd) < 0)
		ret = err_set(err, errno, "snapshot: cannot sync directory '%s': %s", dir,
			      strerror(errno));
	if (fd >= 0)
		close(fd);
	return ret;
}

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *stats, struct errbuf *err)
{
	struct snap_writer *w;
	struct snap_header h = {0};
	struct snap_machine m = {0};
	struct vcpu_state *sv = NULL;
	struct irqchip_state *ic = NULL;
	uint8_t *devbuf = NULL;
	char *tmp = NULL, *dir = NULL, name[24];
	int ret;

	memset(stats, 0, sizeof(*stats));
	if (!vm->devices_paused)
		return err_set(err, EINVAL, "snapshot: the VM is not paused");
	/* SynIC pages, timers and connections live in KVM and hyperv-testdev,
	 * which no section carries: a restored guest would lose them. */
	if (vm->hyperv)
		return err_set(err, ENOTSUP,
			       "snapshot: not with --hyperv (its state is not saved)");
	/* The split irqchip's IOAPIC, the VT-d unit and edu have no sections. */
	if (vm->cfg->iommu || vm->cfg->edu)
		return err_set(err, ENOTSUP,
			       "snapshot: not with --iommu or --edu (their state is "
			       "not saved)");
	w = calloc(1, sizeof(*w));
	sv = malloc(sizeof(*sv));
	ic = malloc(sizeof(*ic));
	devbuf = malloc(SNAP_DEV_MAX);
	tmp = malloc(PATH_MAX);
	dir = malloc(PATH_MAX);
	if (w)
		w->fd = -1;
	if (!w || !sv || !ic || !devbuf || !tmp || !dir) {
		ret = err_set(err, ENOMEM, "snapshot: out of memory");
		goto out;
	}
	w->fd = snap_create_temp(path, tmp, PATH_MAX, dir, PATH_MAX, err);
	if (w->fd < 0) {
		ret = w->fd;
		goto out;
	}
	w->pos = sizeof(h);

	m.mem_size = vm->cfg->mem_size;
	m.ncpus = (uint32_t)vm->cpus.n;
	m.ndevices = (uint32_t)vm->ndevices;
	for (int i = 0; i < vm->ndevices; i++)
		snprintf(m.devices[i], sizeof(m.devices[i]), "%s", vm->devices[i].ops->name);
	ret = snap_add(w, "machine", 1, &m, sizeof(m), err);
	if (ret < 0)
		goto fail;

	for (int i = 0; i < vm->cpus.n; i++) {
		ret = vcpu_state_save(&vm->cpus.vcpus[i], sv, err);
		if (ret < 0)
			goto fail;
		snprintf(name, sizeof(name), "vcpu.%d", i);
		ret = snap_add(w, name, 1, sv, sizeof(*sv), err);
		if (ret < 0)
			goto fail;
	}

	ret = irqchip_state_save(vm->vm_fd, ic, err);
	if (ret == 0)
		ret = snap_add(w, "irqchip", 1, ic->chip, sizeof(ic->chip), err);
	if (ret == 0)
		ret = snap_add(w, "pit", 1, &ic->pit, sizeof(ic->pit), err);
	if (ret == 0)
		ret = snap_add(w, "clock", 1, &ic->clock, sizeof(ic->clock), err);
	if (ret < 0)
		goto fail;

	for (int i = 0; i < vm->ndevices; i++) {
		const struct device *d = &vm->devices[i];
		int n;

		if (!d->ops->save)
			continue;
		n = d->ops->save(d->state, devbuf, SNAP_DEV_MAX);
		if (n < 0) {
			ret = err_set(err, -n, "snapshot: device %s cannot be saved: %s",
				      d->ops->name, strerror(-n));
			goto fail;
		}
		snprintf(name, sizeof(name), "dev.%d.%.14s", i, d->ops->name);
		ret = snap_add(w, name, 1, devbuf, (size_t)n, err);
		if (ret < 0)
			goto fail;
	}
	for (int i = 0; i < vm->nsnap_mem; i++) {
		const struct vm_snap_mem *sm = &vm->snap_mem[i];
		/* Other VMs may write shared memory meanwhile: checksum and
		 * write one copy, so the section is consistent with its CRC. */
		void *copy = malloc(sm->size);

		if (!copy) {
			ret = err_set(err, ENOMEM, "snapshot: out of memory for %s's memory",
				      sm->name);
			goto fail;
		}
		memcpy(copy, sm->host, sm->size);
		snprintf(name, sizeof(name), "mem.%s", sm->name);
		ret = snap_add(w, name, 1, copy, sm->size, err);
		free(copy);
		if (ret < 0)
			goto fail;
	}

	/* The RAM data goes after the room left for the table. */
	ret = snap_save_ram(w, vm, stats, err);
	if (ret < 0)
		goto fail;
	h.table_offset = w->pos;
	ret = snap_pwrite(w, w->table, w->n * sizeof(struct snap_section), h.table_offset, err);
	if (ret < 0)
		goto fail;
	memcpy(h.magic, SNAP_MAGIC, 8);
	h.format = SNAP_FORMAT;
	h.header_size = sizeof(h);
	h.nsections = w->n;
	h.table_crc = crc32_update(0, w->table, w->n * sizeof(struct snap_section));
	h.header_crc = crc32_update(0, &h, sizeof(h));
	ret = snap_pwrite(w, &h, sizeof(h), 0, err);
	if (ret < 0)
		goto fail;
	/* The data, then the name: a crash leaves the old file or the new,
	 * complete one. rename replaces a link at @path, never follows it. */
	if (fsync(w->fd) < 0) {
		ret = err_set(err, errno, "snapshot: sync failed: %s", strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) < 0) {
		ret = err_set(err, errno, "snapshot: cannot rename to '%s': %s", path,
			      strerror(errno));
		goto fail;
	}
	ret = snap_sync_dir(dir, err);
	if (ret < 0)
		goto out;
	stats->file_bytes = w->written;
	ret = 0;
	goto out;
fail:
	unlink(tmp);
out:
	if (w && w->fd >= 0)
		close(w->fd);
	free(dir);
	free(tmp);
	free(devbuf);
	free(ic);
	free(sv);
	free(w);
	return ret;
}

/* ---------------------------------------------------------------- load */

struct snap_reader {
	int fd;
	uint64_t size;
	struct snap_header h;
	struct snap_section table[SNAP_MAX_SECTIONS];
	bool used[SNAP_MAX_SECTIONS];
};

static int snap_pread(struct snap_reader *r, void *buf, size_t len, uint64_t off,
		      struct errbuf *err)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(r->fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return err_set(err, n < 0 ? errno : EIO,
				       "snapshot: read failed at %llu: %s", (unsigned long long)off,
				       n < 0 ? strerror(errno) : "end of file");
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static bool snap_range_ok(const struct snap_reader *r, uint64_t off, uint64_t len)
{
	return off <= r->size && len <= r->size - off;
}

static int snap_open(const char *path, struct snap_reader *r, struct errbuf *err)
{
	struct stat st;
	uint32_t crc;
	int ret;

	memset(r, 0, sizeof(*r));
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0)
		return err_set(err, errno, "snapshot '%s': %s", path, strerror(errno));
	if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = err_set(err, EINVAL, "snapshot '%s': not a regular file", path);
		goto fail;
	}
	r->size = (uint64_t)st.st_size;
	if (r->size < sizeof(r->h)) {
		ret = err_set(err, EINVAL, "snapshot '%s': truncated (%llu bytes)", path,
			      (unsigned long long)r->size);
		goto fail;
	}
	ret = snap_pread(r, &r->h, sizeof(r->h), 0, err);
	if (ret < 0)
		goto fail;
	if (memcmp(r->h.magic, SNAP_MAGIC, 8) != 0) {
		ret =
		    err_set(err, EINVAL, "snapshot '%s': not a kvmini snapshot (bad magic)", path);
		goto fail;
	}
	if (r->h.format != SNAP_FORMAT) {
		ret = err_set(err, EINVAL, "snapshot '%s': format version %u, kvmini reads %u",
			      path, r->h.format, SNAP_FORMAT);
		goto fail;
	}
	crc = r->h.header_crc;
	r->h.header_crc = 0;
	if (r->h.header_size != sizeof(r->h) || crc32_update(0, &r->h, sizeof(r->h)) != crc) {
		ret = err_set(err, EINVAL, "snapshot '%s': header is corrupted (checksum mismatch)",
			      path);
		goto fail;
	}
	r->h.header_crc = crc;
	if (r->h.nsections == 0 || r->h.nsections > SNAP_MAX_SECTIONS ||
	    !snap_range_ok(r, r->h.table_offset, r->h.nsections * sizeof(struct snap_section))) {
		ret = err_set(err, EINVAL, "snapshot '%s': truncated or bad section table", path);
		goto fail;
	}
	ret = snap_pread(r, r->table, r->h.nsections * sizeof(struct snap_section),
			 r->h.table_offset, err);
	if (ret < 0)
		goto fail;
	if (crc32_update(0, r->table, r->h.nsections * sizeof(struct snap_section)) !=
	    r->h.table_crc) {
		ret = err_set(err, EINVAL, "snapshot '%s': section table is corrupted", path);
		goto fail;
	}
	for (uint32_t i = 0; i < r->h.nsections; i++) {
		struct snap_section *s = &r->table[i];

		if (!memchr(s->name, '\0', sizeof(s->name)) || s->name[0] == '\0') {
			ret = err_set(err, EINVAL, "snapshot '%s': section %u has a bad name", path,
				      i);
			goto fail;
		}
		if (s->offset < sizeof(r->h) || !snap_range_ok(r, s->offset, s->length)) {
			ret = err_set(
			    err, EINVAL,
			    "snapshot '%s': section '%s' lies outside the file (truncated?)", path,
			    s->name);
			goto fail;
		}
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(r->table[j].name, s->name)) {
				ret = err_set(err, EINVAL,
					      "snapshot '%s': section '%s' appears twice", path,
					      s->name);
				goto fail;
			}
	}
	return 0;
fail:
	close(r->fd);
	r->fd = -1;
	return ret;
}

/*
 * Read section @name (version @version) into @buf. With @exact the length
 * must be @len; otherwise at most @len and the length is returned.
 */
static int snap_read(struct snap_reader *r, const char *name, uint32_t version, void *buf,
		     size_t len, bool exact, struct errbuf *err)
{
	for (uint32_t i = 0; i < r->h.nsections; i++) {
		struct snap_section *s = &r->table[i];
		int ret;

		if (strcmp(s->name, name) != 0)
			continue;
		r->used[i] = true;
		if (s->version != version)
			return err_set(err, EINVAL,
				       "snapshot: section '%s' has version %u, kvmini reads %u",
				       name, s->version, version);
		if (exact ? s->length != len : s->length > len)
			return err_set(
			    err, EINVAL, "snapshot: section '%s' has %llu bytes, expected %s%zu",
			    name, (unsigned long long)s->length, exact ? "" : "at most ", len);
		ret = snap_pread(r, buf, s->length, s->offset, err);
		if (ret < 0)
			return ret;
		if (crc32_update(0, buf, s->length) != s->crc)
			return err_set(err, EINVAL,
				       "snapshot: section '%s' is corrupted (checksum mismatch)",
				       name);
		return (int)s->length;
	}
	return err_set(err, ENOENT, "snapshot: section '%s' is missing", name);
}

static int snap_check_machine(struct vm *vm, const struct snap_machine *m, struct errbuf *err)
{
	if (m->mem_size != vm->cfg->mem_size)
		return err_set(err, EINVAL,
			       "snapshot has %lluM of RAM but the command line says --memory %lluM",
			       (unsigned long long)(m->mem_size >> 20),
			       (unsigned long long)(vm->cfg->mem_size >> 20));
	if (m->ncpus != (uint32_t)vm->cpus.n)
		return err_set(err, EINVAL,
			       "snapshot has %u vCPUs but the command line says --cpus %d",
			       m->ncpus, vm->cpus.n);
	if (m->ndevices != (uint32_t)vm->ndevices)
		return err_set(err, EINVAL, "snapshot has %u devices but the command line gives %d",
			       m->ndevices, vm->ndevices);
	for (int i = 0; i < vm->ndevices; i++) {
		if (!memchr(m->devices[i], '\0', sizeof(m->devices[i])))
			return err_set(err, EINVAL, "snapshot: device %d has a bad name", i);
		if (strcmp(m->devices[i], vm->devices[i].ops->name) != 0)
			return err_set(err, EINVAL,
				       "snapshot device %d is '%s' but the command line gives '%s'",
				       i, m->devices[i], vm->devices[i].ops->name);
	}
	return 0;
}

/*
 * Shared RAM (a vhost-user backend maps it) cannot be a private mapping of
 * the snapshot file, or the backend would not see the guest's memory: read
 * the file's data into it, skipping holes (the memfd reads as zero there).
 */
static int snap_restore_ram_shared(struct snap_reader *r, struct vm *vm, const struct snap_ram *ram,
				   struct errbuf *err)
{
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];
		off_t base = (off_t)ram->regions[i].file_offset, end = base + (off_t)g->size;

		for (off_t pos = base; pos < end;) {
			off_t data = lseek(r->fd, pos, SEEK_DATA), hole;

			if (data < 0 || data >= end)
				break; /* ENXIO: no data left */
			hole = lseek(r->fd, data, SEEK_HOLE);
			if (hole < 0 || hole > end)
				hole = end;
			for (pos = data; pos < hole;) {
				ssize_t n =
				    pread(r->fd, g->host + (pos - base), (size_t)(hole - pos), pos);

				if (n <= 0)
					return err_set(err, n < 0 ? errno : EIO,
						       "snapshot: cannot read RAM: %s",
						       n < 0 ? strerror(errno) : "short file");
				pos += n;
			}
		}
	}
	return 0;
}

static int snap_restore_ram(struct snap_reader *r, struct vm *vm, struct errbuf *err)
{
	struct snap_ram ram;
	int ret = snap_read(r, "ram", 1, &ram, sizeof(ram), true, err);

	if (ret < 0)
		return ret;
	if (ram.nregions != (uint32_t)vm->mem.nregions)
		return err_set(err, EINVAL, "snapshot: RAM has %u regions, this VM %d",
			       ram.nregions, vm->mem.nregions);
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct snap_ram_region *s = &ram.regions[i];
		const struct guest_mem_region *g = &vm->mem.regions[i];

		if (s->gpa != g->gpa || s->size != g->size)
			return err_set(err, EINVAL,
				       "snapshot: RAM region %d does not match this VM", i);
		if (s->file_offset % SNAP_PAGE || !snap_range_ok(r, s->file_offset, s->size))
			return err_set(err, EINVAL,
				       "snapshot: RAM region %d lies outside the file (truncated?)",
				       i);
	}
	if (vm->mem.regions[0].fd >= 0)
		return snap_restore_ram_shared(r, vm, &ram, err);
	/* Map, don't read: pages come in as the guest touches them, and the
	 * guest's writes stay private to this process. The next snapshot of
	 * this VM reads the file's holes to skip untouched zero pages. */
	vm->ram_src_fd = fcntl(r->fd, F_DUPFD_CLOEXEC, 0);
	for (int i = 0; i < vm->mem.nregions; i++) {
		const struct guest_mem_region *g = &vm->mem.regions[i];

		vm->ram_src_off[i] = ram.regions[i].file_offset;
		if (mmap(g->host, g->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, r->fd,
			 (off_t)ram.regions[i].file_offset) == MAP_FAILED)
			return err_set(err, errno, "snapshot: cannot map RAM: %s", strerror(errno));
	}
	return 0;
}

int snapshot_restore(struct vm *vm, const char *path, struct errbuf *err)
{
	struct snap_reader *r = malloc(sizeof(*r));
	struct snap_machine m;
	struct vcpu_state *sv = malloc(sizeof(*sv));
	struct irqchip_state *ic = malloc(sizeof(*ic));
	uint8_t *devbuf = malloc(SNAP_DEV_MAX);
	char name[24];
	int ret;

	if (!r || !sv || !ic || !devbuf) {
		ret = err_set(err, ENOMEM, "snapshot: out of memory");
		goto out_free;
	}
	if (vm->hyperv) {
		ret = err_set(err, ENOTSUP,
			      "--incoming: not with --hyperv (snapshots carry no Hyper-V state)");
		goto out_free;
	}
	if (vm->cfg->iommu || vm->cfg->edu) {
		ret = err_set(err, ENOTSUP,
			      "--incoming: not with --iommu or --edu (snapshots carry "
			      "no state of theirs)");
		goto out_free;
	}
	ret = snap_open(path, r, err);
	if (ret < 0)
		goto out_free;
	/* Devices load paused: what they bring back runs at vm_resume. */
	vm_pause(vm);
	/* Read and check everything small before touching the VM. */
	ret = snap_read(r, "machine", 1, &m, sizeof(m), true, err);
	if (ret < 0)
		goto out;
	ret = snap_check_machine(vm, &m, err);
	if (ret < 0)
		goto out;
	ret = snap_read(r, "irqchip", 1, ic->chip, sizeof(ic->chip), true, err);
	if (ret >= 0)
		ret = snap_read(r, "pit", 1, &ic->pit, sizeof(ic->pit), true, err);
	if (ret >= 0)
		ret = snap_read(r, "clock", 1, &ic->clock, sizeof(ic->clock), true, err);
	if (ret >= 0)
		ret = irqchip_state_check(ic, err);
	if (ret < 0)
		goto out;

	ret = snap_restore_ram(r, vm, err);
	if (ret < 0)
		goto out;
	for (int i = 0; i < vm->cpus.n; i++) {
		snprintf(name, sizeof(name), "vcpu.%d", i);
		ret = snap_read(r, name, 1, sv, sizeof(*sv), true, err);
		if (ret < 0)
			goto out;
		ret = vcpu_state_load(&vm->cpus.vcpus[i], sv, err);
		if (ret < 0)
			goto out;
	}
	ret = irqchip_state_load(vm->vm_fd, ic, err);
	if (ret < 0)
		goto out;
	for (int i = 0; i < vm->ndevices; i++) {
		const struct device *d = &vm->devices[i];

		if (!d->ops->save)
			continue;
		snprintf(name, sizeof(name), "dev.%d.%.14s", i, d->ops->name);
		ret = snap_read(r, name, 1, devbuf, SNAP_DEV_MAX, false, err);
		if (ret < 0)
			goto out;
		ret = d->ops->load(d->state, devbuf, (size_t)ret, err);
		if (ret < 0)
			goto out;
	}
	for (int i = 0; i < vm->nsnap_mem; i++) {
		const struct vm_snap_mem *sm = &vm->snap_mem[i];
		/* Checked before anything reaches the (shared) memory. */
		void *buf = malloc(sm->size);

		if (!buf) {
			ret = err_set(err, ENOMEM, "snapshot: out of memory for %s's memory",
				      sm->name);
			goto out;
		}
		snprintf(name, sizeof(name), "mem.%s", sm->name);
		ret = snap_read(r, name, 1, buf, sm->size, true, err);
		if (ret >= 0)
			memcpy(sm->host, buf, sm->size);
		free(buf);
		if (ret < 0)
			goto out;
	}
	for (uint32_t i = 0; i < r->h.nsections; i++)
		if (!r->used[i]) {
			ret = err_set(err, EINVAL, "snapshot: unexpected section '%s'",
				      r->table[i].name);
			goto out;
		}
	ret = 0;
out:
	/* The RAM mappings keep their own reference to the file. */
	close(r->fd);
out_free:
	free(devbuf);
	free(ic);
	free(sv);
	free(r);
	return ret;
}

int snapshot_inspect(const char *path, FILE *out, bool verify, struct errbuf *err)
{
	struct snap_reader *r = malloc(sizeof(*r));
	uint8_t *buf = malloc(1 << 20);
	int ret, bad = 0;

	if (!r || !buf) {
		ret = err_set(err, ENOMEM, "out of memory");
		goto out_free;
	}
	ret = snap_open(path, r, err);
	if (ret < 0)
		goto out_free;
	fprintf(out, "%s: kvmini snapshot, format %u, %u sections, %llu bytes\n", path, r->h.format,
		r->h.nsections, (unsigned long long)r->size);
	fprintf(out, "  %-24s %7s %12s %12s  %s\n", "section", "version", "offset", "size",
		"checksum");
	for (uint32_t i = 0; i < r->h.nsections; i++) {
		struct snap_section *s = &r->table[i];
		uint32_t crc = 0;
		const char *ok;

		for (uint64_t off = 0; off < s->length;) {
			size_t n =
			    s->length - off > (1 << 20) ? (1 << 20) : (size_t)(s->length - off);

			ret = snap_pread(r, buf, n, s->offset + off, err);
			if (ret < 0)
				goto out;
			crc = crc32_update(crc, buf, n);
			off += n;
		}
		ok = crc == s->crc ? "ok" : "MISMATCH";
		bad += crc != s->crc;
		fprintf(out, "  %-24s %7u %12llu %12llu  %s\n", s->name, s->version,
			(unsigned long long)s->offset, (unsigned long long)s->length, ok);
		if (!strcmp(s->name, "ram") && s->length == sizeof(struct snap_ram) &&
		    crc == s->crc) {
			struct snap_ram ram;
			uint32_t dcrc = 0;

			memcpy(&ram, buf, sizeof(ram));
			uint64_t pageno = 0;

			for (uint32_t k = 0; k < ram.nregions && k < GUEST_MEM_MAX_REGIONS; k++) {
				const struct snap_ram_region *rg = &ram.regions[k];

				fprintf(out,
					"    RAM region gpa 0x%llx size %llu at file offset %llu\n",
					(unsigned long long)rg->gpa, (unsigned long long)rg->size,
					(unsigned long long)rg->file_offset);
				if (!verify)
					continue;
				if (!snap_range_ok(r, rg->file_offset, rg->size) ||
				    rg->size % SNAP_PAGE || rg->file_offset % SNAP_PAGE) {
					fprintf(out, "    RAM region %u: outside the file\n", k);
					bad++;
					continue;
				}
				/* Holes are zero pages: only data extents are read. */
				for (uint64_t off = 0; off < rg->size;) {
					off_t d =
					    lseek(r->fd, (off_t)(rg->file_offset + off), SEEK_DATA);
					uint64_t doff;

					if (d < 0 || (uint64_t)d >= rg->file_offset + rg->size)
						break;
					doff = ((uint64_t)d - rg->file_offset) & ~(SNAP_PAGE - 1);
					ret = snap_pread(r, buf, SNAP_PAGE, rg->file_offset + doff,
							 err);
					if (ret < 0)
						goto out;
					if (!snap_page_zero(buf))
						dcrc = snap_crc_page(
						    dcrc, pageno + doff / SNAP_PAGE, buf);
					off = doff + SNAP_PAGE;
				}
				pageno += rg->size / SNAP_PAGE;
			}
			if (verify) {
				fprintf(out, "    RAM data checksum: %s\n",
					dcrc == ram.data_crc ? "ok" : "MISMATCH");
				bad += dcrc != ram.data_crc;
			}
		}
	}
	ret = bad ? err_set(err, EINVAL, "snapshot '%s': %d checksum mismatch(es)", path, bad) : 0;
out:
	close(r->fd);
out_free:
	free(buf);
	free(r);
	return ret;
}
