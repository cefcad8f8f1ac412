/* SPDX-License-Identifier: MIT */
/*
 * x86 instruction wrappers for guest/lib and guest programs: port I/O, MSRs,
 * control registers, CPUID, TSC. All are static inline; none touch memory
 * other than what they name.
 *
 * Port I/O from CPL3 works too: 0xf4 exits directly (IOPL=3), other ports
 * raise #GP which guest/lib's #GP handler performs at CPL0 (see trap.h).
 */
#ifndef GUEST_X86_H
#define GUEST_X86_H

#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Port access of @size bytes (1, 2 or 4). */
static inline uint32_t pio_read(uint16_t port, unsigned int size)
{
	return size == 1 ? inb(port) : size == 2 ? inw(port) : inl(port);
}

static inline void pio_write(uint16_t port, unsigned int size, uint32_t v)
{
	if (size == 1)
		outb(port, v);
	else if (size == 2)
		outw(port, v);
	else
		outl(port, v);
}

/* Write @n bytes from @buf to @port with one `rep outsb`: KVM turns it into
 * a single exit carrying all bytes (at most a page per exit). */
static inline void outsb(uint16_t port, const void *buf, unsigned long n)
{
	__asm__ volatile("rep outsb" : "+S"(buf), "+c"(n) : "d"(port) : "memory");
}

/* Read @n bytes from @port into @buf with one `rep insb`. */
static inline void insb(uint16_t port, void *buf, unsigned long n)
{
	__asm__ volatile("rep insb" : "+D"(buf), "+c"(n) : "d"(port) : "memory");
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | (uint64_t)hi << 32;
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c,
			 uint32_t *d)
{
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | (uint64_t)hi << 32;
}

static inline uint64_t read_cr2(void)
{
	uint64_t v;
	__asm__ volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

/* Current privilege level (0 or 3), from the CS selector's RPL. */
static inline unsigned int cpl(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/*
 * MMIO: one access of exactly the named width (devices such as virtio-pci
 * require natural-width accesses). Volatile, and a compiler barrier: they
 * are not reordered with the memory accesses around them (x86 keeps the
 * order of UC accesses and ordinary stores in hardware).
 */
static inline void mmio_write8(uint64_t addr, uint8_t v)
{
	__asm__ volatile("movb %1, %0" : "=m"(*(volatile uint8_t *)addr) : "q"(v) : "memory");
}

static inline void mmio_write16(uint64_t addr, uint16_t v)
{
	__asm__ volatile("movw %1, %0" : "=m"(*(volatile uint16_t *)addr) : "r"(v) : "memory");
}

static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	__asm__ volatile("movl %1, %0" : "=m"(*(volatile uint32_t *)addr) : "r"(v) : "memory");
}

static inline uint8_t mmio_read8(uint64_t addr)
{
	uint8_t v;
	__asm__ volatile("movb %1, %0" : "=q"(v) : "m"(*(volatile uint8_t *)addr) : "memory");
	return v;
}

static inline uint16_t mmio_read16(uint64_t addr)
{
	uint16_t v;
	__asm__ volatile("movw %1, %0" : "=r"(v) : "m"(*(volatile uint16_t *)addr) : "memory");
	return v;
}

static inline uint32_t mmio_read32(uint64_t addr)
{
	uint32_t v;
	__asm__ volatile("movl %1, %0" : "=r"(v) : "m"(*(volatile uint32_t *)addr) : "memory");
	return v;
}

/* MMIO access of @size bytes (1, 2 or 4). */
static inline uint32_t mmio_read(uint64_t addr, unsigned int size)
{
	return size == 1 ? mmio_read8(addr) : size == 2 ? mmio_read16(addr) : mmio_read32(addr);
}

static inline void mmio_write(uint64_t addr, unsigned int size, uint32_t v)
{
	if (size == 1)
		mmio_write8(addr, v);
	else if (size == 2)
		mmio_write16(addr, v);
	else
		mmio_write32(addr, v);
}

/* Compiler barrier: on x86 (TSO) this is all smp_wmb/smp_rmb need. */
static inline void barrier(void)
{
	__asm__ volatile("" ::: "memory");
}

/* Full barrier (store -> load ordering), e.g. between publishing a ring
 * index and reading the other side's event index. A locked add rather than
 * mfence: the CPL0 emulator on our hosts certainly handles it. */
static inline void mb(void)
{
	__asm__ volatile("lock; addl $0, (%%rsp)" ::: "memory", "cc");
}

/* Interrupt flag, CPL0 only. */
static inline void irq_enable(void)
{
	__asm__ volatile("sti" ::: "memory");
}

static inline void irq_disable(void)
{
	__asm__ volatile("cli" ::: "memory");
}

#define MSR_EFER    0xc0000080u
#define MSR_GS_BASE 0xc0000101u

#endif
