# aio/: appends to AIO_SRCS and UNIT_TESTS.
