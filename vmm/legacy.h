/* SPDX-License-Identifier: MIT */
/* Legacy ISA devices every kvmini VM has. Realized by main before vm_start. */
#ifndef KVMINI_LEGACY_H
#define KVMINI_LEGACY_H

#include "vmm/device.h"

/* 8250 UART on COM1 (0x3f8, IRQ 4): output per --serial, input from stdin
 * when it is a terminal or a pipe (a terminal is put in raw mode). */
extern const struct device_ops serial_ops;
/* isa-debug-exit at 0xf4: a write of STATUS ends the VM with STATUS. */
extern const struct device_ops debug_exit_ops;
/* i8042 at 0x60/0x64: command 0xfe (pulse reset) resets or ends the VM. */
extern const struct device_ops i8042_ops;

#endif
