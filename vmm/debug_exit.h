/* SPDX-License-Identifier: MIT */
/* isa-debug-exit (debug_exit.c). Realized by the top level before vm_start. */
#ifndef KVMINI_DEBUG_EXIT_H
#define KVMINI_DEBUG_EXIT_H

#include "vmm/device.h"

/* Port 0xf4: a write of STATUS ends the VM with STATUS. */
extern const struct device_ops debug_exit_ops;

#endif
