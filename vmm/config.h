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
#define DISK_LUN_MAX		 255 /* --scsi-disk lun= */
#define CONFIG_MAX_IVSHMEM	 8

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
	/* --scsi-disk option strings (scsi_disk_config_parse): the LUNs of
	 * one virtio-scsi controller, in this order. */
	const char *scsi_disks[CONFIG_MAX_DISKS];
	unsigned nscsi_disks;
	/* --ivshmem option strings (ivshmem_config_parse), in this order. */
	const char *ivshmem[CONFIG_MAX_IVSHMEM];
	unsigned nivshmem;
	/* `kvmini ivshmem-server` options. */
	struct ivshmem_server_config {
		const char *socket; /* --socket PATH */
		const char *shm;    /* --shm NAME, or NULL */
		const char *path;   /* --path FILE, or NULL */
		uint64_t size;	    /* --size */
		unsigned vectors;   /* --vectors (default 1) */
	} ivserver;
};

/* How a disk does its I/O (see docs/devices.md). */
enum disk_aio {
	DISK_AIO_AUTO = 0, /* io_uring for reads if the host allows it, else threads */
	DISK_AIO_THREADS,  /* every request on the thread pool */
	DISK_AIO_IO_URING, /* like auto, but an error if io_uring is unavailable */
};

/* werror= / rerror=: what a failed host I/O does (QEMU's values). */
enum disk_error_policy {
	DISK_ERROR_REPORT = 0, /* the default: the request completes with an error */
	DISK_ERROR_IGNORE,
	DISK_ERROR_STOP,
	DISK_ERROR_ENOSPC, /* stop on ENOSPC, report anything else (werror only) */
};

/* What one failure does, as the policy decides. */
enum disk_error_action {
	DISK_ACTION_REPORT, /* complete the request with an I/O error */
	DISK_ACTION_IGNORE, /* complete it as if it had worked */
	DISK_ACTION_STOP,   /* hold it and pause the VM; cont retries it */
};

/* The action @p takes for a host I/O that failed with errno @error. Pure. */
enum disk_error_action disk_error_action(enum disk_error_policy p, int error);

/* One --disk, parsed: path=FILE[,readonly=on|off][,serial=STR][,aio=MODE]
 * [,werror=POLICY][,rerror=POLICY]. */
struct disk_config {
	char path[DISK_PATH_MAX];
	char serial[DISK_SERIAL_MAX + 1]; /* "" if not given */
	bool readonly;
	enum disk_aio aio;
	enum disk_error_policy werror; /* writes, flushes, discards, write-zeroes */
	enum disk_error_policy rerror; /* reads */
	int lun;		       /* --scsi-disk lun=N, or -1: the first free one */
};

/*
 * Parse a --disk option string into *@dc. Pure; any thread. Returns 0, or
 * -EINVAL with a one-line message naming the option and what is wrong
 * (unknown or repeated key, missing path, bad on/off, serial longer than
 * 20 characters or not printable ASCII, aio not auto/threads/io_uring,
 * werror not stop/report/ignore/enospc, rerror not stop/report/ignore).
 */
int disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err);
/* The same for --scsi-disk, which also takes lun=0..DISK_LUN_MAX. */
int scsi_disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err);

#define IVSHMEM_PATH_MAX	   4096
#define IVSHMEM_MAX_SIZE	   (1ULL << 40)
#define IVSHMEM_MAX_VECTORS	   64 /* per peer, as QEMU's ivshmem-server */
#define IVSHMEM_DEFAULT_TIMEOUT_NS (5ULL * 1000000000ULL)

enum ivshmem_backend {
	IVSHMEM_BACKEND_FILE,	/* mem=PATH: ivshmem-plain on a file */
	IVSHMEM_BACKEND_SHM,	/* shm=NAME: ivshmem-plain on a POSIX shm object */
	IVSHMEM_BACKEND_SERVER, /* server=SOCKET: ivshmem-doorbell */
};

/* What the shared memory is to this VM in a snapshot (QEMU's master=on|off):
 * a master's snapshot carries the shared memory's contents. */
enum ivshmem_role { IVSHMEM_ROLE_PEER = 0, IVSHMEM_ROLE_MASTER };

/* One --ivshmem, parsed:
 * mem=PATH|shm=NAME[,size=SIZE][,role=R] or
 * server=SOCKET[,vectors=N][,role=R][,timeout=SECONDS]. */
struct ivshmem_config {
	enum ivshmem_backend backend;
	char path[IVSHMEM_PATH_MAX]; /* file, shm object name or socket */
	uint64_t size;		     /* plain: 0 if not given (use the object's) */
	unsigned vectors;	     /* doorbell: 1..IVSHMEM_MAX_VECTORS, default 1 */
	enum ivshmem_role role;
	uint64_t timeout_ns; /* doorbell setup; default 5 s */
};

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
