/* SPDX-License-Identifier: MIT */
/* The 8250 UART on COM1 (serial.c). Realized by the top level before vm_start. */
#ifndef KVMINI_SERIAL_H
#define KVMINI_SERIAL_H

#include "vmm/device.h"

/* 0x3f8, IRQ 4: output per --serial, input from stdin when it is a
 * terminal or a pipe (a terminal is put in raw mode). */
extern const struct device_ops serial_ops;

#endif
