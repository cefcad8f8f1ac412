/* SPDX-License-Identifier: MIT */
/*
 * CMOS RTC (MC146818-style) at ports 0x70/0x71 (rtc.c), only with
 * --testdev: kvm-unit-tests' s3 test wakes from S3 on its alarm. Linux
 * guests keep the "no CMOS RTC" platform (the FADT says so).
 *
 * Time registers 0-9 follow the host's wall clock (UTC); guest writes to
 * them are ignored. Register A's UIP, B (stored), C (AF/UF/IRQF, computed
 * from the time and alarm registers when read, cleared by the read), D
 * (VRT). No IRQ 8 is ever raised: alarms only show in C and wake from S3.
 */
#ifndef KVMINI_RTC_H
#define KVMINI_RTC_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "vmm/device.h"

#define RTC_SECONDS	  0x00
#define RTC_SECONDS_ALARM 0x01
#define RTC_MINUTES	  0x02
#define RTC_MINUTES_ALARM 0x03
#define RTC_HOURS	  0x04
#define RTC_HOURS_ALARM	  0x05
#define RTC_REG_A	  0x0a
#define RTC_REG_B	  0x0b
#define RTC_REG_C	  0x0c
#define RTC_REG_D	  0x0d
#define RTC_A_UIP	  0x80
#define RTC_B_SET	  0x80
#define RTC_B_UIE	  0x10
#define RTC_B_AIE	  0x20
#define RTC_B_DM_BINARY	  0x04
#define RTC_B_24H	  0x02
#define RTC_C_IRQF	  0x80
#define RTC_C_AF	  0x20
#define RTC_C_UF	  0x10
#define RTC_D_VRT	  0x80
#define RTC_CMOS_SIZE	  128
/* UIP is set for the last RTC_UIP_NS of each wall-clock second. */
#define RTC_UIP_NS 10000000L

/* The register file; plain data so that it can be tested without a VM. */
struct rtc_state {
	uint8_t cmos[RTC_CMOS_SIZE]; /* 0-9 unused (from the clock), A-D, CMOS RAM */
	uint8_t index;		     /* selected by port 0x70 (7 bits) */
	int64_t checked;	     /* last wall second whose alarm/update was judged */
};

/* Power-on state at wall time @now. Pure; any thread. */
void rtc_state_init(struct rtc_state *s, const struct timespec *now);
/* Read / write register @reg (< RTC_CMOS_SIZE) at wall time @now
 * (CLOCK_REALTIME). Pure; caller serializes. */
uint8_t rtc_state_read(struct rtc_state *s, uint8_t reg, const struct timespec *now);
void rtc_state_write(struct rtc_state *s, uint8_t reg, uint8_t v, const struct timespec *now);
/* The next wall second after @now whose time matches the alarm registers,
 * when AIE is set; false when no alarm is armed (within a day). Pure. */
bool rtc_state_next_alarm(const struct rtc_state *s, const struct timespec *now,
			  struct timespec *when);
/* Snapshot form: returns bytes written or -ENOSPC; load validates every
 * field, -EINVAL and @err on bad input (@s untouched then). Pure. */
int rtc_state_save(const struct rtc_state *s, void *buf, size_t len);
int rtc_state_load(struct rtc_state *s, const void *buf, size_t len, struct errbuf *err);

struct rtc;
/* The VM's RTC wake time (rtc_state_next_alarm now), for S3 (acpi_pm.c).
 * Any thread (takes the RTC's lock). */
bool rtc_wake_time(struct rtc *rtc, struct timespec *when);

/* Ports 0x70-0x71; its realize sets vm->rtc. */
extern const struct device_ops rtc_ops;

#endif
