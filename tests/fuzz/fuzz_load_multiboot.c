// SPDX-License-Identifier: MIT
/*
 * The multiboot v1 loader (vmm/multiboot.c): multiboot_load on any image,
 * with the image's tail as module 0. Seeds: tests/unit/mb_image.h's ELF32,
 * ELF64 and address-fields images, and guest/mboot's (fuzz.mk). Checked:
 * the entry lies in the loaded range, which lies in RAM; the information
 * structure is where layout.h puts it, with the flags and memory map
 * multiboot.h promises; module 0 is page-aligned above the image and in
 * RAM; refusals name what was wrong in one line.
 */
#include <stdlib.h>

#include "tests/fuzz/fuzz_loader.h"
#include "tests/unit/mb_image.h"
#include "vmm/layout.h"
#include "vmm/multiboot.h"

int fuzz_seeds(const char *dir)
{
	static const char *const names[] = {"elf32", "elf64", "aout"};

	for (int k = MBI_ELF32; k <= MBI_AOUT; k++) {
		struct mbi im = mbi_build(k);

		if (!im.buf)
			fuzz_fail("out of memory");
		fuzz_write_seed(dir, names[k], im.buf, im.len);
		free(im.buf);
	}
	return 0;
}

static uint32_t info32(struct guest_mem *m, uint64_t off)
{
	uint32_t v = 0;

	if (guest_mem_read(m, LAYOUT_MB_INFO + off, &v, sizeof(v)))
		fuzz_fail("information structure not in RAM");
	return v;
}

static void check_boot(struct guest_mem *m, const struct multiboot_boot *b, size_t initrd_len)
{
	uint32_t want = MB_INFO_F_MEMORY | MB_INFO_F_CMDLINE | MB_INFO_F_MODS | MB_INFO_F_MMAP |
			MB_INFO_F_LOADER_NAME;

	if (b->load_low >= b->load_high || b->load_high > FUZZ_LOADER_RAM ||
	    b->entry < b->load_low || b->entry >= b->load_high || b->info != LAYOUT_MB_INFO)
		fuzz_fail("loaded [%#llx, %#llx) entry %#x info %#x",
			  (unsigned long long)b->load_low, (unsigned long long)b->load_high,
			  b->entry, b->info);
	if (info32(m, MB_INFO_FLAGS) != want || info32(m, MB_INFO_MMAP_LENGTH) % MB_MMAP_ENTRY ||
	    info32(m, MB_INFO_MODS_COUNT) != (initrd_len != 0))
		fuzz_fail("information structure flags %#x mmap_length %u mods_count %u",
			  info32(m, MB_INFO_FLAGS), info32(m, MB_INFO_MMAP_LENGTH),
			  info32(m, MB_INFO_MODS_COUNT));
	if (initrd_len &&
	    (b->initrd_addr % 4096 || b->initrd_addr < b->load_high ||
	     b->initrd_addr < LAYOUT_HIGHMEM || b->initrd_addr + initrd_len > FUZZ_LOADER_RAM))
		fuzz_fail("module 0 at %#llx, %zu bytes, image ends at %#llx",
			  (unsigned long long)b->initrd_addr, initrd_len,
			  (unsigned long long)b->load_high);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem *m = fuzz_loader_ram();
	struct multiboot_boot b;
	struct errbuf err = {0};
	size_t initrd_len;
	uint8_t *image = fuzz_loader_image(data, size, &initrd_len);
	struct multiboot_args a = {
	    .kernel_path = "/k/mboot.elf", .cmdline = "console=ttyS0", .initrd_path = "/k/env"};
	int ret;

	a.initrd = image + size - initrd_len;
	a.initrd_len = initrd_len;
	ret = multiboot_load(m, image, size, &a, &b, &err);
	if (ret < 0) {
		fuzz_check_msg("multiboot_load", err.msg);
		goto out;
	}
	check_boot(m, &b, initrd_len);
	fuzz_loader_clear(0, FUZZ_LOADER_RAM);
out:
	free(image);
	return 0;
}
