// SPDX-License-Identifier: MIT
/*
 * COM1 output.
 *
 * Cost model (docs/guest-abi.md): every port access is a VM exit, ~12.7 us
 * from CPL0 on our hosts, more from CPL3 (via #GP). Polling the line status
 * register before every byte would double the exits, yet a real 16550 needs
 * some flow control and QEMU's UART drops the oldest FIFO byte if its host
 * side stalls while the FIFO is full. So: FIFOs on, and before each burst of
 * up to 16 bytes (the 16550A FIFO depth) wait for LSR.THRE (FIFO empty),
 * then send the burst with one `rep outsb`, which KVM delivers to the VMM as
 * a single exit. Cost: 2 exits per 16 bytes instead of 1-2 per byte. A UART
 * without FIFO (IIR reports none) gets one byte per THRE check.
 * (On our PVM hosts `rep outsb` still exits once per byte, but it saves the
 * emulated loop around single `out`s; on hardware KVM it is one exit.)
 *
 * From CPL3 all of that runs at CPL0 through one kernel_call per flush:
 * every CPL3 -> CPL0 trap costs ~70-100 us here, so one trap per printf
 * beats one #GP per port access (2 per 16 bytes) by about 2x for a line.
 */
#include <stdbool.h>
#include <stdint.h>

#include "console.h"
#include "guest.h"
#include "user.h"
#include "x86.h"

#define UART_THR   0
#define UART_IER   1
#define UART_IIR   2 /* read */
#define UART_FCR   2 /* write */
#define UART_LCR   3
#define UART_LSR   5
#define LSR_THRE   0x20
#define THRE_POLLS 100000 /* bound: a stuck UART must not hang the guest */

static unsigned int burst = 1; /* bytes per THRE check: 16 with a FIFO */
static int lock;
static bool panic_mode;

void console_init(void)
{
	outb(COM1_PORT + UART_IER, 0);	  /* no interrupts: we poll */
	outb(COM1_PORT + UART_LCR, 0x03); /* 8N1, DLAB off; the baud rate is moot */
	outb(COM1_PORT + UART_FCR, 0x07); /* enable and clear FIFOs */
	if ((inb(COM1_PORT + UART_IIR) & 0xc0) == 0xc0)
		burst = 16;
}

static void uart_write_cpl0(const char *s, size_t n)
{
	while (n) {
		size_t k = n < burst ? n : burst;

		for (int i = 0; i < THRE_POLLS; i++) {
			if (inb(COM1_PORT + UART_LSR) & LSR_THRE)
				break;
			cpu_relax();
		}
		outsb(COM1_PORT + UART_THR, s, k);
		s += k;
		n -= k;
	}
}

struct uart_buf {
	const char *s;
	size_t n;
};

static long uart_write_fn(void *arg)
{
	struct uart_buf *b = arg;

	uart_write_cpl0(b->s, b->n);
	return 0;
}

/* At CPL3 the whole write goes to CPL0 in one kernel_call: one trap instead
 * of one #GP per port access (measured: docs/guest-abi.md). */
static void uart_write(const char *s, size_t n)
{
	struct uart_buf b = {s, n};

	if (n)
		kernel_call(uart_write_fn, &b);
}

static void console_lock(void)
{
	unsigned long spins = 0;

	while (__atomic_exchange_n(&lock, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&lock, __ATOMIC_RELAXED)) {
			cpu_relax();
			if (panic_mode && ++spins > 1000000)
				return; /* the holder may be dead: print anyway */
		}
	}
}

static void console_unlock(void)
{
	__atomic_store_n(&lock, 0, __ATOMIC_RELEASE);
}

void console_panic_mode(void)
{
	panic_mode = true;
}

void console_write(const char *s, size_t n)
{
	console_lock();
	uart_write(s, n);
	console_unlock();
}

int puts(const char *s)
{
	printf("%s\n", s); /* one buffer: the newline joins the last burst */
	return 0;
}

/* printf buffers its output so each flush is one burst sequence. */
struct outbuf {
	char buf[256];
	size_t len;
};

static void outbuf_sink(void *ctx, const char *s, size_t n)
{
	struct outbuf *b = ctx;

	while (n) {
		size_t k = sizeof(b->buf) - b->len;
		if (k > n)
			k = n;
		memcpy(b->buf + b->len, s, k);
		b->len += k;
		s += k;
		n -= k;
		if (b->len == sizeof(b->buf)) {
			uart_write(b->buf, b->len);
			b->len = 0;
		}
	}
}

int vprintf(const char *fmt, va_list ap)
{
	struct outbuf b;
	int n;

	b.len = 0;
	console_lock();
	n = fmt_format(outbuf_sink, &b, fmt, ap);
	uart_write(b.buf, b.len);
	console_unlock();
	return n;
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vprintf(fmt, ap);
	va_end(ap);
	return n;
}
