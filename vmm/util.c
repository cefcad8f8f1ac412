/* SPDX-License-Identifier: MIT */
/* Error messages and number parsing; see vmm/util.h. */
#include <errno.h>
#include <string.h>
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
		/* Messages quote untrusted input (options, file names, section
		 * names): a control character there must not split the line or
		 * drive the terminal. */
		for (char *p = err->msg; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
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

/* Slice-by-8 tables, built on first use (idempotent: racing builders
 * write the same values). */
static uint32_t crc32_tab[8][256];
static int crc32_ready;

static void crc32_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc32_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc32_tab[t][i] =
			    (crc32_tab[t - 1][i] >> 8) ^ crc32_tab[0][crc32_tab[t - 1][i] & 0xff];
	__atomic_store_n(&crc32_ready, 1, __ATOMIC_RELEASE); /* pairs with the acquire below */
}

uint32_t crc32_update(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	if (!__atomic_load_n(&crc32_ready, __ATOMIC_ACQUIRE))
		crc32_init();
	crc = ~crc;
	while (len >= 8) {
		uint32_t lo, hi;

		memcpy(&lo, p, 4);
		memcpy(&hi, p + 4, 4);
		lo ^= crc;
		crc = crc32_tab[7][lo & 0xff] ^ crc32_tab[6][(lo >> 8) & 0xff] ^
		      crc32_tab[5][(lo >> 16) & 0xff] ^ crc32_tab[4][lo >> 24] ^
		      crc32_tab[3][hi & 0xff] ^ crc32_tab[2][(hi >> 8) & 0xff] ^
		      crc32_tab[1][(hi >> 16) & 0xff] ^ crc32_tab[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = crc32_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* Is [key, key + klen) the key @name? */
bool opt_key_is(const char *key, size_t klen, const char *name)
{
	return strlen(name) == klen && !strncmp(key, name, klen);
}

/*
 * The next key=value of the comma-separated option list @spec given to
 * --@opt (--disk, --ivshmem), from *@p: returns 1 with the key (@klen
 * bytes at *@key) and the value (NUL-terminated in @val), 0 at the end of
 * the list, or -EINVAL with a message (empty option, no '=', a value
 * longer than @valsz - 1, trailing comma). @keys lists the keys for the
 * message.
 */
int opt_list_next(const char *opt, const char *spec, const char *keys, const char **p,
		  const char **key, size_t *klen, char *val, size_t valsz, struct errbuf *err)
{
	const char *s = *p, *end, *eq;
	size_t len, vlen;

	if (!*s)
		return 0;
	end = strchr(s, ',');
	len = end ? (size_t)(end - s) : strlen(s);
	if (len == 0)
		return err_set(err, EINVAL, "--%s '%s': empty option", opt, spec);
	eq = memchr(s, '=', len);
	if (!eq)
		return err_set(err, EINVAL, "--%s '%s': '%.*s' is not key=value (keys: %s)", opt,
			       spec, (int)len, s, keys);
	*key = s;
	*klen = (size_t)(eq - s);
	vlen = len - *klen - 1;
	if (vlen >= valsz)
		return err_set(err, EINVAL, "--%s '%s': %.*s is too long", opt, spec, (int)*klen,
			       s);
	memcpy(val, eq + 1, vlen);
	val[vlen] = '\0';
	*p = end ? end + 1 : s + len;
	if (end && !end[1])
		return err_set(err, EINVAL, "--%s '%s': trailing comma", opt, spec);
	return 1;
}
