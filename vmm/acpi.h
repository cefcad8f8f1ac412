/* SPDX-License-Identifier: MIT */
/*
 * ACPI: the tables kvmini writes into guest RAM at start (acpi.c) and the
 * fixed-hardware power-management registers behind them (acpi_pm.c).
 * See docs/guest-abi.md, "ACPI tables".
 *
 * Profile: full (not hardware-reduced) ACPI, so that the FADT can carry
 * the PM timer and the reset register kvm-unit-tests and other firmware
 * consumers expect, while the boot-architecture flags tell the guest that
 * there is no i8042, no VGA and no CMOS RTC. SCI is IRQ 9 and never
 * raised (no fixed events, no GPEs); SMI_CMD is 0: ACPI mode is always on.
 */
#ifndef KVMINI_ACPI_H
#define KVMINI_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/memory.h"
#include "vmm/util.h"

/* Where the tables live: the legacy BIOS area, reserved in the e820 map
 * and backed by RAM; the RSDP at its start, where a scan finds it. */
#define ACPI_TABLES_START 0xe0000ULL
#define ACPI_TABLES_END	  0x100000ULL

/* Fixed hardware ports (acpi_pm.c). */
#define ACPI_PM_BASE	 0x600
#define ACPI_PM1_EVT	 (ACPI_PM_BASE + 0) /* status (2 bytes), enable (2 bytes) */
#define ACPI_PM1_EVT_LEN 4
#define ACPI_PM1_CNT	 (ACPI_PM_BASE + 4)
#define ACPI_PM1_CNT_LEN 2
#define ACPI_PM_TMR	 (ACPI_PM_BASE + 8)
#define ACPI_PM_TMR_LEN	 4
/* Not PIIX's 0xcf9, which lies inside the PCI config address port. */
#define ACPI_RESET_PORT	  (ACPI_PM_BASE + 12)
#define ACPI_RESET_VALUE  0x06
#define ACPI_SCI_IRQ	  9
#define ACPI_S5_TYPE	  5 /* \_S5 SLP_TYPa: PM1_CNT.SLP_TYP that powers off */
#define ACPI_S3_TYPE	  1 /* \_S3 SLP_TYPa (with --testdev): suspend to RAM */
#define ACPI_PVPANIC_PORT 0x505

/* PM1 status and enable bits. */
#define ACPI_PM1_STS_WAK 0x8000
#define ACPI_PM1_RTC	 0x0400 /* RTC_STS / RTC_EN */
/* FACS: the 32-bit firmware waking vector's offset. */
#define ACPI_FACS_WAKING_VECTOR 12

/* PM1 control bits. */
#define ACPI_PM1_CNT_SCI_EN	0x0001
#define ACPI_PM1_CNT_SLP_TYP(v) (((v) >> 10) & 7)
#define ACPI_PM1_CNT_SLP_EN	0x2000
#define ACPI_PM_TIMER_HZ	3579545ULL

/* What the tables describe; filled by the caller from the VM. */
struct acpi_config {
	unsigned ncpus;	       /* local APICs, APIC ids 0..ncpus-1 */
	uint64_t mmio32_start; /* PCI 32-bit memory window [start, end) */
	uint64_t mmio32_end;
	uint64_t mmio64_start; /* 64-bit window, empty when start == end */
	uint64_t mmio64_end;
	uint16_t io_start; /* PCI I/O BAR window [start, end) */
	uint32_t io_end;
	bool cmos_rtc; /* the FADT says there is a CMOS RTC (--testdev) */
	bool s3;       /* the DSDT offers \_S3 (--testdev) */
};

/*
 * Build RSDP, RSDT, XSDT, FADT, FACS, MADT and DSDT for @cfg into
 * @buf[0..len), which is meant to be loaded at guest address @base (16-byte
 * aligned); every checksum is set. Returns the bytes used, or -ENOSPC when
 * @len is too small, -EINVAL for a config that cannot be described (no
 * CPU, more than 255, a bad window). Pure: any thread; unit-tested.
 * The RSDP is at @base.
 */
int acpi_build_tables(const struct acpi_config *cfg, uint64_t base, void *buf, size_t len);

/* Where acpi_build_tables puts the FACS, from @base. Pure. */
uint64_t acpi_facs_address(uint64_t base);

/*
 * Write the tables into guest RAM at ACPI_TABLES_START (the range must be
 * RAM in @m) and return the RSDP's address in *rsdp (the FACS is at
 * acpi_facs_address(ACPI_TABLES_START)). Main thread, before
 * the vCPUs run. -errno and @err on failure.
 */
int acpi_setup(struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp,
	       struct errbuf *err);

/*
 * The PM1 event/control registers, the PM timer and the reset register.
 * A write of SLP_EN with SLP_TYP = ACPI_S5_TYPE powers off: kvmini ends
 * with status 0. With ACPI_S3_TYPE, on a 1-vCPU VM with an RTC
 * (--testdev), the writing vCPU sleeps until the RTC alarm (RTC_EN and
 * AIE set; else until the VM ends) and resumes in real mode at the FACS
 * waking vector with WAK_STS and RTC_STS set. Writing ACPI_RESET_VALUE to ACPI_RESET_PORT (the
 * FADT's reset register) is a guest reset (reboots only with
 * --reboot). Saved: PM1 enable and control.
 */
extern const struct device_ops acpi_pm_ops;

#endif
