/* SPDX-License-Identifier: MIT */
/*
 * QEMU's firmware configuration device (fw_cfg), its legacy I/O interface
 * only (fw_cfg.c): kvm-unit-tests and other QEMU-minded guests read the RAM
 * size and CPU count from it. Realized by the top level before vm_start on
 * every VM; the vCPU threads call its port handler.
 *
 * A 16-bit write to FW_CFG_PORT_SEL selects an item and rewinds it; each
 * byte read from FW_CFG_PORT_DATA returns the item's next byte, 0 past its
 * end or for an item that does not exist. Writes of data are ignored; there
 * is no DMA interface and the file directory is empty.
 */
#ifndef KVMINI_FW_CFG_H
#define KVMINI_FW_CFG_H

#include "vmm/device.h"

#define FW_CFG_PORT_SEL	 0x510
#define FW_CFG_PORT_DATA 0x511
#define FW_CFG_PORTS	 2

/* Item keys (QEMU's numbering; MAX_RAM is kvm-unit-tests' name for 0x11). */
#define FW_CFG_SIGNATURE 0x00 /* "QEMU" */
#define FW_CFG_ID	 0x01 /* u32 LE: bit 0 traditional interface */
#define FW_CFG_UUID	 0x02 /* 16 bytes, all zero */
#define FW_CFG_RAM_SIZE	 0x03 /* u64 LE: guest RAM bytes */
#define FW_CFG_NB_CPUS	 0x05 /* u16 LE */
#define FW_CFG_MAX_CPUS	 0x0f /* u16 LE */
#define FW_CFG_MAX_RAM	 0x11 /* u64 LE 0: no limit */
#define FW_CFG_FILE_DIR	 0x19 /* u32 BE file count: 0 */

#define FW_CFG_ID_TRADITIONAL 1u

/* Ports 0x510-0x511; state saved as one fixed-width struct (selector,
 * offset), checked on load against the items this VM has. */
extern const struct device_ops fw_cfg_ops;

#endif
