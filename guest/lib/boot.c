// SPDX-License-Identifier: MIT
/* Copies of the PVH boot information, command-line parsing, mem_alloc. */
#include "boot.h"
#include "console.h"
#include "guest.h"

extern char __image_start[], __image_end[]; /* guest.ld */

static char cmdline[BOOT_CMDLINE_MAX];
static bool cmdline_cut;
static struct hvm_memmap_table_entry memmap[BOOT_MEMMAP_MAX];
static unsigned int memmap_n, memmap_given;
static uint64_t initrd_pa, initrd_size;
static bool have_initrd;
static uint64_t rsdp_pa;

/* Can [pa, pa + len) be read through the identity map? */
static bool readable(uint64_t pa, uint64_t len)
{
	return pa != 0 && pa < GUEST_MAPPED_END && len <= GUEST_MAPPED_END - pa;
}

int boot_info_copy(uint32_t pa)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)pa;

	if (!readable(pa, sizeof(*si)) || si->magic != HVM_START_MAGIC)
		return -EINVAL;
	if (readable(si->cmdline_paddr, 1)) {
		const char *s = (const char *)si->cmdline_paddr;
		size_t max = GUEST_MAPPED_END - si->cmdline_paddr;
		size_t n = strnlen(s, max < sizeof(cmdline) ? max : sizeof(cmdline));
		if (n == sizeof(cmdline)) {
			n = sizeof(cmdline) - 1;
			cmdline_cut = true;
		}
		memcpy(cmdline, s, n);
	}
	rsdp_pa = si->rsdp_paddr;
	if (si->nr_modules > 0 && readable(si->modlist_paddr, sizeof(struct hvm_modlist_entry))) {
		const struct hvm_modlist_entry *m = (const void *)si->modlist_paddr;
		initrd_pa = m->paddr;
		initrd_size = m->size;
		have_initrd = true;
	}
	if (si->version >= 1 && si->memmap_entries > 0) {
		uint64_t n = si->memmap_entries;
		if (n > BOOT_MEMMAP_MAX)
			n = BOOT_MEMMAP_MAX;
		if (readable(si->memmap_paddr, n * sizeof(memmap[0]))) {
			memcpy(memmap, (const void *)si->memmap_paddr, n * sizeof(memmap[0]));
			memmap_n = n;
			memmap_given = si->memmap_entries;
		}
	}
	return 0;
}

void boot_info_warn(void)
{
	if (cmdline_cut)
		printf("guest: command line cut to %u bytes\n", BOOT_CMDLINE_MAX - 1);
	if (memmap_given > memmap_n)
		printf("guest: memory map has %u entries, using the first %u\n", memmap_given,
		       memmap_n);
}

const char *boot_cmdline(void)
{
	return cmdline;
}

unsigned int boot_memmap_count(void)
{
	return memmap_n;
}

const struct hvm_memmap_table_entry *boot_memmap_entry(unsigned int i)
{
	return i < memmap_n ? &memmap[i] : NULL;
}

uint64_t boot_ram_bytes(void)
{
	uint64_t sum = 0;

	for (unsigned int i = 0; i < memmap_n; i++)
		if (memmap[i].type == MEMMAP_RAM)
			sum += memmap[i].size;
	return sum;
}

int boot_initrd(uint64_t *paddr, uint64_t *size)
{
	if (!have_initrd)
		return -ENOENT;
	*paddr = initrd_pa;
	*size = initrd_size;
	return 0;
}

uint64_t boot_rsdp(void)
{
	return rsdp_pa;
}

uint64_t boot_image_start(void)
{
	return (uint64_t)__image_start;
}

uint64_t boot_image_end(void)
{
	return (uint64_t)__image_end;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

/* The next word at or after *p (length *len, 0 at the end); *p moves past it. */
static const char *next_word(const char **p, size_t *len)
{
	const char *w;

	while (is_space(**p))
		(*p)++;
	w = *p;
	while (**p && !is_space(**p))
		(*p)++;
	*len = *p - w;
	return w;
}

int cmdline_get(const char *key, const char **val, size_t *len)
{
	size_t klen = strlen(key), n;
	const char *p = cmdline, *w;
	int found = -ENOENT;

	for (w = next_word(&p, &n); n; w = next_word(&p, &n)) {
		if (n > klen && !strncmp(w, key, klen) && w[klen] == '=') {
			*val = w + klen + 1;
			*len = n - klen - 1;
			found = 0; /* keep going: the last one wins */
		}
	}
	return found;
}

bool cmdline_has(const char *key)
{
	size_t klen = strlen(key), n;
	const char *p = cmdline, *w;

	for (w = next_word(&p, &n); n; w = next_word(&p, &n))
		if (n >= klen && !strncmp(w, key, klen) && (n == klen || w[klen] == '='))
			return true;
	return false;
}

bool cmdline_listed(const char *key, const char *name, bool dflt)
{
	const char *v;
	size_t len, n = strlen(name);

	if (cmdline_get(key, &v, &len))
		return dflt;
	for (size_t i = 0; i < len;) {
		size_t j = i;
		while (j < len && v[j] != ',')
			j++;
		if (j - i == n && !strncmp(v + i, name, n))
			return true;
		i = j + 1;
	}
	return false;
}

void cmdline_u32_list(const char *key, uint32_t *out, unsigned int *n, unsigned int cap,
		      uint32_t max)
{
	const char *v;
	size_t len, i = 0;
	unsigned int k = 0;

	if (cmdline_get(key, &v, &len))
		return;
	while (i < len && k < cap) {
		size_t j = i;
		uint64_t x;
		while (j < len && v[j] != ',')
			j++;
		if (!parse_u64(v + i, j - i, &x) && x >= 1 && x <= max)
			out[k++] = x;
		i = j + 1;
	}
	if (k)
		*n = k;
}

int parse_u64(const char *s, size_t len, uint64_t *v)
{
	unsigned int base = 10;
	uint64_t r = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		unsigned int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (base == 16 && c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (base == 16 && c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		if (r > (UINT64_MAX - d) / base)
			return -EINVAL;
		r = r * base + d;
	}
	*v = r;
	return 0;
}

int cmdline_get_u64(const char *key, uint64_t *v)
{
	const char *s;
	size_t len;
	int r = cmdline_get(key, &s, &len);

	return r ? r : parse_u64(s, len, v);
}

static uint64_t alloc_next; /* 0 until the first mem_alloc */

/* The RAM entry holding all of [p, p + size) below 4 GiB, or NULL. */
static const struct hvm_memmap_table_entry *ram_holding(uint64_t p, uint64_t size)
{
	for (unsigned int i = 0; i < memmap_n; i++) {
		const struct hvm_memmap_table_entry *e = &memmap[i];
		uint64_t end = e->addr + e->size;
		if (end > GUEST_MAPPED_END)
			end = GUEST_MAPPED_END;
		if (e->type == MEMMAP_RAM && p >= e->addr && p < end && size <= end - p)
			return e;
	}
	return NULL;
}

/* Start of the lowest RAM entry above @p, or 0. */
static uint64_t ram_after(uint64_t p)
{
	uint64_t best = 0;

	for (unsigned int i = 0; i < memmap_n; i++)
		if (memmap[i].type == MEMMAP_RAM && memmap[i].addr > p &&
		    (!best || memmap[i].addr < best))
			best = memmap[i].addr;
	return best;
}

void *mem_alloc(size_t size, size_t align)
{
	uint64_t p = alloc_next ? alloc_next : boot_image_end();

	if (size == 0 || size >= GUEST_MAPPED_END || align == 0 || (align & (align - 1)))
		return NULL;
	while (p && p < GUEST_MAPPED_END) {
		p = (p + align - 1) & ~(uint64_t)(align - 1);
		if (have_initrd && p < initrd_pa + initrd_size && initrd_pa < p + size) {
			p = initrd_pa + initrd_size;
			continue;
		}
		if (ram_holding(p, size)) {
			alloc_next = p + size;
			return (void *)p;
		}
		p = ram_after(p);
	}
	return NULL;
}
