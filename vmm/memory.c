/* SPDX-License-Identifier: MIT */
/* Guest RAM mappings and checked access; see vmm/memory.h. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/memory.h"

/* Map region @r: anonymous if @fd < 0, else @size bytes of @fd at @off. */
static int map_region(struct guest_mem_region *r, uint64_t gpa, uint64_t size, int fd, uint64_t off)
{
	void *p = fd < 0 ? mmap(NULL, size, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
			 : mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
				(off_t)off);

	if (p == MAP_FAILED)
		return errno ? -errno : -ENOMEM;
	r->gpa = gpa;
	r->size = size;
	r->host = p;
	r->fd = fd;
	r->fd_offset = off;
	return 0;
}

static int guest_mem_map(struct guest_mem *m, uint64_t ram_size, int fd)
{
	uint64_t low;
	int r;

	/* RAM that would overlap the 32-bit PCI hole moves above 4 GiB. */
	low = ram_size < LAYOUT_MMIO32_START ? ram_size : LAYOUT_MMIO32_START;
	r = map_region(&m->regions[0], 0, low, fd, 0);
	if (r)
		return r;
	m->nregions = 1;
	if (ram_size > low) {
		r = map_region(&m->regions[1], LAYOUT_MMIO32_END, ram_size - low, fd, low);
		if (r) {
			munmap(m->regions[0].host, m->regions[0].size);
			m->nregions = 0;
			return r;
		}
		m->nregions = 2;
	}
	m->ram_size = ram_size;
	return 0;
}

static int guest_mem_check_size(uint64_t ram_size)
{
	if (ram_size < GUEST_MEM_MIN_RAM || ram_size % 4096)
		return -EINVAL;
	if (ram_size > GUEST_MEM_MAX_RAM)
		return -ERANGE;
	return 0;
}

int guest_mem_init(struct guest_mem *m, uint64_t ram_size)
{
	int r;

	memset(m, 0, sizeof(*m));
	r = guest_mem_check_size(ram_size);
	if (r == 0)
		r = guest_mem_map(m, ram_size, -1);
	if (r)
		memset(m, 0, sizeof(*m));
	return r;
}

int guest_mem_init_shared(struct guest_mem *m, uint64_t ram_size)
{
	int fd, r;

	memset(m, 0, sizeof(*m));
	r = guest_mem_check_size(ram_size);
	if (r)
		return r;
	fd = memfd_create("kvmini-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	/* A backend maps this file: a shrink would turn its accesses (and
	 * ours) into SIGBUS, so the size is sealed once set. */
	if (ftruncate(fd, (off_t)ram_size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto fail;
	}
	r = guest_mem_map(m, ram_size, fd);
	if (r == 0)
		return 0;
fail:
	close(fd);
	memset(m, 0, sizeof(*m));
	return r;
}

void guest_mem_free(struct guest_mem *m)
{
	for (int i = 0; i < m->nregions; i++)
		munmap(m->regions[i].host, m->regions[i].size);
	if (m->nregions && m->regions[0].fd >= 0)
		close(m->regions[0].fd);
	memset(m, 0, sizeof(*m));
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (len == 0)
		len = 1;
	for (int i = 0; i < m->nregions; i++) {
		const struct guest_mem_region *r = &m->regions[i];
		uint64_t off;

		if (gpa < r->gpa)
			continue;
		off = gpa - r->gpa;
		/* Written so that nothing can wrap: off < size, then len <= size - off. */
		if (off >= r->size || len > r->size - off)
			continue;
		return r->host + off;
	}
	return NULL;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len)
{
	const void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	if (len)
		memcpy(dst, p, len);
	return 0;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len)
{
	void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return -EFAULT;
	if (len)
		memcpy(p, src, len);
	return 0;
}
