# Unit tests: add NAME to UNIT_TESTS and list NAME_SRCS (the code under test).
