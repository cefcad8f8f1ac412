// SPDX-License-Identifier: MIT
/* A strict JSON checker: see json_check.h. */
#include <string.h>

#include "tests/fuzz/json_check.h"

#define MAX_DEPTH 64

struct jc {
	const unsigned char *s;
	size_t len, i;
	const char *why;
};

static bool jc_fail(struct jc *j, const char *why)
{
	if (!j->why)
		j->why = why;
	return false;
}

static void jc_ws(struct jc *j)
{
	while (j->i < j->len && strchr(" \t\r\n", j->s[j->i]) && j->s[j->i])
		j->i++;
}

static bool jc_lit(struct jc *j, const char *lit)
{
	size_t n = strlen(lit);

	if (j->len - j->i < n || memcmp(j->s + j->i, lit, n))
		return jc_fail(j, "bad literal");
	j->i += n;
	return true;
}

/* One UTF-8 sequence at j->i (lead byte >= 0x80): shortest form, no
 * surrogates, at most U+10FFFF. */
static bool jc_utf8(struct jc *j)
{
	unsigned char c = j->s[j->i];
	unsigned n, cp;

	if (c >= 0xc2 && c <= 0xdf)
		n = 1, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, cp = c & 0x07;
	else
		return jc_fail(j, "invalid UTF-8");
	if (j->len - j->i <= n)
		return jc_fail(j, "truncated UTF-8");
	for (unsigned k = 1; k <= n; k++) {
		if ((j->s[j->i + k] & 0xc0) != 0x80)
			return jc_fail(j, "invalid UTF-8");
		cp = cp << 6 | (j->s[j->i + k] & 0x3f);
	}
	if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return jc_fail(j, "invalid UTF-8");
	j->i += n + 1;
	return true;
}

static bool jc_string(struct jc *j)
{
	j->i++; /* the opening quote */
	while (j->i < j->len) {
		unsigned char c = j->s[j->i];

		if (c == '"') {
			j->i++;
			return true;
		}
		if (c < 0x20)
			return jc_fail(j, "raw control character in a string");
		if (c >= 0x80) {
			if (!jc_utf8(j))
				return false;
			continue;
		}
		if (c == '\\') {
			if (++j->i == j->len)
				break;
			c = j->s[j->i];
			if (c == 'u') {
				for (int k = 1; k <= 4; k++)
					if (j->i + k >= j->len ||
					    !strchr("0123456789abcdefABCDEF", j->s[j->i + k]) ||
					    !j->s[j->i + k])
						return jc_fail(j, "bad \\u escape");
				j->i += 4;
			} else if (!strchr("\"\\/bfnrt", c) || !c) {
				return jc_fail(j, "bad escape");
			}
		}
		j->i++;
	}
	return jc_fail(j, "unterminated string");
}

static bool jc_digits(struct jc *j)
{
	size_t start = j->i;

	while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > start || jc_fail(j, "bad number");
}

static bool jc_number(struct jc *j)
{
	if (j->s[j->i] == '-')
		j->i++;
	if (j->i < j->len && j->s[j->i] == '0')
		j->i++;
	else if (!jc_digits(j))
		return false;
	if (j->i < j->len && j->s[j->i] == '.') {
		j->i++;
		if (!jc_digits(j))
			return false;
	}
	if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (!jc_digits(j))
			return false;
	}
	return true;
}

static bool jc_value(struct jc *j, int depth)
{
	unsigned char c;

	jc_ws(j);
	if (j->i == j->len)
		return jc_fail(j, "value expected");
	c = j->s[j->i];
	if (c == '"')
		return jc_string(j);
	if (c == '-' || (c >= '0' && c <= '9'))
		return jc_number(j);
	if (c == 't')
		return jc_lit(j, "true");
	if (c == 'f')
		return jc_lit(j, "false");
	if (c == 'n')
		return jc_lit(j, "null");
	if (c != '{' && c != '[')
		return jc_fail(j, "value expected");
	if (depth == MAX_DEPTH)
		return jc_fail(j, "nested too deep");
	j->i++;
	jc_ws(j);
	if (j->i < j->len && j->s[j->i] == (c == '{' ? '}' : ']')) {
		j->i++;
		return true;
	}
	for (;;) {
		if (c == '{') {
			jc_ws(j);
			if (j->i == j->len || j->s[j->i] != '"')
				return jc_fail(j, "member name expected");
			if (!jc_string(j))
				return false;
			jc_ws(j);
			if (j->i == j->len || j->s[j->i] != ':')
				return jc_fail(j, "':' expected");
			j->i++;
		}
		if (!jc_value(j, depth + 1))
			return false;
		jc_ws(j);
		if (j->i == j->len)
			return jc_fail(j, "unterminated object or array");
		if (j->s[j->i] == ',') {
			j->i++;
			continue;
		}
		if (j->s[j->i] != (c == '{' ? '}' : ']'))
			return jc_fail(j, "',' or end of object/array expected");
		j->i++;
		return true;
	}
}

bool json_check_object(const char *s, size_t len, const char **why, size_t *at)
{
	struct jc j = {(const unsigned char *)s, len, 0, NULL};
	bool ok;

	jc_ws(&j);
	ok = j.i < len && s[j.i] == '{' ? jc_value(&j, 0) : jc_fail(&j, "not an object");
	if (ok) {
		jc_ws(&j);
		if (j.i != len)
			ok = jc_fail(&j, "text after the object");
	}
	*why = j.why;
	*at = j.i;
	return ok;
}
