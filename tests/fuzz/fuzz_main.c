// SPDX-License-Identifier: MIT
/* Linked into every fuzz target: seed writing and failure reports. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"

__attribute__((weak)) int fuzz_seeds(const char *dir)
{
	(void)dir;
	return 0;
}

void fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len || close(fd) < 0)
		fuzz_fail("cannot write seed %s: %s", path, strerror(errno));
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fuzz_check_msg(const char *what, const char *msg)
{
	if (!msg[0] || strchr(msg, '\n'))
		fuzz_fail("%s: error message is not one line: '%s'", what, msg);
}

/* FUZZ_SEED_DIR=DIR: write the seeds and exit instead of fuzzing. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = getenv("FUZZ_SEED_DIR");
	int ret;

	(void)argc;
	(void)argv;
	if (!dir)
		return 0;
	ret = fuzz_seeds(dir);
	if (ret < 0) {
		fprintf(stderr, "fuzz: writing seeds into %s: %s\n", dir, strerror(-ret));
		exit(1);
	}
	exit(0);
}
