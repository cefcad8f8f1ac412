/* SPDX-License-Identifier: MIT */
/* The VM as the command line describes it. Filled by cli_parse, read-only after. */
#ifndef KVMINI_CONFIG_H
#define KVMINI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/util.h"

#define KVMINI_VERSION "0.1"

#define CONFIG_MAX_CPUS		 255 /* xAPIC IDs fit in 8 bits */
#define CONFIG_MAX_FEATURE_EDITS 64
#define CONFIG_DEFAULT_MEM	 (128ULL << 20)
#define CONFIG_MIN_MEM		 (2ULL << 20)
#define CONFIG_MAX_MEM		 (1ULL << 40)

enum serial_mode { SERIAL_STDIO, SERIAL_FILE, SERIAL_NONE };

struct feature_edit {
	int feature; /* index into the cpuid feature table */
	bool enable; /* +name: require and keep; -name: hide from the guest */
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned ncpus;
	struct feature_edit features[CONFIG_MAX_FEATURE_EDITS];
	unsigned nfeatures;
	enum serial_mode serial;
	const char *serial_path;
	uint64_t timeout_ns; /* 0: none */
	bool reboot;
	const char *qmp_path;	   /* --qmp PATH */
	const char *incoming_path; /* --incoming file:PATH */
	bool paused;		   /* --paused: do not start the vCPUs */
	const char *inspect_path;  /* snapshot inspect FILE */
	bool inspect_verify;
};

enum cli_command { CLI_RUN, CLI_HELP, CLI_VERSION, CLI_SNAPSHOT_INSPECT };

/*
 * Parse argv (argv[0] is the program). Pure except that it keeps pointers
 * into argv. Returns 0 and the command, or -EINVAL with a one-line message.
 */
int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vm_config *cfg,
	      struct errbuf *err);

/* The usage text for --help. */
extern const char cli_usage[];

#endif
