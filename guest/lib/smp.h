/* SPDX-License-Identifier: MIT */
/*
 * Local APIC (xAPIC, MMIO at 0xfee00000) and application processor start.
 *
 * CPU count: `cpus=N` on the command line if present (1..GUEST_MAX_CPUS),
 * else CPUID leaf 0xB subleaf 1 EBX[15:0] (logical processors per package;
 * kvmini reports N CPUs with APIC IDs 0..N-1 in one package; under QEMU use
 * -smp N,sockets=1,cores=N), else 1.
 *
 * APs are started by APIC ID: IDs 0..N-1 other than the BSP's are assumed,
 * which is what kvmini and QEMU (one socket) assign.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#include <stdint.h>

#define LAPIC_BASE 0xfee00000ull

/* This CPU's APIC ID (LAPIC ID register). Any CPU; MMIO works at any CPL. */
uint32_t lapic_id(void);

/* Signal end of interrupt. From an interrupt handler. */
void lapic_eoi(void);

/* Send an IPI: ICR high = @apic_id << 24, then ICR low = @icr_low; waits
 * (bounded) for the delivery status to clear. CPL0 or CPL3. */
void lapic_send_ipi(uint32_t apic_id, uint32_t icr_low);

/* Number of CPUs to use (see above). Any CPU. */
unsigned int smp_cpu_count(void);

typedef void (*smp_fn)(unsigned int cpu, void *arg);

/*
 * Start the APs (once, from the BSP at CPL0): copy the real-mode trampoline
 * to SMP_TRAMPOLINE_PA, send INIT-SIPI-SIPI to each, and wait (up to
 * SMP_START_TIMEOUT_TSC TSC ticks) until all are up. Each AP then runs
 * @fn(cpu index, @arg) at CPL0 on its own stack (KSTACK_SIZE), its own
 * struct cpu and TSS, and halts when @fn returns. Returns the number of
 * CPUs online, BSP included. The virtual LAPICs of KVM need none of the
 * delays that real hardware wants between INIT and SIPI; we send none.
 */
unsigned int smp_start(smp_fn fn, void *arg);

#define SMP_START_TIMEOUT_TSC 10000000000ull /* >= 3 s at any TSC rate below 3.3 GHz */

/* CPUs that have reached C so far, BSP included. Any CPU. */
unsigned int smp_online(void);

#endif
