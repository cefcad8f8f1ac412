# Fuzz targets (libFuzzer with Debian's clang; docs/testing.md "Fuzzing").
#   make fuzz [FUZZ_SECONDS=N]   each target for N seconds (default 60)
#   make fuzz-NAME               one target
#   make fuzz-short              each for FUZZ_SHORT_SECONDS (20): part of make test
#
# A target is tests/fuzz/NAME.c plus one line here: FUZZ_TARGETS += NAME and
# NAME_SRCS (the code under test). Optional: NAME_SEEDS (files copied into
# its seed corpus), NAME_DICT, NAME_LIBS, NAME_CFLAGS. Seeds the target writes
# itself (fuzz_seeds, with the project's own writers) are made at build time
# in $(BUILD)/fuzz/seeds/NAME; what the fuzzer finds grows
# $(BUILD)/fuzz/corpus/NAME; crashes land in $(BUILD)/fuzz/crashes/.

FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 60
FUZZ_SHORT_SECONDS ?= 20
FUZZ_ARGS          ?=
FUZZ_CFLAGS := $(COMMON) -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer $(LIBURING_CFLAGS) -DUNIT_TEST -DFUZZING \
               -Wno-gnu-variable-sized-type-not-at-end
FUZZ_TARGETS :=
# Any header may change what a target compiles to.
FUZZ_HDRS := $(wildcard aio/*.h vmm/*.h devices/*/*.h tests/fuzz/*.h tests/unit/*.h)

FUZZ_TARGETS += fuzz_cli
fuzz_cli_SRCS := vmm/cli.c vmm/ctl.c vmm/json.c vmm/cpuid.c vmm/util.c devices/block/disk_config.c
FUZZ_TARGETS += fuzz_scsi
fuzz_scsi_SRCS := devices/block/scsi_disk.c
FUZZ_TARGETS += fuzz_ivshmem
fuzz_ivshmem_SRCS := devices/ivshmem/ivshmem_proto.c vmm/util.c
FUZZ_TARGETS += fuzz_virtqueue
fuzz_virtqueue_SRCS := devices/virtio/virtqueue.c vmm/iov.c vmm/memory.c
FUZZ_TARGETS += fuzz_snapshot
fuzz_snapshot_SRCS := vmm/snapshot.c vmm/vcpu_state.c vmm/irqchip.c vmm/memory.c vmm/util.c
fuzz_snapshot_LIBS := -Wl,--wrap=vcpu_state_load -Wl,--wrap=vcpu_state_save \
	-Wl,--wrap=irqchip_state_load -Wl,--wrap=irqchip_state_save
# Every device's load op, in the virtio unit-test harness (cmocka's asserts
# abort there: a finding).
FUZZ_TARGETS += fuzz_devload
fuzz_devload_SRCS := tests/unit/virtio_harness.c vmm/serial.c devices/virtio/virtio_blk.c \
	devices/virtio/virtio_scsi.c devices/virtio/virtio_block.c devices/virtio/virtio_pci.c \
	devices/virtio/virtqueue.c devices/block/scsi_disk.c devices/block/disk.c \
	devices/block/engine.c devices/block/uring.c devices/block/disk_config.c \
	devices/ivshmem/ivshmem.c devices/ivshmem/ivshmem_proto.c vmm/iov.c vmm/pci.c vmm/msix.c \
	vmm/kvm_irq.c vmm/bus.c vmm/memory.c vmm/util.c vmm/cli.c vmm/ctl.c vmm/json.c vmm/cpuid.c vmm/sandbox.c \
	$(AIO_LIB_SRCS)
fuzz_devload_DEPS := tests/unit/virtio_harness.h $(LIBURING_LIB)
fuzz_devload_LIBS := $(LIBURING_LIB) -lcmocka -pthread

# The VT-d unit: registers, tables, queue and interrupt entries in guest RAM.
FUZZ_TARGETS += fuzz_iommu
fuzz_iommu_SRCS := vmm/intel_iommu.c vmm/bus.c vmm/memory.c vmm/util.c

# Kernel loaders: tests/fuzz/fuzz_load_NAME.c on vmm/NAME.c, seeded with
# guests from build/guest (and what the target's fuzz_seeds adds). Adding a
# loader is its file plus one word here.
FUZZ_LOADERS := pvh bzimage multiboot
FUZZ_LOADER_SEEDS := $(addprefix $(BUILD)/guest/,hello.elf smp.elf blkops.elf)
$(foreach l,$(FUZZ_LOADERS),$(eval FUZZ_TARGETS += fuzz_load_$(l)) \
	$(eval fuzz_load_$(l)_SRCS += $(sort vmm/$(l).c vmm/elf.c vmm/pvh.c vmm/e820.c vmm/memory.c vmm/util.c)) \
	$(eval fuzz_load_$(l)_SEEDS += $(FUZZ_LOADER_SEEDS)) \
	$(eval fuzz_load_$(l)_DEPS += tests/fuzz/fuzz_loader.h))
fuzz_load_multiboot_SEEDS += $(BUILD)/guest/mboot.elf $(BUILD)/guest/mboot-aout.bin
fuzz_load_multiboot_DEPS += tests/unit/mb_image.h

# Last: it fails until qmp.c's replies are valid JSON for every id (issue
# 17), and make stops at the first failure.
FUZZ_TARGETS += fuzz_qmp
fuzz_qmp_SRCS := vmm/qmp.c vmm/json.c vmm/util.c tests/fuzz/json_check.c $(AIO_LIB_SRCS)
fuzz_qmp_DEPS := tests/fuzz/json_check.h
fuzz_qmp_DICT := tests/fuzz/qmp.dict

define fuzz_rule
$(BUILD)/fuzz/$(1): tests/fuzz/$(1).c tests/fuzz/fuzz_main.c $(FUZZ_HDRS) $$($(1)_SRCS) \
		$$($(1)_DEPS) | $(LIBURING_LIB)
	@mkdir -p $$(dir $$@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $$($(1)_CFLAGS) -o $$@ tests/fuzz/$(1).c tests/fuzz/fuzz_main.c \
		$$($(1)_SRCS) $$($(1)_LIBS)
$(BUILD)/fuzz/seeds/$(1)/.stamp: $(BUILD)/fuzz/$(1) $$($(1)_SEEDS)
	@rm -rf $$(dir $$@) && mkdir -p $$(dir $$@)
	$$(if $$($(1)_SEEDS),cp $$($(1)_SEEDS) $$(dir $$@))
	FUZZ_SEED_DIR=$$(dir $$@) $$<
	@touch $$@
.PHONY: fuzz-$(1)
fuzz-$(1): $(BUILD)/fuzz/$(1) $(BUILD)/fuzz/seeds/$(1)/.stamp
	@mkdir -p $(BUILD)/fuzz/corpus/$(1) $(BUILD)/fuzz/crashes
	@echo "== fuzz: $(1) for $$(FUZZ_SECONDS) s"
	$$< -max_total_time=$$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=$(BUILD)/fuzz/crashes/$(1)- $$(addprefix -dict=,$$($(1)_DICT)) \
		$$(FUZZ_ARGS) $(BUILD)/fuzz/corpus/$(1) $(BUILD)/fuzz/seeds/$(1)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_rule,$(t))))

.PHONY: fuzz fuzz-short fuzz-build
fuzz-build: $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz-short: FUZZ_SECONDS = $(FUZZ_SHORT_SECONDS)
fuzz-short: $(addprefix fuzz-,$(FUZZ_TARGETS))

EXTRA_TESTS += fuzz-short
