// SPDX-License-Identifier: MIT
/*
 * CMOS RTC at ports 0x70 (index; bit 7 is the NMI mask, ignored) and 0x71
 * (data); see rtc.h. Nothing runs by itself: the alarm and update flags of
 * register C are worked out from the wall clock when the guest looks.
 *
 * vCPU threads call the port handler; one mutex covers the state.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/rtc.h"
#include "vmm/vm.h"

#define RTC_PORT     0x70
#define RTC_DAY	     86400
#define RTC_DONTCARE 0xc0

struct rtc {
	pthread_mutex_t lock;
	struct rtc_state s;
};

static uint8_t rtc_encode(const struct rtc_state *s, int v)
{
	if (s->cmos[RTC_REG_B] & RTC_B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)((v / 10) << 4 | v % 10);
}

static uint8_t rtc_encode_hour(const struct rtc_state *s, int h)
{
	int h12;

	if (s->cmos[RTC_REG_B] & RTC_B_24H)
		return rtc_encode(s, h);
	h12 = h % 12 ? h % 12 : 12;
	return (uint8_t)(rtc_encode(s, h12) | (h >= 12 ? 0x80 : 0));
}

/* Register @reg (0-9) of wall second @t. */
static uint8_t rtc_clock_reg(const struct rtc_state *s, int64_t t, uint8_t reg)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	switch (reg) {
	case RTC_SECONDS:
		return rtc_encode(s, tm.tm_sec > 59 ? 59 : tm.tm_sec);
	case RTC_MINUTES:
		return rtc_encode(s, tm.tm_min);
	case RTC_HOURS:
		return rtc_encode_hour(s, tm.tm_hour);
	case 6:
		return rtc_encode(s, tm.tm_wday + 1);
	case 7:
		return rtc_encode(s, tm.tm_mday);
	case 8:
		return rtc_encode(s, tm.tm_mon + 1);
	case 9:
		return rtc_encode(s, tm.tm_year % 100);
	default:
		return s->cmos[reg]; /* the alarm registers */
	}
}

static bool rtc_alarm_field(uint8_t alarm, uint8_t now)
{
	return (alarm & RTC_DONTCARE) == RTC_DONTCARE || alarm == now;
}

static bool rtc_alarm_matches(const struct rtc_state *s, int64_t t)
{
	return rtc_alarm_field(s->cmos[RTC_SECONDS_ALARM], rtc_clock_reg(s, t, RTC_SECONDS)) &&
	       rtc_alarm_field(s->cmos[RTC_MINUTES_ALARM], rtc_clock_reg(s, t, RTC_MINUTES)) &&
	       rtc_alarm_field(s->cmos[RTC_HOURS_ALARM], rtc_clock_reg(s, t, RTC_HOURS));
}

/* Judge the seconds that began since the last look: UF for any, AF for
 * one the alarm matches (within the last day: every alarm that can match
 * at all did by then). Called before any access changes what is judged. */
static void rtc_update(struct rtc_state *s, const struct timespec *now)
{
	int64_t t = now->tv_sec, from = s->checked + 1;
	uint8_t *c = &s->cmos[RTC_REG_C];

	if (t <= s->checked)
		return;
	if (from < t - RTC_DAY + 1)
		from = t - RTC_DAY + 1;
	*c |= RTC_C_UF;
	for (int64_t i = from; i <= t && !(*c & RTC_C_AF); i++)
		if (rtc_alarm_matches(s, i))
			*c |= RTC_C_AF;
	s->checked = t;
	if (((*c & RTC_C_AF) && (s->cmos[RTC_REG_B] & RTC_B_AIE)) ||
	    ((*c & RTC_C_UF) && (s->cmos[RTC_REG_B] & RTC_B_UIE)))
		*c |= RTC_C_IRQF;
}

void rtc_state_init(struct rtc_state *s, const struct timespec *now)
{
	memset(s, 0, sizeof(*s));
	s->cmos[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz periodic rate */
	s->cmos[RTC_REG_B] = RTC_B_24H;
	s->cmos[RTC_REG_D] = RTC_D_VRT;
	s->checked = now->tv_sec;
}

uint8_t rtc_state_read(struct rtc_state *s, uint8_t reg, const struct timespec *now)
{
	uint8_t v;

	reg %= RTC_CMOS_SIZE;
	rtc_update(s, now);
	switch (reg) {
	case RTC_REG_A:
		/* Real hardware shows UIP for 244 us before the update; a
		 * guest polling for it through a VM exit per read (slow in a
		 * nested VM) could miss so short a window and spin forever. */
		return (uint8_t)(s->cmos[reg] |
				 (now->tv_nsec >= 1000000000L - RTC_UIP_NS ? RTC_A_UIP : 0));
	case RTC_REG_C:
		v = s->cmos[reg];
		s->cmos[reg] = 0;
		return v;
	case RTC_REG_D:
		return RTC_D_VRT;
	default:
		return reg <= 9 ? rtc_clock_reg(s, now->tv_sec, reg) : s->cmos[reg];
	}
}

void rtc_state_write(struct rtc_state *s, uint8_t reg, uint8_t v, const struct timespec *now)
{
	reg %= RTC_CMOS_SIZE;
	rtc_update(s, now);
	switch (reg) {
	case RTC_SECONDS_ALARM:
	case RTC_MINUTES_ALARM:
	case RTC_HOURS_ALARM:
		s->cmos[reg] = v;
		return;
	case RTC_REG_A:
		s->cmos[reg] = v & (uint8_t)~RTC_A_UIP; /* UIP is read-only */
		return;
	case RTC_REG_C: /* read-only */
	case RTC_REG_D:
		return;
	default:
		if (reg > 9)
			s->cmos[reg] = v; /* B and the CMOS RAM */
		return;			  /* the clock follows the host's: ignored */
	}
}

bool rtc_state_next_alarm(const struct rtc_state *s, const struct timespec *now,
			  struct timespec *when)
{
	if (!(s->cmos[RTC_REG_B] & RTC_B_AIE))
		return false;
	for (int64_t t = now->tv_sec + 1; t <= now->tv_sec + RTC_DAY; t++) {
		if (rtc_alarm_matches(s, t)) {
			when->tv_sec = (time_t)t;
			when->tv_nsec = 0;
			return true;
		}
	}
	return false;
}

/* Snapshot section. */
struct rtc_saved {
	uint32_t version;
	uint8_t index;
	uint8_t pad[3];
	int64_t checked;
	uint8_t cmos[RTC_CMOS_SIZE];
};

int rtc_state_save(const struct rtc_state *s, void *buf, size_t len)
{
	struct rtc_saved v = {.version = 1, .index = s->index, .checked = s->checked};

	if (len < sizeof(v))
		return -ENOSPC;
	memcpy(v.cmos, s->cmos, sizeof(v.cmos));
	memcpy(buf, &v, sizeof(v));
	return (int)sizeof(v);
}

int rtc_state_load(struct rtc_state *s, const void *buf, size_t len, struct errbuf *err)
{
	struct rtc_saved v;

	if (len != sizeof(v))
		return err_set(err, EINVAL, "rtc: state of %zu bytes, want %zu", len, sizeof(v));
	memcpy(&v, buf, sizeof(v));
	if (v.version != 1)
		return err_set(err, EINVAL, "rtc: unknown state version %u", v.version);
	if (v.index >= RTC_CMOS_SIZE || v.pad[0] || v.pad[1] || v.pad[2])
		return err_set(err, EINVAL, "rtc: bad index 0x%x or padding", v.index);
	if (v.checked < 0)
		return err_set(err, EINVAL, "rtc: bad time %lld", (long long)v.checked);
	if ((v.cmos[RTC_REG_A] & RTC_A_UIP) || (v.cmos[RTC_REG_C] & 0x0f) ||
	    v.cmos[RTC_REG_D] != RTC_D_VRT)
		return err_set(err, EINVAL, "rtc: bad register A 0x%x, C 0x%x or D 0x%x",
			       v.cmos[RTC_REG_A], v.cmos[RTC_REG_C], v.cmos[RTC_REG_D]);
	s->index = v.index;
	s->checked = v.checked;
	memcpy(s->cmos, v.cmos, sizeof(s->cmos));
	return 0;
}

static void rtc_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct rtc *rtc = opaque;
	struct timespec now;
	uint8_t *p = data;

	/* Byte registers: a wider access sees its first byte only. */
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&rtc->lock);
	if (!is_write)
		memset(data, 0xff, len);
	if (off == 0 && is_write)
		rtc->s.index = p[0] & 0x7f; /* bit 7: NMI mask, not modelled */
	else if (off == 0)
		p[0] = rtc->s.index;
	else if (is_write)
		rtc_state_write(&rtc->s, rtc->s.index, p[0], &now);
	else
		p[0] = rtc_state_read(&rtc->s, rtc->s.index, &now);
	pthread_mutex_unlock(&rtc->lock);
}

bool rtc_wake_time(struct rtc *rtc, struct timespec *when)
{
	struct timespec now;
	bool armed;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&rtc->lock);
	armed = rtc_state_next_alarm(&rtc->s, &now, when);
	pthread_mutex_unlock(&rtc->lock);
	return armed;
}

static int rtc_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct rtc *rtc = calloc(1, sizeof(*rtc));
	struct timespec now;
	int ret;

	if (!rtc)
		return err_set(err, ENOMEM, "rtc: out of memory");
	clock_gettime(CLOCK_REALTIME, &now);
	rtc_state_init(&rtc->s, &now);
	pthread_mutex_init(&rtc->lock, NULL);
	ret = bus_register(&vm->pio, RTC_PORT, 2, rtc_io, rtc, "rtc", err);
	if (ret < 0) {
		pthread_mutex_destroy(&rtc->lock);
		free(rtc);
		return ret;
	}
	vm->rtc = rtc;
	*state = rtc;
	return 0;
}

static void rtc_reset(void *state)
{
	struct rtc *rtc = state;
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&rtc->lock);
	rtc_state_init(&rtc->s, &now);
	pthread_mutex_unlock(&rtc->lock);
}

static int rtc_save(void *state, void *buf, size_t len)
{
	struct rtc *rtc = state;

	return rtc_state_save(&rtc->s, buf, len);
}

static int rtc_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct rtc *rtc = state;

	return rtc_state_load(&rtc->s, buf, len, err);
}

static void rtc_exit(void *state)
{
	struct rtc *rtc = state;

	pthread_mutex_destroy(&rtc->lock);
	free(rtc);
}

const struct device_ops rtc_ops = {
    .name = "rtc",
    .realize = rtc_realize,
    .reset = rtc_reset,
    .save = rtc_save,
    .load = rtc_load,
    .exit = rtc_exit,
};
