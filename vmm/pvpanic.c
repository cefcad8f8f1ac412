// SPDX-License-Identifier: MIT
/*
 * pvpanic: a guest kernel tells the host it panicked, so that a CI run
 * ends at once with a crash status instead of waiting for --timeout.
 */
#include <stdio.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/pvpanic.h"
#include "vmm/vm.h"

/* Main thread: events go out from there, then the VM ends. */
static void pvpanic_panicked_bh(void *opaque)
{
	struct vm *vm = opaque;

	vm_emit_event(vm, "GUEST_PANICKED", "{\"action\": \"poweroff\"}");
	vm_request_exit(vm, VM_EXIT_STATUS, EXIT_CRASH);
}

static void pvpanic_crashloaded_bh(void *opaque)
{
	vm_emit_event(opaque, "GUEST_CRASHLOADED", "{\"action\": \"run\"}");
}

/* vCPU threads. */
static void pvpanic_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;
	uint8_t v;

	if (!is_write) {
		memset(data, 0, len);
		((uint8_t *)data)[0] = PVPANIC_PANICKED | PVPANIC_CRASH_LOADED;
		return;
	}
	v = ((const uint8_t *)data)[0];
	if (v & PVPANIC_PANICKED) {
		fprintf(stderr, "kvmini: guest crash: the guest kernel panicked (pvpanic)\n");
		/* If the BH cannot be queued, end the VM without the event. */
		if (aio_bh_schedule_oneshot_named(vm->main_ctx, pvpanic_panicked_bh, vm,
						  "pvpanic") < 0)
			vm_request_exit(vm, VM_EXIT_STATUS, EXIT_CRASH);
	} else if (v & PVPANIC_CRASH_LOADED) {
		fprintf(stderr, "kvmini: the guest kernel crashed and is starting its crash "
				"kernel (pvpanic)\n");
		aio_bh_schedule_oneshot_named(vm->main_ctx, pvpanic_crashloaded_bh, vm, "pvpanic");
	}
}

static int pvpanic_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	*state = vm;
	return bus_register(&vm->pio, ACPI_PVPANIC_PORT, 1, pvpanic_io, vm, "pvpanic", err);
}

const struct device_ops pvpanic_ops = {
    .name = "pvpanic",
    .realize = pvpanic_realize,
};
