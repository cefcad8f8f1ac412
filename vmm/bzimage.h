/* SPDX-License-Identifier: MIT */
/*
 * The Linux bzImage loader (bzimage.c): the x86 boot protocol
 * (Documentation/arch/x86/boot.rst in Linux), 64-bit entry. Main thread,
 * before any vCPU runs. The image is trusted no more than the guest: its
 * whole setup header is validated before anything is written to guest RAM,
 * and on error bzimage_load returns -errno with a one-line message in @err
 * naming the field that is wrong.
 */
#ifndef KVMINI_BZIMAGE_H
#define KVMINI_BZIMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/* Offsets into the file and into struct boot_params (the "zero page"),
 * which share the setup header at 0x1f1. Written from the published layout. */
#define BZ_ACPI_RSDP_ADDR 0x070 /* u64, protocol 2.14+ */
#define BZ_E820_ENTRIES	  0x1e8 /* u8 */
#define BZ_SENTINEL	  0x1ef /* u8: the loader zeroes what it does not know */
#define BZ_HDR_START	  0x1f1 /* the setup header */
#define BZ_SETUP_SECTS                                                                             \
	0x1f1 /* u8: 512-byte sectors of setup code after the boot sector; 0 means 4 */
#define BZ_SYSSIZE	      0x1f4 /* u32: protected-mode code, in 16-byte units */
#define BZ_BOOT_FLAG	      0x1fe /* u16: 0xaa55 */
#define BZ_JUMP		      0x200 /* u8 0xeb, then the header's length - 2 */
#define BZ_HEADER	      0x202 /* "HdrS" */
#define BZ_VERSION	      0x206 /* u16: protocol version, e.g. 0x020f */
#define BZ_TYPE_OF_LOADER     0x210 /* u8 */
#define BZ_LOADFLAGS	      0x211 /* u8 */
#define BZ_RAMDISK_IMAGE      0x218 /* u32 */
#define BZ_RAMDISK_SIZE	      0x21c /* u32 */
#define BZ_HEAP_END_PTR	      0x224 /* u16 */
#define BZ_CMD_LINE_PTR	      0x228 /* u32 */
#define BZ_INITRD_ADDR_MAX    0x22c /* u32: highest address the initrd may occupy */
#define BZ_KERNEL_ALIGNMENT   0x230 /* u32 */
#define BZ_RELOCATABLE_KERNEL 0x234 /* u8 */
#define BZ_MIN_ALIGNMENT      0x235 /* u8: log2 */
#define BZ_XLOADFLAGS	      0x236 /* u16 */
#define BZ_CMDLINE_SIZE	      0x238 /* u32: longest command line, without the NUL */
#define BZ_SETUP_DATA	      0x250 /* u64 */
#define BZ_PREF_ADDRESS	      0x258 /* u64 */
#define BZ_INIT_SIZE	      0x260 /* u32: memory the kernel needs from its load address */
#define BZ_HDR_MIN_END	      0x268 /* protocol 2.12's header ends after handover_offset */
#define BZ_HDR_MAX_END	      0x290 /* boot_params has room up to here */
#define BZ_E820_TABLE	      0x2d0 /* struct boot_e820_entry[BZ_E820_MAX] */
#define BZ_E820_MAX	      128
#define BZ_ZERO_PAGE_SIZE     4096

#define BZ_BOOT_FLAG_MAGIC	0xaa55
#define BZ_MIN_VERSION		0x020c /* 2.12: xloadflags, the 64-bit entry */
#define BZ_LOADED_HIGH		0x01   /* loadflags: protected-mode code at 1 MiB+ */
#define BZ_CAN_USE_HEAP		0x80   /* loadflags: heap_end_ptr is valid */
#define BZ_XLF_KERNEL_64	0x0001 /* xloadflags: 64-bit entry at load + 0x200 */
#define BZ_TYPE_OF_LOADER_UNDEF 0xff
#define BZ_ENTRY64_OFFSET	0x200
#define BZ_HEAP_END		0xde00 /* 0xe000 - 0x200, the protocol's usual value */

/*
 * The GDT written at LAYOUT_LINUX_GDT; the vCPU setup
 * (vcpu_set_boot_state64) loads GDTR = {LAYOUT_LINUX_GDT, BZ_GDT_LIMIT} and
 * matching segment registers:
 *   0x00, 0x08  null
 *   0x10  __BOOT_CS: 64-bit code (L=1), base 0, limit 4 GiB, type 0xb, DPL 0
 *   0x18  __BOOT_DS: data, base 0, limit 4 GiB, 32-bit, type 0x3, DPL 0
 *   0x20  TR: 16-byte busy 64-bit TSS descriptor, base 0, limit 0x67
 * (VM entry in long mode wants a busy TSS in TR; Linux loads its own GDT
 * and TR before it uses either.)
 */
#define BZ_GDT_CS      0x10
#define BZ_GDT_DS      0x18
#define BZ_GDT_TR      0x20
#define BZ_GDT_ENTRIES 6 /* the TSS descriptor takes two */
#define BZ_GDT_LIMIT   (BZ_GDT_ENTRIES * 8 - 1)
extern const uint64_t bzimage_gdt[BZ_GDT_ENTRIES];

/*
 * Does @image look like a bzImage (0xaa55 at 0x1fe and "HdrS" at 0x202)?
 * Only the magic: bzimage_load validates the rest. Any thread.
 */
bool bzimage_probe(const void *image, size_t len);

/* What the guest gets besides the kernel. */
struct bzimage_args {
	const char *cmdline; /* NULL means empty */
	const void *initrd;  /* initrd_len bytes, or NULL with 0 */
	size_t initrd_len;
	uint64_t rsdp; /* boot_params.acpi_rsdp_addr: the ACPI RSDP's GPA, 0: none */
};

/* Where things went, for the vCPU setup and for tests. */
struct bzimage_boot {
	uint64_t entry;	      /* 64-bit entry: load_addr + 0x200 (RIP) */
	uint64_t boot_params; /* LAYOUT_ZERO_PAGE (RSI) */
	uint64_t cr3;	      /* LAYOUT_LINUX_PML4 */
	uint64_t load_addr;   /* protected-mode kernel */
	uint64_t load_end;    /* load_addr + init_size */
	uint64_t initrd_addr; /* 0 if none */
	uint16_t version;     /* boot protocol version */
};

/*
 * Load the bzImage @image[0..len) into @m and build what its 64-bit entry
 * needs. Accepted (else -ENOEXEC naming the field): 0xaa55 at 0x1fe,
 * "HdrS"; protocol version >= 2.12; a short jmp at 0x200 whose header end
 * lies in [BZ_HDR_MIN_END, BZ_HDR_MAX_END]; the setup code ((setup_sects,
 * or 4 if 0) + 1 sectors: the header is always inside) in the file; LOADED_HIGH in
 * loadflags; XLF_KERNEL_64 in xloadflags; syssize > 0 with syssize * 16
 * bytes after the setup code in the file (more is ignored: signatures);
 * kernel_alignment a power of two, 2^min_alignment at most that;
 * init_size >= syssize * 16. The kernel needs [load, load + init_size) in
 * RAM at or above 1 MiB and below the PCI hole: load is pref_address if that
 * fits, else (relocatable_kernel set) the lowest kernel_alignment-aligned
 * address from 1 MiB that fits, else -ENOEXEC naming the RAM needed.
 *
 * Written, everything else validated first:
 *   - syssize * 16 bytes of protected-mode code at load (not the rest of
 *     init_size: the kernel clears its own bss);
 *   - the zero page at LAYOUT_ZERO_PAGE: zeroed, the file's setup header
 *     [0x1f1, header end) copied in, then type_of_loader 0xff, loadflags |=
 *     CAN_USE_HEAP with heap_end_ptr BZ_HEAP_END, cmd_line_ptr, ramdisk_image
 *     and ramdisk_size, setup_data 0, acpi_rsdp_addr = @a->rsdp, and the
 *     e820 table = e820_build() (vmm/e820.h), the map PVH guests get;
 *   - the command line at LAYOUT_LINUX_CMDLINE: at most cmdline_size bytes
 *     and LAYOUT_LINUX_CMDLINE_MAX - 1, else -E2BIG;
 *   - the initrd at the highest page-aligned address where it ends at or
 *     below both initrd_addr_max + 1 and the end of low RAM, starting at or
 *     above load + init_size, else -E2BIG ("initrd of N bytes does not fit");
 *   - the GDT above at LAYOUT_LINUX_GDT and page tables at
 *     LAYOUT_LINUX_PML4..LAYOUT_LINUX_PT_END identity-mapping [0, 4 GiB)
 *     with 2 MiB pages (present, writable; [3 GiB, 4 GiB) uncached).
 * -EINVAL if guest RAM is too small for these structures or @a->initrd is
 * NULL with a length. Fills *@b on success.
 */
int bzimage_load(struct guest_mem *m, const void *image, size_t len, const struct bzimage_args *a,
		 struct bzimage_boot *b, struct errbuf *err);

#endif
