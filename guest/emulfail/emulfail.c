// SPDX-License-Identifier: MIT
/*
 * Executes, at CPL0, an instruction the in-kernel emulator of a KVM-on-PVM
 * host cannot emulate, so the VMM's crash report can be checked:
 *   insn=cx16     lock cmpxchg16b
 *   insn=xgetbv   xgetbv (only with CR4.OSXSAVE set; set here)
 * On hardware KVM both simply execute; the guest then exits 0.
 */
#include "guest.h"

static void do_cx16(void)
{
	static uint64_t target[2] __attribute__((aligned(16)));
	uint64_t lo = 0, hi = 0;

	__asm__ volatile("lock cmpxchg16b %0"
			 : "+m"(target[0]), "+a"(lo), "+d"(hi)
			 : "b"(1ul), "c"(2ul)
			 : "memory", "cc");
}

static void do_xgetbv(void)
{
	uint32_t lo, hi;
	uint64_t cr4;

	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | (1ul << 18)));
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	(void)lo;
	(void)hi;
}

int main(void)
{
	const char *insn;
	size_t len;

	if (cmdline_get("insn", &insn, &len))
		PANIC("emulfail: need insn=cx16|xgetbv on the command line");
	printf("emulfail: executing %.*s at CPL0\n", (int)len, insn);
	if (len == 4 && !strncmp(insn, "cx16", 4))
		do_cx16();
	else if (len == 6 && !strncmp(insn, "xgetbv", 6))
		do_xgetbv();
	else
		PANIC("emulfail: unknown insn=%.*s", (int)len, insn);
	printf("emulfail: the instruction executed\n");
	return 0;
}
