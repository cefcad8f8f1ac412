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

#include "devices/virtio/virtio.h"
#include "vmm/legacy.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

#ifndef KVMINI_VERSION
#define KVMINI_VERSION "0.1"
#endif

struct main_state {
	struct vm *vm;
	int sig_fd;
	int signo; /* signal that stopped us, or 0 */
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

	if (ms->vm)
		vm_request_exit(ms->vm, VM_EXIT_STATUS, EXIT_TIMEOUT);
}

/*
 * Boot the VM once and run until it ends. Returns the exit kind and sets
 * *status; a host error before the guest runs is -errno with @err set.
 */
static int main_run_vm(struct main_state *ms, const struct vm_config *cfg,
		       const struct boot_files *bf, struct aio_context *ctx, int *status,
		       struct errbuf *err)
{
	static const struct device_ops *const legacy[] = {&serial_ops, &debug_exit_ops, &i8042_ops,
							  &pci_host_ops};
	struct vm vm;
	int ret, kind;

	ret = vm_create(&vm, cfg, ctx, err);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(legacy); i++) {
		ret = vm_add_device(&vm, legacy[i], NULL, err);
		if (ret < 0)
			goto out;
	}
	/* PCI devices after the host bridge, in command-line order (slots 1, 2, ...). */
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		ret = vm_add_device(&vm, &virtio_blk_ops, cfg->disks[i], err);
		if (ret < 0)
			goto out;
	}
	ret = vm_load_kernel(&vm, bf, err);
	if (ret < 0)
		goto out;
	ms->vm = &vm;
	if (ms->signo) /* a signal that arrived during a reboot */
		vm_request_exit(&vm, VM_EXIT_STATUS, 128 + ms->signo);
	ret = vm_start(&vm, err);
	if (ret < 0) {
		vm_stop(&vm);
		goto out;
	}
	while (!vm_exit_requested(&vm))
		aio_poll(ctx, true);
	vm_stop(&vm);
	pthread_mutex_lock(&vm.exit_lock);
	kind = vm.exit_kind;
	*status = vm.exit_status;
	pthread_mutex_unlock(&vm.exit_lock);
	ret = kind;
out:
	ms->vm = NULL;
	vm_destroy(&vm);
	return ret;
}

static int main_run(const struct vm_config *cfg)
{
	struct main_state ms = {.sig_fd = -1};
	struct aio_context *ctx = NULL;
	struct aio_timer *timer = NULL;
	struct errbuf err = {{0}};
	struct boot_files bf;
	sigset_t set;
	int ret, status = EXIT_HOST_ERROR;

	/* Bad files are reported before KVM is even opened. */
	if (boot_files_open(&bf, cfg, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		return EXIT_HOST_ERROR;
	}

	/* vCPU threads inherit this mask; they unblock only their kick signal. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&set, SIGUSR1);

	ret = aio_context_new(&ctx);
	if (ret < 0) {
		fprintf(stderr, "kvmini: cannot create the event loop: %s\n", strerror(-ret));
		boot_files_close(&bf);
		return EXIT_HOST_ERROR;
	}
	ms.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (ms.sig_fd < 0 || aio_set_fd_handler(ctx, ms.sig_fd, main_signal_ready, NULL, &ms) < 0) {
		fprintf(stderr, "kvmini: cannot watch signals: %s\n", strerror(errno));
		goto out;
	}
	if (cfg->timeout_ns) {
		timer = aio_timer_new(ctx, main_timeout, &ms);
		if (!timer) {
			fprintf(stderr, "kvmini: out of memory\n");
			goto out;
		}
		/* One deadline for the whole run, reboots included. */
		aio_timer_mod(timer, aio_clock_ns() + (int64_t)cfg->timeout_ns);
	}
	for (;;) {
		ret = main_run_vm(&ms, cfg, &bf, ctx, &status, &err);
		if (ret < 0) {
			fprintf(stderr, "kvmini: %s\n", err.msg);
			status = EXIT_HOST_ERROR;
			break;
		}
		if (ret != VM_EXIT_RESET || !cfg->reboot)
			break;
	}
	if (ret == VM_EXIT_RESET)
		status = 0;
	if (status == EXIT_TIMEOUT)
		fprintf(stderr, "kvmini: timeout: stopped the VM after %llu s\n",
			(unsigned long long)(cfg->timeout_ns / 1000000000ULL));
	else if (ms.signo && status == 128 + ms.signo)
		fprintf(stderr, "kvmini: stopped the VM on %s\n", strsignal(ms.signo));
out:
	if (timer)
		aio_timer_free(timer);
	if (ms.sig_fd >= 0) {
		aio_set_fd_handler(ctx, ms.sig_fd, NULL, NULL, NULL);
		close(ms.sig_fd);
	}
	aio_context_free(ctx);
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
		fputs(cli_usage, stdout);
		return 0;
	case CLI_VERSION:
		printf("kvmini %s\n", KVMINI_VERSION);
		return 0;
	case CLI_RUN:
		break;
	}
	return main_run(&cfg);
}
