// SPDX-License-Identifier: MIT
/* VM lifecycle: KVM checks, memory, irqchip, PIT, vCPUs, devices, stop. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/bzimage.h"
#include "vmm/layout.h"
#include "vmm/cpuid.h"
#include "vmm/hyperv.h"
#include "vmm/irqchip.h"
#include "vmm/multiboot.h"
#include "vmm/pvh.h"
#include "vmm/vm.h"

/* Below the LAPIC, inside the PCI hole: the TSS and identity-map pages
 * that VMX-based KVM needs for real-mode emulation. */
#define KVM_TSS_ADDR	   0xfffbd000ULL
#define KVM_IDENT_MAP_ADDR 0xfffbc000ULL

struct kvm_cap_need {
	long cap;
	const char *name;
};

static const struct kvm_cap_need kvm_caps_needed[] = {
    {KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP"},
    {KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY"},
    {KVM_CAP_PIT2, "KVM_CAP_PIT2"},
    {KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID"},
    {KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT"},
    {KVM_CAP_IRQ_ROUTING, "KVM_CAP_IRQ_ROUTING"},
    {KVM_CAP_IRQFD, "KVM_CAP_IRQFD"},
    {KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD"},
};

/* No permission on /dev/kvm: name the group that may open it. */
static int vm_kvm_permission_error(struct errbuf *err, int e)
{
	struct stat st;
	struct group *g = stat("/dev/kvm", &st) == 0 ? getgrgid(st.st_gid) : NULL;
	const char *grp = g && st.st_gid != 0 ? g->gr_name : "kvm";

	return err_set(err, e,
		       "no permission to open /dev/kvm: add your user to the '%s' group "
		       "(sudo usermod -aG %s $USER, then log in again)",
		       grp, grp);
}

static int vm_open_kvm(struct vm *vm, struct errbuf *err)
{
	int v;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		int e = errno;

		if (e == ENOENT)
			return err_set(
			    err, e,
			    "/dev/kvm does not exist: KVM is not available here. This "
			    "host may be a VM without nested virtualization, or KVM is "
			    "not loaded (modprobe kvm_intel or kvm_amd); scripts/kvmbox "
			    "runs kvmini in a test VM that has /dev/kvm (README: Without "
			    "/dev/kvm)");
		if (e == EACCES || e == EPERM)
			return vm_kvm_permission_error(err, e);
		return err_set(err, e, "cannot open /dev/kvm: %s", strerror(e));
	}
	v = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (v != KVM_API_VERSION)
		return err_set(err, ENOTSUP, "/dev/kvm speaks API version %d, kvmini needs %d", v,
			       KVM_API_VERSION);
	for (size_t i = 0; i < ARRAY_SIZE(kvm_caps_needed); i++)
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, kvm_caps_needed[i].cap) <= 0)
			return err_set(err, ENOTSUP, "this host's KVM lacks %s, which kvmini needs",
				       kvm_caps_needed[i].name);
	return 0;
}

static int vm_check_cpus(struct vm *vm, unsigned ncpus, struct errbuf *err)
{
	int max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);

	if (max <= 0)
		max = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
	if (max <= 0)
		max = 4; /* KVM's documented minimum when the caps are absent */
	if (ncpus > (unsigned)max)
		return err_set(err, EINVAL, "--cpus %u: this host's KVM allows at most %d", ncpus,
			       max);
	return 0;
}

static int vm_get_supported_cpuid(struct vm *vm, struct errbuf *err)
{
	for (int n = 128; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return err_set(err, ENOMEM, "out of memory");
		c->nent = (uint32_t)n;
		if (ioctl(vm->kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			vm->cpuid = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return err_set(err, errno, "KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
	}
	return err_set(err, E2BIG, "KVM_GET_SUPPORTED_CPUID: too many entries");
}

static int vm_setup_memory(struct vm *vm, struct errbuf *err)
{
	/* A vhost-user backend maps guest RAM itself: then it must be a memfd. */
	int ret = vm->cfg->nvhost_user_blk ? guest_mem_init_shared(&vm->mem, vm->cfg->mem_size)
					   : guest_mem_init(&vm->mem, vm->cfg->mem_size);

	if (ret < 0)
		return err_set(err, -ret, "cannot allocate %llu bytes of guest memory: %s",
			       (unsigned long long)vm->cfg->mem_size, strerror(-ret));
	for (int i = 0; i < vm->mem.nregions; i++) {
		struct kvm_userspace_memory_region r = {
		    .slot = (uint32_t)i,
		    .guest_phys_addr = vm->mem.regions[i].gpa,
		    .memory_size = vm->mem.regions[i].size,
		    .userspace_addr = (uint64_t)(uintptr_t)vm->mem.regions[i].host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return err_set(err, errno, "KVM_SET_USER_MEMORY_REGION: %s",
				       strerror(errno));
	}
	return 0;
}

/* What a vCPU's reason to end the VM means for it. Any vCPU thread. */
static void vm_vcpu_end(void *opaque, enum vcpu_end why)
{
	struct vm *vm = opaque;

	switch (why) {
	case VCPU_END_RESET:
		vm_request_exit(vm, VM_EXIT_RESET, VM_RESET_GUEST);
		break;
	case VCPU_END_SHUTDOWN:
		vm_request_exit(vm, VM_EXIT_STATUS, 0);
		break;
	case VCPU_END_CRASH:
		vm_request_exit(vm, VM_EXIT_STATUS, EXIT_CRASH);
		break;
	case VCPU_END_HOST_ERROR:
		vm_request_exit(vm, VM_EXIT_STATUS, EXIT_HOST_ERROR);
		break;
	}
}

/* --hyperv: a vCPU's KVM_EXIT_HYPERV. Its own thread. */
static void vm_hyperv_exit(void *opaque, int vcpu_id, struct kvm_hyperv_exit *e)
{
	struct vm *vm = opaque;

	hyperv_handle_exit(vm->hyperv, vcpu_id, e);
}

/* --hyperv: the SynIC state, and the Hyper-V CPUID unless restoring (which
 * snapshot_restore then refuses: snapshots carry no Hyper-V state). Before
 * the vCPUs exist. */
static int vm_setup_hyperv(struct vm *vm, struct errbuf *err)
{
	int ret;

	if (!vm_restoring(vm)) {
		ret = hyperv_cpuid_merge(&vm->cpuid, vm->kvm_fd, err);
		if (ret < 0)
			return ret;
	}
	vm->hyperv = calloc(1, sizeof(*vm->hyperv));
	if (!vm->hyperv || hyperv_init(vm->hyperv, &vm->mem, (int)vm->cfg->ncpus) < 0) {
		free(vm->hyperv);
		vm->hyperv = NULL;
		return err_set(err, ENOMEM, "--hyperv: out of memory");
	}
	vm->cpus.hyperv_exit = vm_hyperv_exit;
	return 0;
}

/* --iommu: a vCPU's KVM_EXIT_IOAPIC_EOI. Its own thread. */
static void vm_ioapic_eoi(void *opaque, uint8_t vector)
{
	struct vm *vm = opaque;

	if (vm->ioapic)
		vm->ioapic_eoi(vm->ioapic, vector);
}

int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
	struct kvm_irq_level l = {.irq = irq, .level = level};

	if (vm->cfg->iommu) {
		if (vm->ioapic)
			vm->ioapic_set_irq(vm->ioapic, irq, level);
		return 0;
	}
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

int vm_msi_translate(struct vm *vm, uint64_t *addr, uint32_t *data, int sid)
{
	return vm->iommu ? vm->iommu_msi(vm->iommu, sid, addr, data) : 0;
}

int vm_msi_send_raw(struct vm *vm, uint64_t addr, uint32_t data)
{
	struct kvm_msi msi = {
	    .address_lo = (uint32_t)addr, .address_hi = (uint32_t)(addr >> 32), .data = data};

	/* 0: the guest's APIC setup dropped it, which is its business. */
	return ioctl(vm->vm_fd, KVM_SIGNAL_MSI, &msi) < 0 ? -errno : 0;
}

int vm_msi_send(struct vm *vm, uint64_t addr, uint32_t data, int sid)
{
	int ret = vm_msi_translate(vm, &addr, &data, sid);

	return ret < 0 ? ret : vm_msi_send_raw(vm, addr, data);
}

int vm_dma(struct vm *vm, uint16_t sid, uint64_t addr, void *buf, uint64_t len, bool write)
{
	if (vm->iommu)
		return vm->iommu_dma(vm->iommu, sid, addr, buf, len, write);
	return write ? guest_mem_write(&vm->mem, addr, buf, len)
		     : guest_mem_read(&vm->mem, addr, buf, len);
}

static void vm_exit_bh(void *opaque)
{
	/* Nothing to do: scheduling this BH woke the main loop, which checks
	 * vm_exit_requested() after every aio_poll. */
	(void)opaque;
}

int vm_create(struct vm *vm, const struct vm_config *cfg, struct aio_context *main_ctx,
	      bool restoring, struct errbuf *err)
{
	int ret;

	memset(vm, 0, sizeof(*vm));
	vm->cfg = cfg;
	vm->restoring = restoring;
	vm->ram_src_fd = -1;
	vm->kvm_fd = vm->vm_fd = -1;
	vm->main_ctx = main_ctx;
	pthread_mutex_init(&vm->exit_lock, NULL);
	vcpu_group_init(&vm->cpus);
	pthread_mutex_init(&vm->slot_lock, NULL);
	bus_init(&vm->pio, "port I/O");
	bus_init(&vm->mmio, "MMIO");

	ret = vm_open_kvm(vm, err);
	if (ret < 0)
		goto fail;
	ret = vm_check_cpus(vm, cfg->ncpus, err);
	if (ret < 0)
		goto fail;
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		ret = err_set(err, errno, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	/* Memory slots first: the first slot change after the irqchip and PIT
	 * exist waits for KVM's pending SRCU grace periods (5-12 ms here); before
	 * them it takes microseconds. */
	ret = vm_setup_memory(vm, err);
	if (ret < 0)
		goto fail;
	/* Only VMX needs these; elsewhere they may be absent, which is fine. */
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)KVM_TSS_ADDR) < 0) {
		ret = err_set(err, errno, "KVM_SET_TSS_ADDR: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_IDENTITY_MAP_ADDR) > 0) {
		uint64_t a = KVM_IDENT_MAP_ADDR;

		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &a) < 0) {
			ret = err_set(err, errno, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(errno));
			goto fail;
		}
	}
	ret = irqchip_create(vm->vm_fd, cfg->iommu, err);
	if (ret < 0)
		goto fail;
	if (cfg->iommu)
		vm->cpus.ioapic_eoi = vm_ioapic_eoi;
	/* A restored VM gets the CPUID saved in its snapshot (and skips
	 * KVM_GET_SUPPORTED_CPUID, which takes ~2 ms here). */
	if (!vm_restoring(vm)) {
		ret = vm_get_supported_cpuid(vm, err);
		if (ret < 0)
			goto fail;
		cpuid_add_emulated(vm->cpuid, vm->kvm_fd);
		ret = cpuid_apply_features(vm->cpuid, cfg, err);
		if (ret < 0)
			goto fail;
	}
	vm->exit_bh = aio_bh_new(main_ctx, vm_exit_bh, vm);
	if (!vm->exit_bh) {
		ret = err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	vm->cpus.kvm_fd = vm->kvm_fd;
	vm->cpus.vm_fd = vm->vm_fd;
	vm->cpus.pio = &vm->pio;
	vm->cpus.mmio = &vm->mmio;
	vm->cpus.mem = &vm->mem;
	vm->cpus.end = vm_vcpu_end;
	vm->cpus.opaque = vm;
	if (cfg->hyperv) {
		ret = vm_setup_hyperv(vm, err);
		if (ret < 0)
			goto fail;
	}
	ret = vcpu_group_create(&vm->cpus, (int)cfg->ncpus, vm->cpuid, err);
	if (ret < 0)
		goto fail;
	for (int i = 0; cfg->hyperv && i < vm->cpus.n; i++) {
		ret = hyperv_enable_vcpu(vm->cpus.vcpus[i].fd, i, err);
		if (ret < 0)
			goto fail;
	}
	return 0;
fail:
	vm_destroy(vm);
	return ret;
}

int vm_add_snapshot_mem(struct vm *vm, const char *name, void *host, uint64_t size,
			struct errbuf *err)
{
	struct vm_snap_mem *sm;

	if (vm->nsnap_mem == VM_MAX_SNAP_MEM)
		return err_set(err, ENOSPC, "%s: at most %d device memories can be snapshotted",
			       name, VM_MAX_SNAP_MEM);
	if (size > VM_SNAP_MEM_MAX_SIZE)
		return err_set(err, EFBIG,
			       "%s: %llu bytes of memory are too many to snapshot (at most %lluM)",
			       name, (unsigned long long)size,
			       (unsigned long long)(VM_SNAP_MEM_MAX_SIZE >> 20));
	sm = &vm->snap_mem[vm->nsnap_mem++];
	snprintf(sm->name, sizeof(sm->name), "%s", name);
	sm->host = host;
	sm->size = size;
	return 0;
}

int vm_mem_slot_alloc(struct vm *vm)
{
	int slot = -ENOSPC;

	pthread_mutex_lock(&vm->slot_lock);
	for (int i = 0; i < VM_DEV_SLOTS; i++)
		if (!(vm->slots_used & (1u << i))) {
			vm->slots_used |= 1u << i;
			slot = VM_DEV_SLOT_FIRST + i;
			break;
		}
	pthread_mutex_unlock(&vm->slot_lock);
	return slot;
}

void vm_mem_slot_free(struct vm *vm, int slot)
{
	pthread_mutex_lock(&vm->slot_lock);
	vm->slots_used &= ~(1u << (slot - VM_DEV_SLOT_FIRST));
	pthread_mutex_unlock(&vm->slot_lock);
}

int vm_mem_slot_map(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *host)
{
	struct kvm_userspace_memory_region r = {
	    .slot = (uint32_t)slot,
	    .guest_phys_addr = size ? gpa : 0,
	    .memory_size = size,
	    .userspace_addr = size ? (uint64_t)(uintptr_t)host : 0,
	};

	return ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0 ? -errno : 0;
}

int vm_add_device(struct vm *vm, const struct device_ops *ops, const char *opts, struct errbuf *err)
{
	struct device *d;
	int ret;

	if (vm->ndevices == VM_MAX_DEVICES)
		return err_set(err, ENOSPC, "%s: too many devices (at most %d)", ops->name,
			       VM_MAX_DEVICES);
	d = &vm->devices[vm->ndevices];
	ret = ops->realize(vm, opts, &d->state, err);
	if (ret < 0)
		return ret;
	d->ops = ops;
	vm->ndevices++;
	return 0;
}

static int vm_read_file(const char *what, const char *path, void **data, size_t *len,
			struct errbuf *err)
{
	struct stat st;
	void *p = NULL;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_set(err, errno, "cannot open %s '%s': %s", what, path, strerror(errno));
	if (fstat(fd, &st) < 0) {
		ret = err_set(err, errno, "cannot stat %s '%s': %s", what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = err_set(err, EINVAL, "%s '%s' is not a regular file", what, path);
		goto out;
	}
	if (st.st_size == 0) {
		ret = err_set(err, EINVAL, "%s '%s' is empty", what, path);
		goto out;
	}
	/* A private read-only mapping: the loader copies out of it. */
	p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED) {
		ret = err_set(err, errno, "cannot read %s '%s': %s", what, path, strerror(errno));
		goto out;
	}
	*data = p;
	*len = (size_t)st.st_size;
out:
	close(fd);
	return ret;
}

int boot_files_open(struct boot_files *bf, const struct vm_config *cfg, struct errbuf *err)
{
	int ret;

	memset(bf, 0, sizeof(*bf));
	ret = vm_read_file("kernel", cfg->kernel, &bf->kernel, &bf->kernel_len, err);
	if (ret < 0)
		return ret;
	if (cfg->initrd) {
		ret = vm_read_file("initrd", cfg->initrd, &bf->initrd, &bf->initrd_len, err);
		if (ret < 0) {
			boot_files_close(bf);
			return ret;
		}
	}
	return 0;
}

void boot_files_close(struct boot_files *bf)
{
	if (bf->initrd)
		munmap(bf->initrd, bf->initrd_len);
	if (bf->kernel)
		munmap(bf->kernel, bf->kernel_len);
	memset(bf, 0, sizeof(*bf));
}

/* Prefix the loader's message in @err with the kernel file's name. */
static int vm_kernel_error(const struct vm_config *cfg, int ret, struct errbuf *err)
{
	struct errbuf e = *err;

	if (ret == -ENOEXEC) /* the first thing to know: what would do */
		return err_set(err, -ret, "kernel '%s': %s (kvmini boots %s)", cfg->kernel, e.msg,
			       KVMINI_KERNEL_FORMATS);
	return err_set(err, -ret, "kernel '%s': %s", cfg->kernel, e.msg);
}

static int vm_load_pvh(struct vm *vm, const struct boot_files *bf, struct errbuf *err)
{
	const struct vm_config *cfg = vm->cfg;
	struct pvh_image img;
	uint64_t start_info;
	int ret;

	ret = pvh_load_elf(&vm->mem, bf->kernel, bf->kernel_len, &img, err);
	if (ret < 0)
		return vm_kernel_error(cfg, ret, err);
	ret = pvh_setup_start_info(&vm->mem, cfg->cmdline ? cfg->cmdline : "", bf->initrd,
				   bf->initrd_len, img.load_high, vm->rsdp, &start_info, err);
	if (ret < 0)
		return ret;
	return vcpu_set_boot_state(&vm->cpus.vcpus[0], img.entry, (uint32_t)start_info, 0, err);
}

static int vm_load_bzimage(struct vm *vm, const struct boot_files *bf, struct errbuf *err)
{
	const struct vm_config *cfg = vm->cfg;
	struct bzimage_args args = {
	    .cmdline = cfg->cmdline,
	    .initrd = bf->initrd,
	    .initrd_len = bf->initrd_len,
	    .rsdp = vm->rsdp,
	};
	struct bzimage_boot boot;
	int ret;

	ret = bzimage_load(&vm->mem, bf->kernel, bf->kernel_len, &args, &boot, err);
	if (ret == -ENOEXEC)
		return vm_kernel_error(cfg, ret, err);
	if (ret < 0)
		return ret;
	return vcpu_set_boot_state64(&vm->cpus.vcpus[0], boot.entry, boot.boot_params, boot.cr3,
				     err);
}

static int vm_load_multiboot(struct vm *vm, const struct boot_files *bf, struct errbuf *err)
{
	const struct vm_config *cfg = vm->cfg;
	struct multiboot_args args = {
	    .kernel_path = cfg->kernel,
	    .cmdline = cfg->cmdline,
	    .initrd_path = cfg->initrd,
	    .initrd = bf->initrd,
	    .initrd_len = bf->initrd_len,
	};
	struct multiboot_boot boot;
	int ret;

	ret = multiboot_load(&vm->mem, bf->kernel, bf->kernel_len, &args, &boot, err);
	if (ret == -ENOEXEC)
		return vm_kernel_error(cfg, ret, err);
	if (ret < 0)
		return ret;
	return vcpu_set_boot_state(&vm->cpus.vcpus[0], boot.entry, boot.info, MB_BOOT_MAGIC, err);
}

int vm_load_kernel(struct vm *vm, const struct boot_files *bf, struct errbuf *err)
{
	const uint8_t *k = bf->kernel;
	bool elf = bf->kernel_len >= SELFMAG && !memcmp(k, ELFMAG, SELFMAG);
	enum mb_probe mb = multiboot_probe(bf->kernel, bf->kernel_len);

	/* A PVH note wins over a multiboot header (a vmlinux may carry both). */
	if (elf && pvh_probe(bf->kernel, bf->kernel_len))
		return vm_load_pvh(vm, bf, err);
	if (mb == MB_PROBE_OK)
		return vm_load_multiboot(vm, bf, err);
	if (bzimage_probe(bf->kernel, bf->kernel_len))
		return vm_load_bzimage(vm, bf, err);
	/* Whichever format the file nearly is names what is wrong with it. */
	if (mb == MB_PROBE_BAD_CHECKSUM)
		return vm_load_multiboot(vm, bf, err);
	if (elf)
		return vm_load_pvh(vm, bf, err);
	return err_set(
	    err, ENOEXEC,
	    "kernel '%s': not a PVH ELF, a multiboot image or a bzImage (kvmini boots %s)",
	    vm->cfg->kernel, KVMINI_KERNEL_FORMATS);
}

int vm_start(struct vm *vm, struct errbuf *err)
{
	vm->started = true;
	return vcpu_group_start(&vm->cpus, err);
}

void vm_pause(struct vm *vm)
{
	/*
	 * Devices first: they stop taking requests at once, so what the guest
	 * has in flight is still in flight when the vCPUs stop (and a snapshot
	 * keeps it) instead of being drained for as long as the vCPUs take to
	 * park. The guest may still touch them until it is parked.
	 */
	bool newly = !vm->devices_paused;

	if (newly) {
		vm->devices_paused = true;
		for (int i = 0; i < vm->ndevices; i++)
			if (vm->devices[i].ops->pause)
				vm->devices[i].ops->pause(vm->devices[i].state);
	}
	if (vm->started)
		vcpu_group_pause(&vm->cpus);
	if (!newly)
		return; /* drained when the devices were paused */
	/* Parked: the rings an outside backend serves grow no more. */
	for (int i = 0; i < vm->ndevices; i++)
		if (vm->devices[i].ops->drain)
			vm->devices[i].ops->drain(vm->devices[i].state);
}

void vm_resume(struct vm *vm)
{
	if (vm->devices_paused) {
		for (int i = vm->ndevices - 1; i >= 0; i--)
			if (vm->devices[i].ops->resume)
				vm->devices[i].ops->resume(vm->devices[i].state);
		vm->devices_paused = false;
	}
	vcpu_group_resume(&vm->cpus);
}

int vm_cont(struct vm *vm, struct errbuf *err)
{
	(void)err;
	/* As QEMU's cont: the error is forgotten; a retry that fails again
	 * sets it again. */
	for (int i = 0; i < vm->nblocks; i++)
		vm->blocks[i]->io_status = "ok";
	vm_resume(vm);
	vm->run_state = VM_RUN_RUNNING;
	return 0;
}

int vm_block_add(struct vm *vm, struct vm_block *b)
{
	if (vm->nblocks == (int)ARRAY_SIZE(vm->blocks))
		return -ENOSPC;
	vm->blocks[vm->nblocks++] = b;
	return 0;
}

void vm_block_remove(struct vm *vm, struct vm_block *b)
{
	for (int i = 0; i < vm->nblocks; i++) {
		if (vm->blocks[i] != b)
			continue;
		memmove(&vm->blocks[i], &vm->blocks[i + 1],
			(size_t)(vm->nblocks - i - 1) * sizeof(vm->blocks[0]));
		vm->nblocks--;
		return;
	}
}

static const char *vm_block_action_name(enum disk_error_action a)
{
	switch (a) {
	case DISK_ACTION_IGNORE:
		return "ignore";
	case DISK_ACTION_STOP:
		return "stop";
	case DISK_ACTION_REPORT:
		break;
	}
	return "report";
}

void vm_emit_event(struct vm *vm, const char *name, const char *data_json)
{
	if (vm->events.event)
		vm->events.event(vm->events.opaque, name, data_json);
}

void vm_block_io_error(struct vm *vm, struct vm_block *b, bool is_read,
		       enum disk_error_action action, int error)
{
	char data[512];

	/* QEMU's BLOCK_IO_ERROR (qapi/block-core.json); kvmini has no block
	 * node names, and strerror texts need no JSON escaping. */
	snprintf(data, sizeof(data),
		 "{\"device\": \"%s\", \"operation\": \"%s\", \"action\": \"%s\", "
		 "\"nospace\": %s, \"reason\": \"%s\"}",
		 b->id, is_read ? "read" : "write", vm_block_action_name(action),
		 error == ENOSPC ? "true" : "false", strerror(error));
	vm_emit_event(vm, "BLOCK_IO_ERROR", data);
	if (action != DISK_ACTION_STOP)
		return;
	b->io_status = error == ENOSPC ? "nospace" : "failed";
	if (vm->run_state != VM_RUN_RUNNING)
		return; /* already stopped: the request waits for cont */
	fprintf(stderr, "kvmini: %s: %s error (%s): VM paused, QMP 'cont' retries\n", b->id,
		is_read ? "read" : "write", strerror(error));
	vm_pause(vm);
	vm->run_state = VM_RUN_IO_ERROR;
	vm_emit_event(vm, "STOP", NULL);
}

void vm_query_block_json(struct vm *vm, char *buf, size_t size)
{
	size_t o = 0;

	o += (size_t)snprintf(buf + o, size - o, "[");
	for (int i = 0; i < vm->nblocks && o < size; i++) {
		const struct vm_block *b = vm->blocks[i];
		char path[1024];
		size_t p = 0;

		/* Paths are the user's; escape what JSON needs. */
		for (const char *c = b->path; *c && p < sizeof(path) - 8; c++) {
			if (*c == '"' || *c == '\\')
				path[p++] = '\\';
			if ((unsigned char)*c < 0x20)
				continue;
			path[p++] = *c;
		}
		path[p] = '\0';
		o += (size_t)snprintf(
		    buf + o, size - o,
		    "%s{\"device\": \"%s\", \"locked\": false, \"removable\": false, "
		    "\"io-status\": \"%s\", \"type\": \"unknown\", \"inserted\": "
		    "{\"file\": \"%s\", \"ro\": %s, \"drv\": \"raw\", "
		    "\"encrypted\": false}}",
		    i ? ", " : "", b->id, b->io_status, path, b->readonly ? "true" : "false");
	}
	if (o < size)
		snprintf(buf + o, size - o, "]");
}

bool vm_is_paused(struct vm *vm)
{
	return !vm->started || atomic_load(&vm->cpus.pause_req);
}

void vm_request_exit(struct vm *vm, enum vm_exit_kind kind, int status)
{
	pthread_mutex_lock(&vm->exit_lock);
	if (vm->exit_kind == VM_EXIT_NONE) {
		vm->exit_kind = kind;
		vm->exit_status = status;
	}
	pthread_mutex_unlock(&vm->exit_lock);
	aio_bh_schedule(vm->exit_bh);
}

bool vm_exit_requested(struct vm *vm)
{
	bool r;

	pthread_mutex_lock(&vm->exit_lock);
	r = vm->exit_kind != VM_EXIT_NONE;
	pthread_mutex_unlock(&vm->exit_lock);
	return r;
}

void vm_stop(struct vm *vm)
{
	vcpu_group_stop(&vm->cpus);
}

void vm_destroy(struct vm *vm)
{
	for (int i = vm->ndevices - 1; i >= 0; i--)
		if (vm->devices[i].ops->exit)
			vm->devices[i].ops->exit(vm->devices[i].state);
	vm->ndevices = 0;
	vcpu_group_destroy(&vm->cpus);
	if (vm->hyperv) {
		hyperv_destroy(vm->hyperv);
		free(vm->hyperv);
		vm->hyperv = NULL;
	}
	if (vm->exit_bh)
		aio_bh_delete(vm->exit_bh);
	vm->exit_bh = NULL;
	free(vm->cpuid);
	vm->cpuid = NULL;
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	guest_mem_free(&vm->mem);
	if (vm->ram_src_fd >= 0)
		close(vm->ram_src_fd);
	vm->ram_src_fd = -1;
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	vm->vm_fd = vm->kvm_fd = -1;
	bus_destroy(&vm->mmio);
	bus_destroy(&vm->pio);
	pthread_mutex_destroy(&vm->exit_lock);
	pthread_mutex_destroy(&vm->slot_lock);
}
