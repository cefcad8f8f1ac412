/* SPDX-License-Identifier: MIT */
/*
 * An Intel VT-d remapping unit (intel_iommu.c) for --iommu, at 0xfed90000
 * as on QEMU's q35 (kvm-unit-tests' intel_iommu test expects it there;
 * kvmini writes no ACPI DMAR table, so Linux does not use it).
 *
 * What it models (VT-d 1.0 register set, legacy root and context tables):
 *  - DMA remapping: second-level page tables of 3 or 4 levels (39- or 48-bit
 *    guest addresses, SAGAW), 2 MiB and 1 GiB pages, pass-through contexts.
 *    Nothing is cached: every DMA walks the tables, so every invalidation is
 *    complete at once.
 *  - Interrupt remapping (xAPIC mode, no EIM): the table at IRTA, source-id
 *    checks of PCI requesters, compatibility-format interrupts blocked
 *    unless GCMD.CFI allows them.
 *  - Queued invalidation: descriptors are read and retired at each IQT
 *    write; wait descriptors write their status and raise the completion
 *    event; a bad descriptor sets FSTS.IQE.
 *  - One fault recording register (at 0x220) and the fault event interrupt.
 * Which devices are behind it: those that DMA through vm_dma (the edu
 * device). kvmini's virtio devices do not offer VIRTIO_F_ACCESS_PLATFORM,
 * so by the virtio spec they bypass an IOMMU, as in QEMU without
 * iommu_platform=on; their MSI-X messages are not remapped either.
 *
 * Threads: register accesses on vCPU threads, translations on the thread of
 * the device doing DMA or raising an MSI. One lock covers the unit.
 */
#ifndef KVMINI_INTEL_IOMMU_H
#define KVMINI_INTEL_IOMMU_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/device.h"
#include "vmm/memory.h"

#define INTEL_IOMMU_BASE 0xfed90000ULL
#define INTEL_IOMMU_SIZE 0x1000ULL

struct intel_iommu;

/* Registers on vm->mmio, sets vm->iommu. Only with --iommu. */
extern const struct device_ops intel_iommu_ops;

/*
 * Copy @len bytes between @buf and I/O virtual address @iova of requester
 * @sid (bus << 8 | devfn), page by page through the tables (@write: into
 * guest memory). A translation fault is recorded as the hardware would and
 * returns -EFAULT with nothing of the faulting page copied. Any thread.
 */
int intel_iommu_dma(struct intel_iommu *iu, uint16_t sid, uint64_t iova, void *buf, uint64_t len,
		    bool write);

/*
 * Remap the MSI (*@addr, *@data) of requester @sid (negative: a requester
 * without a source-id to check, the IOAPIC) in place. 0: send it;
 * -EPERM/-EINVAL/-EFAULT: blocked (fault recorded). Any thread.
 */
int intel_iommu_msi(struct intel_iommu *iu, int sid, uint64_t *addr, uint32_t *data);

/* The register file and translation core on a bare guest_mem, for unit
 * tests: @send_msi receives fault and completion events. */
struct intel_iommu *intel_iommu_new(const struct guest_mem *mem,
				    void (*send_msi)(void *opaque, uint64_t addr, uint32_t data),
				    void *opaque);
void intel_iommu_free(struct intel_iommu *iu);
/* A register access as from a vCPU (@len 4 or 8). */
void intel_iommu_mmio(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write);

#endif
