/* SPDX-License-Identifier: MIT */
/* Error messages and number parsing; see vmm/util.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "vmm/util.h"

int err_set(struct errbuf *err, int errnum, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

/*
 * Leading decimal digits of @s into *@val; *@end is set after all of them even
 * on overflow, so that a syntax error after the digits can win over -ERANGE.
 * Returns -EINVAL if there are no digits, -ERANGE if they exceed 64 bits.
 */
static int parse_digits(const char *s, uint64_t *val, const char **end)
{
	uint64_t v = 0;
	const char *p = s;
	int r = 0;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			r = -ERANGE;
		else
			v = v * 10 + d;
	}
	*end = p;
	if (p == s)
		return -EINVAL;
	*val = v;
	return r;
}

static int lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "kmgtpe";
	unsigned shift = 0;
	uint64_t v = 0;
	const char *p;
	int r;

	if (!s)
		return -EINVAL;
	r = parse_digits(s, &v, &p);
	if (r == -EINVAL)
		return r;
	for (unsigned i = 0; *p && units[i]; i++) {
		if (lower(*p) == units[i]) {
			shift = 10 * (i + 1);
			p++;
			break;
		}
	}
	if (shift && lower(*p) == 'i' && lower(p[1]) == 'b')
		p++;
	if (lower(*p) == 'b')
		p++;
	if (*p)
		return -EINVAL;
	if (r)
		return r;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *end;
	int r;

	if (!s || min > max)
		return -EINVAL;
	r = parse_digits(s, &v, &end);
	if (r == -EINVAL || *end)
		return -EINVAL;
	if (r || v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}
