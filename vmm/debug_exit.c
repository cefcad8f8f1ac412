// SPDX-License-Identifier: MIT
/*
 * isa-debug-exit at port 0xf4: a write of STATUS ends the VM and kvmini
 * exits with STATUS (0..123). Larger values would collide with kvmini's own
 * statuses, so they are treated as a guest error (crash report, 126).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vmm/debug_exit.h"
#include "vmm/vm.h"

#define DEBUG_EXIT_PORT 0xf4

static void debug_exit_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;
	uint32_t v = 0;

	if (!is_write) {
		memset(data, 0xff, len);
		return;
	}
	/* Any width at offset 0 carries the status, as QEMU's device does. */
	if (off != 0)
		return;
	memcpy(&v, data, len < 4 ? len : 4);
	if (v > EXIT_GUEST_MAX) {
		fprintf(stderr,
			"kvmini: guest wrote exit status %u to port 0xf4 (valid: 0..%d); treating "
			"it as a crash\n",
			v, EXIT_GUEST_MAX);
		vm_request_exit(vm, VM_EXIT_STATUS, EXIT_CRASH);
		return;
	}
	vm_request_exit(vm, VM_EXIT_STATUS, (int)v);
}

static int debug_exit_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	*state = vm;
	return bus_register(&vm->pio, DEBUG_EXIT_PORT, 4, debug_exit_io, vm, "debug-exit", err);
}

const struct device_ops debug_exit_ops = {
    .name = "debug-exit",
    .realize = debug_exit_realize,
};
