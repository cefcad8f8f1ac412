/* SPDX-License-Identifier: MIT */
/*
 * A strict JSON (RFC 8259) checker for what kvmini writes: one value,
 * UTF-8 text, no raw control characters in strings, valid escapes and
 * numbers, nesting at most 64 deep. For the fuzz targets; pure.
 */
#ifndef KVMINI_FUZZ_JSON_CHECK_H
#define KVMINI_FUZZ_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* Is @s[0..len) exactly one JSON object (whitespace around it allowed)?
 * If not, *@why says what is wrong and *@at where. */
bool json_check_object(const char *s, size_t len, const char **why, size_t *at);

#endif
