/* SPDX-License-Identifier: MIT */
/*
 * Fuzz targets (tests/fuzz/, libFuzzer; docs/testing.md "Fuzzing"). Each
 * target is one file, tests/fuzz/NAME.c, that defines LLVMFuzzerTestOneInput
 * and, optionally, fuzz_seeds; fuzz_main.c is linked into every target.
 *
 * Run with FUZZ_SEED_DIR=DIR, a target writes its seed inputs into DIR
 * (made by the project's own writers: a real snapshot, a device's save op)
 * and exits: `make fuzz` does that at build time, nothing binary is
 * committed. A target finding a bad result calls fuzz_fail, which aborts:
 * libFuzzer reports it as a crash and keeps the input.
 */
#ifndef KVMINI_FUZZ_H
#define KVMINI_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Optional (weak): write seed inputs into @dir; 0 or -errno. */
int fuzz_seeds(const char *dir);

/* Write @len bytes of @data as @dir/@name (for fuzz_seeds); aborts on error. */
void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len);

/* Print what was wrong (printf format) and abort. */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* An error message as kvmini's contract wants it: one line, not empty
 * (fuzz_fail otherwise; @what names the call). */
void fuzz_check_msg(const char *what, const char *msg);

#endif
