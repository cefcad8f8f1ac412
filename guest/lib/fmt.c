// SPDX-License-Identifier: MIT
/* printf-style formatting without libc: fmt_format and vsnprintf. */
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "guest.h"

struct spec {
	bool left, zero;
	int width;
	int prec; /* -1: none */
};

static void pad(fmt_sink sink, void *ctx, char c, int n)
{
	char buf[16];

	memset(buf, c, sizeof(buf));
	while (n > 0) {
		int k = n < (int)sizeof(buf) ? n : (int)sizeof(buf);
		sink(ctx, buf, k);
		n -= k;
	}
}

/* Emit @s (length @n) in a field described by @sp; the sign/prefix @pre goes
 * before zero padding. Returns the number of bytes emitted. */
static int field(fmt_sink sink, void *ctx, const struct spec *sp, const char *pre, const char *s,
		 int n)
{
	int npre = strlen(pre);
	int zeros = 0, len, spaces;

	if (sp->prec >= 0 && n < sp->prec)
		zeros = sp->prec - n; /* precision = minimum digits (numbers only) */
	else if (sp->zero && !sp->left && sp->prec < 0 && sp->width > npre + n)
		zeros = sp->width - npre - n;
	len = npre + zeros + n;
	spaces = sp->width > len ? sp->width - len : 0;
	if (!sp->left)
		pad(sink, ctx, ' ', spaces);
	sink(ctx, pre, npre);
	pad(sink, ctx, '0', zeros);
	sink(ctx, s, n);
	if (sp->left)
		pad(sink, ctx, ' ', spaces);
	return len + spaces;
}

static int utoa(char *end, uint64_t v, unsigned int base, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char *p = end;

	do {
		*--p = digits[v % base];
		v /= base;
	} while (v);
	return end - p;
}

static int read_int(const char **f, va_list *ap)
{
	int n = 0;

	if (**f == '*') {
		(*f)++;
		return va_arg(*ap, int);
	}
	while (**f >= '0' && **f <= '9')
		n = n * 10 + (*(*f)++ - '0');
	return n;
}

int fmt_format(fmt_sink sink, void *ctx, const char *f, va_list ap_in)
{
	va_list ap;
	int total = 0;

	va_copy(ap, ap_in);
	while (*f) {
		const char *lit = f;
		while (*f && *f != '%')
			f++;
		if (f > lit) {
			sink(ctx, lit, f - lit);
			total += f - lit;
		}
		if (!*f)
			break;
		f++; /* '%' */

		struct spec sp = {.prec = -1};
		for (;; f++) {
			if (*f == '-')
				sp.left = true;
			else if (*f == '0')
				sp.zero = true;
			else
				break;
		}
		sp.width = read_int(&f, &ap);
		if (sp.width < 0) {
			sp.left = true;
			sp.width = -sp.width;
		}
		if (*f == '.') {
			f++;
			sp.prec = read_int(&f, &ap);
			if (sp.prec < 0)
				sp.prec = -1;
		}

		int lng = 0; /* 0 int, 1 long/size_t/intmax_t/ptrdiff_t, -1 short, -2 char */
		for (;; f++) {
			if (*f == 'l' || *f == 'z' || *f == 'j' || *f == 't')
				lng = 1;
			else if (*f == 'h')
				lng = lng < 0 ? -2 : -1;
			else
				break;
		}

		char buf[24], *end = buf + sizeof(buf);
		const char *pre = "";
		uint64_t u;
		int64_t s;
		char c = *f ? *f++ : '%';

		switch (c) {
		case 'd':
		case 'i':
			s = lng > 0 ? va_arg(ap, long) : va_arg(ap, int);
			if (lng == -1)
				s = (short)s;
			else if (lng == -2)
				s = (signed char)s;
			u = s < 0 ? -(uint64_t)s : (uint64_t)s;
			pre = s < 0 ? "-" : "";
			{
				int n = utoa(end, u, 10, false);
				total += field(sink, ctx, &sp, pre, end - n, n);
			}
			break;
		case 'u':
		case 'x':
		case 'X':
		case 'o':
			u = lng > 0 ? va_arg(ap, unsigned long) : va_arg(ap, unsigned int);
			if (lng == -1)
				u = (uint16_t)u;
			else if (lng == -2)
				u = (uint8_t)u;
			{
				unsigned int base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
				int n = utoa(end, u, base, c == 'X');
				total += field(sink, ctx, &sp, "", end - n, n);
			}
			break;
		case 'p': {
			u = (uintptr_t)va_arg(ap, void *);
			int n = utoa(end, u, 16, false);
			total += field(sink, ctx, &sp, "0x", end - n, n);
			break;
		}
		case 's': {
			const char *str = va_arg(ap, const char *);
			if (!str)
				str = "(null)";
			int n = sp.prec >= 0 ? (int)strnlen(str, sp.prec) : (int)strlen(str);
			sp.prec = -1;
			sp.zero = false;
			total += field(sink, ctx, &sp, "", str, n);
			break;
		}
		case 'c':
			buf[0] = (char)va_arg(ap, int);
			sp.prec = -1;
			sp.zero = false;
			total += field(sink, ctx, &sp, "", buf, 1);
			break;
		default: /* "%%" and unknown conversions are printed as they are */
			buf[0] = c;
			sink(ctx, buf, 1);
			total++;
			break;
		}
	}
	va_end(ap);
	return total;
}

struct strbuf {
	char *buf;
	size_t size, len;
};

static void strbuf_sink(void *ctx, const char *s, size_t n)
{
	struct strbuf *b = ctx;

	if (b->len + 1 < b->size) {
		size_t room = b->size - 1 - b->len;
		memcpy(b->buf + b->len, s, n < room ? n : room);
	}
	b->len += n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct strbuf b = {buf, size, 0};
	int n = fmt_format(strbuf_sink, &b, fmt, ap);

	if (size)
		buf[b.len < size ? b.len : size - 1] = '\0';
	return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
