/* SPDX-License-Identifier: MIT */
/*
 * KVM's in-kernel interrupt controllers and timers of a VM: the PICs and
 * IOAPIC, the PIT, and the KVM clock. This file creates them and reads and
 * writes their state for snapshots; vmm/snapshot.c stores that state as
 * sections and knows nothing of what is in it.
 *
 * All functions: main thread, on the VM fd @vm_fd, no vCPU running.
 */
#ifndef KVMINI_IRQCHIP_H
#define KVMINI_IRQCHIP_H

#include <linux/kvm.h>
#include <stdbool.h>

#include "vmm/util.h"

/*
 * The PICs, IOAPIC and PIT (KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2); with
 * @split (--iommu) only the local APICs (KVM_CAP_SPLIT_IRQCHIP with 24
 * IOAPIC routes): no PIC, no PIT, the IOAPIC is kvmini's (vmm/ioapic.h).
 * Before the vCPUs. -errno with @err.
 */
int irqchip_create(int vm_fd, bool split, struct errbuf *err);

#define IRQCHIP_IOAPIC_PINS 24 /* KVM's IOAPIC, and kvmini's with a split irqchip */

/*
 * The state a snapshot carries, one member per section: "irqchip" v1
 * (PIC master, PIC slave, IOAPIC), "pit" v1, "clock" v1. The members are
 * KVM's fixed UAPI layouts; changing one means a new section version.
 */
struct irqchip_state {
	struct kvm_irqchip chip[3];
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;
};

/* Read all of it into @s. -errno with @err. */
int irqchip_state_save(int vm_fd, struct irqchip_state *s, struct errbuf *err);

/* Refuse (-EINVAL, message) what no save wrote (chip ids out of place). Pure. */
int irqchip_state_check(const struct irqchip_state *s, struct errbuf *err);

/*
 * Give a checked @s to KVM: irqchips, PIT, then the clock value (its
 * host-realtime correction flags are not ours and are dropped). Load the
 * vCPUs first. -errno with @err.
 */
int irqchip_state_load(int vm_fd, const struct irqchip_state *s, struct errbuf *err);

#endif
