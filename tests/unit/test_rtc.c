/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/rtc.c's register file, driven by explicit wall times:
 * the clock registers in BCD and binary, 12- and 24-hour, UIP's window,
 * register C's flags and their clearing, the alarm's next match, and the
 * snapshot form's refusals.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/rtc.h"

/* Sunday 2026-12-06 17:26:37 UTC. */
#define T0 1796577997LL

static struct timespec at(int64_t sec, long nsec)
{
	return (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = nsec};
}

static void test_clock(void **st)
{
	struct rtc_state s;
	struct timespec t = at(T0, 0);

	(void)st;
	rtc_state_init(&s, &t);
	assert_int_equal(rtc_state_read(&s, RTC_SECONDS, &t), 0x37);
	assert_int_equal(rtc_state_read(&s, RTC_MINUTES, &t), 0x26);
	assert_int_equal(rtc_state_read(&s, RTC_HOURS, &t), 0x17);
	assert_int_equal(rtc_state_read(&s, 6, &t), 0x01); /* Sunday */
	assert_int_equal(rtc_state_read(&s, 7, &t), 0x06);
	assert_int_equal(rtc_state_read(&s, 8, &t), 0x12);
	assert_int_equal(rtc_state_read(&s, 9, &t), 0x26);
	assert_int_equal(rtc_state_read(&s, RTC_REG_D, &t), RTC_D_VRT);
	/* Writes to the clock are ignored: it follows the host's. */
	rtc_state_write(&s, RTC_MINUTES, 0x01, &t);
	assert_int_equal(rtc_state_read(&s, RTC_MINUTES, &t), 0x26);
	/* Binary, 12-hour: 17h is 5 PM. */
	rtc_state_write(&s, RTC_REG_B, RTC_B_DM_BINARY, &t);
	assert_int_equal(rtc_state_read(&s, RTC_REG_B, &t), RTC_B_DM_BINARY);
	assert_int_equal(rtc_state_read(&s, RTC_SECONDS, &t), 37);
	assert_int_equal(rtc_state_read(&s, RTC_HOURS, &t), 0x80 | 5);
	/* Other bytes are RAM; the index wraps at 128. */
	rtc_state_write(&s, 0x40, 0x5a, &t);
	assert_int_equal(rtc_state_read(&s, 0x40, &t), 0x5a);
	assert_int_equal(rtc_state_read(&s, 0xc0, &t), 0x5a);
}

static void test_uip(void **st)
{
	struct rtc_state s;
	struct timespec t = at(T0, 0);

	(void)st;
	rtc_state_init(&s, &t);
	assert_int_equal(rtc_state_read(&s, RTC_REG_A, &t), 0x26);
	t = at(T0, 1000000000L - RTC_UIP_NS - 1);
	assert_int_equal(rtc_state_read(&s, RTC_REG_A, &t) & RTC_A_UIP, 0);
	t = at(T0, 1000000000L - RTC_UIP_NS);
	assert_int_equal(rtc_state_read(&s, RTC_REG_A, &t), 0x26 | RTC_A_UIP);
	/* UIP cannot be written. */
	t = at(T0, 0);
	rtc_state_write(&s, RTC_REG_A, 0xa6, &t);
	assert_int_equal(rtc_state_read(&s, RTC_REG_A, &t), 0x26);
}

static void test_register_c(void **st)
{
	struct rtc_state s;
	struct timespec t = at(T0, 0);

	(void)st;
	rtc_state_init(&s, &t);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), 0);
	/* Alarm at 17:26:39; one second later only the update flag. */
	rtc_state_write(&s, RTC_SECONDS_ALARM, 0x39, &t);
	rtc_state_write(&s, RTC_MINUTES_ALARM, 0x26, &t);
	rtc_state_write(&s, RTC_HOURS_ALARM, 0x17, &t);
	t = at(T0 + 1, 5);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), RTC_C_UF);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), 0); /* the read cleared it */
	/* Past the alarm: AF, and IRQF only with AIE. */
	t = at(T0 + 3, 0);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), RTC_C_AF | RTC_C_UF);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), 0);
	rtc_state_write(&s, RTC_REG_B, RTC_B_24H | RTC_B_AIE, &t);
	t = at(T0 + 3 + 86400, 0); /* a day later it matched again */
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), RTC_C_IRQF | RTC_C_AF | RTC_C_UF);
	/* C is read-only. */
	rtc_state_write(&s, RTC_REG_C, 0xff, &t);
	assert_int_equal(rtc_state_read(&s, RTC_REG_C, &t), 0);
}

static void test_next_alarm(void **st)
{
	struct rtc_state s;
	struct timespec t = at(T0, 123), when;

	(void)st;
	rtc_state_init(&s, &t);
	/* Nothing armed without AIE. */
	assert_false(rtc_state_next_alarm(&s, &t, &when));
	rtc_state_write(&s, RTC_SECONDS_ALARM, 0xc0, &t);
	rtc_state_write(&s, RTC_MINUTES_ALARM, 0xc0, &t);
	rtc_state_write(&s, RTC_HOURS_ALARM, 0xff, &t);
	rtc_state_write(&s, RTC_REG_B, RTC_B_24H | RTC_B_AIE, &t);
	/* All "don't care": the next second. */
	assert_true(rtc_state_next_alarm(&s, &t, &when));
	assert_int_equal(when.tv_sec, T0 + 1);
	assert_int_equal(when.tv_nsec, 0);
	/* 17:30:00 */
	rtc_state_write(&s, RTC_SECONDS_ALARM, 0x00, &t);
	rtc_state_write(&s, RTC_MINUTES_ALARM, 0x30, &t);
	assert_true(rtc_state_next_alarm(&s, &t, &when));
	assert_int_equal(when.tv_sec, T0 + 3 * 60 + 23);
	/* A time that never comes. */
	rtc_state_write(&s, RTC_SECONDS_ALARM, 0x61, &t);
	assert_false(rtc_state_next_alarm(&s, &t, &when));
}

static void test_save_load(void **st)
{
	struct rtc_state s, r;
	struct timespec t = at(T0, 0);
	uint8_t buf[512], bad[512];
	struct errbuf err = {0};
	int n;

	(void)st;
	rtc_state_init(&s, &t);
	rtc_state_write(&s, 0x50, 0x77, &t);
	s.index = 0x50;
	assert_int_equal(rtc_state_save(&s, buf, 8), -ENOSPC);
	n = rtc_state_save(&s, buf, sizeof(buf));
	assert_true(n > 0);
	rtc_state_init(&r, &t);
	assert_int_equal(rtc_state_load(&r, buf, (size_t)n, &err), 0);
	assert_int_equal(r.index, 0x50);
	assert_int_equal(rtc_state_read(&r, 0x50, &t), 0x77);
	assert_int_equal(rtc_state_load(&r, buf, (size_t)n - 1, &err), -EINVAL);
	/* Each bad field: version, index, padding, time, A's UIP, C's low
	 * bits, D (offsets of struct rtc_saved). */
	{
		static const struct {
			size_t off;
			uint8_t v;
		} cases[] = {{0, 2},	       {4, 0x80},	  {5, 1},
			     {15, 0x80},       {16 + 0x0a, 0xa6}, {16 + 0x0c, 0x01},
			     {16 + 0x0d, 0x00}};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			memcpy(bad, buf, (size_t)n);
			bad[cases[i].off] = cases[i].v;
			rtc_state_init(&r, &t);
			assert_int_equal(rtc_state_load(&r, bad, (size_t)n, &err), -EINVAL);
			assert_int_equal(r.index, 0); /* untouched */
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clock),      cmocka_unit_test(test_uip),
	    cmocka_unit_test(test_register_c), cmocka_unit_test(test_next_alarm),
	    cmocka_unit_test(test_save_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
