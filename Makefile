# kvmini — the only build entry.
#   make [all]   build/kvmini (static, musl) and build/guest/*.elf
#   make deps    install every Debian package needed (apt-get)
#   make test    layering check + unit tests (cmocka) + system tests (pytest)
#   make run     boot build/guest/demo.elf
#   make soak    1000-cycle snapshot/restore soak (in the test VM)
#   make bench   benchmarks, kvmini beside QEMU
#   make install PREFIX=/usr/local DESTDIR=   kvmini, its man page, bash completion
#   make clean
#
# Subsystems add to the variables below from their own fragment
# (aio/aio.mk, guest/guest.mk, tests/unit/unit.mk), so each owns its rules.

.DEFAULT_GOAL := all

BUILD     ?= build
MUSLCC    ?= musl-gcc
HOSTCC    ?= gcc
PYTHON    ?= /usr/bin/python3

WARN      := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wformat=2
COMMON    := -std=gnu11 -D_GNU_SOURCE -I. -g $(WARN)

# Kernel headers reach musl-gcc through a private include dir of links
# (musl-gcc does not search /usr/include).
MUSL_INC  := $(BUILD)/musl-include
ZYDIS_DIR := $(BUILD)/zydis
ZYDIS_LIB := $(ZYDIS_DIR)/libZydis.a
# liburing is built the same way (scripts/build-liburing.sh); one archive serves
# kvmini and the host unit tests. -isystem: its inline functions are not ours to warn on.
LIBURING_DIR := $(BUILD)/liburing
LIBURING_LIB := $(LIBURING_DIR)/liburing.a
LIBURING_CFLAGS := -isystem $(LIBURING_DIR)/include

KVMINI_CFLAGS := $(COMMON) -O2 -isystem $(MUSL_INC) -I$(ZYDIS_DIR)/include \
                 -DZYDIS_STATIC_BUILD $(LIBURING_CFLAGS) -fno-strict-aliasing
KVMINI_LDFLAGS := -static -pthread

# Host (glibc) builds for unit tests: sanitizers on.
TEST_CFLAGS := $(COMMON) -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
               -I$(ZYDIS_DIR)/include -DZYDIS_STATIC_BUILD $(LIBURING_CFLAGS) -DUNIT_TEST
TEST_LIBS   := -lcmocka -pthread

# Sources of the kvmini binary. Fragments append. main/ is the top level:
# it wires the VM, the devices and QMP together, and nothing includes it.
AIO_SRCS    :=
MAIN_SRCS   := $(wildcard main/*.c)
VMM_SRCS    := $(wildcard vmm/*.c)
DEV_SRCS    := $(wildcard devices/*/*.c)
UNIT_TESTS  :=
GUEST_ELFS  :=
BENCH_DEPS  :=

-include aio/aio.mk
-include guest/guest.mk
-include tests/unit/unit.mk
-include tests/fuzz/fuzz.mk

KVMINI_SRCS := $(MAIN_SRCS) $(VMM_SRCS) $(DEV_SRCS) $(AIO_SRCS)
KVMINI_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(KVMINI_SRCS)) $(BUILD)/obj/version.o

# The git revision `kvmini --version` reports, in $(BUILD)/version.c: that
# file is rewritten only when the revision changes, so kvmini relinks then
# and only then. Outside a git checkout (a release tarball) it is "unknown",
# or whatever KVMINI_GIT_REV=... says.
KVMINI_GIT_REV ?= $(shell test -e .git && git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

.PHONY: all deps deps-if-missing test check-layering unit kvmbox-test system soak linux-test run bench clean format \
	man install uninstall
all: deps-if-missing $(BUILD)/kvmini guests

deps:
	scripts/deps.sh

deps-if-missing:
	@scripts/deps.sh --if-missing

$(MUSL_INC)/.stamp: Makefile | deps-if-missing
	@mkdir -p $(MUSL_INC)
	ln -sfn /usr/include/linux $(MUSL_INC)/linux
	ln -sfn /usr/include/asm-generic $(MUSL_INC)/asm-generic
	ln -sfn /usr/include/x86_64-linux-gnu/asm $(MUSL_INC)/asm
	ln -sfn /usr/include/Zycore $(MUSL_INC)/Zycore
	ln -sfn /usr/include/jsmn.h $(MUSL_INC)/jsmn.h
	@touch $@

$(ZYDIS_LIB): scripts/build-zydis.sh scripts/fetch-deb-source.sh | $(MUSL_INC)/.stamp
	scripts/build-zydis.sh $(ZYDIS_DIR) $(MUSLCC) $(abspath $(MUSL_INC))

$(LIBURING_LIB): scripts/build-liburing.sh scripts/fetch-deb-source.sh | $(MUSL_INC)/.stamp
	scripts/build-liburing.sh $(LIBURING_DIR) $(MUSLCC) $(abspath $(MUSL_INC))

$(BUILD)/obj/%.o: %.c | $(MUSL_INC)/.stamp $(ZYDIS_LIB) $(LIBURING_LIB)
	@mkdir -p $(dir $@)
	$(MUSLCC) $(KVMINI_CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/version.c: FORCE
	@mkdir -p $(dir $@)
	@printf '#include "vmm/config.h"\nconst char kvmini_git_rev[] = "%s";\n' \
		'$(subst ',,$(subst ",,$(subst \,,$(KVMINI_GIT_REV))))' > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi
FORCE:

$(BUILD)/obj/version.o: $(BUILD)/version.c | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSLCC) $(KVMINI_CFLAGS) -c -o $@ $<

$(BUILD)/kvmini: $(KVMINI_OBJS) $(ZYDIS_LIB) $(LIBURING_LIB)
	$(MUSLCC) $(KVMINI_LDFLAGS) -o $@ $(KVMINI_OBJS) $(ZYDIS_LIB) $(LIBURING_LIB)

-include $(KVMINI_OBJS:.o=.d)

# Programs for Linux guests (guest/linux/*.c): static musl binaries that
# tests put into the initramfs images they build.
LINUX_TOOLS := $(patsubst guest/linux/%.c,$(BUILD)/guest/linux/%,$(wildcard guest/linux/*.c))
guests: $(GUEST_ELFS) $(LINUX_TOOLS)

$(BUILD)/guest/linux/%: guest/linux/%.c | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSLCC) -static -O2 -Wall -Wextra -Werror -isystem $(MUSL_INC) -pthread -o $@ $<

# Unit tests: tests/unit/NAME.c plus $(NAME_SRCS), built with the host
# compiler and sanitizers. Fragments add NAME to UNIT_TESTS.
define unit_rule
$(BUILD)/tests/$(1): tests/unit/$(1).c $$($(1)_SRCS) $$($(1)_DEPS) | $(ZYDIS_LIB) $(LIBURING_LIB)
	@mkdir -p $$(dir $$@)
	$(HOSTCC) $(TEST_CFLAGS) $$($(1)_CFLAGS) -o $$@ tests/unit/$(1).c $$($(1)_SRCS) $(TEST_LIBS) $$($(1)_LIBS)
endef
$(foreach t,$(UNIT_TESTS),$(eval $(call unit_rule,$(t))))

unit: deps-if-missing $(addprefix $(BUILD)/tests/,$(UNIT_TESTS))
	@set -e; for t in $(UNIT_TESTS); do echo "== unit: $$t"; $(BUILD)/tests/$$t; done

# System tests boot VMs: natively where /dev/kvm works, otherwise all of them
# in one test VM (scripts/kvmbox; KVMBOX=1 forces it, KVMBOX=0 forbids it).
# Never skipped for want of KVM: KVMINI_TEST_REQUIRE_KVM makes that an error.
KVMBOX_RUN := scripts/kvmbox --auto --timeout 2700 --
# Debian's kernel as a guest (tests/system/test_linux*.py) is part of the
# system tests, in a box of its own with one vCPU: with two, a Linux guest
# nested in the box stalls now and then (docs/testing.md). Given
# PYTEST_ARGS on the command line, `make test` runs just those; `make
# linux-test` runs the Linux tests alone.
KVMBOX_RUN_1CPU := scripts/kvmbox --auto --cpus 1 --timeout 2700 --
LINUX_TESTS := tests/system/test_linux.py tests/system/test_linux_boot.py
ifeq ($(origin PYTEST_ARGS),command line)
LINUX_PYTEST_ARGS ?=
else
LINUX_PYTEST_ARGS ?= $(LINUX_TESTS)
endif
PYTEST_ARGS ?= tests/system $(addprefix --ignore=,$(LINUX_TESTS))

# The box itself, on the host: it needs QEMU, not KVM.
kvmbox-test: deps-if-missing
	$(PYTHON) -m pytest -q -ra tests/kvmbox

# Both boxes run even if the first fails; either failing fails the target.
system: all
	@status=0; \
	KVMINI_TEST_REQUIRE_KVM=1 $(KVMBOX_RUN) $(PYTHON) -m pytest -q -ra --durations=15 \
		$(PYTEST_ARGS) || status=1; \
	if [ -n "$(strip $(LINUX_PYTEST_ARGS))" ]; then \
		echo "Linux guests (one-vCPU box):"; \
		KVMINI_TEST_REQUIRE_KVM=1 $(KVMBOX_RUN_1CPU) $(PYTHON) -m pytest -q -ra \
			--durations=15 $(LINUX_PYTEST_ARGS) || status=1; \
	fi; exit $$status

linux-test: all
	KVMINI_TEST_REQUIRE_KVM=1 $(KVMBOX_RUN_1CPU) $(PYTHON) -m pytest -q -ra -s --durations=15 $(LINUX_TESTS)

# No include loops among the host sources (aio/ vmm/ devices/ main/). Instant.
check-layering:
	$(PYTHON) scripts/check-layering

test: check-layering unit kvmbox-test system $(EXTRA_TESTS)

# Long soak: 1000 snapshot cycles per phase (tests/system/test_soak.py; its
# short form is part of `make test`). About 28 min in the box.
soak: all
	KVMINI_TEST_REQUIRE_KVM=1 KVMINI_SOAK_CYCLES=1000 scripts/kvmbox --auto --timeout 10800 -- \
		$(PYTHON) -m pytest -q -rP tests/system/test_soak.py

run: all
	$(KVMBOX_RUN) $(BUILD)/kvmini run --kernel $(BUILD)/guest/demo.elf --cpus 2 --cmdline "hello from make run"

bench: all $(BENCH_DEPS)
	$(KVMBOX_RUN) scripts/bench/run-all.sh
	$(KVMBOX_RUN_1CPU) scripts/bench/run-all.sh linux-boot

# The man page kvmini(1): help2man turns `kvmini --help` (generated from the
# option table in vmm/cli.c) into roff, with docs/kvmini.h2m's sections, so
# it lists exactly the options the binary has.
KVMINI_VERSION := $(shell sed -n 's/^\#define KVMINI_VERSION "\(.*\)"/\1/p' vmm/config.h)
$(BUILD)/kvmini.1: $(BUILD)/kvmini docs/kvmini.h2m
	help2man --no-info --version-string '$(KVMINI_VERSION)' --include docs/kvmini.h2m \
		--output $@ $(BUILD)/kvmini
man: $(BUILD)/kvmini.1

# make install [PREFIX=/usr/local] [DESTDIR=/staging]: three files.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
MANDIR      ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
INSTALLED   := $(DESTDIR)$(BINDIR)/kvmini $(DESTDIR)$(MANDIR)/man1/kvmini.1 \
	       $(DESTDIR)$(BASHCOMPDIR)/kvmini
install: $(BUILD)/kvmini $(BUILD)/kvmini.1
	install -D -m 0755 $(BUILD)/kvmini $(DESTDIR)$(BINDIR)/kvmini
	install -D -m 0644 $(BUILD)/kvmini.1 $(DESTDIR)$(MANDIR)/man1/kvmini.1
	install -D -m 0644 scripts/completion/kvmini.bash $(DESTDIR)$(BASHCOMPDIR)/kvmini
uninstall:
	rm -f $(INSTALLED)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf $(BUILD)
