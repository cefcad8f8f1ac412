# Guests: guest/lib (the runtime) and one directory per guest program,
# guest/NAME/*.c, linked into $(BUILD)/guest/NAME.elf. Appends to GUEST_ELFS.
#
# Built with the host gcc, freestanding, and without SSE/x87 code
# (-mgeneral-regs-only): on our hosts CPL0 code runs in KVM's instruction
# emulator, which lacks most SSE instructions (even ldmxcsr), and trap
# handlers must not clobber the SSE state of the code they interrupt.
# SSE is enabled in CR0/CR4, so code that only ever runs at CPL3 (through
# user_call) may use it: put it in files named *_cpl3.c, compiled with SSE.

# This fragment defines explicit rules and is included before `all` is
# defined: keep `all` the default goal.
.DEFAULT_GOAL := all

GUEST_NAMES  := hello demo exit fault triple smp cpl3 bench reset emulfail cpuid echo snap-counter \
                pcilist blkops blkcopy blkbench blkevil snap-blk ivshmem-ping ivshmem-pong \
                scsicopy scsievil snap-scsi scsibench scsitmf fwcfg s3 hyperv tscdl iommu
GUEST_CC     ?= gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -mno-red-zone \
                -fno-stack-protector -mcmodel=small -fno-asynchronous-unwind-tables \
                -fno-omit-frame-pointer -Iguest/lib $(WARN)
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guest/lib/guest.ld -Wl,--build-id=none \
                 -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments

GUEST_LIB_SRCS := $(wildcard guest/lib/*.c guest/lib/*.S)
GUEST_LIB_OBJS := $(patsubst guest/%,$(BUILD)/guest/obj/%.o,$(GUEST_LIB_SRCS))
GUEST_FPFLAGS := -mgeneral-regs-only
$(BUILD)/guest/obj/%_cpl3.c.o: GUEST_FPFLAGS :=

GUEST_ELFS += $(foreach g,$(GUEST_NAMES),$(BUILD)/guest/$(g).elf)

$(BUILD)/guest/obj/%.c.o: guest/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_FPFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/guest/obj/%.S.o: guest/%.S
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) -Wa,--noexecstack -MMD -MP -c -o $@ $<

define guest_rule
$(1)_GUEST_OBJS := $$(patsubst guest/%,$(BUILD)/guest/obj/%.o,$$(wildcard guest/$(1)/*.c guest/$(1)/*.S))
$(BUILD)/guest/$(1).elf: $$($(1)_GUEST_OBJS) $(GUEST_LIB_OBJS) guest/lib/guest.ld
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_LDFLAGS) -o $$@ $$($(1)_GUEST_OBJS) $(GUEST_LIB_OBJS)
endef
$(foreach g,$(GUEST_NAMES),$(eval $(call guest_rule,$(g))))

-include $(patsubst %.o,%.d,$(GUEST_LIB_OBJS) $(foreach g,$(GUEST_NAMES),$($(g)_GUEST_OBJS)))

# guest/mboot: a 32-bit multiboot v1 kernel, without guest/lib (a 64-bit PVH
# runtime). Two images of the same code: an ELF, and a flat binary whose
# header has the address fields (flag bit 16, the "a.out kludge").
MBOOT_SRCS := guest/mboot/entry.S guest/mboot/mboot.c
MBOOT_FLAGS := -m32 -std=gnu11 -O2 -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
               -fno-asynchronous-unwind-tables -mgeneral-regs-only $(WARN) -Iguest/lib \
               -Wno-int-to-pointer-cast -nostdlib -static \
               -no-pie -Wl,-T,guest/mboot/mboot.ld -Wl,--build-id=none -Wl,--no-warn-rwx-segments
$(BUILD)/guest/mboot.elf: $(MBOOT_SRCS) guest/mboot/mboot.ld guest/lib/x86.h
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(MBOOT_FLAGS) -o $@ $(MBOOT_SRCS)
$(BUILD)/guest/mboot-aout.elf: $(MBOOT_SRCS) guest/mboot/mboot.ld guest/lib/x86.h
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(MBOOT_FLAGS) -DMB_AOUT -o $@ $(MBOOT_SRCS)
$(BUILD)/guest/mboot-aout.bin: $(BUILD)/guest/mboot-aout.elf
	objcopy -O binary $< $@
GUEST_ELFS += $(BUILD)/guest/mboot.elf $(BUILD)/guest/mboot-aout.bin

# Host unit test of guest/lib's split-virtqueue driver against a model device.
UNIT_TESTS += test_guest_virtq
test_guest_virtq_SRCS := guest/lib/virtq.c
test_guest_virtq_DEPS := guest/lib/virtio.h guest/lib/x86.h
test_guest_virtq_CFLAGS := -Iguest/lib
