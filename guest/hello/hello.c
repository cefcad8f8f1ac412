// SPDX-License-Identifier: MIT
/* The smallest guest: one line on the console, exit 0. */
#include "guest.h"

int main(void)
{
	printf("Hello from kvmini guest\n");
	return 0;
}
