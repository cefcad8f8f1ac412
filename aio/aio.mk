# aio/: appends to AIO_SRCS and UNIT_TESTS.
# Unit tests: add NAME to UNIT_TESTS and list NAME_SRCS (the code under test).

# kvmini links the event loop without coroutines (nothing in it uses them;
# see docs/aio.md); the library and its tests keep them.
AIO_CORE_SRCS := aio/async.c aio/aio_posix.c aio/timer.c aio/thread_pool.c aio/iothread.c
AIO_LIB_SRCS := $(AIO_CORE_SRCS) aio/coroutine.c aio/aio_co.c
AIO_HDRS     := aio/aio.h aio/aio_int.h tests/unit/aio_test_util.h
AIO_SRCS     += $(AIO_CORE_SRCS)

# cmocka tests (ASan/UBSan via `make unit`, TSan via `make test-tsan`).
AIO_TESTS    := test_aio_bh test_aio_io test_aio_pool test_aio_stress test_coroutine \
                test_aio_co_stress
UNIT_TESTS   += $(AIO_TESTS)
$(foreach t,$(AIO_TESTS),$(eval $(t)_SRCS := $(AIO_LIB_SRCS))$(eval $(t)_DEPS := $(AIO_HDRS)))

# ThreadSanitizer build of the same tests: host compiler, glibc, no
# suppressions. TSAN_CC=clang works too.
TSAN_CC      ?= $(HOSTCC)
TSAN_CFLAGS  := $(COMMON) -O1 -fsanitize=thread -fno-omit-frame-pointer -DUNIT_TEST
AIO_TSAN_BINS := $(addprefix $(BUILD)/tsan/,$(AIO_TESTS))

$(AIO_TSAN_BINS): $(BUILD)/tsan/%: tests/unit/%.c $(AIO_LIB_SRCS) $(AIO_HDRS)
	@mkdir -p $(dir $@)
	$(TSAN_CC) $(TSAN_CFLAGS) -o $@ $< $(AIO_LIB_SRCS) $(TEST_LIBS)

# About 5 s here (build included), so `make test` runs it.
EXTRA_TESTS  += test-tsan
.PHONY: test-tsan
test-tsan: $(AIO_TSAN_BINS)
	@set -e; for t in $(AIO_TSAN_BINS); do echo "== tsan: $$t"; \
		TSAN_OPTIONS="halt_on_error=1 $(TSAN_OPTIONS)" $$t; done

# The aio benchmark: static musl, -O2, like kvmini itself.
$(BUILD)/bench/aio_bench: scripts/bench/aio_bench.c $(AIO_LIB_SRCS) aio/aio.h aio/aio_int.h | $(MUSL_INC)/.stamp
	@mkdir -p $(dir $@)
	$(MUSLCC) $(KVMINI_CFLAGS) -static -pthread -o $@ $< $(AIO_LIB_SRCS)
BENCH_DEPS   += $(BUILD)/bench/aio_bench
