// SPDX-License-Identifier: MIT
/*
 * Measures what docs/guest-abi.md reports: a compute loop, port I/O and
 * serial printing, each at CPL0 and at CPL3, and the user_call round trip.
 * Times are TSC ticks, converted to ns with the TSC rate from kvmclock when
 * the VMM offers it. Counts scale with scale=N (percent, default 100).
 * Prints one line per measurement; exits 0. Ports used: 0x3ff (the UART
 * scratch register: a real device exit that prints nothing) and 0x80.
 */
#include "guest.h"

static const char line[] = "bench: a 64-byte line of console output .......................\n";

static void spin(uint64_t n)
{
	__asm__ volatile("1: dec %0; jnz 1b" : "+r"(n));
}

static void pio_scratch(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		outb(COM1_PORT + 7, i);
}

static void pio_80(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		outb(0x80, i);
}

/* 64 bytes to the scratch register: one rep outsb, or 64 single outs. */
static void pio_rep64(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		outsb(COM1_PORT + 7, line, 64);
}

static void pio_single64(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		for (int j = 0; j < 64; j++)
			outb(COM1_PORT + 7, line[j]);
}

static void print_lines(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		console_write(line, sizeof(line) - 1);
}

/* console_write's algorithm done by CPL3 code itself: every access a #GP. */
static void print_lines_gp(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		for (size_t off = 0; off < sizeof(line) - 1; off += 16) {
			while (!(inb(COM1_PORT + 5) & 0x20))
				;
			size_t k = sizeof(line) - 1 - off;
			outsb(COM1_PORT, line + off, k < 16 ? k : 16);
		}
}

/* The obvious driver, for comparison: poll LSR, then out, for every byte. */
static void print_lines_naive(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		for (const char *p = line; *p; p++) {
			while (!(inb(COM1_PORT + 5) & 0x20))
				;
			outb(COM1_PORT, *p);
		}
}

static long null_fn(void *arg)
{
	return 0;
}

static void user_round_trip(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		user_call(null_fn, NULL);
}

static void kernel_round_trip(uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		kernel_call(null_fn, NULL);
}

struct bench {
	const char *name;
	void (*fn)(uint64_t n);
	int user; /* run at CPL3 */
	uint64_t n;
	uint64_t ticks; /* result */
};

static long run_user(void *arg)
{
	struct bench *b = arg;

	b->fn(b->n);
	return 0;
}

static struct bench benches[] = {
    {"loop iteration, CPL0", spin, 0, 100000, 0},
    {"loop iteration, CPL3", spin, 1, 1000000000, 0},
    {"out 0x3ff, CPL0", pio_scratch, 0, 2000, 0},
    {"out 0x3ff, CPL3 via #GP", pio_scratch, 1, 2000, 0},
    {"out 0x80, CPL0", pio_80, 0, 2000, 0},
    {"out 0x80, CPL3 direct", pio_80, 1, 2000, 0},
    {"rep outsb 64 x 0x3ff, CPL0", pio_rep64, 0, 20, 0},
    {"64 x out 0x3ff, CPL0", pio_single64, 0, 20, 0},
    {"64-byte line, CPL0", print_lines, 0, 20, 0},
    {"64-byte line, CPL3 kernel_call", print_lines, 1, 20, 0},
    {"64-byte line, CPL3 via #GP", print_lines_gp, 1, 20, 0},
    {"64-byte line naive, CPL0", print_lines_naive, 0, 10, 0},
    {"64-byte line naive, CPL3", print_lines_naive, 1, 5, 0},
    {"user_call round trip", user_round_trip, 0, 1000, 0},
    {"kernel_call round trip, CPL3", kernel_round_trip, 1, 1000, 0},
};

static void report(const struct bench *b, uint64_t khz)
{
	printf("bench: %-32s %10lu ops %12lu ticks", b->name, b->n, b->ticks);
	if (khz) {
		/* hundredths of ns per op; ticks * 1e8 fits 64 bits up to 1.8e11 ticks */
		uint64_t t = b->ticks * 100000000 / khz / b->n;
		printf(" %10lu.%02lu ns/op", t / 100, t % 100);
	}
	printf("\n");
}

int main(void)
{
	uint64_t scale = 100, khz = tsc_khz();
	unsigned int n = sizeof(benches) / sizeof(benches[0]);

	cmdline_get_u64("scale", &scale);
	if (khz)
		printf("bench: TSC %lu kHz (kvmclock)\n", khz);
	else
		printf("bench: TSC rate unknown (no kvmclock): ticks only\n");
	for (unsigned int i = 0; i < n; i++) {
		struct bench *b = &benches[i];
		b->n = b->n * scale / 100;
		if (b->n == 0)
			b->n = 1;
		uint64_t t0 = rdtsc();
		if (b->user)
			user_call(run_user, b);
		else
			b->fn(b->n);
		b->ticks = rdtsc() - t0;
	}
	for (unsigned int i = 0; i < n; i++)
		report(&benches[i], khz);
	if (benches[1].ticks)
		printf("bench: CPL0/CPL3 loop ratio %lu\n",
		       (benches[0].ticks * benches[1].n) / (benches[1].ticks * benches[0].n));
	return 0;
}
