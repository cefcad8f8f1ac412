# Unit tests: add NAME to UNIT_TESTS and list NAME_SRCS (the code under test).

UNIT_TESTS += test_bus
test_bus_SRCS := vmm/bus.c vmm/util.c
test_bus_DEPS := vmm/bus.h

UNIT_TESTS += test_cli
test_cli_SRCS := vmm/cli.c vmm/ctl.c vmm/json.c vmm/cpuid.c vmm/util.c devices/block/disk_config.c
test_cli_DEPS := vmm/config.h vmm/cpuid.h vmm/cli.h vmm/ctl.h
# docs/cli.md is read at run time: test_docs_match_option_table.
test_cli_CFLAGS := -DSRCDIR='"$(CURDIR)"'

UNIT_TESTS += test_ctl
test_ctl_SRCS := vmm/ctl.c vmm/json.c vmm/util.c
test_ctl_DEPS := vmm/ctl.h vmm/json.h

UNIT_TESTS += test_disasm
test_disasm_SRCS := vmm/disasm.c
test_disasm_DEPS := vmm/disasm.h $(ZYDIS_LIB)
test_disasm_LIBS := $(ZYDIS_LIB)

UNIT_TESTS += test_util
test_util_SRCS := vmm/util.c
test_util_DEPS := vmm/util.h

UNIT_TESTS += test_memory
test_memory_SRCS := vmm/memory.c
test_memory_DEPS := vmm/memory.h vmm/layout.h

UNIT_TESTS += test_pvh
test_pvh_SRCS := vmm/pvh.c vmm/elf.c vmm/e820.c vmm/memory.c vmm/util.c
test_pvh_DEPS := tests/unit/ram_fixture.h vmm/pvh.h vmm/e820.h vmm/memory.h vmm/util.h vmm/layout.h

UNIT_TESTS += test_bzimage
test_bzimage_SRCS := vmm/bzimage.c vmm/e820.c vmm/memory.c vmm/util.c
test_bzimage_DEPS := tests/unit/ram_fixture.h vmm/bzimage.h vmm/e820.h vmm/memory.h vmm/util.h vmm/layout.h

UNIT_TESTS += test_multiboot
test_multiboot_SRCS := vmm/multiboot.c vmm/elf.c vmm/pvh.c vmm/e820.c vmm/memory.c vmm/util.c
test_multiboot_DEPS := tests/unit/ram_fixture.h tests/unit/mb_image.h vmm/multiboot.h vmm/elf.h \
	vmm/pvh.h vmm/e820.h vmm/memory.h vmm/util.h vmm/layout.h

UNIT_TESTS += test_pci
test_pci_SRCS := vmm/pci.c vmm/kvm_irq.c vmm/bus.c vmm/util.c
test_pci_DEPS := vmm/pci.h vmm/kvm_irq.h vmm/bus.h vmm/layout.h

UNIT_TESTS += test_msix
test_msix_SRCS := vmm/msix.c vmm/kvm_irq.c vmm/pci.c vmm/bus.c vmm/util.c
test_msix_DEPS := vmm/pci.h vmm/msix.h vmm/kvm_irq.h vmm/bus.h

UNIT_TESTS += test_virtqueue
test_virtqueue_SRCS := devices/virtio/virtqueue.c vmm/iov.c vmm/memory.c
test_virtqueue_DEPS := devices/virtio/virtio.h vmm/memory.h

UNIT_TESTS += test_virtio_blk
test_virtio_blk_SRCS := tests/unit/virtio_harness.c devices/virtio/virtio_blk.c devices/virtio/virtio_block.c devices/block/disk.c devices/block/engine.c devices/virtio/virtio_pci.c devices/block/uring.c \
	devices/virtio/virtqueue.c vmm/iov.c vmm/pci.c vmm/msix.c vmm/kvm_irq.c vmm/bus.c vmm/memory.c vmm/util.c \
	devices/block/disk_config.c $(AIO_LIB_SRCS)
# The request engine's choices are tested through wrapped calls.
test_virtio_blk_LIBS := -Wl,--wrap=thread_pool_submit -Wl,--wrap=disk_rw_full \
	-Wl,--wrap=uring_submit -Wl,--wrap=uring_reap -Wl,--wrap=aio_poll $(LIBURING_LIB)
test_virtio_blk_DEPS := tests/unit/virtio_harness.h devices/virtio/virtio.h vmm/pci.h vmm/msix.h vmm/kvm_irq.h vmm/config.h aio/aio.h \
	$(LIBURING_LIB)

# The same virtio-blk test under ThreadSanitizer (pause/hold/resume cross
# threads: vCPU-side resets, the iothread, pool workers). About 2 s.
$(BUILD)/tsan/test_virtio_blk: tests/unit/test_virtio_blk.c $(test_virtio_blk_SRCS) $(test_virtio_blk_DEPS)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_CFLAGS) $(LIBURING_CFLAGS) -o $@ $< $(test_virtio_blk_SRCS) $(TEST_LIBS) $(test_virtio_blk_LIBS)

EXTRA_TESTS += test-tsan-blk
.PHONY: test-tsan-blk
test-tsan-blk: $(BUILD)/tsan/test_virtio_blk
	@echo "== tsan: $<"; TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" $<

UNIT_TESTS += test_ivshmem
test_ivshmem_SRCS := devices/ivshmem/ivshmem.c devices/ivshmem/ivshmem_proto.c \
	devices/ivshmem/ivshmem_server.c vmm/pci.c vmm/msix.c vmm/kvm_irq.c vmm/bus.c vmm/memory.c vmm/util.c \
	vmm/cli.c vmm/ctl.c vmm/json.c vmm/cpuid.c $(AIO_LIB_SRCS)
test_ivshmem_DEPS := devices/ivshmem/ivshmem.h devices/ivshmem/ivshmem_int.h vmm/pci.h \
	vmm/msix.h vmm/kvm_irq.h vmm/config.h vmm/vm.h aio/aio.h

UNIT_TESTS += test_scsi_disk
test_scsi_disk_SRCS := devices/block/scsi_disk.c
test_scsi_disk_DEPS := devices/block/scsi.h

# virtio-scsi end to end; thread_pool_cancel is wrapped to see a pause begin.
UNIT_TESTS += test_virtio_scsi
test_virtio_scsi_SRCS := tests/unit/virtio_harness.c devices/virtio/virtio_scsi.c devices/virtio/virtio_block.c \
	devices/block/scsi_disk.c devices/block/disk.c devices/block/engine.c devices/virtio/virtio_pci.c \
	devices/block/uring.c devices/virtio/virtqueue.c vmm/iov.c vmm/pci.c vmm/msix.c vmm/kvm_irq.c vmm/bus.c \
	vmm/memory.c vmm/util.c devices/block/disk_config.c $(AIO_LIB_SRCS)
test_virtio_scsi_DEPS := tests/unit/virtio_harness.h devices/block/scsi.h \
	devices/virtio/virtio.h vmm/pci.h vmm/msix.h vmm/kvm_irq.h vmm/config.h aio/aio.h $(LIBURING_LIB)
test_virtio_scsi_LIBS := -Wl,--wrap=thread_pool_cancel $(LIBURING_LIB)

UNIT_TESTS += test_acpi
test_acpi_SRCS := vmm/acpi.c vmm/memory.c vmm/util.c
test_acpi_DEPS := vmm/acpi.h vmm/layout.h vmm/fw_cfg.h

UNIT_TESTS += test_rtc
test_rtc_SRCS := vmm/rtc.c vmm/bus.c vmm/util.c
test_rtc_DEPS := vmm/rtc.h vmm/bus.h vmm/vm.h

UNIT_TESTS += test_fw_cfg
test_fw_cfg_SRCS := vmm/fw_cfg.c vmm/bus.c vmm/util.c
test_fw_cfg_DEPS := vmm/fw_cfg.h vmm/bus.h vmm/vm.h

# pc_testdev.c's KVM calls go through a recording kvm_irq_ops; vm_request_exit and
# vm_irq_line are stubbed.
UNIT_TESTS += test_pc_testdev
test_pc_testdev_SRCS := vmm/pc_testdev.c vmm/kvm_irq.c vmm/bus.c vmm/memory.c vmm/util.c
test_pc_testdev_DEPS := vmm/pc_testdev.h vmm/kvm_irq.h vmm/bus.h vmm/memory.h
test_pc_testdev_LIBS := -Wl,--wrap=mprotect

UNIT_TESTS += test_pci_testdev
test_pci_testdev_SRCS := vmm/pci_testdev.c vmm/pci.c vmm/kvm_irq.c vmm/bus.c vmm/util.c
test_pci_testdev_DEPS := vmm/pci_testdev.h vmm/pci.h vmm/kvm_irq.h vmm/bus.h

UNIT_TESTS += test_vhost_user
test_vhost_user_SRCS := devices/virtio/vhost_user.c vmm/memory.c vmm/util.c
test_vhost_user_DEPS := devices/virtio/vhost_user.h vmm/memory.h

UNIT_TESTS += test_sandbox
test_sandbox_SRCS := vmm/sandbox.c vmm/util.c
test_sandbox_DEPS := vmm/sandbox.h

# snapshot.c without KVM: the KVM-facing calls are stubbed in the test.
UNIT_TESTS += test_snapshot
test_snapshot_SRCS := vmm/snapshot.c vmm/util.c
test_snapshot_DEPS := vmm/snapshot.h vmm/vm.h vmm/vcpu_state.h vmm/irqchip.h
test_snapshot_CFLAGS := -Wno-format-truncation

# qmp.c on a real socket and AioContext; the VM side is stubbed in the test.
UNIT_TESTS += test_qmp
test_qmp_SRCS := vmm/json.c vmm/util.c $(AIO_LIB_SRCS)
test_qmp_DEPS := vmm/qmp.c vmm/qmp.h vmm/json.h vmm/vm.h vmm/snapshot.h aio/aio.h

# hyperv.c and hyperv_testdev.c: KVM through a recording kvm_irq_ops, real
# eventfds, the main loop's fd watch stubbed (the test polls).
UNIT_TESTS += test_hyperv
test_hyperv_SRCS := vmm/hyperv.c vmm/hyperv_testdev.c vmm/kvm_irq.c vmm/bus.c vmm/memory.c vmm/util.c
test_hyperv_DEPS := vmm/hyperv.h vmm/hyperv_testdev.h vmm/kvm_irq.h vmm/bus.h vmm/memory.h

UNIT_TESTS += test_intel_iommu
test_intel_iommu_SRCS := vmm/intel_iommu.c vmm/bus.c vmm/memory.c vmm/util.c
test_intel_iommu_DEPS := vmm/intel_iommu.h vmm/memory.h vmm/vm.h

# vm_msi_send and vm_msi_translate are recorded by the test.
UNIT_TESTS += test_ioapic
test_ioapic_SRCS := vmm/ioapic.c vmm/kvm_irq.c vmm/bus.c vmm/util.c
test_ioapic_DEPS := vmm/ioapic.h vmm/kvm_irq.h vmm/pci.h vmm/vm.h
