// SPDX-License-Identifier: MIT
/*
 * Reads one line from the serial console (polling the UART) and prints it
 * back as "echo: LINE", then exits 0: a check that the VMM feeds its stdin
 * to the guest. Gives up after `lines=N` lines (default 1).
 */
#include "guest.h"

#define LSR_DR 0x01

static int getc_poll(void)
{
	while (!(inb(COM1_PORT + 5) & LSR_DR))
		cpu_relax();
	return inb(COM1_PORT);
}

int main(void)
{
	uint64_t lines = 1;
	char buf[128];

	cmdline_get_u64("lines", &lines);
	printf("echo: ready\n");
	for (uint64_t l = 0; l < lines; l++) {
		size_t n = 0;
		int c;

		while ((c = getc_poll()) != '\n' && c != '\r')
			if (n < sizeof(buf) - 1)
				buf[n++] = (char)c;
		buf[n] = '\0';
		printf("echo: %s\n", buf);
	}
	return 0;
}
