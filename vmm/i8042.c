// SPDX-License-Identifier: MIT
/*
 * Just enough of the i8042 keyboard controller for a guest to reset the
 * machine: command 0xfe on port 0x64 pulses the reset line. No keyboard:
 * the status port always reads "buffers empty".
 */
#include <string.h>

#include "vmm/i8042.h"
#include "vmm/vm.h"

#define I8042_DATA	0x60
#define I8042_CMD	0x64
#define I8042_CMD_RESET 0xfe

static void i8042_data_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	if (!is_write)
		memset(data, 0, len);
}

static void i8042_cmd_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct vm *vm = opaque;

	if (!is_write) {
		memset(data, 0, len); /* status: output and input buffers empty */
		return;
	}
	if (((uint8_t *)data)[0] == I8042_CMD_RESET)
		vm_request_exit(vm, VM_EXIT_RESET, 0);
}

static int i8042_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	int ret;

	*state = vm;
	ret = bus_register(&vm->pio, I8042_DATA, 1, i8042_data_io, vm, "i8042", err);
	if (ret < 0)
		return ret;
	ret = bus_register(&vm->pio, I8042_CMD, 1, i8042_cmd_io, vm, "i8042", err);
	if (ret < 0)
		bus_unregister(&vm->pio, I8042_DATA);
	return ret;
}

const struct device_ops i8042_ops = {
    .name = "i8042",
    .realize = i8042_realize,
};
