/* SPDX-License-Identifier: MIT */
/*
 * JSON for QMP, both ends (the server in qmp.c, the client in ctl.c):
 * parsing with jsmn (strict mode) into tokens, walking tokens, and
 * escaping strings for output. Everything here is pure: any thread.
 */
#ifndef KVMINI_JSON_H
#define KVMINI_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* Only the token type here; json.c holds jsmn's one (extern) copy. */
#define JSMN_HEADER
#include <jsmn.h>

/* Parse @len bytes at @js into at most @max tokens. Returns the token
 * count (>= 1), or a negative JSMN_ERROR_* (NOMEM: too many tokens). */
int json_parse(const char *js, size_t len, jsmntok_t *toks, unsigned max);

/* As json_parse, into a malloc'ed array of just the right size (*@toks;
 * the caller frees it). Returns the token count, JSMN_ERROR_*, or
 * -ENOMEM. */
int json_parse_alloc(const char *js, size_t len, jsmntok_t **toks);

/* Index of the token after the value that starts at token @i (of @n). */
int json_skip(const jsmntok_t *t, int n, int i);

/* Is @t the string @s (compared as written, escapes not decoded)? */
bool json_eq(const char *js, const jsmntok_t *t, const char *s);

/* Token index of the value of member @key in the object at token @obj,
 * or -1 (no such member, or @obj is not an object). */
int json_member(const char *js, const jsmntok_t *t, int n, int obj, const char *key);

/* Copy the string token @t into @dst as written; false when @t is not a
 * string, does not fit, or holds an escape (our names never need one). */
bool json_str(const char *js, const jsmntok_t *t, char *dst, size_t size);

/* Copy the string token @t into @dst with its escapes decoded (\uXXXX to
 * UTF-8; a control character or NUL becomes '?'), truncated to fit;
 * a non-string token copies its text. Always NUL-terminates. */
void json_str_decode(const char *js, const jsmntok_t *t, char *dst, size_t size);

/* Length of the UTF-8 sequence at @p (at most @len bytes); 0 when it is
 * not UTF-8 (bad lead or continuation, overlong, surrogate, > U+10FFFF). */
size_t json_utf8_len(const unsigned char *p, size_t len);

/* Write @s into @dst as the inside of a JSON string (quotes, backslashes
 * and control characters escaped, bytes that are not UTF-8 as '?'),
 * truncated to fit @size. */
void json_escape(char *dst, size_t size, const char *s);

#endif
