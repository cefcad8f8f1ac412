// SPDX-License-Identifier: MIT
/* vCPU threads: KVM_RUN loop, exit dispatch to the buses, kicks. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/bzimage.h"
#include "vmm/cpuid.h"
#include "vmm/crash.h"
#include "vmm/layout.h"
#include "vmm/pvh.h"
#include "vmm/sandbox.h"
#include "vmm/vcpu.h"

#define SIG_KICK SIGUSR1

static int vcpu_create(struct vcpu_group *g, struct vcpu *vcpu, int id,
		       const struct kvm_cpuid2 *cpuid, int ncpus, struct errbuf *err)
{
	int mmap_size, ret;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->group = g;
	vcpu->id = id;
	vcpu->fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (vcpu->fd < 0)
		return err_set(err, errno, "KVM_CREATE_VCPU %d: %s", id, strerror(errno));
	mmap_size = ioctl(g->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (mmap_size < (int)sizeof(struct kvm_run)) {
		ret = err_set(err, EINVAL, "KVM_GET_VCPU_MMAP_SIZE: %d", mmap_size);
		goto fail_fd;
	}
	vcpu->run = mmap(NULL, (size_t)mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (vcpu->run == MAP_FAILED) {
		vcpu->run = NULL;
		ret = err_set(err, errno, "vcpu %d: mmap kvm_run: %s", id, strerror(errno));
		goto fail_fd;
	}
	vcpu->run_size = (size_t)mmap_size;
	if (cpuid) { /* else restored from a snapshot */
		ret = cpuid_setup_vcpu(vcpu->fd, id, cpuid, ncpus, err);
		if (ret < 0)
			goto fail_run;
	}
	return 0;
fail_run:
	munmap(vcpu->run, vcpu->run_size);
	vcpu->run = NULL;
fail_fd:
	close(vcpu->fd);
	vcpu->fd = -1;
	return ret;
}

static void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->run_size);
	vcpu->run = NULL;
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->fd = -1;
}

static void vcpu_flat_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){
	    .base = 0,
	    .limit = 0xffffffff,
	    .selector = sel,
	    .type = type,
	    .present = 1,
	    .dpl = 0,
	    .db = 1,
	    .s = 1,
	    .l = 0,
	    .g = 1,
	};
}

/* A boot state with flat segments from a loader-written GDT. */
struct vcpu_flat_mode {
	uint16_t cs, ds, tr; /* selectors */
	bool long_mode;	     /* CS.L (64-bit code) instead of CS.D */
	uint64_t gdt;
	uint16_t gdt_limit;
	uint64_t cr0, cr3, cr4, efer;
};

static int vcpu_enter_flat(struct vcpu *vcpu, const struct vcpu_flat_mode *fm,
			   const struct kvm_regs *regs, struct errbuf *err)
{
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return err_set(err, errno, "KVM_GET_SREGS: %s", strerror(errno));
	vcpu_flat_seg(&sregs.cs, fm->cs, 0xb);
	if (fm->long_mode) {
		sregs.cs.l = 1;
		sregs.cs.db = 0; /* L=1 requires D=0 */
	}
	vcpu_flat_seg(&sregs.ds, fm->ds, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	/* A busy TSS (type 0xb): what VM entry wants in TR, 32- or 64-bit. */
	sregs.tr = (struct kvm_segment){
	    .base = 0, .limit = 0x67, .selector = fm->tr, .type = 0xb, .present = 1, .s = 0};
	sregs.ldt = (struct kvm_segment){.type = 0x2, .present = 1, .limit = 0xffff};
	sregs.gdt.base = fm->gdt;
	sregs.gdt.limit = fm->gdt_limit;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	sregs.cr0 = fm->cr0;
	sregs.cr3 = fm->cr3;
	sregs.cr4 = fm->cr4;
	sregs.efer = fm->efer;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return err_set(err, errno, "KVM_SET_SREGS: %s", strerror(errno));
	if (ioctl(vcpu->fd, KVM_SET_REGS, regs) < 0)
		return err_set(err, errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

int vcpu_set_boot_state(struct vcpu *vcpu, uint32_t entry, uint32_t ebx, uint32_t eax,
			struct errbuf *err)
{
	/* PVH and multiboot: 32-bit protected mode, paging off, flat segments
	 * matching the GDT the loader wrote at LAYOUT_GDT (0x08 code, 0x10 data). */
	static const struct vcpu_flat_mode pvh = {
	    .cs = PVH_GDT_CS,
	    .ds = PVH_GDT_DS,
	    .tr = PVH_GDT_TR,
	    .gdt = LAYOUT_GDT,
	    .gdt_limit = PVH_GDT_LIMIT,
	    .cr0 = 0x11, /* PE | ET */
	};
	struct kvm_regs regs = {.rip = entry, .rbx = ebx, .rax = eax, .rflags = 0x2};

	return vcpu_enter_flat(vcpu, &pvh, &regs, err);
}

int vcpu_set_boot_state64(struct vcpu *vcpu, uint64_t entry, uint64_t boot_params, uint64_t cr3,
			  struct errbuf *err)
{
	/* Linux 64-bit entry: long mode, paging on with the loader's identity
	 * map, __BOOT_CS/__BOOT_DS flat as in bzimage_gdt, interrupts off
	 * (EFLAGS.IF clear). */
	const struct vcpu_flat_mode linux64 = {
	    .cs = BZ_GDT_CS,
	    .ds = BZ_GDT_DS,
	    .tr = BZ_GDT_TR,
	    .long_mode = true,
	    .gdt = LAYOUT_LINUX_GDT,
	    .gdt_limit = BZ_GDT_LIMIT,
	    .cr0 = 0x80000011, /* PG | ET | PE */
	    .cr3 = cr3,
	    .cr4 = 0x20,   /* PAE */
	    .efer = 0x500, /* LMA | LME */
	};
	struct kvm_regs regs = {.rip = entry, .rsi = boot_params, .rflags = 0x2};

	return vcpu_enter_flat(vcpu, &linux64, &regs, err);
}

/* Set once by each vCPU thread: which vCPU a device's handler runs on. */
static __thread struct vcpu *vcpu_current;

struct vcpu *vcpu_self(void)
{
	return vcpu_current;
}

int vcpu_sleep_until(struct vcpu *vcpu, const struct timespec *until)
{
	struct vcpu_group *g = vcpu->group;
	sigset_t kick, old;
	int ret = -ECANCELED;

	/* SIG_KICK stays blocked but while in ppoll, so that a kick between
	 * the checks and the sleep is not lost. */
	sigemptyset(&kick);
	sigaddset(&kick, SIG_KICK);
	pthread_sigmask(SIG_BLOCK, &kick, &old);
	while (!atomic_load(&g->stopping)) {
		struct timespec now, rel = {.tv_sec = 3600};

		if (atomic_load(&g->pause_req)) {
			pthread_sigmask(SIG_SETMASK, &old, NULL);
			vcpu_park(vcpu);
			pthread_sigmask(SIG_BLOCK, &kick, NULL);
			continue;
		}
		if (until) {
			clock_gettime(CLOCK_REALTIME, &now);
			if (now.tv_sec > until->tv_sec ||
			    (now.tv_sec == until->tv_sec && now.tv_nsec >= until->tv_nsec)) {
				ret = 0;
				break;
			}
			rel.tv_sec = until->tv_sec - now.tv_sec;
			rel.tv_nsec = until->tv_nsec - now.tv_nsec;
			if (rel.tv_nsec < 0) {
				rel.tv_sec--;
				rel.tv_nsec += 1000000000L;
			}
		}
		ppoll(NULL, 0, &rel, &old);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}

static void vcpu_real_seg(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	*s = (struct kvm_segment){.base = (uint64_t)sel << 4,
				  .limit = 0xffff,
				  .selector = sel,
				  .type = type,
				  .present = 1,
				  .s = 1};
}

int vcpu_enter_real_mode(struct vcpu *vcpu, uint32_t vector, struct errbuf *err)
{
	struct kvm_regs regs = {.rip = vector & 0xf, .rflags = 0x2};
	struct kvm_sregs sregs;

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return err_set(err, errno, "KVM_GET_SREGS: %s", strerror(errno));
	vcpu_real_seg(&sregs.cs, (uint16_t)(vector >> 4), 0xb);
	vcpu_real_seg(&sregs.ds, 0, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.tr = (struct kvm_segment){.limit = 0xffff, .type = 0xb, .present = 1};
	sregs.ldt = (struct kvm_segment){.limit = 0xffff, .type = 0x2, .present = 1};
	sregs.gdt.base = sregs.idt.base = 0;
	sregs.gdt.limit = sregs.idt.limit = 0xffff;
	sregs.cr0 = 0x60000010; /* CD | NW | ET, as at reset */
	sregs.cr2 = sregs.cr3 = sregs.cr4 = sregs.efer = 0;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return err_set(err, errno, "KVM_SET_SREGS: %s", strerror(errno));
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return err_set(err, errno, "KVM_SET_REGS: %s", strerror(errno));
	return 0;
}

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only here to make KVM_RUN return EINTR */
}

void vcpu_kick(struct vcpu *vcpu)
{
	/* immediate_exit covers the window before the thread enters KVM_RUN;
	 * the signal covers a thread already inside it. */
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(vcpu->thread, SIG_KICK);
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* data_offset/size/count come from KVM, not the guest: the page is
	 * sized for them. A string instruction repeats count times. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size) {
		if (!bus_dispatch(vcpu->group->pio, run->io.port, data, run->io.size, is_write) &&
		    !is_write)
			memset(data, 0xff, run->io.size);
	}
}

static void vcpu_handle_mmio(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint32_t len = run->mmio.len;

	if (len == 0 || len > sizeof(run->mmio.data))
		return;
	if (!bus_dispatch(vcpu->group->mmio, run->mmio.phys_addr, run->mmio.data, len,
			  run->mmio.is_write) &&
	    !run->mmio.is_write)
		memset(run->mmio.data, 0xff, len);
}

static const char *vcpu_internal_suberror(uint32_t s)
{
	switch (s) {
	case KVM_INTERNAL_ERROR_EMULATION:
		return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX:
		return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV:
		return "event delivery failed";
	default:
		return "internal error";
	}
}

/* Returns false when the vCPU must stop running. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct vcpu_group *g = vcpu->group;
	struct kvm_run *run = vcpu->run;
	char reason[160];

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		vcpu_handle_mmio(vcpu);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HYPERV:
		if (g->hyperv_exit) {
			g->hyperv_exit(g->opaque, vcpu->id, &run->hyperv);
			return true;
		}
		snprintf(reason, sizeof(reason), "unexpected Hyper-V exit %u", run->hyperv.type);
		crash_report(vcpu->fd, vcpu->id, g->mem, reason);
		break;
	case KVM_EXIT_IOAPIC_EOI:
		if (g->ioapic_eoi) {
			g->ioapic_eoi(g->opaque, run->eoi.vector);
			return true;
		}
		crash_report(vcpu->fd, vcpu->id, g->mem, "unexpected IOAPIC EOI exit");
		break;
	case KVM_EXIT_SHUTDOWN:
		crash_report(vcpu->fd, vcpu->id, g->mem, "triple fault (KVM_EXIT_SHUTDOWN)");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(reason, sizeof(reason), "KVM internal error %u: %s",
			 run->internal.suberror, vcpu_internal_suberror(run->internal.suberror));
		crash_report(vcpu->fd, vcpu->id, g->mem, reason);
		break;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(reason, sizeof(reason),
			 "VM entry failed (hardware_entry_failure_reason 0x%llx)",
			 (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		crash_report(vcpu->fd, vcpu->id, g->mem, reason);
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (run->system_event.type == KVM_SYSTEM_EVENT_RESET) {
			g->end(g->opaque, VCPU_END_RESET);
			return false;
		}
		if (run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			g->end(g->opaque, VCPU_END_SHUTDOWN);
			return false;
		}
		snprintf(reason, sizeof(reason), "unhandled system event %u",
			 run->system_event.type);
		crash_report(vcpu->fd, vcpu->id, g->mem, reason);
		break;
	default:
		snprintf(reason, sizeof(reason), "unhandled KVM exit reason %u", run->exit_reason);
		crash_report(vcpu->fd, vcpu->id, g->mem, reason);
		break;
	}
	g->end(g->opaque, VCPU_END_CRASH);
	return false;
}

void vcpu_park(struct vcpu *vcpu)
{
	struct vcpu_group *g = vcpu->group;

	/* KVM completes an exit's pending port/MMIO read on the next KVM_RUN:
	 * with immediate_exit set it does just that and returns EINTR, so the
	 * vCPU state is at an instruction boundary while parked. */
	/* Completing one access may start another (each step of a `rep outsb`
	 * exits again): handle those until KVM says it is done. */
	for (int i = 0; i < 1 << 16; i++) {
		__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0)
			break; /* EINTR: nothing left pending */
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);

	pthread_mutex_lock(&g->park_lock);
	g->nparked++;
	pthread_cond_broadcast(&g->park_cond);
	while (atomic_load(&g->pause_req) && !atomic_load(&g->stopping))
		pthread_cond_wait(&g->park_cond, &g->park_lock);
	g->nparked--;
	pthread_mutex_unlock(&g->park_lock);
}

/* The thread leaves its loop: a pause no longer waits for it. */
static void vcpu_thread_done(struct vcpu *vcpu)
{
	struct vcpu_group *g = vcpu->group;

	pthread_mutex_lock(&g->park_lock);
	g->nrunning--;
	pthread_cond_broadcast(&g->park_cond);
	pthread_mutex_unlock(&g->park_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vcpu_group *g = vcpu->group;
	struct sigaction sa = {.sa_handler = vcpu_kick_handler}; /* no SA_RESTART */
	sigset_t set;
	char name[16];
	int e;

	vcpu_current = vcpu;
	snprintf(name, sizeof(name), "vcpu%d", vcpu->id);
	pthread_setname_np(pthread_self(), name);
	sigaction(SIG_KICK, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIG_KICK);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	/* Set up: from here on only the vCPU's allow-list. */
	e = sandbox_enter(SANDBOX_VCPU);
	if (e < 0) {
		fprintf(stderr, "kvmini: vcpu %d: cannot enter the sandbox: %s\n", vcpu->id,
			strerror(-e));
		g->end(g->opaque, VCPU_END_HOST_ERROR);
		vcpu_thread_done(vcpu);
		return NULL;
	}

	/* Pairs with the store in vcpu_group_stop(). */
	while (!atomic_load(&g->stopping)) {
		/* Pairs with the store in vcpu_group_pause(). */
		if (atomic_load(&g->pause_req)) {
			vcpu_park(vcpu);
			continue;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			/* EINTR: kicked; EAGAIN: an AP woken by SIPI (retry). */
			if (errno == EINTR || errno == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				continue;
			}
			fprintf(stderr, "kvmini: vcpu %d: KVM_RUN: %s\n", vcpu->id,
				strerror(errno));
			g->end(g->opaque, VCPU_END_HOST_ERROR);
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	vcpu_thread_done(vcpu);
	return NULL;
}

void vcpu_group_init(struct vcpu_group *g)
{
	atomic_init(&g->stopping, false);
	atomic_init(&g->pause_req, false);
	pthread_mutex_init(&g->park_lock, NULL);
	pthread_cond_init(&g->park_cond, NULL);
}

int vcpu_group_create(struct vcpu_group *g, int n, const struct kvm_cpuid2 *cpuid,
		      struct errbuf *err)
{
	g->vcpus = calloc((size_t)n, sizeof(*g->vcpus));
	if (!g->vcpus)
		return err_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < n; i++) {
		int ret = vcpu_create(g, &g->vcpus[i], i, cpuid, n, err);

		if (ret < 0)
			return ret;
		g->n++;
	}
	return 0;
}

void vcpu_group_destroy(struct vcpu_group *g)
{
	for (int i = g->n - 1; i >= 0; i--)
		vcpu_destroy(&g->vcpus[i]);
	g->n = 0;
	free(g->vcpus);
	g->vcpus = NULL;
	pthread_cond_destroy(&g->park_cond);
	pthread_mutex_destroy(&g->park_lock);
}

int vcpu_group_start(struct vcpu_group *g, struct errbuf *err)
{
	for (int i = 0; i < g->n; i++) {
		struct vcpu *v = &g->vcpus[i];
		int e;

		/* Counted before it exists: it may finish before we look again. */
		pthread_mutex_lock(&g->park_lock);
		g->nrunning++;
		pthread_mutex_unlock(&g->park_lock);
		e = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (e) {
			pthread_mutex_lock(&g->park_lock);
			g->nrunning--;
			pthread_mutex_unlock(&g->park_lock);
			return err_set(err, e, "cannot start vCPU %d thread: %s", i, strerror(e));
		}
		v->thread_started = true;
	}
	return 0;
}

void vcpu_group_pause(struct vcpu_group *g)
{
	/* Pairs with the load at the top of the vCPU loop: a vCPU that misses
	 * it is in (or about to enter) KVM_RUN, which the kick ends. */
	atomic_store(&g->pause_req, true);
	for (int i = 0; i < g->n; i++)
		if (g->vcpus[i].thread_started)
			vcpu_kick(&g->vcpus[i]);
	pthread_mutex_lock(&g->park_lock);
	while (g->nparked < g->nrunning)
		pthread_cond_wait(&g->park_cond, &g->park_lock);
	pthread_mutex_unlock(&g->park_lock);
}

void vcpu_group_resume(struct vcpu_group *g)
{
	pthread_mutex_lock(&g->park_lock);
	atomic_store(&g->pause_req, false);
	pthread_cond_broadcast(&g->park_cond);
	pthread_mutex_unlock(&g->park_lock);
}

void vcpu_group_print_where(const struct vcpu_group *g, FILE *out)
{
	for (int i = 0; i < g->n; i++) {
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		struct kvm_mp_state mp = {0};

		if (ioctl(g->vcpus[i].fd, KVM_GET_REGS, &regs) < 0 ||
		    ioctl(g->vcpus[i].fd, KVM_GET_SREGS, &sregs) < 0) {
			fprintf(out, "kvmini: vCPU %d: cannot read its registers: %s\n", i,
				strerror(errno));
			continue;
		}
		ioctl(g->vcpus[i].fd, KVM_GET_MP_STATE, &mp);
		fprintf(out, "kvmini: vCPU %d was at rip 0x%llx (cpl %u, %s, rflags 0x%llx)\n", i,
			(unsigned long long)regs.rip, (unsigned)(sregs.cs.selector & 3),
			mp.mp_state == KVM_MP_STATE_HALTED ? "halted" : "running",
			(unsigned long long)regs.rflags);
	}
}

void vcpu_group_stop(struct vcpu_group *g)
{
	/* Pairs with the load in the vCPU loop: once a thread sees it (or its
	 * KVM_RUN returns through immediate_exit/signal) it leaves. */
	atomic_store(&g->stopping, true);
	pthread_mutex_lock(&g->park_lock);
	pthread_cond_broadcast(&g->park_cond); /* parked vCPUs see stopping */
	pthread_mutex_unlock(&g->park_lock);
	for (int i = 0; i < g->n; i++)
		if (g->vcpus[i].thread_started)
			vcpu_kick(&g->vcpus[i]);
	for (int i = 0; i < g->n; i++) {
		if (g->vcpus[i].thread_started) {
			pthread_join(g->vcpus[i].thread, NULL);
			g->vcpus[i].thread_started = false;
		}
	}
}
