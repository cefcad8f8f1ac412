/* SPDX-License-Identifier: MIT */
/*
 * The sandbox: one seccomp-bpf syscall allow-list per kind of thread, each
 * installed by the thread itself once its setup is done (docs/security.md).
 * A syscall outside the list raises SIGSYS (SECCOMP_RET_TRAP); the handler
 * names the syscall and the thread and ends the process with status 125.
 * The filters are hand-written classic BPF built from the rule tables in
 * sandbox.c (no libseccomp: see docs/security.md for why).
 */
#ifndef KVMINI_SANDBOX_H
#define KVMINI_SANDBOX_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <termios.h>

#include "vmm/util.h"

/*
 * A thread's kind. A thread inherits the filter of the thread that created
 * it and adds its own, so a creator's list must hold every syscall of the
 * threads it creates: main creates vCPU threads and iothreads, an iothread
 * creates pool workers. The tables are built that way (main is the union
 * of all kinds, iothread includes worker); tests/unit/test_sandbox.c checks it.
 */
enum sandbox_kind {
	SANDBOX_MAIN,	  /* the main loop: QMP, signals, stdin, snapshots, reboots */
	SANDBOX_VCPU,	  /* a vCPU thread: KVM_RUN and the device exits it handles */
	SANDBOX_IOTHREAD, /* a block engine's iothread: virtqueues, io_uring */
	SANDBOX_WORKER,	  /* a thread-pool worker: blocking disk I/O */
	SANDBOX_NKINDS,
};

/* A kind's name as the SIGSYS message and KVMINI_SANDBOX_SELFTEST spell it.
 * Pure. */
const char *sandbox_kind_name(enum sandbox_kind kind);

/*
 * What one rule allows: the syscall @nr, with every argument (ANY), or when
 * the low 32 bits of argument @arg are one of @vals (IN: ioctl requests,
 * socket families, prctl options), or when they masked with @mask equal
 * @vals[0] (MASKED: flags that must or must not be set). Only the low
 * 32 bits are compared: every argument checked is an int or unsigned int
 * to the kernel, which ignores the rest.
 */
enum sandbox_op { SANDBOX_ANY, SANDBOX_IN, SANDBOX_MASKED };
struct sandbox_rule {
	int nr;
	enum sandbox_op op;
	unsigned arg; /* 0..5 */
	uint32_t mask;
	const uint32_t *vals;
	unsigned nvals;
};

/* Longest program sandbox_build makes (the kernel's limit is 4096). */
#define SANDBOX_MAX_INSNS 1024

/*
 * Build the program of @kind into @prog (SANDBOX_MAX_INSNS entries):
 * reject a foreign audit arch and x32 numbers, then the kind's rules, then
 * trap. Returns the number of instructions, or -E2BIG. Pure; any thread.
 */
int sandbox_build(enum sandbox_kind kind, struct sock_filter *prog);

/* The name of x86_64 syscall @nr for messages, or NULL when the small table
 * in sandbox.c does not have it. Pure, async-signal-safe. */
const char *sandbox_syscall_name(long nr);

/*
 * Main thread, once, before any other thread exists: remember whether the
 * sandbox is on (@enabled; --sandbox off clears it and does nothing else).
 * When on: set the rlimits (no core dumps: they would hold guest RAM),
 * build every kind's program, install the SIGSYS handler, and read the test
 * hook KVMINI_SANDBOX_SELFTEST=KIND (the first thread of KIND does a
 * forbidden ioctl right after entering its sandbox, so a system test sees
 * the named death). Returns 0 or -errno with @err set.
 */
int sandbox_init(bool enabled, struct errbuf *err);

/*
 * The calling thread enters the sandbox of @kind: PR_SET_NO_NEW_PRIVS,
 * then its filter (stacked on the one it inherited). Call it once the
 * thread's setup is done; a second call on the same thread does nothing.
 * Does nothing when the sandbox is off. Any thread; uses only what
 * sandbox_init built. Returns 0 or -errno (the kernel refused the filter:
 * the caller reports it, as a host error).
 */
int sandbox_enter(enum sandbox_kind kind);

/*
 * Terminal settings to put back on @fd when a forbidden syscall ends the
 * process (the SIGSYS handler does, with TCSETS, which every list allows
 * for this); @fd -1 forgets them. Main thread: serial.c, after it made
 * stdin raw and before it restores it itself.
 */
void sandbox_set_tty_restore(int fd, const struct termios *saved);

#endif
