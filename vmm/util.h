/* SPDX-License-Identifier: MIT */
/* Small helpers shared by all of vmm/: error messages, size parsing. */
#ifndef KVMINI_UTIL_H
#define KVMINI_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((uint64_t)(a)-1))

/*
 * A one-line error message filled in by the function that failed; the top
 * level prints it as "kvmini: MSG" and exits 125. Any thread.
 */
struct errbuf {
	char msg[512];
};

/* Set the message (printf-style). Returns -@errnum negated, e.g.
 * "return err_set(err, EINVAL, "bad size '%s'", s);" returns -EINVAL. */
int err_set(struct errbuf *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parse a size: decimal digits with an optional K/M/G/T suffix (binary
 * multiples, case-insensitive, optional trailing 'B' or 'iB').
 * Returns 0 and *out, or -EINVAL (syntax) / -ERANGE (overflow). Pure.
 */
int parse_size(const char *s, uint64_t *out);

/* Parse a non-negative decimal integer in [min, max]. Pure. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

#endif
