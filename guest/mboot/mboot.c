// SPDX-License-Identifier: MIT
/*
 * guest/mboot: a multiboot v1 kernel, 32-bit, without guest/lib (whose
 * runtime is a 64-bit PVH one). It reports what its loader handed it on
 * COM1, one "mboot: " line per fact, so that tests/system/test_multiboot.py
 * can compare kvmini with QEMU: EAX, the information structure's flags and
 * memory fields, the command line, module 0 (its range, string and up to
 * 256 bytes of its contents) and every memory map entry. Then it exits
 * through isa-debug-exit (port 0xf4) with the status from "status=N" on
 * the command line (0 without), or 3 if EAX lacks the multiboot magic.
 */
#include <stdint.h>

#include "x86.h" /* guest/lib's port I/O (see MBOOT_FLAGS in guest.mk) */

#define MB_BOOT_MAGIC 0x2badb002u
#define COM1	      0x3f8
#define DEBUG_EXIT    0xf4

/* The information structure's fields that this guest reads. */
struct mb_info {
	uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
	uint32_t syms[4];
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr, config_table, boot_loader_name;
};

struct mb_mod {
	uint32_t start, end, string, reserved;
};

struct mb_mmap {
	uint32_t size;
	uint64_t base, length;
	uint32_t type;
} __attribute__((packed));

extern char _image_start[], _end[];
void mb_main(uint32_t eax, const struct mb_info *mbi);

static void putc(char c)
{
	/* Polled: wait for the transmit holding register (LSR bit 5). */
	for (int i = 0; i < 100000 && !(inb(COM1 + 5) & 0x20); i++)
		;
	outb(COM1, (uint8_t)c);
}

static void puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void put_hex(uint64_t v)
{
	char buf[19];
	int n = 0;

	buf[n++] = '0';
	buf[n++] = 'x';
	for (int shift = 60, started = 0; shift >= 0; shift -= 4) {
		unsigned d = (unsigned)(v >> shift) & 0xf;

		if (d || started || shift == 0) {
			buf[n++] = "0123456789abcdef"[d];
			started = 1;
		}
	}
	buf[n] = 0;
	puts(buf);
}

static void put_dec(uint32_t v)
{
	char buf[11];
	int n = sizeof(buf) - 1;

	buf[n] = 0;
	do {
		buf[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts(buf + n);
}

/* Bytes as text, anything unprintable (and '\') as \xNN. */
static void put_bytes(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\') {
			putc((char)p[i]);
		} else {
			puts("\\x");
			putc("0123456789abcdef"[p[i] >> 4]);
			putc("0123456789abcdef"[p[i] & 0xf]);
		}
	}
}

static void field(const char *name, uint32_t v, int hex)
{
	puts(" ");
	puts(name);
	puts("=");
	if (hex)
		put_hex(v);
	else
		put_dec(v);
}

static void line(const char *what)
{
	puts("mboot: ");
	puts(what);
}

/* "status=N" as a word of @s, else 0. */
static uint32_t cmdline_status(const char *s)
{
	static const char key[] = "status=";

	for (const char *w = s; *w; w++) {
		uint32_t v = 0;
		unsigned k = 0;

		if (w != s && w[-1] != ' ')
			continue;
		while (key[k] && w[k] == key[k])
			k++;
		if (key[k])
			continue;
		for (w += k; *w >= '0' && *w <= '9'; w++)
			v = v * 10 + (uint32_t)(*w - '0');
		return v;
	}
	return 0;
}

static void report_mods(const struct mb_info *mbi)
{
	const struct mb_mod *mod = (const struct mb_mod *)(uintptr_t)mbi->mods_addr;

	line("mods");
	field("count", mbi->mods_count, 0);
	puts("\n");
	if (!mbi->mods_count)
		return;
	line("mod0");
	field("start", mod->start, 1);
	field("end", mod->end, 1);
	field("aligned", (mod->start & 0xfff) == 0, 0);
	field("above_image", mod->start >= (uint32_t)(uintptr_t)_end, 0);
	puts(" string=");
	puts((const char *)(uintptr_t)mod->string);
	puts("\nmboot: data=");
	put_bytes((const uint8_t *)(uintptr_t)mod->start,
		  mod->end - mod->start < 256 ? mod->end - mod->start : 256);
	puts("\n");
}

static void report_mmap(const struct mb_info *mbi)
{
	uint32_t off = 0;

	line("mmap_length=");
	put_dec(mbi->mmap_length);
	puts("\n");
	for (int i = 0; i < 64 && off < mbi->mmap_length; i++) {
		const struct mb_mmap *e = (const struct mb_mmap *)(uintptr_t)(mbi->mmap_addr + off);

		line("mmap");
		field("size", e->size, 0);
		puts(" base=");
		put_hex(e->base);
		puts(" length=");
		put_hex(e->length);
		field("type", e->type, 0);
		puts("\n");
		off += e->size + 4;
	}
}

void mb_main(uint32_t eax, const struct mb_info *mbi)
{
	const char *cmdline = "";
	uint32_t status;

	line("start");
	field("eax", eax, 1);
	field("image_start", (uint32_t)(uintptr_t)_image_start, 1);
	field("image_end", (uint32_t)(uintptr_t)_end, 1);
	puts("\n");
	if (eax != MB_BOOT_MAGIC) {
		line("no multiboot magic in EAX\n");
		outl(DEBUG_EXIT, 3);
		return;
	}
	line("info");
	field("flags", mbi->flags, 1);
	puts("\n");
	if (mbi->flags & (1u << 0)) {
		line("mem");
		field("lower", mbi->mem_lower, 0);
		field("upper", mbi->mem_upper, 0);
		puts("\n");
	}
	if (mbi->flags & (1u << 2)) {
		cmdline = (const char *)(uintptr_t)mbi->cmdline;
		line("cmdline=");
		puts(cmdline);
		puts("\n");
	}
	if (mbi->flags & (1u << 9)) {
		line("loader=");
		puts((const char *)(uintptr_t)mbi->boot_loader_name);
		puts("\n");
	}
	if (mbi->flags & (1u << 3))
		report_mods(mbi);
	if (mbi->flags & (1u << 6))
		report_mmap(mbi);
	status = cmdline_status(cmdline);
	line("status=");
	put_dec(status);
	puts("\n");
	outl(DEBUG_EXIT, status);
}
