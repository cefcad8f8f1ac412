/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/sandbox.c: the BPF programs run in a small interpreter
 * (every decision, argument checks, the creator-includes-created rule), then
 * installed for real in forked children (the kernel accepts them, an allowed
 * syscall runs, a forbidden one ends the child with 125 and a message
 * naming the syscall and the thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/sandbox.h"

#define ALLOW  SECCOMP_RET_ALLOW
#define TRAP   SECCOMP_RET_TRAP
#define NR_MAX 460 /* past the last x86_64 syscall */

struct program {
	struct sock_filter insn[SANDBOX_MAX_INSNS];
	int n;
};

static void build(enum sandbox_kind kind, struct program *p)
{
	p->n = sandbox_build(kind, p->insn);
	if (p->n <= 0 || p->n > SANDBOX_MAX_INSNS)
		fail_msg("sandbox_build(%s) = %d", sandbox_kind_name(kind), p->n);
}

/*
 * Classic BPF as seccomp runs it, for the instructions the builder emits;
 * anything else fails the test. Jumps only go forward, so it ends.
 */
static uint32_t run(const struct program *p, const struct seccomp_data *d)
{
	uint32_t a = 0;

	for (int pc = 0; pc < p->n; pc++) {
		const struct sock_filter *f = &p->insn[pc];

		switch (f->code) {
		case BPF_LD | BPF_W | BPF_ABS:
			if (f->k > sizeof(*d) - 4 || f->k % 4)
				fail_msg("pc %d: load at %u", pc, f->k);
			memcpy(&a, (const char *)d + f->k, 4);
			break;
		case BPF_ALU | BPF_AND | BPF_K:
			a &= f->k;
			break;
		case BPF_JMP | BPF_JEQ | BPF_K:
			pc += a == f->k ? f->jt : f->jf;
			break;
		case BPF_JMP | BPF_JGE | BPF_K:
			pc += a >= f->k ? f->jt : f->jf;
			break;
		case BPF_RET | BPF_K:
			return f->k;
		default:
			fail_msg("pc %d: unexpected opcode 0x%x", pc, f->code);
		}
	}
	fail_msg("fell off the end of the program");
	return 0;
}

static uint32_t check(const struct program *p, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct seccomp_data d = {.nr = nr, .arch = AUDIT_ARCH_X86_64, .args = {a0, a1, a2}};

	return run(p, &d);
}

static void test_every_kind_builds(void **state)
{
	struct program p;

	for (int k = 0; k < SANDBOX_NKINDS; k++)
		build((enum sandbox_kind)k, &p);
	assert_int_equal(sandbox_build(SANDBOX_NKINDS, p.insn), -EINVAL);
}

static void test_abi_checks(void **state)
{
	struct program p;
	struct seccomp_data d = {.nr = __NR_write, .arch = AUDIT_ARCH_X86_64};

	build(SANDBOX_MAIN, &p);
	assert_int_equal(run(&p, &d), ALLOW);
	/* i386's write is 4, which x86_64 calls stat: the arch decides. */
	d.arch = AUDIT_ARCH_I386;
	assert_int_equal(run(&p, &d), TRAP);
	d.arch = AUDIT_ARCH_X86_64;
	d.nr = 0x40000000 | __NR_write; /* x32 */
	assert_int_equal(run(&p, &d), TRAP);
}

static void test_vcpu(void **state)
{
	struct program p;

	build(SANDBOX_VCPU, &p);
	assert_int_equal(check(&p, __NR_ioctl, 5, KVM_RUN, 0), ALLOW);
	assert_int_equal(check(&p, __NR_ioctl, 5, KVM_IRQFD, 0), ALLOW);
	/* Only the low 32 bits of a request count (the kernel's is unsigned int). */
	assert_int_equal(check(&p, __NR_ioctl, 5, (1ULL << 32) | KVM_RUN, 0), ALLOW);
	assert_int_equal(check(&p, __NR_ioctl, 5, KVM_CREATE_VM, 0), TRAP);
	assert_int_equal(check(&p, __NR_ioctl, 5, KVM_SET_CPUID2, 0), TRAP);
	assert_int_equal(check(&p, __NR_ioctl, 5, TIOCSTI, 0), TRAP);
	assert_int_equal(check(&p, __NR_write, 1, 0, 0), ALLOW);
	assert_int_equal(check(&p, __NR_futex, 0, 0, 0), ALLOW);
	assert_int_equal(check(&p, __NR_socket, AF_UNIX, SOCK_STREAM, 0), TRAP);
	assert_int_equal(check(&p, __NR_openat, 0, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_clone, CLONE_THREAD | CLONE_VM, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_execve, 0, 0, 0), TRAP);
}

static void test_main(void **state)
{
	struct program p;

	build(SANDBOX_MAIN, &p);
	assert_int_equal(check(&p, __NR_socket, AF_UNIX, SOCK_STREAM, 0), ALLOW);
	assert_int_equal(check(&p, __NR_socket, AF_INET, SOCK_STREAM, 0), TRAP);
	assert_int_equal(check(&p, __NR_socket, AF_NETLINK, SOCK_RAW, 0), TRAP);
	assert_int_equal(check(&p, __NR_ioctl, 3, KVM_CREATE_VM, 0), ALLOW);
	assert_int_equal(check(&p, __NR_ioctl, 3, KVM_RUN, 0), ALLOW); /* vCPUs' */
	assert_int_equal(check(&p, __NR_ioctl, 0, TIOCSTI, 0), TRAP);
	/* Threads only: a clone without CLONE_THREAD is a fork. */
	assert_int_equal(check(&p, __NR_clone, CLONE_VM | CLONE_THREAD | CLONE_SIGHAND, 0, 0),
			 ALLOW);
	assert_int_equal(check(&p, __NR_clone, SIGCHLD, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_clone3, 0, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_fork, 0, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_execve, 0, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_ptrace, 0, 0, 0), TRAP);
	/* No executable memory. */
	assert_int_equal(check(&p, __NR_mmap, 0, 4096, PROT_READ | PROT_WRITE), ALLOW);
	assert_int_equal(check(&p, __NR_mmap, 0, 4096, PROT_READ | PROT_EXEC), TRAP);
	assert_int_equal(check(&p, __NR_mprotect, 0, 4096, PROT_NONE), ALLOW);
	assert_int_equal(check(&p, __NR_mprotect, 0, 4096, PROT_EXEC), TRAP);
	assert_int_equal(check(&p, __NR_prctl, PR_SET_NAME, 0, 0), ALLOW);
	assert_int_equal(check(&p, __NR_prctl, PR_SET_DUMPABLE, 1, 0), TRAP);
	/* New threads stack their filter with seccomp(2), nothing else. */
	assert_int_equal(check(&p, __NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, 0), ALLOW);
	assert_int_equal(check(&p, __NR_seccomp, SECCOMP_GET_ACTION_AVAIL, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_prctl, PR_SET_SECCOMP, 2, 0), TRAP);
}

static void test_worker(void **state)
{
	struct program p;

	build(SANDBOX_WORKER, &p);
	assert_int_equal(check(&p, __NR_pwritev, 3, 0, 1), ALLOW);
	assert_int_equal(check(&p, __NR_fdatasync, 3, 0, 0), ALLOW);
	assert_int_equal(check(&p, __NR_ioctl, 3, KVM_RUN, 0), TRAP);
	/* Only for the SIGSYS handler's terminal restore. */
	assert_int_equal(check(&p, __NR_ioctl, 0, TCSETS, 0), ALLOW);
	assert_int_equal(check(&p, __NR_ioctl, 0, TIOCSTI, 0), TRAP);
	assert_int_equal(check(&p, __NR_clone, CLONE_THREAD, 0, 0), TRAP);
	assert_int_equal(check(&p, __NR_openat, 0, 0, 0), TRAP);
}

/* Every constant the program compares an argument or a number with. */
static int constants(const struct program *p, uint32_t *out, int cap)
{
	int n = 0;

	out[n++] = 0;
	for (int i = 0; i < p->n && n < cap; i++)
		if (p->insn[i].code == (BPF_JMP | BPF_JEQ | BPF_K))
			out[n++] = p->insn[i].k;
	return n;
}

/*
 * A thread runs under its creator's filter too (they stack), so whatever
 * a created kind allows its creator must allow: probe every syscall number
 * with every constant of the created kind's program in every argument.
 */
static void assert_includes(enum sandbox_kind creator, enum sandbox_kind created)
{
	static struct program pc, pd;
	static uint32_t k[SANDBOX_MAX_INSNS];
	int nk;

	build(creator, &pc);
	build(created, &pd);
	nk = constants(&pd, k, SANDBOX_MAX_INSNS);
	for (int nr = 0; nr < NR_MAX; nr++) {
		for (int i = 0; i < nk; i++) {
			struct seccomp_data d = {.nr = nr, .arch = AUDIT_ARCH_X86_64};

			for (int a = 0; a < 6; a++)
				d.args[a] = k[i];
			if (run(&pd, &d) == ALLOW && run(&pc, &d) != ALLOW)
				fail_msg("%s allows syscall %d (arg 0x%x), its creator %s does not",
					 sandbox_kind_name(created), nr, k[i],
					 sandbox_kind_name(creator));
		}
	}
}

static void test_creators_include_created(void **state)
{
	assert_includes(SANDBOX_MAIN, SANDBOX_VCPU);
	assert_includes(SANDBOX_MAIN, SANDBOX_IOTHREAD);
	assert_includes(SANDBOX_IOTHREAD, SANDBOX_WORKER);
	assert_includes(SANDBOX_MAIN, SANDBOX_WORKER);
}

static void test_syscall_names(void **state)
{
	assert_string_equal(sandbox_syscall_name(__NR_ioctl), "ioctl");
	assert_string_equal(sandbox_syscall_name(__NR_socket), "socket");
	assert_string_equal(sandbox_syscall_name(__NR_execve), "execve");
	assert_null(sandbox_syscall_name(-1));
	assert_null(sandbox_syscall_name(100000));
}

/*
 * In a child with every signal blocked: name the thread, sandbox_init,
 * enter @kind's sandbox, run
 * @fn (raw syscalls only: libc might use others), exit 0. Returns the
 * child's wait status and what it wrote to stderr.
 */
static int in_child(enum sandbox_kind kind, void (*fn)(void), const char *selftest, char *err,
		    size_t errsz)
{
	int fds[2], status;
	ssize_t n;
	size_t got = 0;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct errbuf eb;
		sigset_t all;

		/* As iothreads and workers: every signal blocked. */
		sigfillset(&all);
		sigprocmask(SIG_BLOCK, &all, NULL);
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		if (selftest)
			setenv("KVMINI_SANDBOX_SELFTEST", selftest, 1);
		prctl(PR_SET_NAME, "sbtest", 0, 0, 0);
		if (sandbox_init(true, &eb) < 0 || sandbox_enter(kind) < 0)
			syscall(SYS_exit_group, 99);
		fn();
		syscall(SYS_exit_group, 0);
	}
	close(fds[1]);
	while (got + 1 < errsz && (n = read(fds[0], err + got, errsz - 1 - got)) > 0)
		got += (size_t)n;
	err[got] = 0;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void do_allowed_io(void)
{
	static const char msg[] = "";

	/* Allowed syscalls run (and fail as they would unconfined). */
	if (syscall(SYS_write, STDERR_FILENO, msg, 0) != 0)
		syscall(SYS_exit_group, 98);
	if (syscall(SYS_fdatasync, -1) != -1 || errno != EBADF)
		syscall(SYS_exit_group, 97);
}

static void do_socket(void)
{
	syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
}

static void do_x32(void)
{
	syscall(0x40000000 | __NR_getpid);
}

static void do_nothing(void)
{
}

static void test_installed_allows(void **state)
{
	char err[512];
	int st = in_child(SANDBOX_WORKER, do_allowed_io, NULL, err, sizeof(err));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("child status 0x%x, stderr: %s", st, err);
	assert_string_equal(err, "");
}

static void test_installed_traps_with_a_message(void **state)
{
	char err[512];
	int st = in_child(SANDBOX_WORKER, do_socket, NULL, err, sizeof(err));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 125)
		fail_msg("child status 0x%x, stderr: %s", st, err);
	assert_non_null(strstr(err, "kvmini: sandbox: forbidden syscall 41 (socket) in thread "
				    "sbtest (worker filter)"));
	assert_non_null(strstr(err, "--sandbox off"));
	assert_int_equal(strchr(err, '\n') - err + 1, (long)strlen(err)); /* one line */

	st = in_child(SANDBOX_VCPU, do_x32, NULL, err, sizeof(err));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 125);
	assert_non_null(strstr(err, "of the x32 ABI"));
	assert_non_null(strstr(err, "(vcpu filter)"));
}

static void test_selftest_hook(void **state)
{
	char err[512];
	int st = in_child(SANDBOX_IOTHREAD, do_nothing, "iothread", err, sizeof(err));

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 125)
		fail_msg("child status 0x%x, stderr: %s", st, err);
	assert_non_null(strstr(err, "(ioctl) in thread sbtest (iothread filter)"));
	/* Another kind's hook does not fire here. */
	st = in_child(SANDBOX_IOTHREAD, do_nothing, "vcpu", err, sizeof(err));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* A misspelt kind is an error, not silence. */
	st = in_child(SANDBOX_IOTHREAD, do_nothing, "vCPU", err, sizeof(err));
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 99);
}

/* A thread under an inherited filter, before its own sandbox_enter: the
 * filter is installed here without sandbox_enter. */
static void test_trap_before_own_sandbox(void **state)
{
	int fds[2], status;
	char err[512] = "";
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(fds), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		static struct program p;
		struct sock_fprog fp;
		struct errbuf eb;

		dup2(fds[1], STDERR_FILENO);
		if (sandbox_init(true, &eb) < 0)
			syscall(SYS_exit_group, 99);
		p.n = sandbox_build(SANDBOX_MAIN, p.insn);
		fp = (struct sock_fprog){.len = (unsigned short)p.n, .filter = p.insn};
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0)
			syscall(SYS_exit_group, 98);
		syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
		syscall(SYS_exit_group, 0);
	}
	close(fds[1]);
	n = read(fds[0], err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = 0;
	close(fds[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 125)
		fail_msg("child status 0x%x, stderr: %s", status, err);
	assert_non_null(strstr(err, "forbidden syscall 41 (socket) in a thread not yet in its "
				    "sandbox (its creator's filter)"));
}

/* The handler puts back a terminal made raw (as serial.c does). */
static void test_trap_restores_the_terminal(void **state)
{
	struct termios cooked, now;
	int master = posix_openpt(O_RDWR | O_NOCTTY), tty, status;
	pid_t pid;

	assert_true(master >= 0);
	assert_int_equal(grantpt(master), 0);
	assert_int_equal(unlockpt(master), 0);
	tty = open(ptsname(master), O_RDWR | O_NOCTTY);
	assert_true(tty >= 0);
	assert_int_equal(tcgetattr(tty, &cooked), 0);
	assert_true(cooked.c_lflag & ICANON);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct termios raw = cooked;
		struct errbuf eb;
		int devnull = open("/dev/null", O_WRONLY);

		dup2(devnull, STDERR_FILENO);
		raw.c_lflag &= ~(unsigned)(ICANON | ECHO);
		if (sandbox_init(true, &eb) < 0 || tcsetattr(tty, TCSANOW, &raw) < 0)
			syscall(SYS_exit_group, 99);
		sandbox_set_tty_restore(tty, &cooked);
		if (sandbox_enter(SANDBOX_WORKER) < 0)
			syscall(SYS_exit_group, 98);
		syscall(SYS_socket, AF_INET, SOCK_DGRAM, 0);
		syscall(SYS_exit_group, 0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 125);
	assert_int_equal(tcgetattr(tty, &now), 0);
	assert_int_equal(now.c_lflag, cooked.c_lflag);
	close(tty);
	close(master);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_kind_builds),
	    cmocka_unit_test(test_abi_checks),
	    cmocka_unit_test(test_vcpu),
	    cmocka_unit_test(test_main),
	    cmocka_unit_test(test_worker),
	    cmocka_unit_test(test_creators_include_created),
	    cmocka_unit_test(test_syscall_names),
	    cmocka_unit_test(test_installed_allows),
	    cmocka_unit_test(test_installed_traps_with_a_message),
	    cmocka_unit_test(test_selftest_hook),
	    cmocka_unit_test(test_trap_before_own_sandbox),
	    cmocka_unit_test(test_trap_restores_the_terminal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
