/* SPDX-License-Identifier: MIT */
/* Crash-report disassembly through Zydis; see vmm/disasm.h. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "vmm/disasm.h"
#include "vmm/util.h"

/* Bytes column width: 10 bytes as "xx " minus the last space. */
#define BYTES_COLUMN 29

static bool mode_for_bits(int bits, ZydisMachineMode *mode, ZydisStackWidth *stack)
{
	switch (bits) {
	case 16:
		*mode = ZYDIS_MACHINE_MODE_LEGACY_16;
		*stack = ZYDIS_STACK_WIDTH_16;
		return true;
	case 32:
		*mode = ZYDIS_MACHINE_MODE_LEGACY_32;
		*stack = ZYDIS_STACK_WIDTH_32;
		return true;
	case 64:
		*mode = ZYDIS_MACHINE_MODE_LONG_64;
		*stack = ZYDIS_STACK_WIDTH_64;
		return true;
	}
	return false;
}

static void hex_bytes(char *dst, size_t dstlen, const uint8_t *p, size_t n)
{
	size_t used = 0;

	dst[0] = '\0';
	for (size_t i = 0; i < n && used + 4 <= dstlen; i++)
		used += (size_t)snprintf(dst + used, dstlen - used, i ? " %02x" : "%02x", p[i]);
}

static void emit(struct disasm_line *line, int bits, uint64_t addr, const uint8_t *p, size_t n,
		 const char *text)
{
	char bytes[3 * ZYDIS_MAX_INSTRUCTION_LENGTH + 1];

	hex_bytes(bytes, sizeof(bytes), p, n);
	if (bits == 64)
		snprintf(line->text, sizeof(line->text), "%016" PRIx64 ":  %-*s  %s", addr,
			 BYTES_COLUMN, bytes, text);
	else
		snprintf(line->text, sizeof(line->text), "%08" PRIx64 ":  %-*s  %s",
			 addr & 0xffffffffu, BYTES_COLUMN, bytes, text);
}

int disasm_lines(int bits, uint64_t addr, const uint8_t *buf, size_t len, struct disasm_line *out,
		 int max_lines)
{
	ZydisMachineMode mode;
	ZydisStackWidth stack;
	ZydisDecoder dec;
	ZydisFormatter fmt;
	size_t off = 0;
	int n = 0;

	if (!mode_for_bits(bits, &mode, &stack) || max_lines < 0)
		return -EINVAL;
	if (len == 0 || max_lines == 0)
		return 0;
	if (!buf || !out)
		return -EINVAL;
	if (ZYAN_FAILED(ZydisDecoderInit(&dec, mode, stack)) ||
	    ZYAN_FAILED(ZydisFormatterInit(&fmt, ZYDIS_FORMATTER_STYLE_INTEL)))
		return -EINVAL;

	while (n < max_lines && off < len) {
		ZydisDecodedInstruction insn;
		ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
		char text[96];
		uint64_t ip = addr + off;
		ZyanStatus st;

		if (bits != 64)
			ip &= 0xffffffffu;
		st = ZydisDecoderDecodeFull(&dec, buf + off, len - off, &insn, ops);
		if (st == ZYDIS_STATUS_NO_MORE_DATA) {
			emit(&out[n++], bits, ip, buf + off, len - off, "(truncated)");
			break;
		}
		if (ZYAN_FAILED(st)) {
			emit(&out[n++], bits, ip, buf + off, 1, "(bad)");
			break;
		}
		if (ZYAN_FAILED(ZydisFormatterFormatInstruction(&fmt, &insn, ops,
								insn.operand_count_visible, text,
								sizeof(text), ip, NULL)))
			snprintf(text, sizeof(text), "(unformattable)");
		emit(&out[n++], bits, ip, buf + off, insn.length, text);
		off += insn.length;
	}
	return n;
}

struct hint_rule {
	ZydisMnemonic mnemonic;
	const char *cpu_features;
	const char *linux_cmdline;
};

static const struct hint_rule hint_rules[] = {
    {ZYDIS_MNEMONIC_CMPXCHG16B, "-cx16", NULL},
    {ZYDIS_MNEMONIC_XSAVE, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVE64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVEOPT, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVEOPT64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVEC, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVEC64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVES, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSAVES64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XRSTOR, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XRSTOR64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XRSTORS, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XRSTORS64, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XGETBV, "-xsave", "noxsave"},
    {ZYDIS_MNEMONIC_XSETBV, "-xsave", "noxsave"},
};

bool disasm_emulation_hint(int bits, const uint8_t *buf, size_t len, struct disasm_hint *hint)
{
	ZydisMachineMode mode;
	ZydisStackWidth stack;
	ZydisDecoder dec;
	ZydisDecodedInstruction insn;

	if (!mode_for_bits(bits, &mode, &stack) || !buf || !len || !hint)
		return false;
	if (ZYAN_FAILED(ZydisDecoderInit(&dec, mode, stack)) ||
	    ZYAN_FAILED(ZydisDecoderDecodeInstruction(&dec, NULL, buf, len, &insn)))
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(hint_rules); i++) {
		const struct hint_rule *r = &hint_rules[i];
		const char *name;

		if (r->mnemonic != insn.mnemonic)
			continue;
		name = ZydisMnemonicGetString(insn.mnemonic);
		snprintf(hint->insn, sizeof(hint->insn), "%s%s",
			 (insn.attributes & ZYDIS_ATTRIB_HAS_LOCK) ? "lock " : "",
			 name ? name : "?");
		hint->cpu_features = r->cpu_features;
		hint->linux_cmdline = r->linux_cmdline;
		return true;
	}
	return false;
}
