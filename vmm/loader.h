/* SPDX-License-Identifier: MIT */
/*
 * Boot loaders. Main thread, before any vCPU runs. Each validates its whole
 * input (a kernel or initrd file is trusted no more than the guest) and on
 * error returns -errno with a one-line message in @err; nothing outside
 * guest RAM is ever written.
 */
#ifndef KVMINI_LOADER_H
#define KVMINI_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/*
 * Load an ELF (ELFCLASS64 or ELFCLASS32, x86) carrying a Xen PVH note
 * (XEN_ELFNOTE_PHYS32_ENTRY) from @image[0..len): copy its PT_LOAD segments
 * (zero-filling memsz beyond filesz) to their physical addresses and return
 * the 32-bit PVH entry point and the loaded range in *img.
 * Rejected: truncated or inconsistent headers, wrong class/machine/type,
 * no PVH note, segments outside RAM, overlapping each other, or overlapping
 * [LAYOUT_BOOT_START, LAYOUT_BOOT_END).
 */
struct pvh_image {
	uint32_t entry;	    /* XEN_ELFNOTE_PHYS32_ENTRY */
	uint64_t load_low;  /* lowest GPA written */
	uint64_t load_high; /* highest GPA written, exclusive */
};
int pvh_load_elf(struct guest_mem *m, const void *image, size_t len, struct pvh_image *img,
		 struct errbuf *err);

/*
 * Write the boot structures: hvm_start_info (version 1) at LAYOUT_START_INFO,
 * an e820-style memory map of @m, the command line (rejected if longer than
 * LAYOUT_CMDLINE_MAX - 1), and, if @initrd_len > 0, the initrd copied to the
 * top of RAM below 4 GiB (page aligned, above @kernel_end, the image's load_high) as module 0.
 * Returns the start_info GPA in *start_info.
 */
int pvh_setup_start_info(struct guest_mem *m, const char *cmdline, const void *initrd,
			 size_t initrd_len, uint64_t kernel_end, uint64_t *start_info,
			 struct errbuf *err);

#endif
