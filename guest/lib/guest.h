/* SPDX-License-Identifier: MIT */
/*
 * guest/lib: a freestanding runtime for unikernel-style test guests.
 *
 * A guest program defines `int main(void)`. The runtime boots (PVH entry,
 * long mode, GDT/IDT/TSS, console), calls main at CPL0 on the BSP, and exits
 * the VM with main's return value. See docs/guest-abi.md.
 *
 * This header pulls in the whole API: console.h (printf), boot.h (command
 * line, memory map), clock.h (TSC rate), user.h (CPL3), smp.h (LAPIC, APs),
 * test.h (ASSERT), trap.h (exceptions), x86.h (port I/O, MSRs, MMIO), irq.h
 * (interrupts). PCI and virtio drivers have their own headers (pci.h,
 * virtio.h, virtio_blk.h), included by the guests that use them.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit statuses of the runtime itself; guest programs use 0..119. */
#define GUEST_EXIT_PANIC     120 /* assertion failure, PANIC(), bad boot info */
#define GUEST_EXIT_EXCEPTION 121 /* unhandled exception (trap.h) */

#define GUEST_EXIT_PORT 0xf4 /* isa-debug-exit / kvmini debug-exit */

/* Everything below this address is identity mapped (2 MiB pages, CPL3
 * accessible); nothing above it is mapped. */
#define GUEST_MAPPED_END 0x100000000ull

/*
 * End the VM with @status: a 32-bit `out` to GUEST_EXIT_PORT. kvmini exits
 * with @status, QEMU (isa-debug-exit) with (status << 1) | 1. Any CPU, any
 * CPL (at CPL3 the port is reached directly thanks to IOPL 3). If nothing
 * ends the VM, the CPU stops here.
 */
_Noreturn void guest_exit(unsigned int status);

/* The guest program's entry, called at CPL0 on the BSP after boot. */
int main(void);

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);

#include "boot.h"
#include "clock.h"
#include "console.h"
#include "cpu.h"
#include "irq.h"
#include "smp.h"
#include "test.h"
#include "trap.h"
#include "user.h"
#include "x86.h"

#endif
