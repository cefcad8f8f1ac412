// SPDX-License-Identifier: MIT
/*
 * kvmini's top level: parse the command line, build the VM, run the main
 * AioContext until the VM ends, and turn the reason into the exit status.
 * Only this file ends the process.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "devices/block/block.h"
#include "devices/ivshmem/ivshmem.h"
#include "devices/virtio/virtio.h"
#include "vmm/acpi.h"
#include "vmm/cli.h"
#include "vmm/ctl.h"
#include "vmm/debug_exit.h"
#include "vmm/edu.h"
#include "vmm/fw_cfg.h"
#include "vmm/layout.h"
#include "vmm/i8042.h"
#include "vmm/hyperv_testdev.h"
#include "vmm/intel_iommu.h"
#include "vmm/ioapic.h"
#include "vmm/pc_testdev.h"
#include "vmm/pci.h"
#include "vmm/pci_testdev.h"
#include "vmm/pvpanic.h"
#include "vmm/qmp.h"
#include "vmm/rtc.h"
#include "vmm/sandbox.h"
#include "vmm/serial.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

struct main_state {
	const struct vm_config *cfg;
	struct aio_context *ctx;
	struct qmp_server *qmp;
	struct vm *vm; /* the VM of this boot, or NULL between boots */
	int sig_fd;
	int signo;	/* signal that stopped us, or 0 */
	bool timed_out; /* --timeout expired (it may fire between boots) */
	bool booted_once;
};

/* Main thread: SIGINT/SIGTERM/SIGHUP arrive through a signalfd. */
static void main_signal_ready(void *opaque)
{
	struct main_state *ms = opaque;
	struct signalfd_siginfo si;

	if (read(ms->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (ms->signo == 0)
		ms->signo = (int)si.ssi_signo;
	if (ms->vm)
		vm_request_exit(ms->vm, VM_EXIT_STATUS, 128 + (int)si.ssi_signo);
}

static void main_timeout(void *opaque)
{
	struct main_state *ms = opaque;

	/* Remembered: a guest reset racing with the deadline must not start
	 * a boot that no deadline ends any more. */
	ms->timed_out = true;
	if (ms->vm)
		vm_request_exit(ms->vm, VM_EXIT_STATUS, EXIT_TIMEOUT);
}

/* The VM's event sink: its events go to QMP's clients (none without --qmp). */
static void main_vm_event(void *opaque, const char *name, const char *data_json)
{
	struct main_state *ms = opaque;

	qmp_event(ms->qmp, name, data_json);
}

/*
 * The devices, in the order a snapshot records them: the legacy ones, the
 * PCI host bridge, then the PCI devices: each --disk, each
 * --vhost-user-blk, the virtio-scsi
 * controller (if any --scsi-disk), then each --ivshmem,
 * in command-line order, in slots 1, 2, ...; then the ACPI platform
 * devices, fw_cfg, and pc-testdev, pci-testdev and the CMOS RTC with
 * --testdev (pci-testdev in the next free PCI slot; with --hyperv too the
 * hyperv-testdev; each added after the
 * others, so that the older devices' section names in snapshots stayed
 * as they were). --iommu's IOAPIC and VT-d unit and --edu come before
 * the test devices (such VMs take no snapshots).
 */
static int main_add_devices(struct vm *vm, struct errbuf *err)
{
	static const struct device_ops *const legacy[] = {&serial_ops, &debug_exit_ops, &i8042_ops,
							  &pci_host_ops};
	static const struct device_ops *const platform[] = {&acpi_pm_ops, &pvpanic_ops,
							    &fw_cfg_ops};

	for (size_t i = 0; i < ARRAY_SIZE(legacy); i++) {
		int ret = vm_add_device(vm, legacy[i], NULL, err);

		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < vm->cfg->ndisks; i++) {
		int ret = vm_add_device(vm, &virtio_blk_ops, vm->cfg->disks[i], err);

		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < vm->cfg->nvhost_user_blk; i++) {
		int ret = vm_add_device(vm, &vhost_user_blk_ops, vm->cfg->vhost_user_blks[i], err);

		if (ret < 0)
			return ret;
	}
	if (vm->cfg->nscsi_disks) {
		int ret = vm_add_device(vm, &virtio_scsi_ops, NULL, err);

		if (ret < 0)
			return ret;
	}
	for (unsigned i = 0; i < vm->cfg->nivshmem; i++) {
		const char *opts = vm->cfg->ivshmem[i];
		const struct device_ops *ops = ivshmem_ops_for(opts);
		int ret = ops ? vm_add_device(vm, ops, opts, err)
			      : err_set(err, EINVAL, "--ivshmem '%s': bad options", opts);

		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < ARRAY_SIZE(platform); i++) {
		int ret = vm_add_device(vm, platform[i], NULL, err);

		if (ret < 0)
			return ret;
	}
	/* Only VMs that take no snapshots have these: the device order of
	 * every snapshot stays as it was. */
	if (vm->cfg->iommu) {
		int ret = vm_add_device(vm, &ioapic_ops, NULL, err);

		if (ret < 0)
			return ret;
		ret = vm_add_device(vm, &intel_iommu_ops, NULL, err);
		if (ret < 0)
			return ret;
	}
	if (vm->cfg->edu) {
		int ret = vm_add_device(vm, &edu_ops, NULL, err);

		if (ret < 0)
			return ret;
	}
	if (vm->cfg->testdev) {
		int ret = vm_add_device(vm, &pc_testdev_ops, NULL, err);

		if (ret < 0)
			return ret;
		ret = vm_add_device(vm, &pci_testdev_ops, NULL, err);
		if (ret < 0)
			return ret;
		ret = vm_add_device(vm, &rtc_ops, NULL, err);
		if (ret < 0 || !vm->cfg->hyperv)
			return ret;
		return vm_add_device(vm, &hyperv_testdev_ops, NULL, err);
	}
	return 0;
}

/* The ACPI tables for this VM's CPUs and PCI windows (after the devices
 * are realized: the 64-bit window is what their BARs took). */
static int main_setup_acpi(struct vm *vm, struct errbuf *err)
{
	struct acpi_config ac = {
	    .ncpus = vm->cfg->ncpus,
	    .mmio32_start = LAYOUT_MMIO32_START,
	    .mmio32_end = LAYOUT_IOAPIC,
	    .io_start = PCI_IO_START,
	    .io_end = PCI_IO_END,
	    .cmos_rtc = vm->rtc != NULL,
	    .s3 = vm->rtc != NULL, /* acpi_pm.c sleeps only with an RTC to wake it */
	};

	if (vm->pci) {
		ac.mmio64_start = vm->pci->mmio64_base;
		ac.mmio64_end = vm->pci->next_mmio64 > vm->pci->mmio64_base
				    ? ALIGN_UP(vm->pci->next_mmio64, 1ULL << 30)
				    : vm->pci->mmio64_base;
	}
	return acpi_setup(&vm->mem, &ac, &vm->rsdp, err);
}

/*
 * Boot the VM once (from the kernel, or from the snapshot on the first boot
 * with --incoming) and run until it ends. Returns the exit kind and sets
 * *status; a host error before the guest runs is -errno with @err set.
 */
static int main_run_vm(struct main_state *ms, const struct boot_files *bf, int *status,
		       struct errbuf *err)
{
	const struct vm_config *cfg = ms->cfg;
	bool first_boot = !ms->booted_once;
	bool incoming = cfg->incoming_path && first_boot;
	struct vm vm;
	int ret, kind;

	ret = vm_create(&vm, cfg, ms->ctx, incoming, err);
	if (ret < 0)
		return ret;
	ret = main_add_devices(&vm, err);
	if (ret < 0)
		goto out;
	/* Where the tables are, in RAM built now or restored from a snapshot. */
	vm.facs = acpi_facs_address(ACPI_TABLES_START);
	if (incoming) {
		ret = snapshot_restore(&vm, cfg->incoming_path, err);
	} else {
		ret = main_setup_acpi(&vm, err);
		if (ret == 0)
			ret = vm_load_kernel(&vm, bf, err);
	}
	if (ret < 0)
		goto out;
	ms->booted_once = true;
	ms->vm = &vm;
	vm.events = (struct vm_events){.event = main_vm_event, .opaque = ms};
	qmp_server_set_vm(ms->qmp, &vm);
	if (ms->signo) /* a signal that arrived during a reboot */
		vm_request_exit(&vm, VM_EXIT_STATUS, 128 + ms->signo);
	/* --paused applies to the first boot only, as QEMU's -S. A restored
	 * VM is paused (snapshot_restore): resuming it restarts its devices'
	 * in-flight requests, which then complete whenever the vCPUs run. */
	if (cfg->paused && first_boot) {
		atomic_store(&vm.cpus.pause_req, true);
		vm.run_state = VM_RUN_PAUSED;
	} else {
		vm_resume(&vm);
		vm.run_state = VM_RUN_RUNNING;
	}
	ret = vm_start(&vm, err);
	if (ret < 0) {
		vm_stop(&vm);
		goto out;
	}
	/* Set up: the main loop runs under its allow-list from here on (a
	 * reboot rebuilds the VM under it too). */
	ret = sandbox_enter(SANDBOX_MAIN);
	if (ret < 0) {
		err_set(err, -ret, "cannot enter the sandbox: %s", strerror(-ret));
		vm_stop(&vm);
		goto out;
	}
	while (!vm_exit_requested(&vm))
		aio_poll(ms->ctx, true);
	/*
	 * One more pass for the bottom halves scheduled before the exit: a
	 * device that failed (NEEDS_RESET) schedules its QMP event, then the
	 * guest may see the failure and end before the loop ran that BH. The
	 * exit_lock taken by vm_exit_requested orders the schedule (made
	 * before the guest could end) before this pass's take of the list.
	 */
	aio_poll(ms->ctx, false);
	vm_stop(&vm);
	pthread_mutex_lock(&vm.exit_lock);
	kind = vm.exit_kind;
	*status = vm.exit_status;
	pthread_mutex_unlock(&vm.exit_lock);
	if (kind == VM_EXIT_STATUS && *status == EXIT_TIMEOUT && vm.started)
		vcpu_group_print_where(&vm.cpus, stderr);
	vm.run_state = VM_RUN_SHUTDOWN;
	if (kind != VM_EXIT_RESET)
		qmp_event(ms->qmp, "SHUTDOWN",
			  kind == VM_EXIT_QUIT
			      ? "{\"guest\": false, \"reason\": \"host-qmp-quit\"}"
			      : "{\"guest\": true, \"reason\": \"guest-shutdown\"}");
	else
		qmp_event(ms->qmp, "RESET",
			  *status == VM_RESET_HOST
			      ? "{\"guest\": false, \"reason\": \"host-qmp-system-reset\"}"
			      : "{\"guest\": true, \"reason\": \"guest-reset\"}");
	ret = kind;
out:
	qmp_server_set_vm(ms->qmp, NULL);
	ms->vm = NULL;
	vm_destroy(&vm);
	return ret;
}

/* An iothread or pool worker enters its sandbox; one that cannot would run
 * unconfined, so the process ends (sandbox_init built the programs: only
 * the kernel can refuse here, e.g. out of memory). */
static void main_thread_hook(enum aio_thread_kind kind)
{
	int ret = sandbox_enter(kind == AIO_THREAD_IOTHREAD ? SANDBOX_IOTHREAD : SANDBOX_WORKER);

	if (ret < 0) {
		fprintf(stderr, "kvmini: %s thread: cannot enter the sandbox: %s\n",
			kind == AIO_THREAD_IOTHREAD ? "iothread" : "worker", strerror(-ret));
		_exit(EXIT_HOST_ERROR);
	}
}

static int main_run(const struct vm_config *cfg)
{
	struct main_state ms = {.cfg = cfg, .sig_fd = -1};
	struct aio_timer *timer = NULL;
	struct errbuf err = {{0}};
	struct boot_files bf = {0};
	sigset_t set;
	int ret, status = EXIT_HOST_ERROR;

	/* Bad files are reported before KVM is even opened. */
	if (cfg->kernel && boot_files_open(&bf, cfg, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		return EXIT_HOST_ERROR;
	}

	/* Before any thread: the SIGSYS reporter, rlimits, the thread hook. */
	if (sandbox_init(!cfg->sandbox_off, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		boot_files_close(&bf);
		return EXIT_HOST_ERROR;
	}
	aio_set_thread_hook(main_thread_hook);

	/* vCPU threads inherit this mask; they unblock only their kick signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&set, SIGUSR1);

	ret = aio_context_new(&ms.ctx);
	if (ret < 0) {
		fprintf(stderr, "kvmini: cannot create the event loop: %s\n", strerror(-ret));
		boot_files_close(&bf);
		return EXIT_HOST_ERROR;
	}
	ms.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ms.sig_fd < 0 ||
	    aio_set_fd_handler(ms.ctx, ms.sig_fd, main_signal_ready, NULL, &ms) < 0) {
		fprintf(stderr, "kvmini: cannot watch signals: %s\n", strerror(errno));
		goto out;
	}
	if (cfg->qmp_path &&
	    qmp_server_new(ms.ctx, cfg->qmp_path, cfg->qmp_mode, &ms.qmp, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		goto out;
	}
	if (cfg->timeout_ns) {
		timer = aio_timer_new(ms.ctx, main_timeout, &ms);
		if (!timer) {
			fprintf(stderr, "kvmini: out of memory\n");
			goto out;
		}
		/* One deadline for the whole run, reboots included. */
		aio_timer_mod(timer, aio_clock_ns() + (int64_t)cfg->timeout_ns);
	}
	for (;;) {
		ret = main_run_vm(&ms, &bf, &status, &err);
		if (ret < 0) {
			fprintf(stderr, "kvmini: %s\n", err.msg);
			status = EXIT_HOST_ERROR;
			break;
		}
		if (ret != VM_EXIT_RESET)
			break;
		if (ms.timed_out) {
			ret = VM_EXIT_STATUS;
			status = EXIT_TIMEOUT;
			break;
		}
		if (ms.signo) {
			ret = VM_EXIT_STATUS;
			status = 128 + ms.signo;
			break;
		}
		if (!cfg->reboot && status != VM_RESET_HOST)
			break;
		if (!cfg->kernel) {
			fprintf(
			    stderr,
			    "kvmini: the restored VM was reset; give --kernel to let it reboot\n");
			break;
		}
	}
	if (ret == VM_EXIT_RESET || ret == VM_EXIT_QUIT)
		status = 0;
	if (status == EXIT_TIMEOUT)
		fprintf(stderr, "kvmini: timeout: stopped the VM after %llu s\n",
			(unsigned long long)(cfg->timeout_ns / 1000000000ULL));
	else if (ms.signo && status == 128 + ms.signo)
		fprintf(stderr, "kvmini: stopped the VM on %s\n", strsignal(ms.signo));
out:
	if (timer)
		aio_timer_free(timer);
	qmp_server_free(ms.qmp);
	if (ms.sig_fd >= 0) {
		aio_set_fd_handler(ms.ctx, ms.sig_fd, NULL, NULL, NULL);
		close(ms.sig_fd);
	}
	aio_context_free(ms.ctx);
	boot_files_close(&bf);
	return status;
}

int main(int argc, char **argv)
{
	struct vm_config cfg;
	struct errbuf err = {{0}};
	enum cli_command cmd;

	if (cli_parse(argc, argv, &cmd, &cfg, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		return EXIT_HOST_ERROR;
	}
	switch (cmd) {
	case CLI_HELP:
		cli_print_help(stdout);
		return 0;
	case CLI_VERSION:
		printf("kvmini %s (git %s)\n", KVMINI_VERSION, kvmini_git_rev);
		return 0;
	case CLI_CTL:
		return ctl_main(argc - 2, argv + 2);
	case CLI_SNAPSHOT_INSPECT:
		if (snapshot_inspect(cfg.inspect_path, stdout, cfg.inspect_verify, &err) < 0) {
			fflush(stdout);
			fprintf(stderr, "kvmini: %s\n", err.msg);
			return EXIT_HOST_ERROR;
		}
		return 0;
	case CLI_IVSHMEM_SERVER:
		return ivshmem_server_main(&cfg.ivserver);
	case CLI_RUN:
		break;
	}
	/* Every bad disk option is reported before /dev/kvm is opened. */
	if (disk_config_check(&cfg, &err) < 0 || vhost_user_blk_config_check(&cfg, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		return EXIT_HOST_ERROR;
	}
	return main_run(&cfg);
}
