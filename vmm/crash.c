// SPDX-License-Identifier: MIT
/*
 * Crash report: why the guest died, its registers, and the code at RIP
 * disassembled. Runs on the crashing vCPU's own thread (its state ioctls
 * are cheapest there); writes one block to stderr.
 */
#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/disasm.h"
#include "vmm/crash.h"

#define CRASH_CODE_BYTES 64
#define CRASH_INSNS	 6

/* Copy guest-virtual [gva, gva+len) through the vCPU's page tables, a page
 * at a time; returns bytes copied (stops at the first unmapped page). */
static size_t crash_read_gva(int vcpu_fd, const struct guest_mem *mem, uint64_t gva, uint8_t *buf,
			     size_t len, uint64_t *first_gpa)
{
	size_t done = 0;

	while (done < len) {
		struct kvm_translation tr = {.linear_address = gva + done};
		size_t chunk = 4096 - ((gva + done) & 4095);
		const void *p;

		if (chunk > len - done)
			chunk = len - done;
		if (ioctl(vcpu_fd, KVM_TRANSLATE, &tr) < 0 || !tr.valid)
			break;
		if (done == 0)
			*first_gpa = tr.physical_address;
		p = guest_mem_ptr(mem, tr.physical_address, chunk);
		if (!p)
			break;
		memcpy(buf + done, p, chunk);
		done += chunk;
	}
	return done;
}

static void crash_print_seg(FILE *f, const char *name, const struct kvm_segment *s)
{
	fprintf(f, "  %-3s sel=%04x base=%016llx limit=%08x type=%x dpl=%u p=%u db=%u l=%u g=%u\n",
		name, s->selector, (unsigned long long)s->base, s->limit, s->type, s->dpl,
		s->present, s->db, s->l, s->g);
}

static int crash_code_bits(const struct kvm_sregs *sregs)
{
	if ((sregs->efer & (1u << 10)) && sregs->cs.l) /* EFER.LMA and CS.L */
		return 64;
	if (!(sregs->cr0 & 1))
		return 16;
	return sregs->cs.db ? 32 : 16;
}

/*
 * The architectural state after RESET/INIT. KVM on AMD SVM reinitialises a
 * vCPU when it intercepts a shutdown (the VMCB is undefined afterwards), so a
 * triple fault there leaves this state instead of the registers at the fault.
 */
static bool crash_is_reset_state(const struct kvm_regs *r, const struct kvm_sregs *s)
{
	return r->rip == 0xfff0 && s->cs.selector == 0xf000 && s->cs.base == 0xffff0000 &&
	       !(s->cr0 & 1) && s->idt.base == 0 && s->gdt.base == 0;
}

void crash_report(int vcpu_fd, int vcpu_id, const struct guest_mem *mem, const char *reason)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	uint8_t code[CRASH_CODE_BYTES];
	struct disasm_line lines[CRASH_INSNS];
	struct disasm_hint hint;
	uint64_t gva, gpa = 0;
	size_t n;
	int bits, nlines;
	FILE *f = stderr;

	flockfile(f);
	fprintf(f, "kvmini: guest crashed on vCPU %d: %s\n", vcpu_id, reason);
	if (ioctl(vcpu_fd, KVM_GET_REGS, &r) < 0 || ioctl(vcpu_fd, KVM_GET_SREGS, &s) < 0) {
		fprintf(f, "  (cannot read vCPU registers: %s)\n", strerror(errno));
		goto out;
	}
	fprintf(f, "  rip=%016llx rsp=%016llx rflags=%016llx\n", (unsigned long long)r.rip,
		(unsigned long long)r.rsp, (unsigned long long)r.rflags);
	fprintf(f, "  rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", (unsigned long long)r.rax,
		(unsigned long long)r.rbx, (unsigned long long)r.rcx, (unsigned long long)r.rdx);
	fprintf(f, "  rsi=%016llx rdi=%016llx rbp=%016llx r8 =%016llx\n", (unsigned long long)r.rsi,
		(unsigned long long)r.rdi, (unsigned long long)r.rbp, (unsigned long long)r.r8);
	fprintf(f, "  r9 =%016llx r10=%016llx r11=%016llx r12=%016llx\n", (unsigned long long)r.r9,
		(unsigned long long)r.r10, (unsigned long long)r.r11, (unsigned long long)r.r12);
	fprintf(f, "  r13=%016llx r14=%016llx r15=%016llx\n", (unsigned long long)r.r13,
		(unsigned long long)r.r14, (unsigned long long)r.r15);
	fprintf(f, "  cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n",
		(unsigned long long)s.cr0, (unsigned long long)s.cr2, (unsigned long long)s.cr3,
		(unsigned long long)s.cr4, (unsigned long long)s.efer);
	crash_print_seg(f, "cs", &s.cs);
	crash_print_seg(f, "ss", &s.ss);
	crash_print_seg(f, "ds", &s.ds);
	fprintf(f, "  gdt=%016llx/%04x idt=%016llx/%04x\n", (unsigned long long)s.gdt.base,
		s.gdt.limit, (unsigned long long)s.idt.base, s.idt.limit);

	if (crash_is_reset_state(&r, &s)) {
		fprintf(
		    f,
		    "  these are the vCPU's reset values: this host's KVM (AMD SVM) reset the vCPU "
		    "when the guest shut down, so its registers at the fault are lost\n");
		goto out;
	}
	bits = crash_code_bits(&s);
	gva = bits == 64 ? r.rip : s.cs.base + (bits == 32 ? (uint32_t)r.rip : (uint16_t)r.rip);
	n = crash_read_gva(vcpu_fd, mem, gva, code, sizeof(code), &gpa);
	if (n == 0) {
		fprintf(f, "  code at rip: not readable (address %016llx is not mapped to RAM)\n",
			(unsigned long long)gva);
		goto out;
	}
	fprintf(f, "  code at rip (%d-bit, guest physical %016llx):\n", bits,
		(unsigned long long)gpa);
	nlines = disasm_lines(bits, gva, code, n, lines, CRASH_INSNS);
	for (int i = 0; i < nlines; i++)
		fprintf(f, "  %s %s\n", i == 0 ? "=>" : "  ", lines[i].text);
	if (disasm_emulation_hint(bits, code, n, &hint)) {
		fprintf(f,
			"  hint: this host's KVM cannot emulate '%s'; hide it from the guest with "
			"--cpu-features %s",
			hint.insn, hint.cpu_features);
		if (hint.linux_cmdline)
			fprintf(f, " (a Linux guest also needs '%s' on its command line)",
				hint.linux_cmdline);
		fputc('\n', f);
	}
out:
	fflush(f);
	funlockfile(f);
}
