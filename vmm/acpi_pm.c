// SPDX-License-Identifier: MIT
/*
 * ACPI fixed hardware (acpi.h): PM1 event and control registers, the
 * 3.579545 MHz PM timer and the FADT's reset register, at ACPI_PM_BASE.
 * This is how an ACPI guest powers off (PM1_CNT.SLP_EN with \_S5's type)
 * and reboots. No SCI is ever raised: there are no fixed events.
 *
 * vCPU threads call the port handler; one mutex covers the registers
 * (snapshot save/load run while the vCPUs are parked).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vmm/acpi.h"
#include "vmm/vm.h"

#define ACPI_PM_REGS_LEN 13 /* PM1_EVT (4), PM1_CNT (2), pad (2), PM_TMR (4), reset (1) */

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t pm1_en;
	uint16_t pm1_cnt; /* SLP_EN is write-only and never stored */
	uint8_t reset;	  /* last value written to the reset register */
	struct timespec t0;
};

/* The PM timer counts from realize at ACPI_PM_TIMER_HZ (32 bits, wraps). */
static uint32_t acpi_pm_timer(const struct acpi_pm *pm)
{
	struct timespec now;
	uint64_t ns;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ns = (uint64_t)(now.tv_sec - pm->t0.tv_sec) * 1000000000ULL +
	     (uint64_t)(now.tv_nsec - pm->t0.tv_nsec);
	/* ns * HZ overflows 64 bits after ~80 minutes: split the product. */
	return (uint32_t)((ns / 1000000000ULL) * ACPI_PM_TIMER_HZ +
			  (ns % 1000000000ULL) * ACPI_PM_TIMER_HZ / 1000000000ULL);
}

static void acpi_pm_control(struct acpi_pm *pm, uint16_t v)
{
	if ((v & ACPI_PM1_CNT_SLP_EN) && ACPI_PM1_CNT_SLP_TYP(v) == ACPI_S5_TYPE) {
		vm_request_exit(pm->vm, VM_EXIT_STATUS, 0);
		return;
	}
	/* Other sleep states are not offered (no \_S1..\_S4): ignore. */
	pm->pm1_cnt = (uint16_t)((v & ~ACPI_PM1_CNT_SLP_EN) | ACPI_PM1_CNT_SCI_EN);
}

static void acpi_pm_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t r[ACPI_PM_REGS_LEN];
	uint32_t tmr;
	uint16_t v;

	if (off >= sizeof(r) || len > sizeof(r) - off) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	tmr = acpi_pm_timer(pm);
	memset(r, 0, sizeof(r)); /* PM1_STS: no event is ever pending */
	memcpy(&r[2], &pm->pm1_en, 2);
	memcpy(&r[4], &pm->pm1_cnt, 2);
	memcpy(&r[8], &tmr, 4);
	r[12] = pm->reset;
	if (!is_write) {
		memcpy(data, &r[off], len);
		pthread_mutex_unlock(&pm->lock);
		return;
	}
	memcpy(&r[off], data, len);
	if (off < 4 && off + len > 2) /* PM1_EN */
		memcpy(&pm->pm1_en, &r[2], 2);
	if (off < 6 && off + len > 4) { /* PM1_CNT */
		memcpy(&v, &r[4], 2);
		acpi_pm_control(pm, v);
	}
	if (off + len > 12) { /* reset register */
		pm->reset = r[12];
		if (pm->reset == ACPI_RESET_VALUE)
			vm_request_exit(pm->vm, VM_EXIT_RESET, VM_RESET_GUEST);
	}
	pthread_mutex_unlock(&pm->lock);
}

static void acpi_pm_reset(void *state)
{
	struct acpi_pm *pm = state;

	pthread_mutex_lock(&pm->lock);
	pm->pm1_en = 0;
	pm->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
	pm->reset = 0;
	pthread_mutex_unlock(&pm->lock);
}

static int acpi_pm_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));
	int ret;

	if (!pm)
		return err_set(err, ENOMEM, "acpi-pm: out of memory");
	pm->vm = vm;
	pm->pm1_cnt = ACPI_PM1_CNT_SCI_EN;
	clock_gettime(CLOCK_MONOTONIC, &pm->t0);
	pthread_mutex_init(&pm->lock, NULL);
	ret =
	    bus_register(&vm->pio, ACPI_PM_BASE, ACPI_PM_REGS_LEN, acpi_pm_io, pm, "acpi-pm", err);
	if (ret < 0) {
		pthread_mutex_destroy(&pm->lock);
		free(pm);
		return ret;
	}
	*state = pm;
	return 0;
}

static void acpi_pm_exit(void *state)
{
	struct acpi_pm *pm = state;

	pthread_mutex_destroy(&pm->lock);
	free(pm);
}

/* Snapshot section; the PM timer restarts from the restore (it is free-running). */
struct acpi_pm_saved {
	uint32_t version;
	uint16_t pm1_en;
	uint16_t pm1_cnt;
	uint8_t reset;
	uint8_t pad[7];
};

static int acpi_pm_save(void *state, void *buf, size_t len)
{
	struct acpi_pm *pm = state;
	struct acpi_pm_saved v = {.version = 1};

	if (len < sizeof(v))
		return -ENOSPC;
	v.pm1_en = pm->pm1_en;
	v.pm1_cnt = pm->pm1_cnt;
	v.reset = pm->reset;
	memcpy(buf, &v, sizeof(v));
	return (int)sizeof(v);
}

static int acpi_pm_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct acpi_pm *pm = state;
	struct acpi_pm_saved v;

	if (len != sizeof(v))
		return err_set(err, EINVAL, "acpi-pm: state of %zu bytes, want %zu", len,
			       sizeof(v));
	memcpy(&v, buf, sizeof(v));
	if (v.version != 1)
		return err_set(err, EINVAL, "acpi-pm: unknown state version %u", v.version);
	if (!(v.pm1_cnt & ACPI_PM1_CNT_SCI_EN) || (v.pm1_cnt & ACPI_PM1_CNT_SLP_EN))
		return err_set(err, EINVAL, "acpi-pm: bad PM1 control 0x%x", v.pm1_cnt);
	for (size_t i = 0; i < sizeof(v.pad); i++)
		if (v.pad[i])
			return err_set(err, EINVAL, "acpi-pm: nonzero padding");
	pm->pm1_en = v.pm1_en;
	pm->pm1_cnt = v.pm1_cnt;
	pm->reset = v.reset;
	return 0;
}

const struct device_ops acpi_pm_ops = {
    .name = "acpi-pm",
    .realize = acpi_pm_realize,
    .reset = acpi_pm_reset,
    .save = acpi_pm_save,
    .load = acpi_pm_load,
    .exit = acpi_pm_exit,
};
