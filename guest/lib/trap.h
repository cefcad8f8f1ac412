/* SPDX-License-Identifier: MIT */
/*
 * Exceptions and interrupts. All 256 IDT vectors have an entry stub; the
 * exceptions (0..31) are installed at boot, other vectors when a handler is
 * registered (until then they are not present: delivering one raises #NP).
 *
 * Default behaviour (trap_dispatch):
 *  - #GP(0) from CPL3 on an in/out/ins/outs instruction: the handler performs
 *    the port access at CPL0 and resumes after the instruction (our hosts
 *    raise #GP for CPL3 port I/O to most ports even with IOPL 3);
 *  - #UD at user_return from CPL3: the end of a user_call (user.h);
 *  - #UD at kernel_call_trap from CPL3: a kernel_call (user.h);
 *  - anything else unhandled: print vector name and number, CPU, CPL, RIP,
 *    error code (and CR2 for #PF) and registers, then exit with
 *    GUEST_EXIT_EXCEPTION (121).
 */
#ifndef GUEST_TRAP_H
#define GUEST_TRAP_H

#include <stdint.h>

/* Saved state of the interrupted code, as laid out by trap.S. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error;		   /* error is 0 for vectors without an error code */
	uint64_t rip, cs, rflags, rsp, ss; /* pushed by the CPU */
};

/*
 * A handler runs at CPL0 with interrupts off, on the trap stack if the trap
 * came from CPL3. It may change *f (e.g. rip, rax) to alter how the
 * interrupted code resumes. guest/lib is built without SSE; a handler that
 * uses SSE/x87 must save what it clobbers.
 */
typedef void (*trap_handler_fn)(struct trap_frame *f);

/* Install @fn for @vector (0..255) and mark its IDT gate present. CPL0,
 * any CPU (the IDT is shared). Overrides the default behaviour above. */
void trap_set_handler(unsigned int vector, trap_handler_fn fn);

/* Fill the exception gates; BSP, once, from cpu_init. */
void trap_init(void);

/* IDT descriptor for lidt (shared by all CPUs). */
struct idt_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));
extern const struct idt_ptr trap_idt_ptr;

/* Number of CPL3 port accesses the #GP handler has performed (all CPUs). */
uint64_t trap_user_pio_count(void);

/* Print @f as an unhandled trap and exit 121. Exported for handlers that
 * decide a trap is fatal after all. */
_Noreturn void trap_fatal(const struct trap_frame *f);

#endif
