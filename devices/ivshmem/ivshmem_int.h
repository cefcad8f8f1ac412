/* SPDX-License-Identifier: MIT */
/*
 * ivshmem internals shared by ivshmem.c and its unit tests: the device
 * state and a constructor that works on a bare PCI host (no struct vm).
 */
#ifndef KVMINI_IVSHMEM_INT_H
#define KVMINI_IVSHMEM_INT_H

#include <pthread.h>

#include "aio/aio.h"
#include "devices/ivshmem/ivshmem.h"
#include "vmm/memory.h"
#include "vmm/msix.h"
#include "vmm/pci.h"

/* What a device needs from its VM (a struct vm, or a unit test's fakes). */
struct ivshmem_env {
	struct pci_host *host;
	struct aio_context *ctx;	 /* main loop: the server socket's handler */
	const struct guest_mem *mem;	 /* RAM (BAR 2 must not overlap it); may be NULL */
	void *opaque;			 /* for the three hooks below */
	int (*slot_alloc)(void *opaque); /* a KVM memory slot or -errno; may be NULL */
	void (*slot_free)(void *opaque, int slot); /* may be NULL */
	/* Put @size bytes at @host at guest @gpa in @slot; @size 0 removes. */
	int (*mem_map)(void *opaque, int slot, uint64_t gpa, uint64_t size, void *host);
	/* role=master: have snapshots carry the shared memory (NULL: no snapshots). */
	int (*snap_mem)(void *opaque, const char *name, void *host, uint64_t size,
			struct errbuf *err);
};

struct ivshmem {
	struct ivshmem_env env;
	struct ivshmem_config cfg;
	char name[16];
	struct pci_device_info info;
	struct pci_device *pdev;
	bool doorbell; /* ivshmem-doorbell (else plain) */

	/* Shared memory: mapped at realize, BAR 2 = KVM slot @slot at
	 * @shm_gpa while decoded (PCI config lock). */
	void *shm;
	uint64_t shm_size;
	int shm_fd; /* until mapped */
	int slot;
	uint64_t shm_gpa;

	pthread_mutex_t lock; /* everything down to peers */
	uint32_t intrmask, intrstatus;
	uint32_t ivposition;	/* 0, or the ID the server gave us */
	uint64_t doorbell_addr; /* guest address of DOORBELL, or PCI_BAR_UNMAPPED */
	struct ivshmem_peers peers;
	bool self_ioeventfd[IVSHMEM_MAX_VECTORS];
	unsigned own_vectors; /* our vectors that have the server's eventfd */
	unsigned nioeventfd_errors;

	/* Doorbell only; main thread. */
	struct msix msix;
	unsigned server_vectors; /* eventfds the server sent for our vectors */
	int sock;		 /* connection to the server, or -1 */
	bool sock_handler;
	struct ivshmem_msg_reader rd;
	struct ivshmem_client client;
	unsigned nwarn;	     /* stderr lines so far (rate limit) */
	bool warned_vectors; /* said once that a peer had too many vectors */
};

/*
 * Create device number @index (named "ivshmem<index>") from @cfg on
 * @env->host: for a doorbell device this connects to the server and
 * receives its setup first (up to cfg->timeout_ns). Main thread. -errno
 * and a one-line message on failure, nothing left behind.
 */
int ivshmem_create(const struct ivshmem_env *env, unsigned index, const struct ivshmem_config *cfg,
		   struct ivshmem **out, struct errbuf *err);
void ivshmem_destroy(struct ivshmem *s);

/* Register accesses as BAR 0 delivers them (32-bit). vCPU threads. */
uint32_t ivshmem_reg_read(struct ivshmem *s, uint64_t off);
void ivshmem_reg_write(struct ivshmem *s, uint64_t off, uint32_t val);

/* device_ops save/load on a struct ivshmem. */
int ivshmem_save(void *state, void *buf, size_t len);
int ivshmem_load(void *state, const void *buf, size_t len, struct errbuf *err);

#endif
