/* SPDX-License-Identifier: MIT */
/* QEMU's pvpanic ISA device (pvpanic.c), described in the DSDT as QEMU0001. */
#ifndef KVMINI_PVPANIC_H
#define KVMINI_PVPANIC_H

#include "vmm/device.h"

#define PVPANIC_PANICKED     0x1 /* the guest kernel panicked */
#define PVPANIC_CRASH_LOADED 0x2 /* it is starting its crash kernel */

/*
 * Port ACPI_PVPANIC_PORT: reads the events offered; a write of
 * PVPANIC_PANICKED ends the VM as a guest crash (126, a report on stderr, a
 * GUEST_PANICKED event); PVPANIC_CRASH_LOADED is reported and the guest
 * runs on (into its kdump kernel). vCPU threads.
 */
extern const struct device_ops pvpanic_ops;

#endif
