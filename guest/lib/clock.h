/* SPDX-License-Identifier: MIT */
/*
 * Time from the TSC. The rate comes from kvmclock (both kvmini and QEMU/KVM
 * offer it; our hosts report no TSC rate in CPUID leaves 0x15/0x16): the
 * pvclock scale factor converts TSC ticks to ns, so its inverse is the rate.
 * No PIT, no calibration loop (a CPL0 loop is emulated here).
 */
#ifndef GUEST_CLOCK_H
#define GUEST_CLOCK_H

#include <stdint.h>

/* TSC rate in kHz from kvmclock, or 0 if the VMM offers no kvmclock.
 * Measured once (first call, which must be at CPL0: it writes an MSR),
 * then cached; later calls work at any CPL. */
uint64_t tsc_khz(void);

/* The TSC rate for timeouts: tsc_khz(), or an assumed 3 GHz when unknown
 * (a timeout then lasts between ~0.3x and 1x what was asked on real CPUs). */
uint64_t tsc_khz_or_guess(void);

/* @ms milliseconds in TSC ticks (tsc_khz_or_guess). Any CPL after the first
 * tsc_khz call. */
uint64_t tsc_ms(uint64_t ms);

/* Nanoseconds for @ticks at @khz (no overflow below ~5e9 s at 3 GHz). */
uint64_t tsc_to_ns(uint64_t ticks, uint64_t khz);

#endif
