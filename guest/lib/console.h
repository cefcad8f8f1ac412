/* SPDX-License-Identifier: MIT */
/*
 * Serial console on the 8250/16550 UART at COM1 (I/O port 0x3f8), output
 * only, plus freestanding printf/snprintf.
 *
 * Formats: %d %i %u %x %X %o %p %s %c %%; length modifiers hh h l ll z j t;
 * flags '-' (left align) and '0' (zero pad); field width and precision
 * (numbers or '*'); precision limits %s. No floating point. '\n' is sent
 * as is (no CR is added).
 *
 * Output functions may be called from any CPU at CPL0 or CPL3. At CPL3 the
 * formatting runs at CPL3 and each flush of output goes to CPL0 with one
 * kernel_call (user.h). printf and puts hold a spinlock for the whole call,
 * so concurrent lines do not mix.
 */
#ifndef GUEST_CONSOLE_H
#define GUEST_CONSOLE_H

#include <stdarg.h>
#include <stddef.h>

#define COM1_PORT 0x3f8

/* Initialise the UART (8N1, FIFOs on). Boot code, BSP, CPL0, once. */
void console_init(void);

/* Write @n bytes. Takes the console lock. */
void console_write(const char *s, size_t n);

/* Write @s and a newline. Returns 0. */
int puts(const char *s);

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);

/* Like C99: write at most @size bytes including the NUL, return the length
 * the full output would have had. */
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

/* Formatting engine: calls @sink(ctx, chunk, len) for each piece of output.
 * Returns the total length. */
typedef void (*fmt_sink)(void *ctx, const char *s, size_t n);
int fmt_format(fmt_sink sink, void *ctx, const char *fmt, va_list ap);

/* For fatal paths: stop honouring the console lock after a bounded wait,
 * so a CPU that died holding it cannot silence the report. */
void console_panic_mode(void);

#endif
