// SPDX-License-Identifier: MIT
/*
 * The bzImage loader (vmm/bzimage.c): bzimage_load on any image, with the
 * image's tail as initrd. Checked: what it loaded lies in RAM with the
 * entry 0x200 past the load address and the zero page where layout.h puts
 * it; refusals name what was wrong in one line.
 */
#include <stdlib.h>

#include "tests/fuzz/fuzz_loader.h"
#include "vmm/bzimage.h"
#include "vmm/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem *m = fuzz_loader_ram();
	struct bzimage_boot b;
	struct errbuf err = {0};
	size_t initrd_len;
	uint8_t *image = fuzz_loader_image(data, size, &initrd_len);
	struct bzimage_args a = {.cmdline = "console=ttyS0", .rsdp = 0xe0000};
	int ret;

	a.initrd = image + size - initrd_len;
	a.initrd_len = initrd_len;
	ret = bzimage_load(m, image, size, &a, &b, &err);
	if (ret < 0) {
		fuzz_check_msg("bzimage_load", err.msg);
		goto out;
	}
	if (b.load_end <= b.load_addr || b.load_end > FUZZ_LOADER_RAM ||
	    b.entry != b.load_addr + 0x200 || b.boot_params != LAYOUT_ZERO_PAGE ||
	    (b.initrd_addr && (b.initrd_addr < b.load_end || b.initrd_addr % 4096)))
		fuzz_fail("loaded [%#llx, %#llx) entry %#llx initrd %#llx",
			  (unsigned long long)b.load_addr, (unsigned long long)b.load_end,
			  (unsigned long long)b.entry, (unsigned long long)b.initrd_addr);
	fuzz_loader_clear(0, FUZZ_LOADER_RAM);
out:
	free(image);
	return 0;
}
