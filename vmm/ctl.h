/* SPDX-License-Identifier: MIT */
/*
 * `kvmini ctl SOCKET COMMAND [ARGS]`: a QMP client for scripts and people.
 * It speaks plain QMP (greeting, qmp_capabilities, one command at a time),
 * so it drives kvmini's --qmp socket and a QEMU VM's -qmp socket alike.
 */
#ifndef KVMINI_CTL_H
#define KVMINI_CTL_H

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses of `kvmini ctl`. */
#define CTL_EXIT_OK    0
#define CTL_EXIT_VM    1   /* the VM answered with an error (printed) */
#define CTL_EXIT_USAGE 125 /* bad usage, no connection, not QMP */

/*
 * Run `kvmini ctl`: @argv holds what follows "ctl" ([--wait SECONDS]
 * SOCKET COMMAND [ARGS]). Main thread of a process that runs no VM; prints
 * results on stdout and one "kvmini ctl: ..." line on stderr for an error.
 * Returns the exit status (CTL_EXIT_*).
 */
int ctl_main(int argc, char **argv);

/* Print ctl's commands and exit statuses: `kvmini ctl --help` (@alone,
 * with a usage line) or a section of `kvmini --help`. */
void ctl_print_help(FILE *f, bool alone);

/*
 * The URI `migrate` is given to save the VM to the absolute path @path:
 * "file:PATH" for kvmini and QEMU 8.2 or later, "exec:cat > 'PATH'" for an
 * older QEMU (@kvmini: the greeting's package names kvmini; @major/@minor:
 * its QEMU version). Returns 0, or -ENAMETOOLONG when @size is too small.
 * Pure.
 */
int ctl_migrate_uri(char *uri, size_t size, const char *path, int kvmini, int major, int minor);

#endif
