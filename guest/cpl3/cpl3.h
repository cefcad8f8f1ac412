/* SPDX-License-Identifier: MIT */
/* The cpl3 guest's compute, in work_cpl3.c (SSE allowed: CPL3 only). */
#ifndef CPL3_H
#define CPL3_H

#include "guest.h"

struct cpl3_work {
	uint64_t rounds;
	uint64_t result;
};

/* @rounds steps of xorshift64 (13, 7, 17) from seed 88172645463325252. */
uint64_t cpl3_xorshift(uint64_t rounds);

/* Floating-point sanity check: 1 if SSE arithmetic gives the expected value. */
int cpl3_sse_check(void);

#endif
