/* SPDX-License-Identifier: MIT */
/*
 * pc-testdev (pc_testdev.c): QEMU's test device for kvm-unit-tests, only
 * with --testdev. Port I/O, handled on the vCPU threads:
 *  - PC_TESTDEV_DATA (4 ports): a 32-bit register; a write of 1, 2 or 4
 *    bytes replaces those bytes of it, a read returns them;
 *  - PC_TESTDEV_FLUSH (4 ports): a write of a guest-physical address drops
 *    the host mapping of its page (mprotect none, then back), so that the
 *    guest's next access to it faults into KVM again; addresses outside RAM
 *    are ignored;
 *  - PC_TESTDEV_IRQ (24 ports): a write of V to PC_TESTDEV_IRQ + N drives
 *    irqchip input N (PIC and IOAPIC pin) high if V is nonzero, else low.
 *  - PC_TESTDEV_IOMEM (64 KiB of MMIO, guest-physical 0xff000000): plain
 *    memory every access to which exits, so that KVM's instruction
 *    emulator runs the instructions kvm-unit-tests' emulator test aims at it.
 * Reads of the flush and IRQ ports return 0.
 */
#ifndef KVMINI_PC_TESTDEV_H
#define KVMINI_PC_TESTDEV_H

#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/kvm_irq.h"
#include "vmm/memory.h"

#define PC_TESTDEV_DATA	     0xe0
#define PC_TESTDEV_FLUSH     0xe4
#define PC_TESTDEV_IRQ	     0x2000
#define PC_TESTDEV_NIRQS     24
#define PC_TESTDEV_IOMEM     0xff000000ULL
#define PC_TESTDEV_IOMEM_LEN 0x10000

/* The device on @vm's port bus, its lines through KVM_IRQ_LINE. */
extern const struct device_ops pc_testdev_ops;

/*
 * What realize does, with its seams: register the ports on @pio and the
 * iomem window on @mmio, flush
 * pages of @mem, drive lines through @kvm->irq_line(@kvm_opaque, ...).
 * @vm (may be NULL) is told to end with a host error if a flushed page
 * cannot be mapped back. Main thread; the state is freed by the ops' exit.
 * -errno with @err.
 */
struct vm;
int pc_testdev_new(struct vm *vm, struct bus *pio, struct bus *mmio, const struct guest_mem *mem,
		   const struct kvm_irq_ops *kvm, void *kvm_opaque, void **state,
		   struct errbuf *err);

#endif
