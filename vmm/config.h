/* SPDX-License-Identifier: MIT */
/* The VM as the command line describes it. Filled by cli_parse, read-only after. */
#ifndef KVMINI_CONFIG_H
#define KVMINI_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/util.h"

#define KVMINI_VERSION "0.1"
/* The git revision kvmini was built from ("unknown" outside a git
 * checkout): $(BUILD)/version.c, written by the Makefile. */
extern const char kvmini_git_rev[];

/* The kernel formats --kernel accepts, for the error a kernel in another
 * format gets: one place to name a new loader. */
#define KVMINI_KERNEL_FORMATS                                                                      \
	"PVH ELF kernels (ELF32/ELF64 with a XEN_ELFNOTE_PHYS32_ENTRY note: the test guests, "     \
	"a Linux vmlinux built with CONFIG_PVH), multiboot v1 images (a multiboot header in the "  \
	"first 8 KiB: kvm-unit-tests' x86 tests, what QEMU's -kernel and GRUB load) and Linux "    \
	"bzImages (boot protocol 2.12+, 64-bit: what distributions ship in /boot)"

#define CONFIG_MAX_CPUS		 255 /* xAPIC IDs fit in 8 bits */
#define CONFIG_MAX_FEATURE_EDITS 64
#define CONFIG_DEFAULT_MEM	 (128ULL << 20)
#define CONFIG_MIN_MEM		 (2ULL << 20)
#define CONFIG_MAX_MEM		 (1ULL << 40)
#define CONFIG_MAX_DISKS	 16
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
	unsigned qmp_mode;	   /* --qmp PATH,mode=OCTAL (default 0600) */
	const char *incoming_path; /* --incoming file:PATH */
	bool paused;		   /* --paused: do not start the vCPUs */
	bool sandbox_off;	   /* --sandbox off: no seccomp filters */
	bool testdev;		   /* --testdev: kvm-unit-tests' pc-testdev */
	bool hyperv;		   /* --hyperv: Hyper-V enlightenments */
	bool iommu;		   /* --iommu: VT-d, split irqchip */
	bool edu;		   /* --edu: QEMU's edu PCI device */
	const char *inspect_path;  /* snapshot inspect FILE */
	bool inspect_verify;
	/* --disk option strings as given (the block layer checks them:
	 * disk_config_check);
	 * each becomes a virtio-blk device, in this order. */
	const char *disks[CONFIG_MAX_DISKS];
	unsigned ndisks;
	/* --scsi-disk option strings (scsi_disk_config_parse): the LUNs of
	 * one virtio-scsi controller, in this order. */
	const char *scsi_disks[CONFIG_MAX_DISKS];
	unsigned nscsi_disks;
	/* --vhost-user-blk option strings (vhost_user_blk_config_parse), in
	 * this order; any of them makes guest RAM shared (memfd). */
	const char *vhost_user_blks[CONFIG_MAX_DISKS];
	unsigned nvhost_user_blk;
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

/* One --vhost-user-blk, parsed:
 * socket=PATH[,num-queues=N][,timeout=S][,reconnect=S]. */
struct vhost_user_blk_config {
	char socket[108];      /* the backend's UNIX socket (sun_path) */
	unsigned num_queues;   /* 1..16, default 1 */
	uint64_t timeout_ns;   /* longest wait for one reply; default 5 s */
	uint64_t reconnect_ns; /* between reconnection attempts; 0 (default): never */
};

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

#endif
