// SPDX-License-Identifier: MIT
/*
 * ivshmem: the server protocol (messages with and without fds, split and
 * malformed ones, what each means to a client), the peer table, the
 * device's registers and doorbell (through BAR 0 as a guest reaches it,
 * with a fake KVM recording ioeventfds and memory slots), its synchronous
 * setup against a scripted server (and every way that setup can fail),
 * peers joining and leaving on the main loop, save/load, and kvmini's own
 * server talking to raw clients.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/ivshmem/ivshmem_int.h"
#include "vmm/vm.h"

/* ivshmem.c's glue to struct vm is not used here (ivshmem_create takes
 * an env); these keep the linker happy and the test honest. */
int vm_mem_slot_alloc(struct vm *vm)
{
	fail_msg("vm_mem_slot_alloc called");
	return -1;
}
void vm_mem_slot_free(struct vm *vm, int slot)
{
	fail_msg("vm_mem_slot_free called");
}
int vm_mem_slot_map(struct vm *vm, int slot, uint64_t gpa, uint64_t size, void *host)
{
	fail_msg("vm_mem_slot_map called");
	return -1;
}
int vm_add_snapshot_mem(struct vm *vm, const char *name, void *host, uint64_t size,
			struct errbuf *err)
{
	fail_msg("vm_add_snapshot_mem called");
	return -1;
}

/* ---- helpers ---- */

static int efd(void)
{
	int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static uint64_t efd_count(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static void sockpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Send raw bytes with any number of fds. */
static void send_raw(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	char ctl[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	assert_int_equal(sendmsg(sock, &mh, 0), (ssize_t)len);
}

/* ---- messages ---- */

static void test_msg_roundtrip(void **st)
{
	struct ivshmem_msg_reader r;
	int sv[2], e = efd(), fd;
	int64_t msg;

	sockpair(sv);
	ivshmem_msg_reader_init(&r);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 0); /* nothing yet */
	assert_int_equal(ivshmem_msg_send(sv[0], 0, -1), 0);
	assert_int_equal(ivshmem_msg_send(sv[0], -1, e), 0);
	assert_int_equal(ivshmem_msg_send(sv[0], 65535, -1), 0);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 1);
	assert_int_equal(msg, 0);
	assert_int_equal(fd, -1);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 1);
	assert_int_equal(msg, -1);
	assert_true(fd >= 0 && fd != e);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	/* The same eventfd: a write on one is seen on the other. */
	assert_int_equal(write(e, &(uint64_t){3}, 8), 8);
	assert_int_equal(efd_count(fd), 3);
	close(fd);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 1);
	assert_int_equal(msg, 65535);
	close(sv[0]);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), -EPIPE);
	close(sv[1]);
	close(e);
}

static void test_msg_split(void **st)
{
	struct ivshmem_msg_reader r;
	int64_t v = 0x0102030405060708LL, msg;
	int sv[2], e = efd(), fd;

	sockpair(sv);
	ivshmem_msg_reader_init(&r);
	/* The fd comes with the first 3 bytes, the rest later. */
	send_raw(sv[0], &v, 3, &e, 1);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 0);
	send_raw(sv[0], (char *)&v + 3, 5, NULL, 0);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 1);
	assert_true(msg == v);
	assert_true(fd >= 0);
	close(fd);
	/* Half a message, then the server goes: the half is dropped. */
	send_raw(sv[0], &v, 4, &e, 1);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), 0);
	assert_true(r.fd >= 0);
	close(sv[0]);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), -EPIPE);
	assert_int_equal(r.fd, -1);
	close(sv[1]);
	close(e);
}

static void test_msg_two_fds(void **st)
{
	struct ivshmem_msg_reader r;
	int64_t v = 7, msg;
	int sv[2], fds[2] = {efd(), efd()}, fd;

	sockpair(sv);
	ivshmem_msg_reader_init(&r);
	send_raw(sv[0], &v, 8, fds, 2);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), -EPROTO);
	/* A second fd on the second half of one message is as bad. */
	send_raw(sv[0], &v, 4, fds, 1);
	send_raw(sv[0], (char *)&v + 4, 4, fds + 1, 1);
	assert_int_equal(ivshmem_msg_recv(sv[1], &r, &msg, &fd), -EPROTO);
	assert_int_equal(r.fd, -1);
	close(sv[0]);
	close(sv[1]);
	close(fds[0]);
	close(fds[1]);
}

static void test_classify(void **st)
{
	struct ivshmem_client c;
	struct errbuf err;
	unsigned peer = 99;

	ivshmem_client_init(&c);
	assert_int_equal(ivshmem_client_classify(&c, 0, -1, &peer, &err), IVSHMEM_EV_VERSION);
	assert_int_equal(ivshmem_client_classify(&c, 4, -1, &peer, &err), IVSHMEM_EV_ID);
	assert_int_equal(c.id, 4);
	assert_int_equal(ivshmem_client_classify(&c, -1, 10, &peer, &err), IVSHMEM_EV_SHM);
	assert_int_equal(ivshmem_client_classify(&c, 2, 11, &peer, &err), IVSHMEM_EV_PEER_VECTOR);
	assert_int_equal(peer, 2);
	assert_int_equal(ivshmem_client_classify(&c, 4, 12, &peer, &err), IVSHMEM_EV_OWN_VECTOR);
	assert_int_equal(ivshmem_client_classify(&c, 65535, -1, &peer, &err), IVSHMEM_EV_PEER_GONE);
	assert_int_equal(peer, 65535);
	/* After setup: garbage. */
	assert_int_equal(ivshmem_client_classify(&c, 65536, 3, &peer, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "not a peer ID"));
	assert_int_equal(ivshmem_client_classify(&c, -2, -1, &peer, &err), -EPROTO);
	assert_int_equal(ivshmem_client_classify(&c, -1, 5, &peer, &err), -EPROTO);
	assert_int_equal(ivshmem_client_classify(&c, 4, -1, &peer, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "own ID 4 without an fd"));

	ivshmem_client_init(&c);
	assert_int_equal(ivshmem_client_classify(&c, 1, -1, &peer, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "protocol version 1, kvmini speaks version 0"));
	ivshmem_client_init(&c);
	assert_int_equal(ivshmem_client_classify(&c, 0, 3, &peer, &err), -EPROTO);
	ivshmem_client_init(&c);
	ivshmem_client_classify(&c, 0, -1, &peer, &err);
	assert_int_equal(ivshmem_client_classify(&c, 65536, -1, &peer, &err), -EPROTO);
	assert_int_equal(ivshmem_client_classify(&c, 1, 3, &peer, &err), -EPROTO);
	assert_int_equal(ivshmem_client_classify(&c, 1, -1, &peer, &err), IVSHMEM_EV_ID);
	/* Before the shared memory, a peer's eventfd is out of order. */
	assert_int_equal(ivshmem_client_classify(&c, 2, 3, &peer, &err), -EPROTO);
	assert_int_equal(ivshmem_client_classify(&c, -1, -1, &peer, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "without an fd"));
}

static void test_peer_table(void **st)
{
	struct ivshmem_peers t = {0};
	struct ivshmem_peer out;
	int fds[70];

	for (int i = 0; i < 70; i++)
		fds[i] = efd();
	assert_int_equal(ivshmem_peer_add_fd(&t, 9, fds[0]), 0);
	assert_int_equal(ivshmem_peer_add_fd(&t, 3, fds[1]), 0);
	assert_int_equal(ivshmem_peer_add_fd(&t, 9, fds[2]), 1);
	assert_int_equal(ivshmem_peer_add_fd(&t, 65535, fds[3]), 0);
	assert_int_equal(ivshmem_peer_add_fd(&t, 0, fds[4]), 0);
	assert_int_equal(t.n, 4);
	for (unsigned i = 1; i < t.n; i++)
		assert_true(t.p[i - 1].id < t.p[i].id);
	assert_non_null(ivshmem_peer_find(&t, 9));
	assert_int_equal(ivshmem_peer_find(&t, 9)->fd[1], fds[2]);
	assert_null(ivshmem_peer_find(&t, 4));
	assert_int_equal(ivshmem_peer_remove(&t, 4, &out), -ENOENT);
	assert_int_equal(ivshmem_peer_remove(&t, 9, &out), 0);
	assert_int_equal(out.nvec, 2);
	ivshmem_peer_close(&out);
	assert_false(fd_open(fds[0]));
	assert_null(ivshmem_peer_find(&t, 9));
	for (int i = 5; i < 5 + IVSHMEM_MAX_VECTORS - 1; i++)
		assert_true(ivshmem_peer_add_fd(&t, 3, fds[i]) > 0);
	assert_int_equal(ivshmem_peer_add_fd(&t, 3, fds[69]), -E2BIG);
	assert_true(fd_open(fds[69])); /* not taken */
	close(fds[69]);
	ivshmem_peers_free(&t);
	assert_false(fd_open(fds[3]));
	assert_false(fd_open(fds[5]));
}

/* ---- the device, with a fake KVM ---- */

#define MAX_IOEVENTFDS 64

struct fake {
	struct {
		uint64_t addr, data;
		int fd;
	} ioe[MAX_IOEVENTFDS];
	int nioe;
	int irqfds;
	/* memory slots */
	uint64_t slot_gpa, slot_size;
	void *slot_host;
	int slot_calls;
	int slot_freed;
	struct bus pio, mmio;
	struct pci_host host;
	struct aio_context *ctx;
	struct guest_mem mem;
	char dir[64];
};

static struct fake F;

static int fake_routing(void *o, const struct kvm_irq_routing *t)
{
	return 0;
}

static int fake_irqfd(void *o, int fd, uint32_t gsi, bool assign)
{
	F.irqfds += assign ? 1 : -1;
	return 0;
}

static int fake_ioeventfd(void *o, uint64_t a, uint32_t l, int fd, bool pio, bool assign)
{
	return 0;
}

static int fake_ioeventfd_dm(void *o, uint64_t addr, uint32_t len, uint64_t data, int fd, bool pio,
			     bool assign)
{
	assert_int_equal(len, 4);
	assert_false(pio);
	for (int i = 0; i < F.nioe; i++)
		if (F.ioe[i].addr == addr && F.ioe[i].data == data) {
			assert_false(assign); /* KVM refuses duplicates */
			assert_int_equal(F.ioe[i].fd, fd);
			F.ioe[i] = F.ioe[--F.nioe];
			return 0;
		}
	assert_true(assign);
	assert_true(F.nioe < MAX_IOEVENTFDS);
	F.ioe[F.nioe].addr = addr;
	F.ioe[F.nioe].data = data;
	F.ioe[F.nioe].fd = fd;
	F.nioe++;
	return 0;
}

static const struct kvm_irq_ops fake_ops = {fake_routing, fake_irqfd, fake_ioeventfd,
					    fake_ioeventfd_dm};

/* The fd KVM would signal for a doorbell write of @data, or -1. */
static int ioe_fd(uint64_t addr, uint64_t data)
{
	for (int i = 0; i < F.nioe; i++)
		if (F.ioe[i].addr == addr && F.ioe[i].data == data)
			return F.ioe[i].fd;
	return -1;
}

static int fake_slot_alloc(void *o)
{
	return 2;
}

static void fake_slot_free(void *o, int slot)
{
	assert_int_equal(slot, 2);
	F.slot_freed++;
}

static int fake_mem_map(void *o, int slot, uint64_t gpa, uint64_t size, void *host)
{
	assert_int_equal(slot, 2);
	F.slot_calls++;
	F.slot_gpa = gpa;
	F.slot_size = size;
	F.slot_host = host;
	return 0;
}

static struct ivshmem_env fake_env(void)
{
	return (struct ivshmem_env){.host = &F.host,
				    .ctx = F.ctx,
				    .mem = &F.mem,
				    .slot_alloc = fake_slot_alloc,
				    .slot_free = fake_slot_free,
				    .mem_map = fake_mem_map};
}

static int setup(void **st)
{
	struct errbuf err;

	memset(&F, 0, sizeof(F));
	assert_int_equal(bus_init(&F.pio, "pio"), 0);
	assert_int_equal(bus_init(&F.mmio, "mmio"), 0);
	assert_int_equal(pci_host_init(&F.host, &F.pio, &F.mmio, 1ULL << 32, &fake_ops, NULL, &err),
			 0);
	assert_int_equal(aio_context_new(&F.ctx), 0);
	assert_int_equal(guest_mem_init(&F.mem, 64 << 20), 0);
	snprintf(F.dir, sizeof(F.dir), "/tmp/kvmini-ivtest.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	return 0;
}

static int teardown(void **st)
{
	char cmd[128];

	pci_host_destroy(&F.host);
	aio_context_free(F.ctx);
	bus_destroy(&F.mmio);
	bus_destroy(&F.pio);
	guest_mem_free(&F.mem);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void cfg_write(struct ivshmem *s, unsigned reg, uint32_t v, uint32_t len)
{
	uint32_t latch = 0x80000000u | s->pdev->slot << 11 | (reg & 0xfc);

	assert_true(bus_dispatch(&F.pio, 0xcf8, &latch, 4, true));
	assert_true(bus_dispatch(&F.pio, 0xcfc + (reg & 3), &v, len, true));
}

static uint32_t mmio_read(uint64_t addr, uint32_t len)
{
	uint32_t v = 0;

	if (!bus_dispatch(&F.mmio, addr, &v, len, false))
		return 0xdeadbeef;
	return v;
}

static void mmio_write(uint64_t addr, uint32_t v, uint32_t len)
{
	assert_true(bus_dispatch(&F.mmio, addr, &v, len, true));
}

static struct ivshmem_config plain_cfg(const char *file, uint64_t size)
{
	struct ivshmem_config c = {.backend = IVSHMEM_BACKEND_FILE, .size = size, .vectors = 1};

	snprintf(c.path, sizeof(c.path), "%s/%s", F.dir, file);
	return c;
}

static void test_plain_registers_and_bar2(void **st)
{
	struct ivshmem_config c = plain_cfg("mem", 64 << 10);
	struct ivshmem_env env = fake_env();
	struct ivshmem *s;
	struct errbuf err;
	uint64_t bar0, bar2;
	struct stat sb;

	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	assert_string_equal(s->name, "ivshmem0");
	assert_int_equal(stat(c.path, &sb), 0);
	assert_int_equal(sb.st_size, 64 << 10); /* created with the size asked */
	assert_int_equal(pci_config_get16(s->pdev, PCI_VENDOR_ID), 0x1af4);
	assert_int_equal(pci_config_get16(s->pdev, PCI_DEVICE_ID), 0x1110);
	assert_int_equal(pci_config_get8(s->pdev, PCI_REVISION_ID), 1);
	assert_int_equal(s->pdev->bars[1].type, PCI_BAR_NONE); /* no MSI-X */
	assert_int_equal(s->pdev->bars[2].type, PCI_BAR_MEM64);
	assert_true(s->pdev->bars[2].prefetch);
	assert_int_equal(s->pdev->bars[2].size, 64 << 10);
	/* Decoding off: nothing mapped. */
	assert_int_equal(F.slot_calls, 0);
	cfg_write(s, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	bar0 = pci_bar_address(s->pdev, 0);
	bar2 = pci_bar_address(s->pdev, 2);
	assert_true(bar0 != PCI_BAR_UNMAPPED && bar2 != PCI_BAR_UNMAPPED);
	assert_int_equal(F.slot_gpa, bar2);
	assert_int_equal(F.slot_size, 64 << 10);
	assert_ptr_equal(F.slot_host, s->shm);

	/* Registers. */
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_IVPOSITION, 4), 0);
	mmio_write(bar0 + IVSHMEM_REG_INTRMASK, 0xffffffff, 4);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRMASK, 4), 0xffffffff);
	mmio_write(bar0 + IVSHMEM_REG_INTRSTATUS, 5, 4);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRSTATUS, 4), 5);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRSTATUS, 4), 0); /* read clears */
	mmio_write(bar0 + IVSHMEM_REG_IVPOSITION, 7, 4);		  /* read-only */
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_IVPOSITION, 4), 0);
	mmio_write(bar0 + IVSHMEM_REG_DOORBELL, 0x10000, 4); /* no interrupts: ignored */
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_DOORBELL, 4), 0);
	/* Only aligned 32-bit accesses do anything. */
	mmio_write(bar0 + IVSHMEM_REG_INTRMASK, 0, 2);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRMASK, 4), 0xffffffff);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRMASK, 1), 0);
	/* Beyond the registers: reserved, reads 0, writes ignored. */
	mmio_write(bar0 + 16, 1, 4);
	assert_int_equal(mmio_read(bar0 + 16, 4), 0);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_BAR0_SIZE - 4, 4), 0);

	/* BAR 2 through kvmini (if the slot failed) reaches the memory too. */
	((uint8_t *)s->shm)[100] = 0x5a;
	assert_int_equal(mmio_read(bar2 + 100, 1), 0x5a);

	/* Moving BAR 2 moves the slot; over RAM it is not mapped; decode off
	 * removes it. */
	cfg_write(s, PCI_BASE_ADDRESS_2, 0xd0000000, 4);
	cfg_write(s, PCI_BASE_ADDRESS_3, 0, 4);
	assert_int_equal(F.slot_gpa, 0xd0000000);
	assert_int_equal(F.slot_size, 64 << 10);
	cfg_write(s, PCI_BASE_ADDRESS_2, 0x100000, 4);
	assert_int_equal(F.slot_size, 0);
	cfg_write(s, PCI_BASE_ADDRESS_2, 0xd0000000, 4);
	assert_int_equal(F.slot_size, 64 << 10);
	cfg_write(s, PCI_COMMAND, 0, 2);
	assert_int_equal(F.slot_size, 0);
	cfg_write(s, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	ivshmem_destroy(s);
	assert_int_equal(F.slot_size, 0); /* exit unmaps */
	assert_int_equal(F.slot_freed, 1);
}

static void test_plain_sizes(void **st)
{
	struct ivshmem_env env = fake_env();
	struct ivshmem_config c;
	struct ivshmem *s;
	struct errbuf err;
	char path[128];
	int fd;

	c = plain_cfg("empty", 0);
	assert_int_equal(ivshmem_create(&env, 1, &c, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is empty and no size= was given"));
	assert_non_null(strstr(err.msg, "ivshmem1"));

	/* An existing object: its size is used, or must match size=. */
	snprintf(path, sizeof(path), "%s/m8k", F.dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 8192), 0);
	close(fd);
	c = plain_cfg("m8k", 0);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	assert_int_equal(s->shm_size, 8192);
	ivshmem_destroy(s);
	c = plain_cfg("m8k", 4096);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "is 8192 bytes, not size=4096"));

	snprintf(path, sizeof(path), "%s/odd", F.dir);
	fd = open(path, O_CREAT | O_RDWR, 0600);
	assert_int_equal(ftruncate(fd, 12288), 0);
	close(fd);
	c = plain_cfg("odd", 0);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "12288 bytes: a BAR needs a power of two"));

	/* A link to a file of the right size: refused, not followed. */
	snprintf(path, sizeof(path), "%s/link", F.dir);
	assert_int_equal(symlink("m8k", path), 0);
	c = plain_cfg("link", 8192);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "is a symbolic link"));
	unlink(path);

	c = plain_cfg("nodir/x", 4096);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot open file"));
	c = plain_cfg("", 4096); /* the directory itself */
	assert_true(ivshmem_create(&env, 0, &c, &s, &err) < 0);
	/* Nothing left on the bus after the failures. */
	for (unsigned slot = 1; slot < PCI_SLOTS; slot++)
		assert_null(F.host.slots[slot]);
}

/* A scripted ivshmem server: accepts one client, sends the script, then
 * closes, or hangs until told to stop. */
struct script_msg {
	int64_t msg;
	int fd; /* -1: none */
};

struct script {
	char path[128];
	int listen_fd;
	struct script_msg msgs[64];
	int n;
	bool hang;    /* keep the connection open after the script */
	int stop_efd; /* written to end a hang */
	int conn;     /* the accepted connection (kept for later messages) */
	pthread_t th;
};

static void *script_thread(void *arg)
{
	struct script *sc = arg;

	sc->conn = accept4(sc->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (sc->conn < 0)
		return NULL;
	for (int i = 0; i < sc->n; i++)
		if (ivshmem_msg_send(sc->conn, sc->msgs[i].msg, sc->msgs[i].fd) < 0)
			break;
	if (sc->hang) {
		uint64_t n;

		if (read(sc->stop_efd, &n, sizeof(n)) < 0)
			return NULL;
	} else {
		close(sc->conn);
		sc->conn = -1;
	}
	return NULL;
}

static void script_start(struct script *sc, const char *name, bool hang)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};

	snprintf(sc->path, sizeof(sc->path), "%s/%s", F.dir, name);
	memcpy(a.sun_path, sc->path, strlen(sc->path) + 1);
	sc->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(sc->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sc->listen_fd, 4), 0);
	sc->hang = hang;
	sc->stop_efd = eventfd(0, EFD_CLOEXEC);
	sc->conn = -1;
	assert_int_equal(pthread_create(&sc->th, NULL, script_thread, sc), 0);
}

static void script_add(struct script *sc, int64_t msg, int fd)
{
	sc->msgs[sc->n].msg = msg;
	sc->msgs[sc->n].fd = fd;
	sc->n++;
}

/* Stop the thread (ending a hang), close everything but the connection
 * if @keep_conn. */
static void script_end(struct script *sc, bool keep_conn)
{
	uint64_t one = 1;

	assert_int_equal(write(sc->stop_efd, &one, 8), 8);
	pthread_join(sc->th, NULL);
	close(sc->stop_efd);
	close(sc->listen_fd);
	if (!keep_conn && sc->conn >= 0)
		close(sc->conn);
	for (int i = 0; i < sc->n; i++)
		if (sc->msgs[i].fd >= 0)
			close(sc->msgs[i].fd);
}

static int shm_file(uint64_t size)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/shmXXXXXX", F.dir);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	return fd;
}

static struct ivshmem_config doorbell_cfg(const char *sock, unsigned vectors)
{
	struct ivshmem_config c = {
	    .backend = IVSHMEM_BACKEND_SERVER, .vectors = vectors, .timeout_ns = 1000000000ULL};

	snprintf(c.path, sizeof(c.path), "%s", sock);
	return c;
}

static void test_doorbell(void **st)
{
	struct ivshmem_env env = fake_env();
	struct script sc = {0};
	struct ivshmem_config c;
	int p5[2] = {efd(), efd()}, own[2] = {efd(), efd()}, p7 = efd(), shm = shm_file(1 << 20);
	uint64_t bar0, db;
	struct ivshmem *s;
	struct errbuf err;

	script_add(&sc, 0, -1);
	script_add(&sc, 3, -1);
	script_add(&sc, -1, shm);
	script_add(&sc, 5, p5[0]);
	script_add(&sc, 5, p5[1]);
	script_add(&sc, 3, own[0]);
	script_add(&sc, 3, own[1]);
	script_start(&sc, "db.sock", true);
	c = doorbell_cfg(sc.path, 2);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	assert_int_equal(s->ivposition, 3);
	assert_int_equal(s->own_vectors, 2);
	assert_int_equal(s->shm_size, 1 << 20);
	assert_int_equal(s->pdev->bars[1].size, IVSHMEM_BAR1_SIZE);
	assert_non_null(ivshmem_peer_find(&s->peers, 5));
	assert_int_equal(F.nioe, 0); /* BAR 0 not decoded yet */

	cfg_write(s, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	bar0 = pci_bar_address(s->pdev, 0);
	db = bar0 + IVSHMEM_REG_DOORBELL;
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_IVPOSITION, 4), 3);
	/* One ioeventfd per (peer, vector) and for our own vectors. */
	assert_int_equal(F.nioe, 4);
	assert_true(ioe_fd(db, 5 << 16 | 0) >= 0);
	assert_true(ioe_fd(db, 5 << 16 | 1) >= 0);
	assert_int_equal(ioe_fd(db, 3 << 16 | 0), msix_vector_fd(&s->msix, 0));
	/* KVM would write these: they are the peer's eventfds. */
	assert_int_equal(write(ioe_fd(db, 5 << 16 | 1), &(uint64_t){1}, 8), 8);
	assert_int_equal(efd_count(p5[1]), 1);
	/* The exit path (a write KVM did not absorb) does the same. */
	mmio_write(db, 5 << 16 | 0, 4);
	assert_int_equal(efd_count(p5[0]), 1);
	mmio_write(db, 5 << 16 | 2, 4); /* no such vector: dropped */
	mmio_write(db, 6 << 16 | 0, 4); /* no such peer: dropped */
	assert_int_equal(efd_count(p5[0]) + efd_count(p5[1]), 0);
	/* Our own vectors' eventfds are the server's. */
	mmio_write(db, 3 << 16 | 1, 4);
	assert_int_equal(efd_count(own[1]), 1);

	/* BAR 0 moves: so do the ioeventfds. */
	cfg_write(s, PCI_BASE_ADDRESS_0, 0xd0000000, 4);
	assert_int_equal(F.nioe, 4);
	assert_true(ioe_fd(0xd000000c, 5 << 16 | 1) >= 0);
	assert_int_equal(ioe_fd(db, 5 << 16 | 1), -1);
	db = 0xd000000c;

	/* Later: peer 7 joins, peer 5 leaves (main loop). */
	assert_int_equal(ivshmem_msg_send(sc.conn, 7, p7), 0);
	assert_int_equal(ivshmem_msg_send(sc.conn, 5, -1), 0);
	while (ivshmem_peer_find(&s->peers, 5))
		aio_poll(F.ctx, true);
	assert_non_null(ivshmem_peer_find(&s->peers, 7));
	assert_int_equal(F.nioe, 3);
	assert_int_equal(ioe_fd(db, 5 << 16 | 0), -1);
	assert_true(ioe_fd(db, 7 << 16 | 0) >= 0);
	mmio_write(db, 7 << 16 | 0, 4);
	assert_int_equal(efd_count(p7), 1);
	mmio_write(db, 5 << 16 | 0, 4); /* gone: dropped, no crash */

	/* Garbage from the server: disconnect, the device goes on. */
	assert_int_equal(ivshmem_msg_send(sc.conn, -7, -1), 0);
	while (s->sock >= 0)
		aio_poll(F.ctx, true);
	mmio_write(db, 7 << 16 | 0, 4);
	assert_int_equal(efd_count(p7), 1);

	ivshmem_destroy(s);
	assert_int_equal(F.nioe, 0);
	assert_int_equal(F.irqfds, 0);
	script_end(&sc, false);
	close(p7);
}

static void test_doorbell_server_goes_away(void **st)
{
	struct ivshmem_env env = fake_env();
	struct script sc = {0};
	struct ivshmem_config c;
	struct ivshmem *s;
	struct errbuf err;

	script_add(&sc, 0, -1);
	script_add(&sc, 0, -1);
	script_add(&sc, -1, shm_file(4096));
	script_add(&sc, 0, efd());
	script_start(&sc, "gone.sock", true);
	c = doorbell_cfg(sc.path, 1);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	script_end(&sc, false); /* closes the connection */
	while (s->sock >= 0)
		aio_poll(F.ctx, true);
	assert_int_equal(s->ivposition, 0); /* ID 0 stays */
	ivshmem_destroy(s);
}

/* Fewer vectors from the server than the device has: setup ends after
 * the grace period with the vectors it got; more: extras are closed. */
static void test_doorbell_vector_counts(void **st)
{
	struct ivshmem_env env = fake_env();
	struct script sc = {0};
	struct ivshmem_config c;
	struct ivshmem *s;
	struct errbuf err;
	int extra = efd();

	script_add(&sc, 0, -1);
	script_add(&sc, 1, -1);
	script_add(&sc, -1, shm_file(4096));
	script_add(&sc, 1, efd());
	script_start(&sc, "few.sock", true);
	c = doorbell_cfg(sc.path, 4);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	assert_int_equal(s->own_vectors, 1);
	ivshmem_destroy(s);
	script_end(&sc, false);

	memset(&sc, 0, sizeof(sc));
	script_add(&sc, 0, -1);
	script_add(&sc, 1, -1);
	script_add(&sc, -1, shm_file(4096));
	script_add(&sc, 1, efd());
	script_add(&sc, 1, extra);
	script_start(&sc, "many.sock", true);
	c = doorbell_cfg(sc.path, 1);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	assert_int_equal(s->own_vectors, 1);
	while (s->server_vectors < 2)
		aio_poll(F.ctx, true);
	assert_int_equal(s->own_vectors, 1);
	ivshmem_destroy(s);
	script_end(&sc, false);
}

/* A hostile server cannot make the device hold fds without bound: a peer
 * gets at most the device's vectors, and announcing more than
 * IVSHMEM_MAX_PEERS peers ends the link. */
static void test_doorbell_bounds(void **st)
{
	struct ivshmem_env env = fake_env();
	struct script sc = {0};
	struct ivshmem_config c;
	struct ivshmem *s;
	struct errbuf err;
	struct rlimit rl;
	int e = efd();
	unsigned id;

	/* The device holds up to IVSHMEM_MAX_PEERS received fds at once. */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 4 * IVSHMEM_MAX_PEERS && rl.rlim_max >= 4 * IVSHMEM_MAX_PEERS) {
		rl.rlim_cur = 4 * IVSHMEM_MAX_PEERS;
		assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	}
	if (rl.rlim_cur < 4 * IVSHMEM_MAX_PEERS)
		skip(); /* the hard fd limit is below what the test needs */
	script_add(&sc, 0, -1);
	script_add(&sc, 1, -1);
	script_add(&sc, -1, shm_file(4096));
	script_add(&sc, 1, efd());
	script_start(&sc, "bounds.sock", true);
	c = doorbell_cfg(sc.path, 1);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), 0);
	/* Peer 2 with three vectors for a one-vector device: one kept. */
	for (int v = 0; v < 3; v++)
		assert_int_equal(ivshmem_msg_send(sc.conn, 2, e), 0);
	assert_int_equal(ivshmem_msg_send(sc.conn, 3, e), 0);
	while (!ivshmem_peer_find(&s->peers, 3))
		aio_poll(F.ctx, true);
	assert_int_equal(ivshmem_peer_find(&s->peers, 2)->nvec, 1);
	assert_true(s->warned_vectors);
	/* Then peers 3, 4, ... until the device gives up on the server. */
	for (id = 4; s->sock >= 0 && id <= IVSHMEM_MAX_ID; id++) {
		int r;

		while ((r = ivshmem_msg_send(sc.conn, id, e)) == -EAGAIN)
			aio_poll(F.ctx, false);
		if (r < 0)
			break; /* the device closed its end */
	}
	/* The end of the stream, so that a device that kept going stops too. */
	shutdown(sc.conn, SHUT_WR);
	while (s->sock >= 0)
		aio_poll(F.ctx, true);
	assert_int_equal(s->peers.n, IVSHMEM_MAX_PEERS);
	assert_true(id < IVSHMEM_MAX_ID);
	ivshmem_destroy(s);
	script_end(&sc, false);
	close(e);
}

/* Every way the setup fails: one line naming the device and the server. */
static void setup_fails(const char *name, bool hang, const struct script_msg *msgs, int n,
			const char *needle)
{
	struct ivshmem_env env = fake_env();
	struct script sc = {0};
	struct ivshmem_config c;
	struct ivshmem *s = NULL;
	struct errbuf err;

	for (int i = 0; i < n; i++)
		script_add(&sc, msgs[i].msg, msgs[i].fd);
	script_start(&sc, name, hang);
	c = doorbell_cfg(sc.path, 1);
	assert_true(ivshmem_create(&env, 0, &c, &s, &err) < 0);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' not in '%s'", needle, err.msg);
	assert_non_null(strstr(err.msg, "ivshmem0: "));
	assert_non_null(strstr(err.msg, sc.path));
	assert_null(strchr(err.msg, '\n'));
	script_end(&sc, false);
	for (unsigned slot = 1; slot < PCI_SLOTS; slot++)
		assert_null(F.host.slots[slot]);
}

static void test_setup_failures(void **st)
{
	struct ivshmem_env env = fake_env();
	struct ivshmem_config c;
	struct ivshmem *s;
	struct errbuf err;
	const struct script_msg v0[] = {{0, -1}};
	const struct script_msg v1[] = {{1, -1}};
	const struct script_msg badid[] = {{0, -1}, {70000, -1}};
	const struct script_msg noshm[] = {{0, -1}, {2, -1}, {-1, -1}};
	const struct script_msg upto_shm[] = {{0, -1}, {2, -1}, {-1, shm_file(4096)}};
	const struct script_msg oddshm[] = {{0, -1}, {2, -1}, {-1, shm_file(6000)}};

	setup_fails("silent.sock", true, NULL, 0,
		    "did not complete the setup within 1 s (got nothing)");
	setup_fails("v.sock", true, v0, 1, "(got only the protocol version)");
	setup_fails("shm.sock", true, upto_shm, 3, "(got no interrupt eventfds)");
	setup_fails("closed.sock", false, v0, 1, "closed the connection during setup");
	setup_fails("v1.sock", false, v1, 1, "speaks protocol version 1, kvmini speaks version 0");
	setup_fails("id.sock", false, badid, 2, "sent 70000 as our ID");
	setup_fails("noshm.sock", false, noshm, 3, "without an fd where the shared memory");
	setup_fails("odd.sock", false, oddshm, 3, "6000 bytes: a BAR needs a power of two");

	c = doorbell_cfg("/nonexistent/ivshmem.sock", 1);
	assert_int_equal(ivshmem_create(&env, 0, &c, &s, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "cannot connect to ivshmem server"));
}

static void test_save_load(void **st)
{
	struct ivshmem_config c = plain_cfg("snap", 4096);
	struct ivshmem_env env = fake_env();
	struct ivshmem *a, *b;
	struct errbuf err;
	uint8_t buf[4096];
	uint64_t bar0;
	int n;

	assert_int_equal(ivshmem_create(&env, 0, &c, &a, &err), 0);
	cfg_write(a, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	cfg_write(a, PCI_BASE_ADDRESS_2, 0xd0000000, 4);
	cfg_write(a, PCI_BASE_ADDRESS_3, 0, 4);
	bar0 = pci_bar_address(a->pdev, 0);
	mmio_write(bar0 + IVSHMEM_REG_INTRMASK, 0x1234, 4);
	mmio_write(bar0 + IVSHMEM_REG_INTRSTATUS, 1, 4);
	n = ivshmem_save(a, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(ivshmem_save(a, buf, 16), -ENOSPC);
	ivshmem_destroy(a);
	assert_int_equal(F.slot_size, 0);

	assert_int_equal(ivshmem_create(&env, 0, &c, &b, &err), 0);
	assert_int_equal(ivshmem_load(b, buf, (size_t)n, &err), 0);
	/* The BARs are where the guest had them, decoded: slot at the moved BAR 2. */
	assert_int_equal(F.slot_gpa, 0xd0000000);
	assert_int_equal(F.slot_size, 4096);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRMASK, 4), 0x1234);
	assert_int_equal(mmio_read(bar0 + IVSHMEM_REG_INTRSTATUS, 4), 1);
	/* Bad states are refused. */
	buf[0] ^= 0xff;
	assert_int_equal(ivshmem_load(b, buf, (size_t)n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "version"));
	buf[0] ^= 0xff;
	assert_int_equal(ivshmem_load(b, buf, (size_t)n - 1, &err), -EINVAL);
	/* A read-only config byte (the device ID) that differs. */
	for (int i = 0; i + 4 <= n; i++)
		if (!memcmp(buf + i, "\xf4\x1a\x10\x11", 4)) {
			buf[i + PCI_DEVICE_ID] ^= 1;
			break;
		}
	assert_int_equal(ivshmem_load(b, buf, (size_t)n, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "read-only config byte"));
	ivshmem_destroy(b);
}

/* ---- kvmini's server ---- */

static int client_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(a.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* The next message on @fd, polling the server's context meanwhile. */
static int64_t client_recv(struct ivshmem_msg_reader *r, int fd, int *mfd)
{
	int64_t msg;

	for (int i = 0; i < 1000; i++) {
		int ret = ivshmem_msg_recv(fd, r, &msg, mfd);

		assert_true(ret >= 0);
		if (ret == 1)
			return msg;
		aio_poll(F.ctx, false);
		usleep(1000);
	}
	fail_msg("no message from the server");
	return 0;
}

static void expect(struct ivshmem_msg_reader *r, int fd, int64_t want, bool with_fd)
{
	int mfd;
	int64_t msg = client_recv(r, fd, &mfd);

	assert_int_equal(msg, want);
	assert_int_equal(mfd >= 0, with_fd);
	if (mfd >= 0)
		close(mfd);
}

static void test_server(void **st)
{
	struct ivshmem_server_config cfg = {.size = 8192, .vectors = 2};
	struct ivshmem_msg_reader r1, r2;
	struct ivshmem_server *srv, *srv2;
	char sock[128], file[128];
	struct errbuf err;
	struct stat sb;
	int c1, c2, fd;

	snprintf(sock, sizeof(sock), "%s/srv.sock", F.dir);
	snprintf(file, sizeof(file), "%s/srv.mem", F.dir);
	cfg.socket = sock;
	cfg.path = file;
	/* A stale socket file is replaced. */
	fd = open(sock, O_CREAT | O_RDWR, 0600);
	close(fd);
	unlink(sock);
	{
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		int s = socket(AF_UNIX, SOCK_STREAM, 0);

		memcpy(a.sun_path, sock, strlen(sock) + 1);
		assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof(a)), 0);
		close(s); /* nobody listens: stale */
	}
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), 0);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_size, 8192);

	ivshmem_msg_reader_init(&r1);
	ivshmem_msg_reader_init(&r2);
	c1 = client_connect(sock);
	expect(&r1, c1, 0, false);
	expect(&r1, c1, 0, false); /* ID 0 */
	assert_int_equal(client_recv(&r1, c1, &fd), -1);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 8192);
	close(fd);
	expect(&r1, c1, 0, true);
	expect(&r1, c1, 0, true);

	c2 = client_connect(sock);
	expect(&r2, c2, 0, false);
	expect(&r2, c2, 1, false); /* ID 1 */
	expect(&r2, c2, -1, true);
	expect(&r2, c2, 0, true); /* peer 0, two vectors */
	expect(&r2, c2, 0, true);
	expect(&r2, c2, 1, true); /* own */
	expect(&r2, c2, 1, true);
	expect(&r1, c1, 1, true); /* peer 1 joined */
	expect(&r1, c1, 1, true);
	assert_int_equal(ivshmem_server_npeers(srv), 2);

	/* Client 1 sends garbage: dropped, client 2 hears it left. */
	assert_int_equal(write(c1, "hello", 5), 5);
	expect(&r2, c2, 0, false);
	assert_int_equal(ivshmem_server_npeers(srv), 1);
	close(c1);
	/* A new client gets the next ID, not 0 again. */
	c1 = client_connect(sock);
	ivshmem_msg_reader_init(&r1);
	expect(&r1, c1, 0, false);
	expect(&r1, c1, 2, false);
	close(c1);
	expect(&r2, c2, 2, true);
	expect(&r2, c2, 2, true);
	expect(&r2, c2, 2, false); /* and left */
	close(c2);
	while (ivshmem_server_npeers(srv))
		aio_poll(F.ctx, true);
	/* A second server on a live socket is refused (its probe connects
	 * and leaves at once). */
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv2, &err), -EADDRINUSE);
	assert_non_null(strstr(err.msg, "in use by a running server"));
	aio_poll(F.ctx, true);
	while (ivshmem_server_npeers(srv))
		aio_poll(F.ctx, true);
	ivshmem_server_free(srv);
	assert_int_equal(stat(sock, &sb), -1); /* socket removed */
	assert_int_equal(stat(file, &sb), 0);  /* the memory stays, as QEMU's */
}

static void write_file(const char *path, const char *text, off_t size)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	if (size)
		assert_int_equal(ftruncate(fd, size), 0);
	close(fd);
}

static bool file_is(const char *path, const char *text, off_t size)
{
	char buf[64] = {0};
	struct stat sb;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok;

	assert_true(fd >= 0);
	ok = read(fd, buf, sizeof(buf) - 1) >= 0 && !strncmp(buf, text, strlen(text)) &&
	     fstat(fd, &sb) == 0 && sb.st_size == size;
	close(fd);
	return ok;
}

/* The server never destroys a file it did not make: a non-socket at
 * --socket is refused, --path is never truncated nor followed. */
static void test_server_files(void **st)
{
	struct ivshmem_server_config cfg = {.size = 8192, .vectors = 1};
	struct ivshmem_server *srv;
	char sock[128], file[128], other[128];
	struct errbuf err;

	snprintf(sock, sizeof(sock), "%s/files.sock", F.dir);
	snprintf(file, sizeof(file), "%s/files.mem", F.dir);
	snprintf(other, sizeof(other), "%s/precious", F.dir);
	cfg.socket = sock;
	cfg.path = file;

	write_file(sock, "not a socket", 0);
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists and is not a socket"));
	assert_null(strchr(err.msg, '\n'));
	assert_true(file_is(sock, "not a socket", 12));
	unlink(sock);

	/* Another size: refused, the data stays. */
	write_file(file, "data", 4096);
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists with 4096 bytes, not --size 8192"));
	assert_true(file_is(file, "data", 4096));
	/* The same size: used as it is. */
	write_file(file, "data", 8192);
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), 0);
	ivshmem_server_free(srv);
	assert_true(file_is(file, "data", 8192));
	/* Empty: sized. */
	write_file(file, "", 0);
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), 0);
	ivshmem_server_free(srv);
	assert_true(file_is(file, "", 8192));
	unlink(file);

	/* A link at --path: refused, its target untouched. */
	write_file(other, "", 0);
	assert_int_equal(symlink(other, file), 0);
	assert_int_equal(ivshmem_server_new(&cfg, F.ctx, &srv, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "symbolic link"));
	assert_true(file_is(other, "", 0));
	unlink(file);
	unlink(other);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_msg_roundtrip),
	    cmocka_unit_test(test_msg_split),
	    cmocka_unit_test(test_msg_two_fds),
	    cmocka_unit_test(test_classify),
	    cmocka_unit_test(test_peer_table),
	    cmocka_unit_test_setup_teardown(test_plain_registers_and_bar2, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_plain_sizes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell_server_goes_away, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell_vector_counts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_doorbell_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_setup_failures, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_save_load, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_server_files, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
