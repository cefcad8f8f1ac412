// SPDX-License-Identifier: MIT
/*
 * Asks for a machine reset through the i8042 (command 0xfe on port 0x64),
 * as Linux's reboot=k does. kvmini ends the VM with status 0, or reboots it
 * with --reboot (then this guest resets again, each boot printing a line).
 */
#include "guest.h"

int main(void)
{
	printf("reset: booted, pulsing the i8042 reset line\n");
	outb(0x64, 0xfe);
	/* The VMM acts on the write; nothing after it should run. */
	for (;;)
		__asm__ volatile("cli; hlt");
}
