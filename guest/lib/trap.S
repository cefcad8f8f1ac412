/* SPDX-License-Identifier: MIT */
/*
 * Exception/interrupt entry stubs and the CPL0 <-> CPL3 switch.
 *
 * trap_stubs: 256 stubs, 16 bytes apart (trap.c points IDT gate v at
 * trap_stubs + 16 * v). Each pushes a dummy error code where the CPU pushes
 * none, then the vector, and joins trap_common, which saves the GPRs as a
 * struct trap_frame (trap.h) and calls trap_dispatch(frame).
 */
#include "cpu.h"

	.text
	.balign 16
	.globl trap_stubs
trap_stubs:
	.set v, 0
	.rept 256
	.balign 16
	.if (v == 8) || ((v >= 10) && (v <= 14)) || (v == 17) || (v == 21) || (v == 29) || (v == 30)
	/* the CPU pushed an error code */
	.else
	pushq $0
	.endif
	pushq $v
	jmp trap_common
	.set v, v + 1
	.endr

trap_common:
	push %rax
	push %rbx
	push %rcx
	push %rdx
	push %rsi
	push %rdi
	push %rbp
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi			/* 16-byte aligned here: 22 quadwords pushed */
	cld
	call trap_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rbp
	pop %rdi
	pop %rsi
	pop %rdx
	pop %rcx
	pop %rbx
	pop %rax
	add $16, %rsp			/* vector, error code */
	iretq

/*
 * long user_call(long (*fn)(void *), void *arg): run fn(arg) at CPL3 on this
 * CPU's user stack (IOPL 3, interrupts off) and return its result. fn returns
 * into user_return, whose ud2 raises #UD; trap_dispatch recognises that RIP
 * and calls user_resume(result), which continues here on the saved CPL0
 * stack. (`int n` and `syscall` are no use for the way back on our hosts:
 * see docs/guest-abi.md.)
 */
	.globl user_call
user_call:
	push %rbp
	push %rbx
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %gs:CPU_OFF_KERNEL_RSP
	mov %gs:CPU_OFF_USTACK_TOP, %rax
	sub $8, %rax
	movq $user_return, (%rax)	/* fn's return address */
	pushq $(SEL_UDATA | 3)		/* ss */
	push %rax			/* rsp: 8 mod 16, as after a call */
	pushq $0x3002			/* rflags: IOPL 3, IF 0 */
	pushq $(SEL_UCODE | 3)		/* cs */
	push %rdi			/* rip = fn */
	mov %rsi, %rdi
	xor %esi, %esi
	iretq

	.globl user_return
user_return:				/* CPL3: fn's result in %rax */
	ud2

/* void user_resume(long result): CPL0, from trap_dispatch on the trap stack. */
	.globl user_resume
user_resume:
	mov %rdi, %rax
	mov %gs:CPU_OFF_KERNEL_RSP, %rsp
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbx
	pop %rbp
	ret

/*
 * long kernel_call_trap(long (*fn)(void *), void *arg): from CPL3, run
 * fn(arg) at CPL0. The ud2 raises #UD; trap_dispatch recognises this RIP,
 * calls fn(arg) on the trap stack, puts the result in %rax and resumes
 * after the ud2.
 */
	.globl kernel_call_trap, kernel_call_ud2
kernel_call_trap:
kernel_call_ud2:
	ud2
	ret
