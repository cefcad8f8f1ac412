// SPDX-License-Identifier: MIT
/*
 * The PVH ELF loader (vmm/pvh.c): pvh_load_elf on any image, then, if it
 * loaded, pvh_setup_start_info with the image's tail as initrd. Seeds: the
 * guests of build/guest (fuzz.mk). Checked: a loaded range lies in RAM,
 * clear of kvmini's boot structures, with the entry inside it; refusals
 * name what was wrong in one line.
 */
#include <stdlib.h>

#include "tests/fuzz/fuzz_loader.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct guest_mem *m = fuzz_loader_ram();
	struct pvh_image img;
	struct errbuf err = {0};
	uint64_t start_info;
	size_t initrd_len;
	uint8_t *image = fuzz_loader_image(data, size, &initrd_len);
	int ret;

	ret = pvh_load_elf(m, image, size, &img, &err);
	if (ret < 0) {
		fuzz_check_msg("pvh_load_elf", err.msg);
		goto out;
	}
	if (img.load_low >= img.load_high || img.entry < img.load_low ||
	    img.entry >= img.load_high ||
	    (img.load_low < LAYOUT_BOOT_END && img.load_high > LAYOUT_BOOT_START))
		fuzz_fail("loaded [%#llx, %#llx) entry %#x", (unsigned long long)img.load_low,
			  (unsigned long long)img.load_high, img.entry);
	fuzz_loader_clear(img.load_low, img.load_high);
	ret = pvh_setup_start_info(m, "console=ttyS0", image + size - initrd_len, initrd_len,
				   img.load_high, 0xe0000, &start_info, &err);
	if (ret < 0)
		fuzz_check_msg("pvh_setup_start_info", err.msg);
	else if (start_info < LAYOUT_BOOT_START || start_info >= LAYOUT_BOOT_END)
		fuzz_fail("start_info at %#llx", (unsigned long long)start_info);
	/* The initrd sits at the top of RAM; the boot area is rewritten each time. */
	fuzz_loader_clear(img.load_high, FUZZ_LOADER_RAM);
out:
	free(image);
	return 0;
}
