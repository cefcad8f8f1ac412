// SPDX-License-Identifier: MIT
/*
 * Linux bzImage boot, 64-bit entry: validate the setup header, load the
 * protected-mode kernel, build the zero page, command line, initrd, GDT and
 * identity page tables. See vmm/bzimage.h for what is accepted and what the
 * guest gets.
 *
 * Fields are read with memcpy (the file is a byte array, its fields are
 * unaligned); the header is range-checked before any field past the magic
 * is read, and nothing is written to guest RAM before every check passed.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "vmm/bzimage.h"
#include "vmm/e820.h"
#include "vmm/layout.h"

const uint64_t bzimage_gdt[BZ_GDT_ENTRIES] = {
    /* base 0, limit 0xfffff 4 KiB pages (G), L=1 D=0, P, DPL 0, S, type 0xb */
    [BZ_GDT_CS / 8] = 0x00af9b000000ffffULL,
    /* base 0, limit 4 GiB (G), D=1, P, DPL 0, S, type 0x3 (read/write, accessed) */
    [BZ_GDT_DS / 8] = 0x00cf93000000ffffULL,
    /* base 0, limit 0x67, P, DPL 0, system type 0xb (busy 64-bit TSS); the
     * second half (base bits 63:32) is zero */
    [BZ_GDT_TR / 8] = 0x00008b0000000067ULL,
};

_Static_assert(LAYOUT_LINUX_GDT + sizeof(bzimage_gdt) <= LAYOUT_ZERO_PAGE &&
		   LAYOUT_ZERO_PAGE + BZ_ZERO_PAGE_SIZE <= LAYOUT_LINUX_PML4 &&
		   LAYOUT_LINUX_PML4 + 0x1000 == LAYOUT_LINUX_PDPT &&
		   LAYOUT_LINUX_PDPT + 0x1000 == LAYOUT_LINUX_PD &&
		   LAYOUT_LINUX_PD + 4 * 0x1000 == LAYOUT_LINUX_PT_END &&
		   LAYOUT_LINUX_PT_END <= LAYOUT_LINUX_CMDLINE &&
		   LAYOUT_LINUX_CMDLINE + LAYOUT_LINUX_CMDLINE_MAX <= LAYOUT_LINUX_END &&
		   LAYOUT_LINUX_END <= LAYOUT_LOWMEM_END &&
		   (LAYOUT_BOOT_END <= LAYOUT_LINUX_START || LAYOUT_LINUX_END <= LAYOUT_BOOT_START),
	       "Linux boot structures overlap");
_Static_assert(BZ_HDR_MAX_END <= 2 * 512, "the setup header fits in the smallest setup code");
_Static_assert(E820_MAX_ENTRIES <= BZ_E820_MAX, "e820 table too long for the zero page");
_Static_assert(BZ_E820_TABLE + BZ_E820_MAX * 20 <= BZ_ZERO_PAGE_SIZE, "zero page layout");

#define PTE_P	0x01ULL
#define PTE_RW	0x02ULL
#define PTE_PWT 0x08ULL
#define PTE_PCD 0x10ULL
#define PTE_PS	0x80ULL
#define PAGE_2M (1ULL << 21)

static uint8_t get8(const uint8_t *p, size_t off)
{
	return p[off];
}

static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint32_t get32(const uint8_t *p, size_t off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static void put8(uint8_t *p, size_t off, uint8_t v)
{
	p[off] = v;
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

bool bzimage_probe(const void *image, size_t len)
{
	const uint8_t *p = image;

	return p && len >= BZ_HEADER + 4 && get16(p, BZ_BOOT_FLAG) == BZ_BOOT_FLAG_MAGIC &&
	       !memcmp(p + BZ_HEADER, "HdrS", 4);
}

/* The validated setup header. */
struct bz_hdr {
	uint16_t version;
	size_t hdr_end;	   /* the header is [BZ_HDR_START, hdr_end) */
	size_t setup_size; /* boot sector + setup code: the kernel follows */
	uint64_t kernel_bytes;
	uint32_t init_size, kernel_alignment, cmdline_size, initrd_addr_max;
	uint64_t pref_address;
	bool relocatable;
};

static int check_header(const uint8_t *p, size_t len, struct bz_hdr *h, struct errbuf *err)
{
	unsigned sects;
	uint8_t jump, loadflags, min_align;
	uint16_t xloadflags;
	uint32_t syssize;

	if (!bzimage_probe(p, len))
		return err_set(err, ENOEXEC,
			       "not a bzImage (no 0xaa55 at 0x1fe and \"HdrS\" at 0x202)");
	if (len < BZ_VERSION + 2)
		return err_set(err, ENOEXEC,
			       "bzImage truncated: %zu bytes end inside its setup header", len);
	h->version = get16(p, BZ_VERSION);
	if (h->version < BZ_MIN_VERSION)
		return err_set(
		    err, ENOEXEC,
		    "bzImage boot protocol %u.%02u is older than 2.12, the first with the "
		    "64-bit entry kvmini uses",
		    h->version >> 8, h->version & 0xff);
	if (len < BZ_HDR_MIN_END)
		return err_set(
		    err, ENOEXEC,
		    "bzImage truncated: %zu bytes, a protocol 2.12 setup header ends at %#x", len,
		    BZ_HDR_MIN_END);
	jump = get8(p, BZ_JUMP);
	if (jump != 0xeb)
		return err_set(err, ENOEXEC,
			       "bzImage byte %#x is %#x, not the short jmp (0xeb) that gives the "
			       "setup header's length",
			       BZ_JUMP, jump);
	h->hdr_end = BZ_HEADER + get8(p, BZ_JUMP + 1);
	if (h->hdr_end < BZ_HDR_MIN_END || h->hdr_end > BZ_HDR_MAX_END)
		return err_set(err, ENOEXEC,
			       "bzImage setup header ends at %#zx (jmp at %#x), outside [%#x, %#x]",
			       h->hdr_end, BZ_JUMP, BZ_HDR_MIN_END, BZ_HDR_MAX_END);
	sects = get8(p, BZ_SETUP_SECTS);
	if (sects == 0)
		sects = 4; /* the protocol's rule for old images */
	/* At least 2 sectors: the header (ending by BZ_HDR_MAX_END) is inside. */
	h->setup_size = (sects + 1) * 512;
	if (len < h->setup_size)
		return err_set(
		    err, ENOEXEC,
		    "bzImage truncated: %zu bytes, shorter than its setup code (setup_sects "
		    "%u: %zu bytes)",
		    len, sects, h->setup_size);
	loadflags = get8(p, BZ_LOADFLAGS);
	if (!(loadflags & BZ_LOADED_HIGH))
		return err_set(
		    err, ENOEXEC,
		    "bzImage loadflags %#x lack LOADED_HIGH: a zImage loaded at 0x10000 is "
		    "not supported",
		    loadflags);
	xloadflags = get16(p, BZ_XLOADFLAGS);
	if (!(xloadflags & BZ_XLF_KERNEL_64))
		return err_set(
		    err, ENOEXEC,
		    "bzImage xloadflags %#x lack XLF_KERNEL_64: no 64-bit entry (a 32-bit "
		    "kernel?)",
		    xloadflags);
	syssize = get32(p, BZ_SYSSIZE);
	h->kernel_bytes = (uint64_t)syssize * 16;
	if (syssize == 0)
		return err_set(err, ENOEXEC, "bzImage syssize is 0: no protected-mode kernel");
	if (h->kernel_bytes > len - h->setup_size)
		return err_set(err, ENOEXEC,
			       "bzImage syssize %#" PRIx32 " (%" PRIu64
			       " bytes of kernel after %zu of setup) runs past the end of the file "
			       "(%zu bytes)",
			       syssize, h->kernel_bytes, h->setup_size, len);
	h->kernel_alignment = get32(p, BZ_KERNEL_ALIGNMENT);
	if (h->kernel_alignment == 0 || (h->kernel_alignment & (h->kernel_alignment - 1)))
		return err_set(err, ENOEXEC,
			       "bzImage kernel_alignment %#" PRIx32 " is not a power of two",
			       h->kernel_alignment);
	min_align = get8(p, BZ_MIN_ALIGNMENT);
	if (min_align > 31 || (1ULL << min_align) > h->kernel_alignment)
		return err_set(
		    err, ENOEXEC,
		    "bzImage min_alignment 2^%u is larger than kernel_alignment %#" PRIx32,
		    min_align, h->kernel_alignment);
	h->init_size = get32(p, BZ_INIT_SIZE);
	if (h->init_size < h->kernel_bytes)
		return err_set(err, ENOEXEC,
			       "bzImage init_size %#" PRIx32
			       " is smaller than its protected-mode kernel (%#" PRIx64 " bytes)",
			       h->init_size, h->kernel_bytes);
	h->pref_address = get64(p, BZ_PREF_ADDRESS);
	h->relocatable = get8(p, BZ_RELOCATABLE_KERNEL) != 0;
	h->cmdline_size = get32(p, BZ_CMDLINE_SIZE);
	h->initrd_addr_max = get32(p, BZ_INITRD_ADDR_MAX);
	return 0;
}

/* [addr, addr + size) is RAM at or above 1 MiB and below the PCI hole. */
static bool fits_low(uint64_t low_end, uint64_t addr, uint64_t size)
{
	return addr >= LAYOUT_HIGHMEM && addr <= low_end && size <= low_end - addr;
}

/* The protected-mode kernel's load address, per pref_address and relocatable_kernel. */
static int place_kernel(const struct bz_hdr *h, uint64_t low_end, uint64_t *load,
			struct errbuf *err)
{
	uint64_t addr;

	if (fits_low(low_end, h->pref_address, h->init_size)) {
		*load = h->pref_address;
		return 0;
	}
	if (!h->relocatable)
		return err_set(err, ENOEXEC,
			       "bzImage is not relocatable and needs init_size %#" PRIx32
			       " bytes at pref_address %#" PRIx64
			       ", which is not in RAM from 1 MiB "
			       "below the PCI hole (%" PRIu64 " MiB there): use more --memory",
			       h->init_size, h->pref_address, low_end >> 20);
	addr = ALIGN_UP(LAYOUT_HIGHMEM, h->kernel_alignment);
	if (!fits_low(low_end, addr, h->init_size))
		return err_set(err, ENOEXEC,
			       "bzImage needs init_size %#" PRIx32 " bytes at a %#" PRIx32
			       "-aligned address from 1 MiB, more than the %" PRIu64
			       " MiB of RAM below the PCI hole: use more --memory",
			       h->init_size, h->kernel_alignment, low_end >> 20);
	*load = addr;
	return 0;
}

/* The initrd's GPA: as high as initrd_addr_max and low RAM allow, above the kernel. */
static int place_initrd(const struct bz_hdr *h, uint64_t low_end, uint64_t kernel_end,
			size_t initrd_len, uint64_t *gpa, struct errbuf *err)
{
	uint64_t top = low_end, limit = (uint64_t)h->initrd_addr_max + 1;
	const char *why = "the end of RAM below the PCI hole";

	if (limit < top) {
		top = limit;
		why = "initrd_addr_max + 1";
	}
	if (kernel_end > top || initrd_len > top - kernel_end ||
	    ((top - initrd_len) & ~0xfffULL) < kernel_end)
		return err_set(err, E2BIG,
			       "initrd of %zu bytes does not fit between the kernel's end %#" PRIx64
			       " (load address + init_size) and %#" PRIx64 " (%s): use more "
			       "--memory or a smaller initrd",
			       initrd_len, kernel_end, top, why);
	*gpa = (top - initrd_len) & ~0xfffULL;
	return 0;
}

static void write_page_tables(uint8_t *area)
{
	uint8_t *pml4 = area + (LAYOUT_LINUX_PML4 - LAYOUT_LINUX_START);
	uint8_t *pdpt = area + (LAYOUT_LINUX_PDPT - LAYOUT_LINUX_START);
	uint8_t *pd = area + (LAYOUT_LINUX_PD - LAYOUT_LINUX_START);

	put64(pml4, 0, LAYOUT_LINUX_PDPT | PTE_P | PTE_RW);
	for (unsigned i = 0; i < 4; i++)
		put64(pdpt, i * 8, (LAYOUT_LINUX_PD + i * 0x1000ULL) | PTE_P | PTE_RW);
	for (uint64_t i = 0; i < 4 * 512; i++) {
		uint64_t gpa = i * PAGE_2M, flags = PTE_P | PTE_RW | PTE_PS;

		/* [3 GiB, 4 GiB) holds the PCI hole, IOAPIC and LAPIC: uncached. */
		if (gpa >= 3ULL << 30)
			flags |= PTE_PCD | PTE_PWT;
		put64(pd, i * 8, gpa | flags);
	}
}

static void write_zero_page(uint8_t *zp, const uint8_t *image, const struct bz_hdr *h,
			    const struct guest_mem *m, uint64_t initrd_gpa, size_t initrd_len,
			    uint64_t rsdp)
{
	struct e820_entry e820[E820_MAX_ENTRIES];
	unsigned n = e820_build(m, e820);

	/* The protocol: copy the header as the file has it, then fill in ours. */
	memcpy(zp + BZ_HDR_START, image + BZ_HDR_START, h->hdr_end - BZ_HDR_START);
	put8(zp, BZ_TYPE_OF_LOADER, BZ_TYPE_OF_LOADER_UNDEF);
	put8(zp, BZ_LOADFLAGS, get8(zp, BZ_LOADFLAGS) | BZ_CAN_USE_HEAP);
	put16(zp, BZ_HEAP_END_PTR, BZ_HEAP_END);
	put32(zp, BZ_CMD_LINE_PTR, (uint32_t)LAYOUT_LINUX_CMDLINE);
	put32(zp, BZ_RAMDISK_IMAGE, (uint32_t)initrd_gpa);
	put32(zp, BZ_RAMDISK_SIZE, (uint32_t)initrd_len);
	put64(zp, BZ_SETUP_DATA, 0);
	put64(zp, BZ_ACPI_RSDP_ADDR, rsdp);
	put8(zp, BZ_E820_ENTRIES, (uint8_t)n);
	for (unsigned i = 0; i < n; i++) {
		size_t off = BZ_E820_TABLE + i * 20; /* packed: u64 addr, u64 size, u32 type */

		put64(zp, off, e820[i].addr);
		put64(zp, off + 8, e820[i].size);
		put32(zp, off + 16, e820[i].type);
	}
}

int bzimage_load(struct guest_mem *m, const void *image, size_t len, const struct bzimage_args *a,
		 struct bzimage_boot *b, struct errbuf *err)
{
	const uint8_t *p = image;
	const char *cmdline = a->cmdline ? a->cmdline : "";
	struct bz_hdr h = {0};
	uint64_t low_end, load = 0, initrd_gpa = 0;
	uint8_t *area, *kernel;
	size_t cmdlen;
	int r;

	r = check_header(p, len, &h, err);
	if (r)
		return r;
	area = guest_mem_ptr(m, LAYOUT_LINUX_START, LAYOUT_LINUX_END - LAYOUT_LINUX_START);
	if (!area || m->regions[0].gpa != 0 || m->regions[0].size <= LAYOUT_HIGHMEM)
		return err_set(err, EINVAL, "guest RAM too small for the Linux boot structures");
	low_end = m->regions[0].size; /* low RAM ends at or below the PCI hole */
	r = place_kernel(&h, low_end, &load, err);
	if (r)
		return r;

	cmdlen = strnlen(cmdline, LAYOUT_LINUX_CMDLINE_MAX);
	if (cmdlen >= LAYOUT_LINUX_CMDLINE_MAX)
		return err_set(err, E2BIG, "command line is longer than %llu bytes",
			       LAYOUT_LINUX_CMDLINE_MAX - 1);
	if (cmdlen > h.cmdline_size)
		return err_set(err, E2BIG,
			       "command line is %zu bytes, the kernel takes at most %" PRIu32
			       " (its cmdline_size)",
			       cmdlen, h.cmdline_size);
	if (a->initrd_len) {
		if (!a->initrd)
			return err_set(err, EINVAL, "initrd of %zu bytes has no data",
				       a->initrd_len);
		r = place_initrd(&h, low_end, load + h.init_size, a->initrd_len, &initrd_gpa, err);
		if (r)
			return r;
	}

	/* Everything is checked: write. */
	kernel = guest_mem_ptr(m, load, h.init_size);
	memset(area, 0, LAYOUT_LINUX_END - LAYOUT_LINUX_START);
	memcpy(area + (LAYOUT_LINUX_GDT - LAYOUT_LINUX_START), bzimage_gdt, sizeof(bzimage_gdt));
	write_page_tables(area);
	memcpy(area + (LAYOUT_LINUX_CMDLINE - LAYOUT_LINUX_START), cmdline, cmdlen + 1);
	write_zero_page(area + (LAYOUT_ZERO_PAGE - LAYOUT_LINUX_START), p, &h, m, initrd_gpa,
			a->initrd_len, a->rsdp);
	memcpy(kernel, p + h.setup_size, h.kernel_bytes);
	if (a->initrd_len) {
		r = guest_mem_write(m, initrd_gpa, a->initrd, a->initrd_len);
		if (r)
			return err_set(err, -r, "initrd at %#" PRIx64 " is not in RAM", initrd_gpa);
	}
	*b = (struct bzimage_boot){
	    .entry = load + BZ_ENTRY64_OFFSET,
	    .boot_params = LAYOUT_ZERO_PAGE,
	    .cr3 = LAYOUT_LINUX_PML4,
	    .load_addr = load,
	    .load_end = load + h.init_size,
	    .initrd_addr = initrd_gpa,
	    .version = h.version,
	};
	return 0;
}
