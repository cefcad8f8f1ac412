// SPDX-License-Identifier: MIT
/*
 * Exits with the status given as status=N (decimal or 0x-hex, 0..255) on
 * the command line. 124..255 are outside the guest ABI (kvmini reserves
 * 124..126) but are passed through on purpose, so that a VMM's handling of
 * them can be tested. Missing or invalid: prints why and exits 120.
 *
 * For testing how a VMM stops a VM that does not exit by itself:
 *   hang        never exits: halts with interrupts off (the vCPU sleeps in KVM)
 *   hang=spin   never exits: spins at CPL3 (the vCPU keeps running)
 */
#include "guest.h"

static long spin(void *arg)
{
	while (arg == NULL)
		cpu_relax();
	return 0;
}

int main(void)
{
	const char *how;
	size_t len;
	uint64_t status;
	int r;

	if (!cmdline_get("hang", &how, &len) && len == 4 && !strncmp(how, "spin", 4)) {
		printf("exit: spinning at CPL3 forever (hang=spin)\n");
		user_call(spin, NULL);
	}
	if (cmdline_has("hang")) {
		printf("exit: halting forever (hang)\n");
		for (;;)
			__asm__ volatile("cli; hlt");
	}
	r = cmdline_get_u64("status", &status);
	if (r == -ENOENT)
		PANIC("exit: no status=N on the command line \"%s\"", boot_cmdline());
	if (r || status > 255)
		PANIC("exit: bad status= value on the command line \"%s\" (want 0..255)",
		      boot_cmdline());
	printf("exit: exiting with status %lu\n", status);
	guest_exit(status);
}
