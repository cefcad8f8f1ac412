// SPDX-License-Identifier: MIT
/* The virtio device test harness: see virtio_harness.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/virtio_harness.h"

/* ---- fake KVM ---- */

static int fake_routing(void *o, const struct kvm_irq_routing *t)
{
	struct fake_kvm *k = o;

	pthread_mutex_lock(&k->lock);
	memcpy(k->routes, t->entries, t->nr * sizeof(t->entries[0]));
	k->nroutes = t->nr;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int fake_irqfd(void *o, int fd, uint32_t gsi, bool assign)
{
	struct fake_kvm *k = o;

	pthread_mutex_lock(&k->lock);
	k->irqfd_of[gsi] = assign ? fd : -1;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static int fake_ioeventfd(void *o, uint64_t addr, uint32_t len, int fd, bool pio, bool assign)
{
	struct fake_kvm *k = o;

	assert_false(pio);
	if (assign) {
		assert_true(k->nioevfd < MAX_IOEVFD);
		k->ioevfd[k->nioevfd].addr = addr;
		k->ioevfd[k->nioevfd].len = len;
		k->ioevfd[k->nioevfd].fd = fd;
		k->nioevfd++;
		return 0;
	}
	for (int i = 0; i < k->nioevfd; i++) {
		if (k->ioevfd[i].addr == addr && k->ioevfd[i].fd == fd) {
			k->ioevfd[i] = k->ioevfd[--k->nioevfd];
			return 0;
		}
	}
	fail_msg("deassigning an ioeventfd that is not there");
	return -ENOENT;
}

static const struct kvm_irq_ops fake_ops = {
    .set_gsi_routing = fake_routing,
    .irqfd = fake_irqfd,
    .ioeventfd = fake_ioeventfd,
};

unsigned fake_deliver(struct fake_kvm *k, uint32_t data)
{
	unsigned n = 0;

	pthread_mutex_lock(&k->lock);
	for (uint32_t gsi = 0; gsi < MAX_GSI; gsi++) {
		uint64_t c;

		if (k->irqfd_of[gsi] < 0)
			continue;
		for (uint32_t i = 0; i < k->nroutes; i++)
			if (k->routes[i].gsi == gsi && k->routes[i].type == KVM_IRQ_ROUTING_MSI &&
			    k->routes[i].u.msi.data == data &&
			    read(k->irqfd_of[gsi], &c, sizeof(c)) == sizeof(c))
				n++;
	}
	pthread_mutex_unlock(&k->lock);
	return n;
}

/* ---- what devices report to the VM ---- */

/* The harness has no irqchip: interrupt lines (the serial port's) go nowhere. */
int vm_irq_line(struct vm *vm, unsigned irq, bool level)
{
	(void)vm, (void)irq, (void)level;
	return 0;
}

struct io_error_log io_errors;

void vm_block_io_error(struct vm *vm, struct vm_block *b, bool is_read,
		       enum disk_error_action action, int error)
{
	(void)vm;
	assert_true(io_errors.n < MAX_IO_ERRORS);
	snprintf(io_errors.e[io_errors.n].dev, sizeof(io_errors.e[0].dev), "%s", b->id);
	io_errors.e[io_errors.n].is_read = is_read;
	io_errors.e[io_errors.n].action = action;
	io_errors.e[io_errors.n].error = error;
	io_errors.n++;
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
	for (int i = 0; i < vm->nblocks; i++)
		if (vm->blocks[i] == b) {
			vm->blocks[i] = vm->blocks[--vm->nblocks];
			return;
		}
}

/* ---- the VM around the devices ---- */

struct env *env_new(void)
{
	struct env *e = test_calloc(1, sizeof(*e));
	struct errbuf err;

	pthread_mutex_init(&e->k.lock, NULL);
	for (int i = 0; i < MAX_GSI; i++)
		e->k.irqfd_of[i] = -1;
	assert_int_equal(guest_mem_init(&e->vm.mem, RAM), 0);
	assert_int_equal(bus_init(&e->vm.pio, "pio"), 0);
	assert_int_equal(bus_init(&e->vm.mmio, "mmio"), 0);
	assert_int_equal(aio_context_new(&e->main_ctx), 0);
	e->vm.main_ctx = e->main_ctx;
	e->vm.cfg = &e->cfg;
	assert_int_equal(
	    pci_host_init(&e->host, &e->vm.pio, &e->vm.mmio, 8ULL << 30, &fake_ops, &e->k, &err),
	    0);
	e->vm.pci = &e->host;
	return e;
}

void make_image(struct env *e, int i, uint64_t size)
{
	static int serial; /* fresh names: a failed test leaves its (locked) image behind */
	int fd;
	uint8_t sec[512];

	snprintf(e->path[i], sizeof(e->path[i]), "/tmp/kvmini-test-virtio-%d-%d.img", (int)getpid(),
		 serial++);
	fd = open(e->path[i], O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (uint64_t s = 0; s < size / 512; s++) {
		memset(sec, (int)(s & 0xff), sizeof(sec));
		assert_int_equal(pwrite(fd, sec, sizeof(sec), (off_t)(s * 512)), 512);
	}
	if (size % 512)
		assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

int env_add_device(struct env *e, int i, const struct device_ops *ops, const char *opts,
		   struct errbuf *err)
{
	int ret = ops->realize(&e->vm, opts, &e->state[i], err);

	if (ret == 0) {
		e->ops[i] = ops;
		e->vm.devices[e->vm.ndevices].ops = ops;
		e->vm.devices[e->vm.ndevices].state = e->state[i];
		e->vm.ndevices++;
	}
	return ret;
}

void env_remove_device(struct env *e, int i)
{
	if (e->state[i])
		e->ops[i]->exit(e->state[i]);
	e->state[i] = NULL;
}

void env_readd_device(struct env *e, int i, const char *opts)
{
	const struct device_ops *ops = e->ops[i];
	struct errbuf err;

	env_remove_device(e, i);
	e->vm.ndevices--;
	if (ops->realize(&e->vm, opts, &e->state[i], &err) < 0)
		fail_msg("re-realize: %s", err.msg);
	e->vm.devices[e->vm.ndevices].ops = ops;
	e->vm.devices[e->vm.ndevices].state = e->state[i];
	e->vm.ndevices++;
}

void env_free(struct env *e)
{
	for (int i = 0; i < 2; i++) {
		env_remove_device(e, i);
		if (e->path[i][0])
			unlink(e->path[i]);
	}
	pci_host_destroy(&e->host);
	aio_context_free(e->main_ctx);
	bus_destroy(&e->vm.mmio);
	bus_destroy(&e->vm.pio);
	guest_mem_free(&e->vm.mem);
	pthread_mutex_destroy(&e->k.lock);
	test_free(e);
}

unsigned wait_deliver(struct fake_kvm *k, uint32_t data)
{
	unsigned n = 0;

	for (int i = 0; i < 10000 && !n; i++) {
		n = fake_deliver(k, data);
		if (!n)
			nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return n;
}

bool wait_io_errors(struct env *e, int n)
{
	for (int i = 0; i < 10000; i++) {
		while (aio_poll(e->main_ctx, false))
			;
		if (io_errors.n >= n)
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

void limit_file_size(uint64_t bytes)
{
	struct rlimit r;

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &r), 0);
	r.rlim_cur = bytes ? bytes : r.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &r), 0);
}

const char *aio_opt(void **st)
{
	const char *opt = *st ? *st : "";
	struct uring u;
	int r;

	if (strstr(opt, "io_uring")) {
		r = uring_init(&u, 8);
		if (r < 0) {
			print_message("skipped: this host refuses io_uring (%s)\n", strerror(-r));
			skip();
		}
		uring_exit(&u);
	}
	return opt;
}

/* ---- the test's virtio driver ---- */

void *gp(struct drv *d, uint64_t gpa)
{
	void *p = guest_mem_ptr(&d->e->vm.mem, gpa, 1);

	assert_non_null(p);
	return p;
}

uint32_t cfg_read(struct drv *d, unsigned reg, unsigned len)
{
	uint32_t latch = 0x80000000u | d->slot << 11 | (reg & 0xfc), v = 0;

	assert_true(bus_dispatch(&d->e->vm.pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&d->e->vm.pio, 0xcfc + (reg & 3), &v, len, false));
	return v;
}

void cfg_write(struct drv *d, unsigned reg, uint32_t v, unsigned len)
{
	uint32_t latch = 0x80000000u | d->slot << 11 | (reg & 0xfc);

	assert_true(bus_dispatch(&d->e->vm.pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&d->e->vm.pio, 0xcfc + (reg & 3), &v, len, true));
}

uint64_t mmio_read(struct drv *d, uint64_t addr, unsigned len)
{
	uint64_t v = 0;

	assert_true(bus_dispatch(&d->e->vm.mmio, addr, &v, len, false));
	return v;
}

void mmio_write(struct drv *d, uint64_t addr, uint64_t v, unsigned len)
{
	assert_true(bus_dispatch(&d->e->vm.mmio, addr, &v, len, true));
}

uint64_t common(struct drv *d)
{
	return d->bar0 + pci_config_get32(d->e->vm.pci->slots[d->slot],
					  d->caps[VIRTIO_PCI_CAP_COMMON_CFG] + 8);
}

uint8_t status(struct drv *d)
{
	return (uint8_t)mmio_read(d, common(d) + VIRTIO_PCI_COMMON_STATUS, 1);
}

void set_status(struct drv *d, uint8_t s)
{
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_STATUS, s, 1);
}

void drv_probe(struct drv *d, struct env *e, unsigned slot, uint64_t mem, unsigned device_id)
{
	unsigned p;

	memset(d, 0, sizeof(*d));
	d->e = e;
	d->slot = slot;
	d->mem = mem;
	assert_int_equal(cfg_read(d, PCI_VENDOR_ID, 2), 0x1af4);
	assert_int_equal(cfg_read(d, PCI_DEVICE_ID, 2), 0x1040 + device_id);
	assert_int_equal(cfg_read(d, PCI_REVISION_ID, 1), 1);
	assert_int_equal(cfg_read(d, PCI_SUBSYSTEM_ID, 2), device_id);
	assert_int_equal(cfg_read(d, PCI_INTERRUPT_PIN, 1), 0);
	for (p = cfg_read(d, PCI_CAPABILITY_LIST, 1); p; p = cfg_read(d, p + 1, 1)) {
		unsigned id = cfg_read(d, p, 1);

		if (id == PCI_CAP_ID_MSIX) {
			d->msix = p;
		} else {
			assert_int_equal(id, PCI_CAP_ID_VNDR);
			unsigned type = cfg_read(d, p + 3, 1);

			assert_true(type >= 1 && type <= 5);
			d->caps[type] = p;
			assert_int_equal(cfg_read(d, p + 4, 1), 0); /* BAR 0 */
		}
	}
	/* The layout docs/devices.md promises (drivers should still walk). */
	assert_int_equal(cfg_read(d, PCI_CAPABILITY_LIST, 1), 0x40);
	assert_int_equal(d->caps[VIRTIO_PCI_CAP_COMMON_CFG], 0x40);
	assert_int_equal(d->caps[VIRTIO_PCI_CAP_NOTIFY_CFG], 0x50);
	assert_int_equal(d->caps[VIRTIO_PCI_CAP_ISR_CFG], 0x64);
	assert_int_equal(d->caps[VIRTIO_PCI_CAP_DEVICE_CFG], 0x74);
	assert_int_equal(d->caps[VIRTIO_PCI_CAP_PCI_CFG], 0x84);
	assert_int_equal(d->msix, 0x98);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_COMMON_CFG] + 12, 4), 0x38);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_NOTIFY_CFG] + 8, 4), 0x3000);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_ISR_CFG] + 8, 4), 0x1000);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_DEVICE_CFG] + 8, 4), 0x2000);
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_COMMON_CFG] + 2, 1), 16); /* cap_len */
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_NOTIFY_CFG] + 2, 1), 20);
	assert_int_equal(cfg_read(d, PCI_BASE_ADDRESS_0, 4), 0xc0000000 + 0x8000 * (slot - 1));
	assert_int_equal(cfg_read(d, PCI_BASE_ADDRESS_1, 4), 0xc0004000 + 0x8000 * (slot - 1));
	assert_int_equal(cfg_read(d, PCI_COMMAND, 2), 0); /* decoding off until the driver */
	assert_int_equal(cfg_read(d, d->caps[VIRTIO_PCI_CAP_NOTIFY_CFG] + 16, 4),
			 VIRTIO_PCI_NOTIFY_MULT);
	d->nvec = (cfg_read(d, d->msix + 2, 2) & 0x7ff) + 1;
	assert_true(d->nvec >= 2 && d->nvec <= DRV_MAX_Q + 1);
	assert_int_equal(cfg_read(d, d->msix + 4, 4), 1);	  /* table: BAR 1 + 0 */
	assert_int_equal(cfg_read(d, d->msix + 8, 4), 0x800 | 1); /* PBA: BAR 1 + 0x800 */
	d->bar0 = cfg_read(d, PCI_BASE_ADDRESS_0, 4) & ~0xfULL;
	d->bar1 = cfg_read(d, PCI_BASE_ADDRESS_1, 4) & ~0xfULL;
	cfg_write(d, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	/* MSI-X: vector 0 for config changes, 1 + q for queue q. */
	d->cfg_data = 0x40 + slot * 16;
	for (unsigned q = 0; q + 1 < d->nvec; q++)
		d->q_data[q] = d->cfg_data + 1 + q;
	cfg_write(d, d->msix + 2, PCI_MSIX_FLAGS_ENABLE, 2);
	for (unsigned v = 0; v < d->nvec; v++) {
		mmio_write(d, d->bar1 + 16 * v, 0xfee00000, 4);
		mmio_write(d, d->bar1 + 16 * v + 4, 0, 4);
		mmio_write(d, d->bar1 + 16 * v + 8, d->cfg_data + v, 4);
		mmio_write(d, d->bar1 + 16 * v + 12, 0, 4);
	}
}

uint64_t read_features(struct drv *d)
{
	uint64_t f;

	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_DFSELECT, 0, 4);
	f = mmio_read(d, common(d) + VIRTIO_PCI_COMMON_DF, 4);
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	f |= mmio_read(d, common(d) + VIRTIO_PCI_COMMON_DF, 4) << 32;
	return f;
}

void write_features(struct drv *d, uint64_t f)
{
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_GF, (uint32_t)f, 4);
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	mmio_write(d, common(d) + VIRTIO_PCI_COMMON_GF, f >> 32, 4);
}

void drv_init(struct drv *d, uint16_t qsize, uint64_t want)
{
	uint64_t c = common(d);

	set_status(d, 0);
	assert_int_equal(status(d), 0);
	set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
	d->features = read_features(d) & want;
	write_features(d, d->features);
	set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			  VIRTIO_CONFIG_S_FEATURES_OK);
	assert_int_not_equal(status(d) & VIRTIO_CONFIG_S_FEATURES_OK, 0);
	mmio_write(d, c + VIRTIO_PCI_COMMON_MSIX, 0, 2);
	assert_int_equal(mmio_read(d, c + VIRTIO_PCI_COMMON_MSIX, 2), 0);
	d->nq = (unsigned)mmio_read(d, c + VIRTIO_PCI_COMMON_NUMQ, 2);
	assert_true(d->nq >= 1 && d->nq <= DRV_MAX_Q && d->nq + 1 == d->nvec);
	for (unsigned q = 0; q < d->nq; q++) {
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
		assert_true(mmio_read(d, c + VIRTIO_PCI_COMMON_Q_SIZE, 2) >= qsize);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_SIZE, qsize, 2);
		assert_int_equal(mmio_read(d, c + VIRTIO_PCI_COMMON_Q_SIZE, 2), qsize);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_MSIX, 1 + q, 2);
		assert_int_equal(mmio_read(d, c + VIRTIO_PCI_COMMON_Q_MSIX, 2), 1 + q);
		memset(gp(d, drv_ring(d, q, 0)), 0, DRV_Q_STRIDE);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)drv_ring(d, q, R_DESC), 4);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_DESCHI, 0, 4);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)drv_ring(d, q, R_AVAIL),
			   4);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)drv_ring(d, q, R_USED), 4);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
		assert_int_equal(mmio_read(d, c + VIRTIO_PCI_COMMON_Q_NOFF, 2), q);
		mmio_write(d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
		assert_int_equal(mmio_read(d, c + VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
		d->vq[q] = (struct drv_vq){
		    .size = qsize,
		    .notify = d->bar0 + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT,
		};
	}
	set_status(d, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			  VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	assert_int_equal(status(d), 0xf);
	/* Forget interrupts from earlier rounds. */
	for (unsigned v = 0; v < d->nvec; v++)
		fake_deliver(&d->e->k, d->cfg_data + v);
}

void put_desc(struct drv *d, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
	      uint16_t flags, uint16_t next)
{
	uint8_t *p = gp(d, table + 16ULL * i);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

void publish(struct drv *d, unsigned q, uint16_t head)
{
	struct drv_vq *v = &d->vq[q];
	uint16_t *ring = gp(d, drv_ring(d, q, R_AVAIL + 4));

	ring[v->avail_idx % v->size] = head;
	v->avail_idx++;
	__atomic_store_n((uint16_t *)gp(d, drv_ring(d, q, R_AVAIL + 2)), v->avail_idx,
			 __ATOMIC_RELEASE);
}

void kick(struct drv *d, unsigned q, bool mmio)
{
	uint64_t addr = d->vq[q].notify;
	uint64_t one = 1;

	if (mmio) {
		mmio_write(d, addr, q, 4);
		return;
	}
	for (int i = 0; i < d->e->k.nioevfd; i++) {
		if (d->e->k.ioevfd[i].addr == addr) {
			assert_int_equal(d->e->k.ioevfd[i].len, 0); /* any width */
			assert_int_equal(write(d->e->k.ioevfd[i].fd, &one, 8), 8);
			return;
		}
	}
	fail_msg("no ioeventfd at the notify address of queue %u", q);
}

uint16_t used_idx(struct drv *d, unsigned q)
{
	return __atomic_load_n((uint16_t *)gp(d, drv_ring(d, q, R_USED + 2)), __ATOMIC_ACQUIRE);
}

uint32_t used_head(struct drv *d, unsigned q, uint16_t i, uint32_t *len)
{
	uint64_t e = drv_ring(d, q, R_USED + 4 + 8ULL * (i % d->vq[q].size));

	if (len)
		*len = *(uint32_t *)gp(d, e + 4);
	return *(uint32_t *)gp(d, e);
}

bool wait_used(struct drv *d, unsigned q, uint16_t target)
{
	for (int i = 0; i < 10000; i++) {
		if ((uint16_t)(used_idx(d, q) - target) < 0x8000)
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

bool wait_config_irq(struct drv *d)
{
	for (int i = 0; i < 10000; i++) {
		if (fake_deliver(&d->e->k, d->cfg_data))
			return true;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

void assert_used_once(struct drv *d, unsigned q, const uint16_t *heads, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned seen = 0;

		for (unsigned j = 0; j < n; j++)
			seen += used_head(d, q, (uint16_t)j, NULL) == heads[i];
		if (seen != 1)
			fail_msg("head %u returned %u times", heads[i], seen);
	}
}

void check_mutations(const struct device_ops *ops, void *state, const uint8_t *good, size_t len,
		     const struct mutation *m, size_t n, void (*after)(const struct mutation *))
{
	uint8_t *bad = test_malloc(len);
	struct errbuf err;

	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		memcpy(bad, good, len);
		memcpy(&v, bad + m[i].off, m[i].width);
		v = m[i].xor ? v ^ m[i].xor : m[i].set;
		if (m[i].from)
			memcpy(&v, good + m[i].from, m[i].width);
		memcpy(bad + m[i].off, &v, m[i].width);
		err.msg[0] = '\0';
		if (ops->load(state, bad, len, &err) != -EINVAL)
			fail_msg("%s: damaged state accepted", m[i].what);
		if (!strstr(err.msg, m[i].needle))
			fail_msg("%s: '%s' does not mention '%s'", m[i].what, err.msg, m[i].needle);
		assert_null(strchr(err.msg, '\n'));
		if (after)
			after(&m[i]);
	}
	test_free(bad);
}
