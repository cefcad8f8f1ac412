/* SPDX-License-Identifier: MIT */
/*
 * pci-testdev (pci_testdev.c): QEMU's PCI test device 1b36:0005, which
 * kvm-unit-tests uses to measure and check ioeventfds (x86/vmexit,
 * lib/pci-testdev.c). Only with --testdev.
 *
 * BAR 0 (memory, 4 KiB) and BAR 1 (I/O, 256 ports) each offer three tests:
 * 0 "no-eventfd", 1 "wildcard-eventfd", 2 "datamatch-eventfd" (named
 * "mmio-..." and "portio-..."). Writing N to byte 0 of a BAR selects its
 * test N (anything else: none) and zeroes the count; the BAR then reads as
 * the test's header:
 *   0 test (u8), 1 width (u8, 1), 4 offset (u32), 8 data (u32),
 *   12 count (u32), 16 name (NUL-terminated); 0 beyond it.
 * Writes of width bytes at offset count the test, through kvmini
 * (no-eventfd: every write; a datamatch test only writes of data) or are
 * absorbed by a KVM ioeventfd the device attaches while the test is
 * selected (the count then stays 0). With no test selected the BARs read 0.
 */
#ifndef KVMINI_PCI_TESTDEV_H
#define KVMINI_PCI_TESTDEV_H

#include "vmm/device.h"
#include "vmm/pci.h"

#define PCI_TESTDEV_VENDOR   0x1b36
#define PCI_TESTDEV_DEVICE   0x0005
#define PCI_TESTDEV_MEM_SIZE 4096
#define PCI_TESTDEV_IO_SIZE  256
#define PCI_TESTDEV_NTESTS   3 /* per BAR */

/* On vm->pci; its ioeventfds through the host's kvm_irq_ops. */
extern const struct device_ops pci_testdev_ops;

/*
 * What realize does, on a bare host @h (unit tests): add the device, its
 * BARs and an eventfd; ioeventfds go through h->kvm. Main thread. The
 * state is freed by the ops' exit. -errno with @err.
 */
int pci_testdev_create(struct pci_host *h, void **state, struct errbuf *err);

#endif
