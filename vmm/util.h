/* SPDX-License-Identifier: MIT */
/* Small helpers shared by all of vmm/: error messages, size parsing. */
#ifndef KVMINI_UTIL_H
#define KVMINI_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a)  (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((uint64_t)(a)-1))

/* Little-endian fields of a byte array (a kernel file, say) at any alignment. */
#define LE_GET(bits)                                                                               \
	static inline uint##bits##_t get_le##bits(const void *p)                                   \
	{                                                                                          \
		uint##bits##_t v;                                                                  \
		__builtin_memcpy(&v, p, sizeof(v));                                                \
		return v;                                                                          \
	}
LE_GET(16)
LE_GET(32)
LE_GET(64)
#undef LE_GET

/*
 * A one-line error message filled in by the function that failed; the top
 * level prints it as "kvmini: MSG" and exits 125. Any thread.
 */
struct errbuf {
	char msg[512];
};

/* Set the message (printf-style; control characters become '?', so it stays
 * one line whatever it quotes). Returns -@errnum negated, e.g.
 * "return err_set(err, EINVAL, "bad size '%s'", s);" returns -EINVAL. */
int err_set(struct errbuf *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Parse a size: decimal digits with an optional K/M/G/T/P/E suffix (binary
 * multiples, case-insensitive, optionally followed by 'B' or 'iB'); a bare
 * 'B' means bytes. So "512", "512B", "4k", "4KB", "4KiB", "2g" are valid;
 * "", " 1", "1 ", "+1", "-1", "1.5G", "0x10", "1Ki", "1X" are -EINVAL.
 * "0" is valid (callers enforce their own minimum).
 * Returns 0 and *out, or -EINVAL (syntax) / -ERANGE (does not fit in 64
 * bits, e.g. "16E"); *out is untouched on error. Pure.
 */
int parse_size(const char *s, uint64_t *out);

/*
 * Parse a non-negative decimal integer (digits only: no sign, space or
 * prefix) in [min, max]. Returns 0 and *out, -EINVAL (syntax, or min > max)
 * or -ERANGE (outside [min, max] or beyond 64 bits); *out is untouched on
 * error. Pure.
 */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out);

/* CRC-32 (IEEE 802.3, as zlib): crc32_update(0, buf, len) starts a new
 * sum; pass the previous result to continue it. Pure. */
uint32_t crc32_update(uint32_t crc, const void *buf, size_t len);

/*
 * The next key=value of the comma-separated option list @spec given to
 * --@opt (--disk, --ivshmem), from *@p: returns 1 with the key (@klen
 * bytes at *@key) and the value (NUL-terminated in @val), 0 at the end of
 * the list, or -EINVAL with a message (empty option, no '=', a value
 * longer than @valsz - 1, trailing comma). @keys lists the keys for the
 * message. Pure.
 */
int opt_list_next(const char *opt, const char *spec, const char *keys, const char **p,
		  const char **key, size_t *klen, char *val, size_t valsz, struct errbuf *err);
/* Is [key, key + klen) the key @name? Pure. */
bool opt_key_is(const char *key, size_t klen, const char *name);

#endif
