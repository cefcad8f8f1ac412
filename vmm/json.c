// SPDX-License-Identifier: MIT
/* JSON helpers over jsmn tokens, shared by the QMP server and client. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STRICT
#include <jsmn.h> /* the definitions, once, before json.h's declarations */

#include "vmm/json.h"

int json_parse(const char *js, size_t len, jsmntok_t *toks, unsigned max)
{
	jsmn_parser p;

	jsmn_init(&p);
	return jsmn_parse(&p, js, len, toks, max);
}

int json_parse_alloc(const char *js, size_t len, jsmntok_t **toks)
{
	jsmn_parser p;
	int n;

	*toks = NULL;
	jsmn_init(&p);
	n = jsmn_parse(&p, js, len, NULL, 0); /* counts the tokens */
	if (n < 1)
		return n < 0 ? n : JSMN_ERROR_PART;
	*toks = calloc((size_t)n, sizeof(**toks));
	if (!*toks)
		return -ENOMEM;
	return json_parse(js, len, *toks, (unsigned)n);
}

int json_skip(const jsmntok_t *t, int n, int i)
{
	int pending = 1;

	while (pending > 0 && i < n) {
		if (t[i].type == JSMN_OBJECT)
			pending += 2 * t[i].size;
		else if (t[i].type == JSMN_ARRAY)
			pending += t[i].size;
		pending--;
		i++;
	}
	return i;
}

bool json_eq(const char *js, const jsmntok_t *t, const char *s)
{
	size_t len = strlen(s);

	return t->type == JSMN_STRING && (size_t)(t->end - t->start) == len &&
	       !strncmp(js + t->start, s, len);
}

int json_member(const char *js, const jsmntok_t *t, int n, int obj, const char *key)
{
	int i = obj + 1;

	if (obj < 0 || obj >= n || t[obj].type != JSMN_OBJECT)
		return -1;
	for (int m = 0; m < t[obj].size && i + 1 < n; m++) {
		if (json_eq(js, &t[i], key))
			return i + 1;
		i = json_skip(t, n, i + 1);
	}
	return -1;
}

bool json_str(const char *js, const jsmntok_t *t, char *dst, size_t size)
{
	size_t len = (size_t)(t->end - t->start);

	if (t->type != JSMN_STRING || len >= size || memchr(js + t->start, '\\', len))
		return false;
	memcpy(dst, js + t->start, len);
	dst[len] = '\0';
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Append code point @cp as UTF-8 if it fits in @dst[*o..size-1). */
static void put_utf8(char *dst, size_t size, size_t *o, unsigned cp)
{
	char b[3];
	size_t n;

	if (cp < 0x20) {
		b[0] = '?';
		n = 1;
	} else if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	}
	if (*o + n < size) {
		memcpy(dst + *o, b, n);
		*o += n;
	}
}

/* Decode the escape after a backslash at *@s (advanced past it): the code
 * point, or -1 when it is cut short or malformed. */
static long json_unescape_one(const char **s, const char *end)
{
	static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
	const char *m;
	long cp = 0;
	char e;

	if (*s == end)
		return -1;
	e = *(*s)++;
	if (e != 'u') {
		m = strchr(from, e);
		return m && e ? to[m - from] : (unsigned char)e; /* \" \\ \/ as themselves */
	}
	if (end - *s < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int h = hexval((*s)[i]);

		if (h < 0)
			return -1;
		cp = cp << 4 | h;
	}
	*s += 4;
	return cp >= 0xd800 && cp < 0xe000 ? '?' : cp; /* a lone surrogate half */
}

void json_str_decode(const char *js, const jsmntok_t *t, char *dst, size_t size)
{
	const char *s = js + t->start, *end = js + t->end;
	size_t o = 0;

	if (!size)
		return;
	while (s < end && o + 1 < size) {
		unsigned char ch = (unsigned char)*s++;
		long cp;

		if (ch != '\\' || t->type != JSMN_STRING) {
			/* Raw bytes (UTF-8 included) pass through; controls do not. */
			dst[o++] = ch < 0x20 && ch != '\n' && ch != '\t' ? '?' : (char)ch;
			continue;
		}
		cp = json_unescape_one(&s, end);
		if (cp < 0)
			break;
		if (cp == '\n' || cp == '\t')
			dst[o++] = (char)cp; /* whitespace stays readable */
		else
			put_utf8(dst, size, &o, (unsigned)cp);
	}
	dst[o] = '\0';
}

/* Length of the UTF-8 sequence at @p (at most @len bytes), 0 if invalid. */
size_t json_utf8_len(const unsigned char *p, size_t len)
{
	size_t n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] < 0xe0)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] < 0xf0)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] < 0xf5)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
	    (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
		return 0; /* overlong, surrogate, beyond U+10FFFF */
	return n;
}

void json_escape(char *dst, size_t size, const char *s)
{
	size_t o = 0, left = strlen(s);

	if (!size)
		return;
	while (*s && o + 7 < size) {
		unsigned char ch = (unsigned char)*s;
		size_t n = ch < 0x80 ? 1 : json_utf8_len((const unsigned char *)s, left);

		if (ch == '"' || ch == '\\') {
			dst[o++] = '\\';
			dst[o++] = (char)ch;
		} else if (ch < 0x20) {
			o += (size_t)snprintf(dst + o, size - o, "\\u%04x", ch);
		} else if (n == 0) {
			dst[o++] = '?'; /* not UTF-8: the reply must stay valid JSON */
			n = 1;
		} else {
			memcpy(dst + o, s, n);
			o += n;
		}
		s += n;
		left -= n;
	}
	dst[o] = '\0';
}
