# Unit tests: add NAME to UNIT_TESTS and list NAME_SRCS (the code under test).
UNIT_TESTS += test_bus test_cli
test_bus_SRCS := vmm/bus.c vmm/util.c
test_cli_SRCS := vmm/cli.c vmm/cpuid.c vmm/util.c
