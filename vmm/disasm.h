/* SPDX-License-Identifier: MIT */
/*
 * Disassembly for crash reports (Zydis, Intel syntax), and hints for
 * instructions that this host's KVM cannot emulate.
 *
 * Pure functions over a caller-supplied byte buffer: they never read guest
 * memory themselves, allocate nothing and may be called from any thread.
 */
#ifndef KVMINI_DISASM_H
#define KVMINI_DISASM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One output line: address, up to 15 bytes in hex and Zydis' text fit. */
#define DISASM_LINE_MAX 192

struct disasm_line {
	char text[DISASM_LINE_MAX];
};

/*
 * Disassemble up to @max_lines instructions from @buf[0..len), the bytes that
 * start at guest address @addr, in @bits-bit mode (16, 32 or 64). Each line is
 *
 *   "ADDR:  BYTES  TEXT"   e.g. "0000000000001000:  f0 48 0f c7 0e  lock cmpxchg16b [rsi]"
 *
 * ADDR has 16 hex digits in 64-bit mode and 8 otherwise; in 32-bit mode it
 * wraps at 4 GiB. BYTES is padded to the width of 10 bytes (longer ones push
 * TEXT right). In 16-bit mode pass the linear address (CS base + IP); branch
 * targets are then shown as offsets within CS, as the CPU computes them.
 *
 * Decoding stops cleanly after the first line that is not an instruction:
 *   "ADDR:  b0     (bad)"              the byte at ADDR starts no valid
 *                                       instruction (only that byte is shown);
 *   "ADDR:  b0 b1  (truncated)"        the buffer ends inside an instruction
 *                                       (all remaining bytes are shown).
 * Returns the number of lines written to @out (0 if @len or @max_lines is 0),
 * or -EINVAL if @bits is not 16, 32 or 64 or a pointer is NULL while needed.
 */
int disasm_lines(int bits, uint64_t addr, const uint8_t *buf, size_t len, struct disasm_line *out,
		 int max_lines);

/*
 * A known way around an instruction the in-kernel emulator of this host's KVM
 * (kvm_pvm, see DESIGN.md "The host here") lacks, found at a guest's crash RIP.
 */
struct disasm_hint {
	char insn[32];		   /* e.g. "lock cmpxchg16b", "xrstor" (Zydis' mnemonic) */
	const char *cpu_features;  /* the --cpu-features mask that avoids it: "-cx16", "-xsave" */
	const char *linux_cmdline; /* kernel parameter for Linux guests, or NULL if none is
				    * needed ("noxsave": this host forces XSAVE on in CPUID
				    * whatever the VMM sets, so the mask alone may not help) */
};

/*
 * Decode the one instruction at the start of @buf[0..len) in @bits-bit mode
 * and, if it is one kvm_pvm cannot emulate, fill *@hint and return true:
 *   cmpxchg16b (locked or not)                           -> "-cx16"
 *   xsave, xsaveopt, xsavec, xsaves (and their 64 forms),
 *   xrstor, xrstors (and 64 forms), xgetbv, xsetbv       -> "-xsave", Linux "noxsave"
 * Returns false (and leaves *@hint untouched) for anything else, including
 * bytes that do not decode, a truncated instruction, or bad arguments.
 */
bool disasm_emulation_hint(int bits, const uint8_t *buf, size_t len, struct disasm_hint *hint);

#endif
