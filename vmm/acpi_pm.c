// SPDX-License-Identifier: MIT
/*
 * ACPI fixed hardware (acpi.h): PM1 event and control registers, the
 * 3.579545 MHz PM timer and the FADT's reset register, at ACPI_PM_BASE.
 * This is how an ACPI guest powers off (PM1_CNT.SLP_EN with \_S5's type)
 * and reboots. No SCI is ever raised: the only fixed event, the RTC alarm
 * that ends an S3 sleep (--testdev), shows in PM1_STS on resume.
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
#include "vmm/rtc.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define ACPI_PM_REGS_LEN 13 /* PM1_EVT (4), PM1_CNT (2), pad (2), PM_TMR (4), reset (1) */

struct acpi_pm {
	struct vm *vm;
	pthread_mutex_t lock;
	uint16_t pm1_sts; /* WAK_STS, RTC_STS: set on resume, write 1 to clear */
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

/* Returns true when the write asks for S3 and this VM can sleep. */
static bool acpi_pm_control(struct acpi_pm *pm, uint16_t v)
{
	bool s3 = (v & ACPI_PM1_CNT_SLP_EN) && ACPI_PM1_CNT_SLP_TYP(v) == ACPI_S3_TYPE;

	if ((v & ACPI_PM1_CNT_SLP_EN) && ACPI_PM1_CNT_SLP_TYP(v) == ACPI_S5_TYPE) {
		vm_request_exit(pm->vm, VM_EXIT_STATUS, 0);
		return false;
	}
	pm->pm1_cnt = (uint16_t)((v & ~ACPI_PM1_CNT_SLP_EN) | ACPI_PM1_CNT_SCI_EN);
	/* \_S3 is offered only with the RTC that wakes it; other sleep
	 * states are not offered at all: ignored. Parking the other vCPUs
	 * while one sleeps is not done: S3 is refused on SMP. */
	if (!s3 || !pm->vm->rtc)
		return false;
	if (pm->vm->cfg->ncpus != 1) {
		fprintf(stderr, "kvmini: ACPI S3 with %u vCPUs is not supported: ignored\n",
			pm->vm->cfg->ncpus);
		return false;
	}
	return true;
}

/*
 * S3 on the vCPU thread that asked for it (no other vCPU exists): it runs
 * no guest instruction until the wake event, the next RTC alarm when
 * RTC_EN and the RTC's AIE are set (without, it sleeps until the VM ends,
 * as hardware would), then resumes as firmware does, in real mode at the
 * FACS waking vector. RAM is kept; devices are not reset.
 */
static void acpi_pm_suspend(struct acpi_pm *pm)
{
	struct vcpu *self = vcpu_self();
	struct timespec when;
	struct errbuf err;
	uint32_t vector = 0;
	bool armed;

	if (!self)
		return;
	do {
		pthread_mutex_lock(&pm->lock);
		armed = (pm->pm1_en & ACPI_PM1_RTC) && rtc_wake_time(pm->vm->rtc, &when);
		pthread_mutex_unlock(&pm->lock);
		if (vcpu_sleep_until(self, armed ? &when : NULL) < 0)
			return; /* the VM ends asleep */
	} while (!armed);
	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts |= ACPI_PM1_STS_WAK | ACPI_PM1_RTC;
	pthread_mutex_unlock(&pm->lock);
	/* The guest may have written anything there, or nothing (vector 0). */
	if (pm->vm->facs)
		guest_mem_read(&pm->vm->mem, pm->vm->facs + ACPI_FACS_WAKING_VECTOR, &vector,
			       sizeof(vector));
	if (vcpu_enter_real_mode(self, vector, &err) < 0) {
		fprintf(stderr, "kvmini: ACPI S3 resume: %s\n", err.msg);
		vm_request_exit(pm->vm, VM_EXIT_STATUS, EXIT_HOST_ERROR);
	}
}

static void acpi_pm_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct acpi_pm *pm = opaque;
	uint8_t r[ACPI_PM_REGS_LEN];
	uint32_t tmr;
	bool sleep = false;
	uint16_t v;

	if (off >= sizeof(r) || len > sizeof(r) - off) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&pm->lock);
	tmr = acpi_pm_timer(pm);
	memset(r, 0, sizeof(r));
	memcpy(&r[0], &pm->pm1_sts, 2);
	memcpy(&r[2], &pm->pm1_en, 2);
	memcpy(&r[4], &pm->pm1_cnt, 2);
	memcpy(&r[8], &tmr, 4);
	r[12] = pm->reset;
	if (!is_write) {
		memcpy(data, &r[off], len);
		pthread_mutex_unlock(&pm->lock);
		return;
	}
	/* PM1_STS: write 1 to clear, only in the bytes written. */
	for (uint64_t i = off; i < 2 && i < off + len; i++)
		pm->pm1_sts &= (uint16_t) ~(((const uint8_t *)data)[i - off] << (8 * i));
	memcpy(&r[off], data, len);
	if (off < 4 && off + len > 2) /* PM1_EN */
		memcpy(&pm->pm1_en, &r[2], 2);
	if (off < 6 && off + len > 4) { /* PM1_CNT */
		memcpy(&v, &r[4], 2);
		sleep = acpi_pm_control(pm, v);
	}
	if (off + len > 12) { /* reset register */
		pm->reset = r[12];
		if (pm->reset == ACPI_RESET_VALUE)
			vm_request_exit(pm->vm, VM_EXIT_RESET, VM_RESET_GUEST);
	}
	pthread_mutex_unlock(&pm->lock);
	if (sleep)
		acpi_pm_suspend(pm);
}

static void acpi_pm_reset(void *state)
{
	struct acpi_pm *pm = state;

	pthread_mutex_lock(&pm->lock);
	pm->pm1_sts = 0;
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

/* Snapshot section; the PM timer restarts from the restore (it is
 * free-running). pm1_sts took padding that was zero: same version. An S3
 * sleep in progress is not part of it. */
struct acpi_pm_saved {
	uint32_t version;
	uint16_t pm1_en;
	uint16_t pm1_cnt;
	uint8_t reset;
	uint8_t pad1;
	uint16_t pm1_sts;
	uint8_t pad[4];
};

static int acpi_pm_save(void *state, void *buf, size_t len)
{
	struct acpi_pm *pm = state;
	struct acpi_pm_saved v = {.version = 1};

	if (len < sizeof(v))
		return -ENOSPC;
	v.pm1_sts = pm->pm1_sts;
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
	if (v.pm1_sts & ~(ACPI_PM1_STS_WAK | ACPI_PM1_RTC))
		return err_set(err, EINVAL, "acpi-pm: bad PM1 status 0x%x", v.pm1_sts);
	if (v.pad1)
		return err_set(err, EINVAL, "acpi-pm: nonzero padding");
	for (size_t i = 0; i < sizeof(v.pad); i++)
		if (v.pad[i])
			return err_set(err, EINVAL, "acpi-pm: nonzero padding");
	pm->pm1_sts = v.pm1_sts;
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
