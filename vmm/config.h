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
#define CONFIG_MAX_DISKS	 16
#define DISK_SERIAL_MAX		 20 /* virtio-blk's GET_ID string */
#define DISK_PATH_MAX		 4096

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
	/* --disk option strings as given (validated by disk_config_parse);
	 * each becomes a virtio-blk device, in this order. */
	const char *disks[CONFIG_MAX_DISKS];
	unsigned ndisks;
};

/* How a disk does its I/O (see docs/devices.md). */
enum disk_aio {
	DISK_AIO_AUTO = 0, /* io_uring for reads if the host allows it, else threads */
	DISK_AIO_THREADS,  /* every request on the thread pool */
	DISK_AIO_IO_URING, /* like auto, but an error if io_uring is unavailable */
};

/* One --disk, parsed: path=FILE[,readonly=on|off][,serial=STR][,aio=MODE]. */
struct disk_config {
	char path[DISK_PATH_MAX];
	char serial[DISK_SERIAL_MAX + 1]; /* "" if not given */
	bool readonly;
	enum disk_aio aio;
};

/*
 * Parse a --disk option string into *@dc. Pure; any thread. Returns 0, or
 * -EINVAL with a one-line message naming the option and what is wrong
 * (unknown or repeated key, missing path, bad on/off, serial longer than
 * 20 characters or not printable ASCII, aio not auto/threads/io_uring).
 */
int disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err);

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
