// SPDX-License-Identifier: MIT
/* From entry.S to main(), and out again. */
#include "guest.h"

void boot_main(uint32_t start_info_pa);
void boot_main(uint32_t start_info_pa)
{
	/* First: nothing may write low memory before the boot info is copied. */
	int bad = boot_info_copy(start_info_pa);

	cpu_init(0);
	console_init();
	if (bad)
		PANIC("no valid hvm_start_info at 0x%x (magic must be 0x%x)", start_info_pa,
		      HVM_START_MAGIC);
	boot_info_warn();
	guest_exit(main());
}

void guest_exit(unsigned int status)
{
	outl(GUEST_EXIT_PORT, status);
	/* No debug-exit device: stop this CPU. hlt needs CPL0. */
	for (;;) {
		if (cpl() == 0)
			__asm__ volatile("cli; hlt");
		else
			cpu_relax();
	}
}

void guest_assert_fail(const char *file, int line, const char *expr)
{
	console_panic_mode();
	printf("ASSERT failed at %s:%d: %s\n", file, line, expr);
	guest_exit(GUEST_EXIT_PANIC);
}

void guest_assert_fail_cmp(const char *file, int line, const char *a_expr, const char *op,
			   const char *b_expr, uint64_t a, uint64_t b)
{
	console_panic_mode();
	printf("ASSERT failed at %s:%d: %s %s %s (0x%lx %s 0x%lx, decimal %ld %s %ld)\n", file,
	       line, a_expr, op, b_expr, a, op, b, (long)a, op, (long)b);
	guest_exit(GUEST_EXIT_PANIC);
}

void guest_panic_at(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	console_panic_mode();
	printf("PANIC at %s:%d: ", file, line);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	guest_exit(GUEST_EXIT_PANIC);
}
