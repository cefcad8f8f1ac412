/* SPDX-License-Identifier: MIT */
/* The i8042's reset line (i8042.c). Realized by the top level before vm_start. */
#ifndef KVMINI_I8042_H
#define KVMINI_I8042_H

#include "vmm/device.h"

/* Ports 0x60/0x64: command 0xfe (pulse reset) resets or ends the VM. */
extern const struct device_ops i8042_ops;

#endif
