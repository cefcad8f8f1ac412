// SPDX-License-Identifier: MIT
/* Exception dispatch, CPL3 port-I/O emulation, unhandled-trap reports. */
#include <stdbool.h>
#include <stddef.h>

#include "console.h"
#include "cpu.h"
#include "guest.h"
#include "trap.h"
#include "user.h"
#include "x86.h"

struct idt_gate {
	uint16_t off_lo;
	uint16_t sel;
	uint8_t ist;
	uint8_t type; /* P | DPL 0 | 64-bit interrupt gate (IF cleared on entry) */
	uint16_t off_mid;
	uint32_t off_hi;
	uint32_t reserved;
} __attribute__((packed));

#define GATE_INTR 0x8e

static struct idt_gate idt[256] __attribute__((aligned(16)));
static trap_handler_fn handlers[256];

const struct idt_ptr trap_idt_ptr = {sizeof(idt) - 1, (uint64_t)idt};

extern const char trap_stubs[];		      /* trap.S: 256 stubs, 16 bytes each */
extern const char user_return[];	      /* trap.S: the ud2 ending a user_call */
_Noreturn void user_resume(long result);      /* trap.S */
extern const char kernel_call_ud2[];	      /* trap.S: the ud2 of kernel_call_trap */
long kernel_call_trap(user_fn fn, void *arg); /* trap.S */

static const char *const names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS",
    "#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static void gate_set(unsigned int v)
{
	uint64_t a = (uint64_t)(trap_stubs + 16 * v);

	idt[v] = (struct idt_gate){
	    .off_lo = a & 0xffff,
	    .sel = SEL_KCODE,
	    .type = GATE_INTR,
	    .off_mid = (a >> 16) & 0xffff,
	    .off_hi = a >> 32,
	};
}

void trap_init(void)
{
	for (unsigned int v = 0; v < 32; v++)
		gate_set(v);
}

void trap_set_handler(unsigned int vector, trap_handler_fn fn)
{
	vector &= 0xff;
	handlers[vector] = fn;
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* handler visible before the gate */
	gate_set(vector);
}

static uint64_t user_pio_count;

uint64_t trap_user_pio_count(void)
{
	return __atomic_load_n(&user_pio_count, __ATOMIC_RELAXED);
}

long kernel_call(user_fn fn, void *arg)
{
	return cpl() == 0 ? fn(arg) : kernel_call_trap(fn, arg);
}

static bool from_user(const struct trap_frame *f)
{
	return (f->cs & 3) == 3;
}

/* Is [addr, addr + len) inside the identity map (below 4 GiB)? */
static bool mapped(uint64_t addr, uint64_t len)
{
	return addr < GUEST_MAPPED_END && len <= GUEST_MAPPED_END - addr;
}

static void port_in(uint16_t port, unsigned int size, struct trap_frame *f)
{
	uint32_t v = pio_read(port, size);

	if (size == 4)
		f->rax = v; /* a write to eax zero-extends into rax */
	else
		f->rax = (f->rax & ~(size == 1 ? 0xffull : 0xffffull)) | v;
}

/*
 * ins/outs for user code, forwards only (DF = 0), with or without rep.
 * Bytes go with one rep insb/outsb: this handler runs in the CPL0 emulator,
 * where a C loop costs ~25 us per element, a rep ~8 us (the exit itself).
 * Words and dwords (rare) take the loop.
 */
static bool port_string(uint8_t op, unsigned int size, bool rep, struct trap_frame *f)
{
	uint64_t count = rep ? f->rcx : 1;
	uint16_t port = f->rdx;
	bool out = op & 2;
	uint64_t *addr = out ? &f->rsi : &f->rdi;

	if (f->rflags & (1u << 10))
		return false;
	if (count > GUEST_MAPPED_END / size || !mapped(*addr, count * size))
		return false;
	if (size == 1) {
		if (out)
			outsb(port, (const void *)*addr, count);
		else
			insb(port, (void *)*addr, count);
		*addr += count;
		if (rep)
			f->rcx = 0;
		return true;
	}
	for (uint64_t i = 0; i < count; i++) {
		uint32_t v = 0;
		if (out) {
			memcpy(&v, (const void *)*addr, size);
			pio_write(port, size, v);
		} else {
			v = pio_read(port, size);
			memcpy((void *)*addr, &v, size);
		}
		*addr += size;
	}
	if (rep)
		f->rcx = 0;
	return true;
}

/*
 * Decode the user instruction at f->rip; if it is port I/O, perform it here
 * at CPL0 and step over it. Returns false for anything else (a real #GP).
 */
static bool emulate_user_pio(struct trap_frame *f)
{
	const uint8_t *p = (const uint8_t *)f->rip;
	unsigned int size = 4;
	bool rep = false;

	if (f->error != 0 || !mapped(f->rip, 16))
		return false;
	for (int i = 0;; i++, p++) {
		if (i == 4)
			return false;
		if (*p == 0x66)
			size = 2;
		else if (*p == 0xf3)
			rep = true;
		else
			break;
	}
	uint8_t op = *p++;
	if (!(op & 1))
		size = 1;
	switch (op) {
	case 0xe4: /* in al/ax/eax, imm8 */
	case 0xe5:
		port_in(*p++, size, f);
		break;
	case 0xe6: /* out imm8, al/ax/eax */
	case 0xe7:
		pio_write(*p++, size, f->rax);
		break;
	case 0xec: /* in al/ax/eax, dx */
	case 0xed:
		port_in(f->rdx, size, f);
		break;
	case 0xee: /* out dx, al/ax/eax */
	case 0xef:
		pio_write(f->rdx, size, f->rax);
		break;
	case 0x6c: /* ins */
	case 0x6d:
	case 0x6e: /* outs */
	case 0x6f:
		if (!port_string(op, size, rep, f))
			return false;
		break;
	default:
		return false;
	}
	f->rip = (uint64_t)p;
	return true;
}

void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	if (handlers[f->vector]) {
		handlers[f->vector](f);
		return;
	}
	if (from_user(f)) {
		if (f->vector == 13 && emulate_user_pio(f)) {
			__atomic_add_fetch(&user_pio_count, 1, __ATOMIC_RELAXED);
			return;
		}
		if (f->vector == 6 && f->rip == (uint64_t)user_return)
			user_resume(f->rax);
		if (f->vector == 6 && f->rip == (uint64_t)kernel_call_ud2) {
			f->rax = ((user_fn)f->rdi)((void *)f->rsi);
			f->rip += 2;
			return;
		}
	}
	trap_fatal(f);
}

void trap_fatal(const struct trap_frame *f)
{
	static int in_fatal;
	unsigned int v = f->vector;
	const char *name = v >= 32 ? "interrupt" : names[v] ? names[v] : "reserved";

	if (__atomic_exchange_n(&in_fatal, 1, __ATOMIC_SEQ_CST))
		guest_exit(GUEST_EXIT_EXCEPTION); /* faulted while reporting, or two CPUs */
	console_panic_mode();
	printf("guest: unhandled exception %s (vector %u) on cpu %u at CPL%u: rip=0x%lx "
	       "error code=0x%lx",
	       name, v, cpu_index(), (unsigned int)(f->cs & 3), f->rip, f->error);
	if (v == 14)
		printf(" cr2=0x%lx", read_cr2());
	printf("\n  rsp=0x%lx rflags=0x%lx rax=0x%lx rbx=0x%lx rcx=0x%lx rdx=0x%lx\n"
	       "  rsi=0x%lx rdi=0x%lx rbp=0x%lx r8=0x%lx r9=0x%lx r10=0x%lx r11=0x%lx\n"
	       "  r12=0x%lx r13=0x%lx r14=0x%lx r15=0x%lx\n",
	       f->rsp, f->rflags, f->rax, f->rbx, f->rcx, f->rdx, f->rsi, f->rdi, f->rbp, f->r8,
	       f->r9, f->r10, f->r11, f->r12, f->r13, f->r14, f->r15);
	guest_exit(GUEST_EXIT_EXCEPTION);
}
