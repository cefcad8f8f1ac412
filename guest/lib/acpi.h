/* SPDX-License-Identifier: MIT */
/*
 * Just enough ACPI to find PCI ECAM: RSDP (from the PVH start_info, else
 * the BIOS area 0xe0000..0xfffff), RSDT/XSDT, MCFG. Tables are checked
 * (signature, length, checksum) before use.
 */
#ifndef GUEST_ACPI_H
#define GUEST_ACPI_H

#include <stdint.h>

/* The address of the ACPI table with signature @sig (4 chars), or 0. CPL0
 * or CPL3 (plain memory reads). */
uint64_t acpi_find_table(const char *sig);

/* ECAM base address for PCI segment 0, bus 0 (from MCFG): 0 and *@base,
 * or -ENOENT. */
int acpi_mcfg_bus0(uint64_t *base);

#endif
