// SPDX-License-Identifier: MIT
/*
 * The sandbox (sandbox.h, docs/security.md): per-thread-kind seccomp
 * allow-lists in hand-written classic BPF, the SIGSYS reporter, rlimits.
 *
 * The lists were taken from strace of the system tests under musl (what
 * the code calls is not what libc calls: stdio writes with writev, malloc
 * uses brk/mmap/munmap/madvise/mremap, pthread_create maps a stack and
 * guard with mmap+mprotect and clones, pthread_kill is tkill).
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include "vmm/sandbox.h"

#ifndef BLKGETSIZE64
#define BLKGETSIZE64 _IOR(0x12, 114, size_t)
#endif
#define X32_SYSCALL_BIT 0x40000000u

/* ---- the allow-lists ---------------------------------------------------- */

#define ALLOW(name)                                                                                \
	{                                                                                          \
		.nr = __NR_##name, .op = SANDBOX_ANY                                               \
	}
#define ALLOW_IN(name, a, list)                                                                    \
	{                                                                                          \
		.nr = __NR_##name, .op = SANDBOX_IN, .arg = (a), .vals = (list),                   \
		.nvals = ARRAY_SIZE(list)                                                          \
	}
#define ALLOW_MASKED(name, a, m, v)                                                                \
	{                                                                                          \
		.nr = __NR_##name, .op = SANDBOX_MASKED, .arg = (a), .mask = (m),                  \
		.vals = (const uint32_t[]){(v)}, .nvals = 1                                        \
	}

/* Every thread: libc (malloc, stdio, locks, time), signals, leaving. No
 * executable mappings anywhere: kvmini never makes code at run time. */
static const struct sandbox_rule rules_common[] = {
    ALLOW(read),
    ALLOW(write),
    ALLOW(writev),
    ALLOW(close),
    ALLOW(futex),
    ALLOW(exit),
    ALLOW(exit_group),
    ALLOW(restart_syscall),
    ALLOW(rt_sigreturn),
    ALLOW(rt_sigprocmask),
    ALLOW(tkill),
    ALLOW(getpid),
    ALLOW(gettid),
    ALLOW(clock_gettime),
    ALLOW(clock_nanosleep),
    ALLOW(nanosleep),
    ALLOW(sched_yield),
    ALLOW(brk),
    ALLOW_MASKED(mmap, 2, PROT_EXEC, 0),
    ALLOW_MASKED(mprotect, 2, PROT_EXEC, 0),
    ALLOW(munmap),
    ALLOW(mremap),
    ALLOW(madvise),
};

/* Every thread: the SIGSYS handler puts a raw terminal back (TCSETS). */
static const uint32_t tty_ioctls[] = {TCSETS};
static const struct sandbox_rule rules_tty[] = {
    ALLOW_IN(ioctl, 1, tty_ioctls),
};

/* Threads that create threads: the new thread runs under the creator's
 * filter until it has named itself and stacked its own. Threads only
 * (CLONE_THREAD), never a process. */
static const uint32_t prctl_ops[] = {PR_SET_NAME, PR_GET_NAME, PR_SET_NO_NEW_PRIVS};
static const uint32_t seccomp_ops[] = {SECCOMP_SET_MODE_FILTER};
static const struct sandbox_rule rules_creator[] = {
    ALLOW_MASKED(clone, 0, CLONE_THREAD, CLONE_THREAD),
    ALLOW(set_robust_list),
    ALLOW_IN(prctl, 0, prctl_ops),
    ALLOW_IN(seccomp, 0, seccomp_ops),
};

/* vCPU: KVM_RUN, the crash report, the resume from ACPI S3 (registers set
 * on the sleeping vCPU's own thread), and the device work done on the exit
 * (MSI-X routes, irqfds and ioeventfds when the guest moves a BAR or
 * enables vectors, the serial IRQ line, eventfd kicks). */
static const uint32_t vcpu_ioctls[] = {
    KVM_RUN,	    KVM_GET_REGS,  KVM_GET_SREGS,
    KVM_TRANSLATE,  KVM_IRQ_LINE,  KVM_SET_GSI_ROUTING,
    KVM_IRQFD,	    KVM_IOEVENTFD, KVM_SET_USER_MEMORY_REGION,
    KVM_SET_REGS,   KVM_SET_SREGS, KVM_HYPERV_EVENTFD,
    KVM_SIGNAL_MSI, /* --edu, --iommu: edu's MSI, the IOAPIC's and VT-d's */
};
static const struct sandbox_rule rules_vcpu[] = {
    ALLOW_IN(ioctl, 1, vcpu_ioctls),
    /* vhost-user-blk: DRIVER_OK / queue_enable wait for the backend's
     * acknowledgement over its socket, on the vCPU that wrote them. */
    ALLOW(sendmsg),
    ALLOW(recvmsg),
    ALLOW(recvfrom),
    ALLOW(poll),
    ALLOW(ppoll),
    ALLOW(shutdown),
};

/* Pool worker: the blocking disk I/O of aio=threads. */
static const struct sandbox_rule rules_worker[] = {
    ALLOW(pread64), ALLOW(pwrite64),  ALLOW(preadv),	ALLOW(pwritev),
    ALLOW(fsync),   ALLOW(fdatasync), ALLOW(fallocate),
};

/* Iothread: its AioContext (epoll, eventfds, timers), io_uring, coroutine
 * stacks (mmap/mprotect in common), and the pool workers it creates. */
static const struct sandbox_rule rules_iothread[] = {
    ALLOW(epoll_wait), ALLOW(epoll_pwait),    ALLOW(epoll_pwait2),
    ALLOW(epoll_ctl),  ALLOW(io_uring_enter),
};

/*
 * Main loop: QMP (a UNIX socket), signals (signalfd), stdin, snapshots
 * (files: create, write, rename, fsync; restore maps them), and everything
 * a reboot does again: open /dev/kvm and the disks, create the VM and its
 * vCPUs and iothreads, connect to ivshmem servers.
 */
static const uint32_t main_ioctls[] = {
    /* /dev/kvm */
    KVM_GET_API_VERSION,
    KVM_CHECK_EXTENSION,
    KVM_CREATE_VM,
    KVM_GET_VCPU_MMAP_SIZE,
    KVM_GET_SUPPORTED_CPUID,
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_SUPPORTED_HV_CPUID, /* --hyperv */
    /* the VM */
    KVM_SET_TSS_ADDR,
    KVM_SET_IDENTITY_MAP_ADDR,
    KVM_CREATE_IRQCHIP,
    KVM_CREATE_PIT2,
    KVM_CREATE_VCPU,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    /* vCPUs: boot state and the snapshot's vCPU state */
    KVM_SET_CPUID2,
    KVM_GET_CPUID2,
    KVM_ENABLE_CAP, /* --hyperv: the SynIC */
    KVM_SET_REGS,
    KVM_SET_SREGS,
    KVM_GET_MSRS,
    KVM_SET_MSRS,
    KVM_GET_LAPIC,
    KVM_SET_LAPIC,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_VCPU_EVENTS,
    KVM_SET_VCPU_EVENTS,
    KVM_GET_DEBUGREGS,
    KVM_SET_DEBUGREGS,
    KVM_GET_XSAVE,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    /* stdin as a terminal, stdout's line buffering, disk sizes */
    TCGETS,
    TCSETS,
    TIOCGWINSZ,
    BLKGETSIZE64,
};
static const uint32_t socket_families[] = {AF_UNIX};
static const struct sandbox_rule rules_main[] = {
    ALLOW_IN(ioctl, 1, main_ioctls),
    ALLOW(rt_sigaction),
    ALLOW(open),
    ALLOW(openat),
    ALLOW(fstat),
    ALLOW(newfstatat),
    ALLOW(lstat),
    ALLOW(stat),
    ALLOW(lseek),
    ALLOW(fcntl),
    ALLOW(flock),
    ALLOW(ftruncate),
    ALLOW(rename),
    ALLOW(renameat),
    ALLOW(unlink),
    ALLOW(unlinkat),
    ALLOW(chmod),
    ALLOW(fchmod),
    ALLOW(umask),
    ALLOW(getrandom),
    ALLOW(eventfd2),
    ALLOW(signalfd4),
    ALLOW(epoll_create1),
    ALLOW(io_uring_setup),
    ALLOW(io_uring_register),
    ALLOW_IN(socket, 0, socket_families),
    ALLOW(bind),
    ALLOW(listen),
    ALLOW(accept4),
    ALLOW(connect),
    ALLOW(getsockopt),
    ALLOW(sendto),
    ALLOW(sendmsg),
    ALLOW(recvfrom),
    ALLOW(recvmsg),
    ALLOW(poll),
    ALLOW(ppoll),
    ALLOW(shutdown),
    /* vhost-user-blk: guest RAM as a sealed memfd (a reboot makes it anew) */
    ALLOW(memfd_create),
};

struct rule_set {
	const struct sandbox_rule *rules;
	size_t n;
};
#define SET(r)                                                                                     \
	{                                                                                          \
		(r), ARRAY_SIZE(r)                                                                 \
	}

/* Which sets make each kind. A creator holds the sets of what it creates
 * (sandbox.h): main everything, iothread its workers'. Earlier rules are
 * checked first: the vCPU's ioctl (KVM_RUN) leads its list. */
static const struct rule_set kind_sets[SANDBOX_NKINDS][8] = {
    [SANDBOX_MAIN] = {SET(rules_common), SET(rules_creator), SET(rules_main), SET(rules_vcpu),
		      SET(rules_iothread), SET(rules_worker), SET(rules_tty)},
    [SANDBOX_VCPU] = {SET(rules_vcpu), SET(rules_common), SET(rules_tty)},
    [SANDBOX_IOTHREAD] = {SET(rules_common), SET(rules_creator), SET(rules_iothread),
			  SET(rules_worker), SET(rules_tty)},
    [SANDBOX_WORKER] = {SET(rules_common), SET(rules_worker), SET(rules_tty)},
};

static const char *const kind_names[SANDBOX_NKINDS] = {
    [SANDBOX_MAIN] = "main",
    [SANDBOX_VCPU] = "vcpu",
    [SANDBOX_IOTHREAD] = "iothread",
    [SANDBOX_WORKER] = "worker",
};

const char *sandbox_kind_name(enum sandbox_kind kind)
{
	return (unsigned)kind < SANDBOX_NKINDS ? kind_names[kind] : "?";
}

/* ---- the program builder ------------------------------------------------ */

#define MAX_MERGED_RULES 160
#define MAX_MERGED_VALS	 128

/* One syscall's merged rule: every set's values for it together. */
struct merged_rule {
	int nr;
	enum sandbox_op op;
	unsigned arg;
	uint32_t mask;
	uint32_t vals[MAX_MERGED_VALS];
	unsigned nvals;
};

static int merge_rule(struct merged_rule *m, const struct sandbox_rule *r)
{
	if (m->op == SANDBOX_ANY || r->op == SANDBOX_ANY) {
		m->op = SANDBOX_ANY;
		return 0;
	}
	/* Two conditions on one syscall must be the same kind of check on the
	 * same argument: the tables are written that way. */
	if (m->op != r->op || m->arg != r->arg || m->mask != r->mask)
		return -EINVAL;
	for (unsigned i = 0; i < r->nvals; i++) {
		bool have = false;

		for (unsigned j = 0; j < m->nvals; j++)
			have |= m->vals[j] == r->vals[i];
		if (have)
			continue;
		if ((m->op == SANDBOX_MASKED && m->nvals) || m->nvals == MAX_MERGED_VALS)
			return -EINVAL; /* MASKED compares to one value */
		m->vals[m->nvals++] = r->vals[i];
	}
	return 0;
}

static int merge_kind(enum sandbox_kind kind, struct merged_rule *out, size_t *nout)
{
	size_t n = 0;

	for (size_t s = 0; s < ARRAY_SIZE(kind_sets[kind]) && kind_sets[kind][s].rules; s++) {
		for (size_t i = 0; i < kind_sets[kind][s].n; i++) {
			const struct sandbox_rule *r = &kind_sets[kind][s].rules[i];
			size_t j = 0;
			int ret;

			while (j < n && out[j].nr != r->nr)
				j++;
			if (j == n) {
				if (n == MAX_MERGED_RULES)
					return -E2BIG;
				out[n++] = (struct merged_rule){
				    .nr = r->nr, .op = r->op, .arg = r->arg, .mask = r->mask};
			}
			ret = merge_rule(&out[j], r);
			if (ret < 0)
				return ret;
		}
	}
	*nout = n;
	return 0;
}

#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))

struct prog {
	struct sock_filter *insn;
	int n;
};

static void emit(struct prog *p, uint16_t code, uint8_t jt, uint8_t jf, uint32_t k)
{
	if (p->n < SANDBOX_MAX_INSNS)
		p->insn[p->n] = (struct sock_filter){code, jt, jf, k};
	p->n++;
}

/*
 * One rule's block. On entry A holds the syscall number; a block that does
 * not match jumps past itself with A unchanged, a block that matches
 * always returns, so A may be clobbered inside it.
 */
static int emit_rule(struct prog *p, const struct merged_rule *m)
{
	unsigned len; /* instructions after the number check */

	switch (m->op) {
	case SANDBOX_ANY:
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 1, (uint32_t)m->nr);
		emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
		return 0;
	case SANDBOX_IN:
		/* ld arg; jeq v0..vn-1 -> allow; trap; allow */
		len = m->nvals + 3;
		if (len > 255)
			return -E2BIG;
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, (uint8_t)len, (uint32_t)m->nr);
		emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(m->arg));
		for (unsigned i = 0; i < m->nvals; i++)
			emit(p, BPF_JMP | BPF_JEQ | BPF_K, (uint8_t)(m->nvals - i), 0, m->vals[i]);
		emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
		emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
		return 0;
	case SANDBOX_MASKED:
		/* ld arg; and mask; jeq v -> allow; trap; allow */
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 0, 5, (uint32_t)m->nr);
		emit(p, BPF_LD | BPF_W | BPF_ABS, 0, 0, ARG_LO(m->arg));
		emit(p, BPF_ALU | BPF_AND | BPF_K, 0, 0, m->mask);
		emit(p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, m->vals[0]);
		emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
		emit(p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_ALLOW);
		return 0;
	}
	return -EINVAL;
}

int sandbox_build(enum sandbox_kind kind, struct sock_filter *insn)
{
	static struct merged_rule merged[MAX_MERGED_RULES]; /* 80 KB: not on a stack */
	static pthread_mutex_t merged_lock = PTHREAD_MUTEX_INITIALIZER;
	struct prog p = {insn, 0};
	size_t n;
	int ret;

	if ((unsigned)kind >= SANDBOX_NKINDS)
		return -EINVAL;
	pthread_mutex_lock(&merged_lock);
	ret = merge_kind(kind, merged, &n);
	if (ret < 0)
		goto out;
	/* A foreign ABI (i386 int 0x80) has other numbers: trap it. */
	emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, arch));
	emit(&p, BPF_JMP | BPF_JEQ | BPF_K, 1, 0, AUDIT_ARCH_X86_64);
	emit(&p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
	emit(&p, BPF_LD | BPF_W | BPF_ABS, 0, 0, offsetof(struct seccomp_data, nr));
	/* x32 shares the arch value: its numbers carry bit 30. */
	emit(&p, BPF_JMP | BPF_JGE | BPF_K, 0, 1, X32_SYSCALL_BIT);
	emit(&p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
	for (size_t i = 0; i < n; i++) {
		ret = emit_rule(&p, &merged[i]);
		if (ret < 0)
			goto out;
	}
	emit(&p, BPF_RET | BPF_K, 0, 0, SECCOMP_RET_TRAP);
	ret = p.n <= SANDBOX_MAX_INSNS ? p.n : -E2BIG;
out:
	pthread_mutex_unlock(&merged_lock);
	return ret;
}

/* ---- names for the message ---------------------------------------------- */

#define N(name) [__NR_##name] = #name
static const char *const syscall_names[] = {
    N(read),
    N(write),
    N(open),
    N(close),
    N(stat),
    N(fstat),
    N(lstat),
    N(poll),
    N(lseek),
    N(mmap),
    N(mprotect),
    N(munmap),
    N(brk),
    N(rt_sigaction),
    N(rt_sigprocmask),
    N(rt_sigreturn),
    N(ioctl),
    N(pread64),
    N(pwrite64),
    N(readv),
    N(writev),
    N(access),
    N(pipe),
    N(select),
    N(sched_yield),
    N(mremap),
    N(msync),
    N(mincore),
    N(madvise),
    N(dup),
    N(dup2),
    N(pause),
    N(nanosleep),
    N(getpid),
    N(sendfile),
    N(socket),
    N(connect),
    N(accept),
    N(sendto),
    N(recvfrom),
    N(sendmsg),
    N(recvmsg),
    N(shutdown),
    N(bind),
    N(listen),
    N(getsockname),
    N(getpeername),
    N(socketpair),
    N(setsockopt),
    N(getsockopt),
    N(clone),
    N(fork),
    N(vfork),
    N(execve),
    N(exit),
    N(wait4),
    N(kill),
    N(uname),
    N(fcntl),
    N(flock),
    N(fsync),
    N(fdatasync),
    N(truncate),
    N(ftruncate),
    N(getdents),
    N(getcwd),
    N(chdir),
    N(rename),
    N(mkdir),
    N(rmdir),
    N(creat),
    N(link),
    N(unlink),
    N(symlink),
    N(readlink),
    N(chmod),
    N(fchmod),
    N(chown),
    N(umask),
    N(getrlimit),
    N(getuid),
    N(getgid),
    N(setuid),
    N(setgid),
    N(geteuid),
    N(getppid),
    N(sigaltstack),
    N(mknod),
    N(statfs),
    N(fstatfs),
    N(prctl),
    N(arch_prctl),
    N(setrlimit),
    N(chroot),
    N(mount),
    N(umount2),
    N(ptrace),
    N(gettid),
    N(tkill),
    N(futex),
    N(getdents64),
    N(set_tid_address),
    N(restart_syscall),
    N(clock_gettime),
    N(clock_nanosleep),
    N(exit_group),
    N(epoll_wait),
    N(epoll_ctl),
    N(tgkill),
    N(openat),
    N(mkdirat),
    N(newfstatat),
    N(unlinkat),
    N(renameat),
    N(ppoll),
    N(set_robust_list),
    N(splice),
    N(sync_file_range),
    N(epoll_pwait),
    N(signalfd4),
    N(timerfd_create),
    N(eventfd2),
    N(fallocate),
    N(epoll_create1),
    N(preadv),
    N(pwritev),
    N(accept4),
    N(prlimit64),
    N(process_vm_readv),
    N(process_vm_writev),
    N(seccomp),
    N(getrandom),
    N(memfd_create),
    N(bpf),
    N(execveat),
    N(userfaultfd),
    N(membarrier),
    N(copy_file_range),
    N(statx),
    N(io_uring_setup),
    N(io_uring_enter),
    N(io_uring_register),
    N(pidfd_open),
    N(clone3),
    N(epoll_pwait2),
};

const char *sandbox_syscall_name(long nr)
{
	if (nr < 0 || (unsigned long)nr >= ARRAY_SIZE(syscall_names))
		return NULL;
	return syscall_names[nr];
}

/* ---- installing, reporting ---------------------------------------------- */

static bool sandbox_on;
/* Built once by sandbox_init, read-only after: a thread only installs. */
static struct sock_filter progs[SANDBOX_NKINDS][SANDBOX_MAX_INSNS];
static int prog_len[SANDBOX_NKINDS];
static int selftest_kind = -1; /* KVMINI_SANDBOX_SELFTEST, or -1 */
static _Atomic bool selftest_done;

/* A raw terminal to put back on a trap: fd (or -1) published after the
 * settings (release), read in the handler (acquire). */
static struct termios tty_saved;
static _Atomic int tty_fd = -1;

void sandbox_set_tty_restore(int fd, const struct termios *saved)
{
	if (fd >= 0)
		tty_saved = *saved;
	atomic_store_explicit(&tty_fd, fd, memory_order_release);
}

/* The thread's kind and name for the SIGSYS message, set on entry. */
static __thread int thread_kind = -1;
static __thread char thread_name[16];

struct msgbuf {
	char s[256];
	size_t n;
};

static void msg_str(struct msgbuf *m, const char *s)
{
	while (*s && m->n < sizeof(m->s))
		m->s[m->n++] = *s++;
}

static void msg_num(struct msgbuf *m, unsigned long v)
{
	char d[24];
	int i = 0;

	do {
		d[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0 && m->n < sizeof(m->s))
		m->s[m->n++] = d[--i];
}

/* Any thread, in the signal: write(2), TCSETS and exit_group only. */
static void sandbox_sigsys(int sig, siginfo_t *si, void *uc)
{
	struct msgbuf m = {.n = 0};
	const char *name = NULL;
	long nr = si->si_syscall;
	int tty;

	(void)sig;
	(void)uc;
	msg_str(&m, "kvmini: sandbox: forbidden syscall ");
	if (si->si_arch != AUDIT_ARCH_X86_64) {
		msg_str(&m, "of a foreign ABI (audit arch ");
		msg_num(&m, si->si_arch);
		msg_str(&m, ") ");
	} else if ((unsigned long)nr & X32_SYSCALL_BIT) {
		msg_str(&m, "of the x32 ABI ");
	} else {
		name = sandbox_syscall_name(nr);
	}
	msg_num(&m, (unsigned long)nr);
	if (name) {
		msg_str(&m, " (");
		msg_str(&m, name);
		msg_str(&m, ")");
	}
	if (thread_kind >= 0) {
		msg_str(&m, " in thread ");
		msg_str(&m, thread_name[0] ? thread_name : "?");
		msg_str(&m, " (");
		msg_str(&m, sandbox_kind_name((enum sandbox_kind)thread_kind));
		msg_str(&m, " filter)");
	} else {
		/* A new thread before its own sandbox_enter: its creator's. */
		msg_str(&m, " in a thread not yet in its sandbox (its creator's filter)");
	}
	msg_str(&m, ": a kvmini bug; --sandbox off runs without the filters\n");
	if (write(STDERR_FILENO, m.s, m.n) < 0) {
		/* nothing left to tell */
	}
	/* As serial.c would at a normal exit: the terminal is usable again. */
	tty = atomic_load_explicit(&tty_fd, memory_order_acquire);
	if (tty >= 0)
		syscall(SYS_ioctl, tty, TCSETS, &tty_saved);
	/* The raw call: a sanitizer's _exit interceptor would do more. */
	syscall(SYS_exit_group, 125);
}

int sandbox_init(bool enabled, struct errbuf *err)
{
	struct sigaction sa = {.sa_sigaction = sandbox_sigsys, .sa_flags = SA_SIGINFO};
	struct rlimit rl;
	const char *st = getenv("KVMINI_SANDBOX_SELFTEST");

	sandbox_on = enabled;
	if (!enabled)
		return 0; /* debugging: cores too */
	/* A core of kvmini holds the guest's RAM. */
	rl = (struct rlimit){0, 0};
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		return err_set(err, errno, "sandbox: setrlimit RLIMIT_CORE: %s", strerror(errno));
	/* The open-file limit stays what it is, but can no longer be raised. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != rl.rlim_cur) {
		rl.rlim_max = rl.rlim_cur;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return err_set(err, errno, "sandbox: setrlimit RLIMIT_NOFILE: %s",
				       strerror(errno));
	}
	/* A table that does not build is reported here, not in a thread. */
	for (int k = 0; k < SANDBOX_NKINDS; k++) {
		prog_len[k] = sandbox_build((enum sandbox_kind)k, progs[k]);
		if (prog_len[k] < 0)
			return err_set(err, -prog_len[k],
				       "sandbox: the %s filter does not build: %s", kind_names[k],
				       strerror(-prog_len[k]));
	}
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return err_set(err, errno, "sandbox: SIGSYS handler: %s", strerror(errno));
	for (int k = 0; st && k < SANDBOX_NKINDS; k++)
		if (!strcmp(st, kind_names[k]))
			selftest_kind = k;
	if (st && selftest_kind < 0)
		return err_set(err, EINVAL, "KVMINI_SANDBOX_SELFTEST '%s': not a thread kind", st);
	return 0;
}

int sandbox_enter(enum sandbox_kind kind)
{
	struct sock_fprog fprog;
	sigset_t sys;

	if (!sandbox_on || thread_kind >= 0)
		return 0;
	if ((unsigned)kind >= SANDBOX_NKINDS)
		return -EINVAL;
	if (prctl(PR_GET_NAME, thread_name, 0, 0, 0) < 0)
		thread_name[0] = 0;
	thread_name[sizeof(thread_name) - 1] = 0;
	thread_kind = (int)kind;
	fprog = (struct sock_fprog){.len = (unsigned short)prog_len[kind], .filter = progs[kind]};
	/* A trap while SIGSYS is blocked (iothreads and workers block every
	 * signal) would kill the process without the handler's message. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		thread_kind = -1;
		return -errno;
	}
	/* SPEC_ALLOW: without it the kernel turns on Speculative Store Bypass
	 * Disable for the thread, which is for filtered threads that run
	 * untrusted code; kvmini's do not (the guest runs in the VM), and on
	 * vCPU threads it only costs speed. Kernels before 4.17 do not know
	 * the flag: no flag there. */
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, &fprog) <
		0 &&
	    (errno != EINVAL || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0)) {
		thread_kind = -1;
		return -errno;
	}
	/* The test hook: one forbidden ioctl (TIOCSTI, terminal input
	 * injection, allowed nowhere) from the first thread of its kind. */
	if ((int)kind == selftest_kind && !atomic_exchange(&selftest_done, true))
		ioctl(-1, TIOCSTI, "x");
	return 0;
}
