// SPDX-License-Identifier: MIT
/*
 * Takes an exception on purpose; the runtime reports it and exits 121.
 * kind= on the command line picks it:
 *   pf (default)  read 0x100000000, which is not mapped: #PF, error code 0, cr2 0x100000000
 *   de            divide by zero: #DE
 *   ud            ud2 at CPL0: #UD
 *   gp            read a non-canonical address: #GP(0)
 *   user-pf       the pf read from CPL3 (via user_call): #PF, error code 4
 */
#include "guest.h"

#define UNMAPPED 0x100000000ull

static long read_unmapped(void *arg)
{
	return *(volatile uint64_t *)UNMAPPED;
}

int main(void)
{
	const char *kind = "pf";
	size_t len = 2;
	uint32_t q = 1, zero = 0;

	cmdline_get("kind", &kind, &len);
	printf("fault: taking a \"%.*s\" fault\n", (int)len, kind);
	if (len == 2 && !strncmp(kind, "pf", 2))
		read_unmapped(NULL);
	else if (len == 2 && !strncmp(kind, "de", 2))
		__asm__ volatile("div %2" : "+a"(q), "+d"(zero) : "r"(zero)); /* #DE */
	else if (len == 2 && !strncmp(kind, "ud", 2))
		__asm__ volatile("ud2");
	else if (len == 2 && !strncmp(kind, "gp", 2))
		(void)*(volatile uint64_t *)0x8000000000000000ull;
	else if (len == 7 && !strncmp(kind, "user-pf", 7))
		user_call(read_unmapped, NULL);
	else
		PANIC("fault: unknown kind=%.*s", (int)len, kind);
	printf("fault: no exception was taken\n");
	return 1;
}
