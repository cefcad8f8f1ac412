// SPDX-License-Identifier: MIT
/*
 * Runs its compute at CPL3 and talks from there:
 *  1. user_call(compute): writes a line with raw port I/O from CPL3 (IOPL is
 *     3: hardware KVM runs it, KVM-on-PVM raises #GP and guest/lib's handler
 *     performs it), then rounds=N (default 100000000) steps of xorshift64 and
 *     a small floating-point check (work_cpl3.c, compiled with SSE),
 *     printing with printf (kernel_call path);
 *  2. back at CPL0, checks the result came back through user_call;
 *  3. user_call(leave): exits from CPL3 with status = result % 100, so a
 *     test can recompute the status from N.
 * Status 120 if something about the CPL3 round trip is wrong.
 */
#include "cpl3.h"

/* Write @s with raw port I/O from CPL3. Where the host faults it (KVM on
 * PVM), every access raises #GP and guest/lib's #GP handler performs it (an
 * `in`, then one `rep outsb`); with hardware VMX/SVM IOPL 3 just lets it run. */
static void raw_write(const char *s)
{
	size_t n = strlen(s);

	for (int i = 0; i < 100000 && !(inb(COM1_PORT + 5) & 0x20); i++) /* LSR.THRE */
		cpu_relax();
	outsb(COM1_PORT, s, n);
}

static long compute(void *arg)
{
	struct cpl3_work *w = arg;
	uint64_t pio0 = trap_user_pio_count();

	if (cpl() != 3)
		return -1;
	raw_write("cpl3: this line was written by CPL3 port I/O\n");
	printf("cpl3: #GP port-I/O emulations: %lu\n", trap_user_pio_count() - pio0);
	printf("cpl3: running at CPL%u: %lu rounds of xorshift64\n", cpl(), w->rounds);
	w->result = cpl3_xorshift(w->rounds);
	printf("cpl3: result 0x%016lx\n", w->result);
	printf("cpl3: sse %s\n", cpl3_sse_check() ? "ok" : "FAILED");
	return 7;
}

static long leave(void *arg)
{
	printf("cpl3: exiting with status %lu from CPL%u\n", (unsigned long)arg, cpl());
	guest_exit((unsigned long)arg);
}

int main(void)
{
	struct cpl3_work w = {.rounds = 100000000};
	uint64_t v;

	if (!cmdline_get_u64("rounds", &v))
		w.rounds = v;
	ASSERT_EQ(user_call(compute, &w), 7);
	ASSERT_EQ(cpl(), 0);
	printf("cpl3: back at CPL0\n");
	user_call(leave, (void *)(w.result % 100));
	PANIC("cpl3: guest_exit returned");
}
