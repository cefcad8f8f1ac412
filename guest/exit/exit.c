// SPDX-License-Identifier: MIT
/*
 * Exits with the status given as status=N (decimal or 0x-hex, 0..255) on
 * the command line. 124..255 are outside the guest ABI (kvmini reserves
 * 124..126) but are passed through on purpose, so that a VMM's handling of
 * them can be tested. Missing or invalid: prints why and exits 120.
 */
#include "guest.h"

int main(void)
{
	uint64_t status;
	int r = cmdline_get_u64("status", &status);

	if (r == -ENOENT)
		PANIC("exit: no status=N on the command line \"%s\"", boot_cmdline());
	if (r || status > 255)
		PANIC("exit: bad status= value on the command line \"%s\" (want 0..255)",
		      boot_cmdline());
	printf("exit: exiting with status %lu\n", status);
	guest_exit(status);
}
