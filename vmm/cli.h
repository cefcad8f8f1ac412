/* SPDX-License-Identifier: MIT */
/* The command line (cli.c): argv into a struct vm_config. */
#ifndef KVMINI_CLI_H
#define KVMINI_CLI_H

#include <stdio.h>

#include "vmm/config.h"
#include "vmm/util.h"

/*
 * Parse a --ivshmem option string into *@c. Pure; any thread. Returns 0,
 * or -EINVAL with a one-line message naming the option and what is wrong
 * (unknown or repeated key, not exactly one of mem/shm/server, a size that
 * is not a power of two in [4K, 1T], vectors outside 1..64, role not
 * master/peer, timeout not 1..3600 seconds, size with server, vectors or
 * timeout without server, an shm name with '/').
 */
int ivshmem_config_parse(const char *spec, struct ivshmem_config *c, struct errbuf *err);

enum cli_command {
	CLI_RUN,
	CLI_HELP,
	CLI_VERSION,
	CLI_SNAPSHOT_INSPECT,
	CLI_IVSHMEM_SERVER,
	CLI_CTL, /* `kvmini ctl ...`: argv[2..] are ctl_main's (vmm/ctl.h) */
};

/*
 * Parse argv (argv[0] is the program). Pure except that it keeps pointers
 * into argv. Returns 0 and the command, or -EINVAL with a one-line message.
 */
int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vm_config *cfg,
	      struct errbuf *err);

/*
 * The options of `kvmini run`: the one list that the parser, --help and
 * the option table of docs/cli.md follow (tests/unit/test_cli.c checks the
 * table against docs/cli.md). Adding an option: an entry here, its case in
 * cli_set, a row in docs/cli.md.
 */
struct cli_opt {
	const char *name; /* without the leading -- */
	const char *arg;  /* the value's name in help (PATH, N), or NULL for a flag */
	const char *def;  /* the default, as --help and docs/cli.md show it */
	const char *help; /* lines for --help, '\n' between them */
};
extern const struct cli_opt cli_run_opts[];
extern const size_t cli_run_nopts;

/* Print `kvmini --help`: every command, every run option with its default. */
void cli_print_help(FILE *f);

#endif
