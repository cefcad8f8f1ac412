/* SPDX-License-Identifier: MIT */
/*
 * The VM: KVM handles, guest memory, buses, devices and vCPU threads.
 *
 * Threads: the main thread creates and destroys the VM and runs the main
 * AioContext; each vCPU has its own thread running vcpu_thread(). vCPU
 * threads ask the main thread to end the VM with vm_request_exit(), which
 * is thread safe and schedules a BH on the main context.
 */
#ifndef KVMINI_VM_H
#define KVMINI_VM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"
#include "vmm/bus.h"
#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/memory.h"
#include "vmm/util.h"
#include "vmm/vcpu.h"

/* kvmini's exit statuses (guest statuses are 0..123). */
#define EXIT_GUEST_MAX	123
#define EXIT_TIMEOUT	124
#define EXIT_HOST_ERROR 125
#define EXIT_CRASH	126

#define VM_MAX_DEVICES	     48
#define VM_MAX_SNAP_MEM	     8
#define VM_SNAP_MEM_MAX_SIZE (1ULL << 30)

/* Why the VM stopped running; the first reason recorded wins. */
enum vm_exit_kind {
	VM_EXIT_NONE = 0,
	VM_EXIT_STATUS, /* guest status, timeout, crash or host error: see status */
	VM_EXIT_RESET,	/* reset: status is VM_RESET_GUEST or VM_RESET_HOST */
	VM_EXIT_QUIT,	/* QMP quit: exit 0 */
};

struct pci_host;
struct rtc;
struct hyperv;
#define VM_RESET_GUEST 0 /* i8042: reboots only with --reboot */
#define VM_RESET_HOST  1 /* QMP system_reset: always reboots */

/*
 * A block device as query-block reports it; owned by its device, listed
 * in vm->blocks while the device exists. io_status: "ok", "failed" or
 * "nospace" (written by the main thread).
 */
struct vm_block {
	char id[32];
	const char *path;
	bool readonly;
	const char *io_status;
};

/* What one failure does, as the policy decides. */
enum disk_error_action {
	DISK_ACTION_REPORT, /* complete the request with an I/O error */
	DISK_ACTION_IGNORE, /* complete it as if it had worked */
	DISK_ACTION_STOP,   /* hold it and pause the VM; cont retries it */
};

/* What query-status reports. Written by the main thread only. */
enum vm_run_state {
	VM_RUN_PRELAUNCH, /* created, not started */
	VM_RUN_RUNNING,
	VM_RUN_PAUSED,	    /* stop, or restored with --paused */
	VM_RUN_POSTMIGRATE, /* paused after a completed migrate */
	VM_RUN_IO_ERROR,    /* paused by werror/rerror=stop */
	VM_RUN_SHUTDOWN,
};

/*
 * Where the VM raises events (QMP's STOP, BLOCK_IO_ERROR): the top level
 * installs it before vm_start, so the VM knows nothing of who listens.
 * @event runs on the main thread; @data_json is a JSON object or NULL for
 * {}. An unset sink drops events.
 */
struct vm_events {
	void (*event)(void *opaque, const char *name, const char *data_json);
	void *opaque;
};

/* Raise event @name through the sink the top level installed, if any.
 * Main thread only (vCPU threads schedule a bottom half on main_ctx). */
struct vm;
void vm_emit_event(struct vm *vm, const char *name, const char *data_json);

struct vm {
	const struct vm_config *cfg;
	int kvm_fd;
	int vm_fd;
	struct guest_mem mem;
	struct bus pio;
	struct bus mmio;
	struct kvm_cpuid2 *cpuid; /* supported CPUID, edited per cfg */
	struct vcpu_group cpus;	  /* the vCPUs, their threads and pause protocol */
	struct device devices[VM_MAX_DEVICES];
	int ndevices;
	struct pci_host *pci;  /* set by pci_host_ops' realize (vmm/pci.h) */
	uint64_t rsdp;	       /* ACPI RSDP GPA for the boot loaders; 0: none */
	uint64_t facs;	       /* ACPI FACS GPA (S3 waking vector); 0: none */
	struct rtc *rtc;       /* set by rtc_ops' realize (vmm/rtc.h); NULL: none */
	struct hyperv *hyperv; /* --hyperv's SynIC state (vmm/hyperv.h); NULL: none */
	/* --iommu: the userspace IOAPIC (NULL: KVM's) and the VT-d unit (NULL:
	 * none), with their entry points, set by their realize (vmm/ioapic.h,
	 * vmm/intel_iommu.h; vm.c does not include them). */
	struct ioapic *ioapic;
	void (*ioapic_set_irq)(struct ioapic *io, unsigned pin, bool level);
	void (*ioapic_eoi)(struct ioapic *io, uint8_t vector);
	struct intel_iommu *iommu;
	int (*iommu_msi)(struct intel_iommu *iu, int sid, uint64_t *addr, uint32_t *data);
	int (*iommu_dma)(struct intel_iommu *iu, uint16_t sid, uint64_t iova, void *buf,
			 uint64_t len, bool write);
	struct aio_context *main_ctx;

	/* Set once by the first vm_request_exit; read by the main thread
	 * after the BH it schedules runs. exit_lock protects the pair. */
	pthread_mutex_t exit_lock;
	enum vm_exit_kind exit_kind;
	int exit_status;
	struct aio_bh *exit_bh;

	bool started;	     /* vm_start ran: vCPU threads exist */
	bool restoring;	     /* created for snapshot_restore */
	bool devices_paused; /* devices' pause ops ran, resume ops not yet (main) */
	/* RAM mapped from a snapshot file (-1 if anonymous) and where each
	 * region starts in it; read by the next snapshot_save. */
	int ram_src_fd;
	uint64_t ram_src_off[GUEST_MEM_MAX_REGIONS];

	/* Device memory that snapshots carry (vm_add_snapshot_mem); main thread. */
	struct vm_snap_mem {
		char name[16];
		void *host;
		uint64_t size;
	} snap_mem[VM_MAX_SNAP_MEM];
	int nsnap_mem;

	/* KVM memory slots for device memory (ivshmem BAR 2), above RAM's;
	 * bit i of slots_used: slot VM_DEV_SLOT_FIRST + i. slot_lock. */
	pthread_mutex_t slot_lock;
	uint32_t slots_used;

	enum vm_run_state run_state;		 /* main thread */
	struct vm_block *blocks[VM_MAX_DEVICES]; /* main thread */
	int nblocks;
	struct vm_events events; /* set by the top level; main thread */
};

/*
 * Open /dev/kvm, check the API version and every capability kvmini needs,
 * create the VM with its irqchip, PIT and memory, and the vCPUs with their
 * CPUID. Main thread. On error -errno with a one-line message; everything
 * created so far is released.
 */
int vm_create(struct vm *vm, const struct vm_config *cfg, struct aio_context *main_ctx,
	      bool restoring, struct errbuf *err);

/* Created to be restored from a snapshot (its CPUID comes from there)? */
static inline bool vm_restoring(const struct vm *vm)
{
	return vm->restoring;
}

/*
 * KVM memory slots for device memory that the guest maps like RAM (the
 * shared memory BAR of ivshmem). Slots 0..GUEST_MEM_MAX_REGIONS-1 are RAM's;
 * devices get VM_DEV_SLOT_FIRST onwards, at most VM_DEV_SLOTS of them.
 * vm_mem_slot_alloc: main thread (realize); a slot number or -ENOSPC.
 * vm_mem_slot_free: main thread (exit); the slot must be unmapped.
 * vm_mem_slot_map: put @size bytes at host @host at guest @gpa in @slot
 * (@size 0: remove the slot's memory). Any thread, vCPUs may run (a PCI
 * BAR map hook calls it on the vCPU that moved the BAR). 0 or -errno.
 */
#define VM_DEV_SLOT_FIRST GUEST_MEM_MAX_REGIONS
#define VM_DEV_SLOTS	  32
int vm_mem_slot_alloc(struct vm *vm);
void vm_mem_slot_free(struct vm *vm, int slot);
int vm_mem_slot_map(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *host);

/*
 * Make snapshots carry @size bytes of device memory at @host outside guest
 * RAM (an ivshmem master's shared memory), in section "mem.@name": saved
 * from a copy, and on restore checked (size, CRC) before it is written
 * back over @host. A restore needs the same registrations (same command
 * line). Main thread at realize; @name at most 15 characters. -ENOSPC
 * (VM_MAX_SNAP_MEM), -EFBIG beyond VM_SNAP_MEM_MAX_SIZE, with @err.
 */
int vm_add_snapshot_mem(struct vm *vm, const char *name, void *host, uint64_t size,
			struct errbuf *err);

/* Realize a device on the VM. Main thread, before vm_start. */
int vm_add_device(struct vm *vm, const struct device_ops *ops, const char *opts,
		  struct errbuf *err);

/*
 * The kernel and initrd files, mapped read-only once per run (a reboot
 * loads them again from here). Main thread.
 */
struct boot_files {
	void *kernel;
	size_t kernel_len;
	void *initrd;
	size_t initrd_len;
};
int boot_files_open(struct boot_files *bf, const struct vm_config *cfg, struct errbuf *err);
void boot_files_close(struct boot_files *bf);

/*
 * Load the kernel (and initrd) and set the boot vCPU's registers. The
 * format is detected from the file, first match wins: an ELF with a PVH
 * note: PVH (vmm/pvh.h); a multiboot header with a good checksum in the
 * first 8 KiB: multiboot v1 (vmm/multiboot.h); 0xaa55 at 0x1fe and "HdrS"
 * at 0x202: bzImage (vmm/bzimage.h). PVH and bzImage get vm->rsdp
 * (multiboot guests find the RSDP by scanning). A file that is none of
 * these gets the refusal of the format it nearly is (a multiboot magic with
 * a bad checksum, an ELF without a PVH note), else -ENOEXEC naming
 * KVMINI_KERNEL_FORMATS (vmm/config.h). Errors name the file.
 * Main thread.
 */
int vm_load_kernel(struct vm *vm, const struct boot_files *bf, struct errbuf *err);

/*
 * Interrupts and DMA of kvmini's own devices, through the platform this VM
 * has: KVM's irqchip, or with --iommu the userspace IOAPIC and the VT-d
 * unit's remapping. Any thread.
 *  - vm_irq_line: drive IOAPIC input @irq (0-23) to @level.
 *  - vm_msi_translate: remap the MSI (*@addr, *@data) of requester @sid
 *    (bus << 8 | devfn, or VM_MSI_NO_SID for the IOAPIC) in place; 0, or
 *    -errno when remapping blocks it (fault recorded by the IOMMU).
 *  - vm_msi_send: translate, then deliver (KVM_SIGNAL_MSI); vm_msi_send_raw
 *    delivers an already final message. 0 or -errno.
 *  - vm_dma: copy @len bytes between @buf and bus address @addr of
 *    requester @sid (@write: into the guest); -EFAULT for an address that
 *    is not RAM or a remapping fault.
 */
#define VM_MSI_NO_SID (-1)
int vm_irq_line(struct vm *vm, unsigned irq, bool level);
int vm_msi_translate(struct vm *vm, uint64_t *addr, uint32_t *data, int sid);
int vm_msi_send(struct vm *vm, uint64_t addr, uint32_t data, int sid);
int vm_msi_send_raw(struct vm *vm, uint64_t addr, uint32_t data);
int vm_dma(struct vm *vm, uint16_t sid, uint64_t addr, void *buf, uint64_t len, bool write);

/* Start one thread per vCPU. Main thread. */
int vm_start(struct vm *vm, struct errbuf *err);

/*
 * Record why the VM ends (first caller wins) and wake the main thread.
 * Any thread, including vCPU threads and signal-free contexts.
 */
void vm_request_exit(struct vm *vm, enum vm_exit_kind kind, int status);

/* Has an exit been requested? Any thread. */
bool vm_exit_requested(struct vm *vm);

/*
 * Make every vCPU thread leave KVM_RUN and its loop, then join them.
 * Main thread.
 */
void vm_stop(struct vm *vm);

/*
 * Pause every device (it takes no new work and holds what is in flight,
 * see device.h), then stop every vCPU at an instruction boundary (pending
 * port/MMIO accesses completed) and wait until all are parked: the VM's
 * whole state can then be read or written. Then the devices' drain ops
 * wait (bounded) for outside backends to finish what the guest gave them,
 * so a paused VM's disks are quiet. A VM not started yet (one being
 * restored) only has its devices paused. vm_resume resumes the devices,
 * then lets the vCPUs run. Main thread; both idempotent.
 */
void vm_pause(struct vm *vm);
void vm_resume(struct vm *vm);

/* Is the VM paused (or never started)? Main thread. */
bool vm_is_paused(struct vm *vm);

/*
 * Resume a paused VM (QMP cont): every disk's io-status back to "ok",
 * devices resumed (requests held by werror/rerror=stop are retried), run
 * state back to running. Main thread.
 */
int vm_cont(struct vm *vm, struct errbuf *err);

/*
 * A disk's host I/O failed with errno @error on a read (@is_read) or
 * write/flush, and its error policy chose @action: raise BLOCK_IO_ERROR
 * (vm->events), and for DISK_ACTION_STOP set the disk's io-status ("nospace" for
 * ENOSPC, else "failed") and, if the VM is running, pause it in run state
 * io-error (one line on stderr, STOP event). Main thread: a device
 * reports from a bottom half on the main context.
 */
/*
 * Block devices list their drives for query-block while they exist:
 * vm_block_add (-ENOSPC when VM_MAX_DEVICES are listed), vm_block_remove
 * (harmless if @b is not listed). Main thread.
 */
int vm_block_add(struct vm *vm, struct vm_block *b);
void vm_block_remove(struct vm *vm, struct vm_block *b);

void vm_block_io_error(struct vm *vm, struct vm_block *b, bool is_read,
		       enum disk_error_action action, int error);

/* query-block's return value, a JSON array, into @buf. Main thread. */
void vm_query_block_json(struct vm *vm, char *buf, size_t size);

/* Free everything (devices' exit ops first). Main thread, after vm_stop. */
void vm_destroy(struct vm *vm);

#endif
