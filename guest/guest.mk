# Guests: guest/lib (the runtime) and one directory per guest program,
# guest/NAME/*.c, linked into $(BUILD)/guest/NAME.elf. Appends to GUEST_ELFS.
#
# Built with the host gcc, freestanding. guest/lib itself is compiled
# without SSE (-mgeneral-regs-only) so its trap handlers never clobber the
# SSE state of the code they interrupt; guest programs may use SSE.

# This fragment defines explicit rules and is included before `all` is
# defined: keep `all` the default goal.
.DEFAULT_GOAL := all

GUEST_NAMES  := hello demo exit fault triple smp cpl3 bench
GUEST_CC     ?= gcc
GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -mno-red-zone \
                -fno-stack-protector -mcmodel=small -fno-asynchronous-unwind-tables \
                -fno-omit-frame-pointer -Iguest/lib $(WARN)
GUEST_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,guest/lib/guest.ld -Wl,--build-id=none \
                 -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments

GUEST_LIB_SRCS := $(wildcard guest/lib/*.c guest/lib/*.S)
GUEST_LIB_OBJS := $(patsubst guest/%,$(BUILD)/guest/obj/%.o,$(GUEST_LIB_SRCS))
$(GUEST_LIB_OBJS): GUEST_XFLAGS := -mgeneral-regs-only

GUEST_ELFS += $(foreach g,$(GUEST_NAMES),$(BUILD)/guest/$(g).elf)

$(BUILD)/guest/obj/%.c.o: guest/%.c
	@mkdir -p $(dir $@)
	$(GUEST_CC) $(GUEST_CFLAGS) $(GUEST_XFLAGS) -MMD -MP -c -o $@ $<

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
