/* SPDX-License-Identifier: MIT */
/*
 * Running code at CPL3.
 *
 * On our hosts (KVM on PVM) CPL0 code is emulated at 1-3 M instructions/s
 * while CPL3 code runs natively, about 2000x faster: put compute at CPL3.
 * CPL3 here is for speed, not protection: user code sees the same identity
 * map (all pages are user-accessible), runs with IOPL 3 and interrupts off,
 * and may call any guest/lib function (printf, guest_exit, ...). Port I/O
 * that the host refuses at CPL3 is performed by the #GP handler (trap.h).
 * See docs/guest-abi.md for the measurements behind this.
 */
#ifndef GUEST_USER_H
#define GUEST_USER_H

typedef long (*user_fn)(void *arg);

/*
 * Run @fn(@arg) at CPL3 on this CPU's user stack (USTACK_SIZE bytes) and
 * return what it returns. Call at CPL0 only, on any CPU after cpu_init; not
 * reentrant (no user_call from inside @fn). If @fn faults, the fault is
 * reported and the guest exits 121 like any unhandled exception.
 */
long user_call(user_fn fn, void *arg);

/*
 * Run @fn(@arg) at CPL0 and return its result: the way back for CPL3 code
 * that needs privileged work done in one go (the console uses it so that a
 * whole printf costs one trap instead of one #GP per port access). From
 * CPL3 it costs one #UD trap (`int n` and `syscall` are no use on our
 * hosts); from CPL0 it is a plain call. @fn runs with interrupts off, on the
 * trap stack (TRAPSTACK_SIZE) when called from CPL3, and must not use SSE.
 */
long kernel_call(user_fn fn, void *arg);

#endif
