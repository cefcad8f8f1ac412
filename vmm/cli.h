/* SPDX-License-Identifier: MIT */
/* The command line (cli.c): argv into a struct vm_config. */
#ifndef KVMINI_CLI_H
#define KVMINI_CLI_H

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

enum cli_command { CLI_RUN, CLI_HELP, CLI_VERSION, CLI_SNAPSHOT_INSPECT, CLI_IVSHMEM_SERVER };

/*
 * Parse argv (argv[0] is the program). Pure except that it keeps pointers
 * into argv. Returns 0 and the command, or -EINVAL with a one-line message.
 */
int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vm_config *cfg,
	      struct errbuf *err);

/* The usage text for --help. */
extern const char cli_usage[];

#endif
