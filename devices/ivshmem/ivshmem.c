// SPDX-License-Identifier: MIT
/*
 * ivshmem-plain and ivshmem-doorbell PCI devices. See ivshmem.h for the
 * model and docs/devices.md for what a guest sees.
 *
 * Threads and locking. Realize, the server's later messages (an fd
 * handler on the main AioContext), save/load and exit run on the main
 * thread. vCPU threads reach the registers through BAR 0 (bus callback, no
 * PCI lock) and run the BAR map hooks (PCI config lock held). s->lock
 * protects the registers, the peer table and the doorbell address; lock
 * order: PCI config lock -> s->lock -> MSI-X lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/pci_regs.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/ivshmem/ivshmem_int.h"
#include "vmm/cli.h"
#include "vmm/vm.h"

/* After the first eventfd for our own vectors, how long the setup waits
 * for the rest when the server has fewer vectors than the device. */
#define IVSHMEM_VECTOR_GRACE_NS 100000000LL
#define IVSHMEM_MAX_WARN	8 /* stderr lines per device about the running link */

static void ivshmem_warn(struct ivshmem *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void ivshmem_warn(struct ivshmem *s, const char *fmt, ...)
{
	va_list ap;

	if (s->nwarn++ >= IVSHMEM_MAX_WARN)
		return;
	fprintf(stderr, "kvmini: %s: ", s->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- registers ---- */

uint32_t ivshmem_reg_read(struct ivshmem *s, uint64_t off)
{
	uint32_t v = 0;

	pthread_mutex_lock(&s->lock);
	switch (off) {
	case IVSHMEM_REG_INTRMASK:
		v = s->intrmask;
		break;
	case IVSHMEM_REG_INTRSTATUS:
		/* Read-to-clear (spec); only revision 0 devices without MSI-X
		 * ever set it, so a guest sees what it wrote last. */
		v = s->intrstatus;
		s->intrstatus = 0;
		break;
	case IVSHMEM_REG_IVPOSITION:
		v = s->ivposition;
		break;
	default: /* DOORBELL is write-only; reserved space reads 0 */
		break;
	}
	pthread_mutex_unlock(&s->lock);
	return v;
}

/* Ring vector @vec of peer @id (or our own, for a doorbell to ourselves).
 * s->lock held. A peer that is gone or has no such vector: dropped. */
static void ivshmem_ring(struct ivshmem *s, unsigned id, unsigned vec)
{
	struct ivshmem_peer *p;
	uint64_t one = 1;
	int fd = -1;

	if (s->doorbell && id == s->ivposition) {
		if (vec < s->own_vectors)
			fd = msix_vector_fd(&s->msix, vec);
	} else if ((p = ivshmem_peer_find(&s->peers, id)) && vec < p->nvec) {
		fd = p->fd[vec];
	}
	if (fd >= 0 && write(fd, &one, sizeof(one)) != sizeof(one))
		ivshmem_warn(s, "doorbell to peer %u vector %u failed: %s", id, vec,
			     strerror(errno));
}

void ivshmem_reg_write(struct ivshmem *s, uint64_t off, uint32_t val)
{
	pthread_mutex_lock(&s->lock);
	switch (off) {
	case IVSHMEM_REG_INTRMASK:
		s->intrmask = val;
		break;
	case IVSHMEM_REG_INTRSTATUS:
		s->intrstatus = val;
		break;
	case IVSHMEM_REG_DOORBELL:
		/* ivshmem-plain ignores it: no interrupts configured. */
		if (s->doorbell)
			ivshmem_ring(s, val >> 16, val & 0xffff);
		break;
	default: /* IVPOSITION is read-only */
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

/* BAR 0. Registers are 32 bits: other widths and misaligned accesses read
 * 0 and are dropped (QEMU widens them; no driver uses them). */
static void ivshmem_regs_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct ivshmem *s = opaque;
	uint32_t v;

	if (len != 4 || (off & 3)) {
		if (!is_write)
			memset(data, 0, len);
		return;
	}
	if (is_write) {
		memcpy(&v, data, 4);
		ivshmem_reg_write(s, off, v);
	} else {
		v = ivshmem_reg_read(s, off);
		memcpy(data, &v, 4);
	}
}

/* ---- doorbell ioeventfds ---- */

/* Attach or detach the ioeventfd of (@id, @vec) on @fd at the doorbell.
 * Returns whether it is attached afterwards. s->lock held. */
static bool ivshmem_ioeventfd(struct ivshmem *s, unsigned id, unsigned vec, int fd, bool assign)
{
	const struct kvm_irq_ops *k = s->env.host->kvm;
	int r;

	if (!k->ioeventfd_datamatch || s->doorbell_addr == PCI_BAR_UNMAPPED)
		return false;
	r = k->ioeventfd_datamatch(s->env.host->kvm_opaque, s->doorbell_addr, 4,
				   ivshmem_doorbell_value(id, vec), fd, false, assign);
	if (assign && r < 0) {
		/* The exit path does the same job, only slower. */
		if (s->nioeventfd_errors++ == 0)
			ivshmem_warn(s,
				     "KVM ioeventfd for the doorbell failed (%s): doorbells go "
				     "through kvmini",
				     strerror(-r));
		return false;
	}
	return assign;
}

/* Attach (@assign) or detach every doorbell ioeventfd. s->lock held. */
static void ivshmem_ioeventfds_all(struct ivshmem *s, bool assign)
{
	for (unsigned i = 0; i < s->peers.n; i++) {
		struct ivshmem_peer *p = &s->peers.p[i];

		for (unsigned v = 0; v < p->nvec; v++)
			if (p->ioeventfd[v] != assign)
				p->ioeventfd[v] = ivshmem_ioeventfd(s, p->id, v, p->fd[v], assign);
	}
	for (unsigned v = 0; v < s->own_vectors; v++)
		if (s->self_ioeventfd[v] != assign)
			s->self_ioeventfd[v] = ivshmem_ioeventfd(
			    s, s->ivposition, v, msix_vector_fd(&s->msix, v), assign);
}

/* BAR 0 moved: move the doorbell's ioeventfds. PCI config lock held. */
static void ivshmem_regs_map(void *opaque, uint64_t addr)
{
	struct ivshmem *s = opaque;

	pthread_mutex_lock(&s->lock);
	ivshmem_ioeventfds_all(s, false);
	s->doorbell_addr =
	    addr == PCI_BAR_UNMAPPED ? PCI_BAR_UNMAPPED : addr + IVSHMEM_REG_DOORBELL;
	ivshmem_ioeventfds_all(s, true);
	pthread_mutex_unlock(&s->lock);
}

/* ---- BAR 2: the shared memory ---- */

static bool ivshmem_overlaps_ram(const struct ivshmem *s, uint64_t gpa)
{
	if (!s->env.mem)
		return false;
	for (int i = 0; i < s->env.mem->nregions; i++) {
		const struct guest_mem_region *r = &s->env.mem->regions[i];

		if (gpa < r->gpa + r->size && r->gpa < gpa + s->shm_size)
			return true;
	}
	return false;
}

/* BAR 2 moved: move the KVM memory slot. PCI config lock held. */
static void ivshmem_shm_map(void *opaque, uint64_t addr)
{
	struct ivshmem *s = opaque;
	int r;

	if (s->shm_gpa != PCI_BAR_UNMAPPED) {
		r = s->env.mem_map(s->env.opaque, s->slot, s->shm_gpa, 0, NULL);
		if (r < 0)
			ivshmem_warn(s, "cannot remove the shared memory slot: %s", strerror(-r));
		s->shm_gpa = PCI_BAR_UNMAPPED;
	}
	if (addr == PCI_BAR_UNMAPPED)
		return;
	if (ivshmem_overlaps_ram(s, addr)) {
		/* KVM refuses overlapping slots; RAM wins there anyway. */
		ivshmem_warn(s, "BAR 2 at 0x%llx overlaps RAM: shared memory not mapped",
			     (unsigned long long)addr);
		return;
	}
	r = s->env.mem_map(s->env.opaque, s->slot, addr, s->shm_size, s->shm);
	if (r < 0) {
		ivshmem_warn(s,
			     "cannot map the shared memory at 0x%llx: %s (accesses go through "
			     "kvmini)",
			     (unsigned long long)addr, strerror(-r));
		return;
	}
	s->shm_gpa = addr;
}

/* BAR 2 accesses that reach kvmini: only if the slot could not be made. */
static void ivshmem_shm_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct ivshmem *s = opaque;

	if (is_write)
		memcpy((uint8_t *)s->shm + off, data, len);
	else
		memcpy(data, (uint8_t *)s->shm + off, len);
}

/* ---- the server's messages ---- */

/*
 * Apply one classified message. Main thread (realize or the fd handler).
 * Takes @fd. Returns the event or -errno with @err.
 */
static int ivshmem_handle_msg(struct ivshmem *s, int64_t msg, int fd, struct errbuf *err)
{
	unsigned peer = 0;
	int ev, r;

	ev = ivshmem_client_classify(&s->client, msg, fd, &peer, err);
	if (ev < 0) {
		if (fd >= 0)
			close(fd);
		return ev;
	}
	switch (ev) {
	case IVSHMEM_EV_ID:
		pthread_mutex_lock(&s->lock);
		s->ivposition = (uint32_t)s->client.id;
		pthread_mutex_unlock(&s->lock);
		break;
	case IVSHMEM_EV_SHM:
		s->shm_fd = fd;
		break;
	case IVSHMEM_EV_OWN_VECTOR:
		s->server_vectors++;
		if (s->own_vectors == s->cfg.vectors ||
		    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
			close(fd); /* more vectors than ours: unused (as QEMU) */
			break;
		}
		msix_vector_set_fd(&s->msix, s->own_vectors, fd);
		pthread_mutex_lock(&s->lock);
		s->self_ioeventfd[s->own_vectors] =
		    ivshmem_ioeventfd(s, s->ivposition, s->own_vectors, fd, true);
		s->own_vectors++;
		pthread_mutex_unlock(&s->lock);
		break;
	case IVSHMEM_EV_PEER_VECTOR: {
		struct ivshmem_peer *p;

		/* A server decides how many fds we hold: bound them. Peers
		 * beyond the table's limit end the link (the server is broken
		 * or hostile); vectors beyond the device's cannot be rung by
		 * its guest and are closed (as QEMU). */
		pthread_mutex_lock(&s->lock);
		p = ivshmem_peer_find(&s->peers, peer);
		if (!p && s->peers.n >= IVSHMEM_MAX_PEERS) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			return err_set(err, EPROTO, "announced more than %d peers",
				       IVSHMEM_MAX_PEERS);
		}
		if (p && p->nvec >= s->cfg.vectors) {
			pthread_mutex_unlock(&s->lock);
			close(fd);
			if (!s->warned_vectors)
				ivshmem_warn(s,
					     "ivshmem server '%s' gives peer %u more than this "
					     "device's %u vectors: the extra eventfds are closed",
					     s->cfg.path, peer, s->cfg.vectors);
			s->warned_vectors = true;
			break;
		}
		r = ivshmem_peer_add_fd(&s->peers, peer, fd);
		if (r >= 0) {
			p = ivshmem_peer_find(&s->peers, peer);
			p->ioeventfd[r] = ivshmem_ioeventfd(s, peer, (unsigned)r, fd, true);
		}
		pthread_mutex_unlock(&s->lock);
		if (r < 0)
			close(fd); /* out of memory */
		break;
	}
	case IVSHMEM_EV_PEER_GONE: {
		struct ivshmem_peer gone;

		pthread_mutex_lock(&s->lock);
		r = ivshmem_peer_remove(&s->peers, peer, &gone);
		if (r == 0)
			for (unsigned v = 0; v < gone.nvec; v++)
				if (gone.ioeventfd[v])
					ivshmem_ioeventfd(s, peer, v, gone.fd[v], false);
		pthread_mutex_unlock(&s->lock);
		if (r == 0)
			ivshmem_peer_close(&gone);
		break;
	}
	default:
		break;
	}
	return ev;
}

static void ivshmem_sock_close(struct ivshmem *s)
{
	if (s->sock < 0)
		return;
	if (s->sock_handler)
		aio_set_fd_handler(s->env.ctx, s->sock, NULL, NULL, NULL);
	s->sock_handler = false;
	close(s->sock);
	s->sock = -1;
	ivshmem_msg_reader_reset(&s->rd);
}

/* The server's messages after setup: peers joining and leaving. Main loop. */
static void ivshmem_sock_read(void *opaque)
{
	struct ivshmem *s = opaque;
	struct errbuf err;
	int64_t msg;
	int fd, r;

	while ((r = ivshmem_msg_recv(s->sock, &s->rd, &msg, &fd)) > 0) {
		if (ivshmem_handle_msg(s, msg, fd, &err) < 0) {
			ivshmem_warn(s, "ivshmem server '%s' %s; disconnected from it", s->cfg.path,
				     err.msg);
			ivshmem_sock_close(s);
			return;
		}
	}
	if (r == 0)
		return;
	if (r == -EPIPE)
		ivshmem_warn(s,
			     "ivshmem server '%s' closed the connection: known peers stay "
			     "reachable, new ones will not be seen",
			     s->cfg.path);
	else
		ivshmem_warn(s, "ivshmem server '%s': %s; disconnected from it", s->cfg.path,
			     r == -EPROTO ? "bad control message" : strerror(-r));
	ivshmem_sock_close(s);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Wait until @sock is ready for @events or @deadline passes: 1 ready, 0 timeout. */
static int ivshmem_wait(int sock, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = sock, .events = events};
		int64_t left = deadline - now_ns();
		int r;

		if (left <= 0)
			return 0;
		r = poll(&p, 1, (int)((left + 999999) / 1000000));
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

static int ivshmem_connect(struct ivshmem *s, int64_t deadline, struct errbuf *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int r, e;
	socklen_t elen = sizeof(e);

	if (strlen(s->cfg.path) >= sizeof(a.sun_path))
		return err_set(err, ENAMETOOLONG, "%s: server socket path '%s' is too long",
			       s->name, s->cfg.path);
	memcpy(a.sun_path, s->cfg.path, strlen(s->cfg.path) + 1);
	s->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->sock < 0)
		return err_set(err, errno, "%s: socket: %s", s->name, strerror(errno));
	if (connect(s->sock, (struct sockaddr *)&a, sizeof(a)) == 0)
		return 0;
	if (errno != EINPROGRESS && errno != EAGAIN)
		return err_set(err, errno, "%s: cannot connect to ivshmem server '%s': %s", s->name,
			       s->cfg.path, strerror(errno));
	/* A full listen backlog: wait, within the setup's deadline. */
	r = ivshmem_wait(s->sock, POLLOUT, deadline);
	if (r == 0)
		return err_set(
		    err, ETIMEDOUT,
		    "%s: ivshmem server '%s' did not accept the connection within %llu s", s->name,
		    s->cfg.path, (unsigned long long)(s->cfg.timeout_ns / 1000000000ULL));
	if (r < 0 || getsockopt(s->sock, SOL_SOCKET, SO_ERROR, &e, &elen) < 0 || e)
		return err_set(err,
			       r < 0 ? -r
			       : e   ? e
				     : errno,
			       "%s: cannot connect to ivshmem server '%s': %s", s->name,
			       s->cfg.path,
			       strerror(r < 0 ? -r
					: e   ? e
					      : errno));
	return 0;
}

/* Map s->shm_fd (and close it). */
static int ivshmem_map_shm(struct ivshmem *s, struct errbuf *err)
{
	char what[IVSHMEM_PATH_MAX + 64];
	struct stat st;
	uint64_t n;

	snprintf(what, sizeof(what),
		 s->doorbell ? "the shared memory from ivshmem server '%s'" : "'%s'", s->cfg.path);
	if (fstat(s->shm_fd, &st) < 0)
		return err_set(err, errno, "%s: cannot stat %s: %s", s->name, what,
			       strerror(errno));
	n = (uint64_t)st.st_size;
	if (n < 4096 || n > IVSHMEM_MAX_SIZE || (n & (n - 1)))
		return err_set(err, EINVAL,
			       "%s: %s is %llu bytes: a BAR needs a power of two from 4K to 1T",
			       s->name, what, (unsigned long long)n);
	s->shm = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_SHARED, s->shm_fd, 0);
	if (s->shm == MAP_FAILED) {
		s->shm = NULL;
		return err_set(err, errno, "%s: cannot map %s: %s", s->name, what, strerror(errno));
	}
	s->shm_size = n;
	close(s->shm_fd);
	s->shm_fd = -1;
	return 0;
}

static const char *ivshmem_setup_stage(const struct ivshmem *s)
{
	switch (s->client.state) {
	case IVSHMEM_WANT_VERSION:
		return "nothing";
	case IVSHMEM_WANT_ID:
		return "only the protocol version";
	case IVSHMEM_WANT_SHM:
		return "no shared memory";
	default:
		return "no interrupt eventfds";
	}
}

/*
 * Receive the server's setup synchronously: version, our ID, the shared
 * memory (mapped at once, so a bad size fails here), the peers' eventfds
 * and our own vectors' eventfds. Done when all
 * our vectors have an eventfd, or (a server with fewer vectors than the
 * device) when no more came for IVSHMEM_VECTOR_GRACE_NS after the first.
 * Main thread at realize, before any vCPU exists.
 */
static int ivshmem_setup(struct ivshmem *s, struct errbuf *err)
{
	int64_t deadline = now_ns() + (int64_t)s->cfg.timeout_ns, grace = 0;
	struct errbuf perr;
	int64_t msg;
	int r, fd;

	r = ivshmem_connect(s, deadline, err);
	if (r < 0)
		return r;
	while (s->own_vectors < s->cfg.vectors) {
		int64_t until = deadline;

		if (s->own_vectors && grace < deadline)
			until = grace;
		r = ivshmem_msg_recv(s->sock, &s->rd, &msg, &fd);
		if (r == 0) {
			r = ivshmem_wait(s->sock, POLLIN, until);
			if (r > 0)
				continue;
			if (r == 0 && s->own_vectors)
				break; /* a server with fewer vectors: use what we got */
			if (r == 0)
				return err_set(
				    err, ETIMEDOUT,
				    "%s: ivshmem server '%s' did not complete the setup "
				    "within %llu s (got %s)",
				    s->name, s->cfg.path,
				    (unsigned long long)(s->cfg.timeout_ns / 1000000000ULL),
				    ivshmem_setup_stage(s));
		}
		if (r == -EPIPE)
			return err_set(err, EPIPE,
				       "%s: ivshmem server '%s' closed the connection during setup "
				       "(got %s)",
				       s->name, s->cfg.path, ivshmem_setup_stage(s));
		if (r < 0)
			return err_set(err, -r, "%s: ivshmem server '%s': %s during setup", s->name,
				       s->cfg.path,
				       r == -EPROTO ? "bad control message" : strerror(-r));
		r = ivshmem_handle_msg(s, msg, fd, &perr);
		if (r < 0)
			return err_set(err, -r, "%s: ivshmem server '%s' %s", s->name, s->cfg.path,
				       perr.msg);
		if (r == IVSHMEM_EV_SHM) {
			r = ivshmem_map_shm(s, err);
			if (r < 0)
				return r;
		}
		if (r == IVSHMEM_EV_OWN_VECTOR && s->own_vectors == 1)
			grace = now_ns() + IVSHMEM_VECTOR_GRACE_NS;
	}
	return 0;
}

/* ---- shared memory for ivshmem-plain ---- */

static int ivshmem_open_plain(struct ivshmem *s, struct errbuf *err)
{
	const char *what = s->cfg.backend == IVSHMEM_BACKEND_SHM ? "shm object" : "file";
	struct stat st;
	int fd;

	/* Not through a link: one planted in a shared directory would hand
	 * the guest another file (as ivshmem-server --path). */
	if (s->cfg.backend == IVSHMEM_BACKEND_SHM)
		fd = shm_open(s->cfg.path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	else
		fd = open(s->cfg.path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errno, "%s: cannot open %s '%s': %s", s->name, what,
			       s->cfg.path,
			       errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		err_set(err, EINVAL, "%s: %s '%s' is not a regular file", s->name, what,
			s->cfg.path);
		goto fail;
	}
	if (st.st_size == 0) {
		if (!s->cfg.size) {
			err_set(err, EINVAL, "%s: %s '%s' is empty and no size= was given", s->name,
				what, s->cfg.path);
			goto fail;
		}
		if (ftruncate(fd, (off_t)s->cfg.size) < 0) {
			err_set(err, errno, "%s: cannot size %s '%s': %s", s->name, what,
				s->cfg.path, strerror(errno));
			goto fail;
		}
		st.st_size = (off_t)s->cfg.size;
	} else if (s->cfg.size && (uint64_t)st.st_size != s->cfg.size) {
		err_set(err, EINVAL, "%s: %s '%s' is %lld bytes, not size=%llu", s->name, what,
			s->cfg.path, (long long)st.st_size, (unsigned long long)s->cfg.size);
		goto fail;
	}
	s->shm_fd = fd;
	return 0;
fail:
	close(fd);
	return -EINVAL;
}

/* ---- life cycle ---- */

static void ivshmem_config_write(void *opaque, uint32_t off, uint32_t len)
{
	struct ivshmem *s = opaque;

	if (s->doorbell)
		msix_config_write(&s->msix, off, len);
}

void ivshmem_destroy(struct ivshmem *s)
{
	if (!s)
		return;
	ivshmem_sock_close(s);
	if (s->pdev) /* unmaps the BARs: slot and ioeventfds go */
		pci_unregister_device(s->pdev);
	msix_exit(&s->msix);
	ivshmem_peers_free(&s->peers);
	if (s->shm_fd >= 0)
		close(s->shm_fd);
	if (s->shm)
		munmap(s->shm, s->shm_size);
	if (s->env.slot_free && s->slot >= 0)
		s->env.slot_free(s->env.opaque, s->slot);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

int ivshmem_create(const struct ivshmem_env *env, unsigned index, const struct ivshmem_config *cfg,
		   struct ivshmem **out, struct errbuf *err)
{
	struct ivshmem *s = calloc(1, sizeof(*s));
	struct pci_region reg;
	int r;

	if (!s)
		return err_set(err, ENOMEM, "ivshmem: out of memory");
	s->env = *env;
	s->cfg = *cfg;
	s->doorbell = cfg->backend == IVSHMEM_BACKEND_SERVER;
	s->sock = s->shm_fd = s->slot = -1;
	s->shm_gpa = s->doorbell_addr = PCI_BAR_UNMAPPED;
	pthread_mutex_init(&s->lock, NULL);
	ivshmem_msg_reader_init(&s->rd);
	ivshmem_client_init(&s->client);
	snprintf(s->name, sizeof(s->name), "ivshmem%u", index);
	s->info = (struct pci_device_info){
	    .name = s->name,
	    .vendor_id = IVSHMEM_VENDOR_ID,
	    .device_id = IVSHMEM_DEVICE_ID,
	    .subsystem_vendor_id = 0x1af4, /* QEMU's: Red Hat, QEMU */
	    .subsystem_id = 0x1100,
	    .revision = IVSHMEM_REVISION,
	    .class_code = IVSHMEM_CLASS,
	    .config_write = ivshmem_config_write,
	};
	if (env->slot_alloc) {
		s->slot = env->slot_alloc(env->opaque);
		if (s->slot < 0) {
			r = err_set(err, ENOSPC, "%s: no free KVM memory slot", s->name);
			goto fail;
		}
	}
	r = pci_host_add_device(env->host, &s->info, s, &s->pdev, err);
	if (r < 0)
		goto fail;
	r = pci_add_bar(s->pdev, 0, PCI_BAR_MEM32, IVSHMEM_BAR0_SIZE, false, err);
	if (r < 0)
		goto fail;
	reg = (struct pci_region){.offset = 0,
				  .len = IVSHMEM_BAR0_SIZE, /* reserved space reads 0 */
				  .fn = ivshmem_regs_io,
				  .opaque = s,
				  .map = ivshmem_regs_map,
				  .name = "ivshmem-regs"};
	r = pci_bar_add_region(s->pdev, 0, &reg, err);
	if (r < 0)
		goto fail;
	if (s->doorbell) {
		r = pci_add_bar(s->pdev, 1, PCI_BAR_MEM32, IVSHMEM_BAR1_SIZE, false, err);
		if (r < 0)
			goto fail;
		r = msix_init(&s->msix, s->pdev, &env->host->msi, cfg->vectors, 1, 0,
			      IVSHMEM_PBA_OFFSET, err);
		if (r < 0)
			goto fail;
		r = ivshmem_setup(s, err);
	} else {
		r = ivshmem_open_plain(s, err);
		if (r == 0)
			r = ivshmem_map_shm(s, err);
	}
	if (r < 0)
		goto fail;
	if (cfg->role == IVSHMEM_ROLE_MASTER && env->snap_mem) {
		r = env->snap_mem(env->opaque, s->name, s->shm, s->shm_size, err);
		if (r < 0)
			goto fail;
	}
	/* 64-bit prefetchable, as QEMU: large shared memory fits above RAM. */
	r = pci_add_bar(s->pdev, 2, PCI_BAR_MEM64, s->shm_size, true, err);
	if (r < 0)
		goto fail;
	reg = (struct pci_region){.offset = 0,
				  .len = s->shm_size,
				  .fn = ivshmem_shm_io,
				  .opaque = s,
				  .map = ivshmem_shm_map,
				  .name = "ivshmem-shm"};
	r = pci_bar_add_region(s->pdev, 2, &reg, err);
	if (r < 0)
		goto fail;
	if (s->doorbell) {
		r = aio_set_fd_handler(env->ctx, s->sock, ivshmem_sock_read, NULL, s);
		if (r < 0) {
			err_set(err, -r, "%s: cannot watch the server socket: %s", s->name,
				strerror(-r));
			goto fail;
		}
		s->sock_handler = true;
	}
	*out = s;
	return 0;
fail:
	ivshmem_destroy(s);
	return r;
}

/* ---- snapshot ---- */

#define IVSHMEM_SNAP_VERSION 1

/* The state: this header, then for a doorbell device the MSI-X table
 * (vectors entries) and pending bits (msix_pba_size(vectors) bytes). */
struct ivshmem_snap {
	uint32_t version;
	uint32_t doorbell;
	uint64_t shm_size;
	uint32_t intrmask;
	uint32_t intrstatus;
	uint32_t ivposition; /* informational: a restored device keeps its new ID */
	uint32_t vectors;
	uint8_t pci_config[PCI_CFG_SIZE];
};

static size_t ivshmem_snap_size(const struct ivshmem *s)
{
	return sizeof(struct ivshmem_snap) +
	       (s->doorbell ? msix_table_size(s->cfg.vectors) + msix_pba_size(s->cfg.vectors) : 0);
}

int ivshmem_save(void *state, void *buf, size_t len)
{
	struct ivshmem *s = state;
	struct ivshmem_snap h = {.version = IVSHMEM_SNAP_VERSION,
				 .doorbell = s->doorbell,
				 .shm_size = s->shm_size,
				 .vectors = s->doorbell ? s->cfg.vectors : 0};
	uint8_t *b = buf;

	if (len < ivshmem_snap_size(s))
		return -ENOSPC;
	memset(buf, 0, ivshmem_snap_size(s));
	pthread_mutex_lock(&s->lock);
	h.intrmask = s->intrmask;
	h.intrstatus = s->intrstatus;
	h.ivposition = s->ivposition;
	pthread_mutex_unlock(&s->lock);
	pci_device_save_config(s->pdev, h.pci_config);
	if (s->doorbell)
		msix_save(&s->msix, (struct msix_entry *)(b + sizeof(h)),
			  (uint64_t *)(b + sizeof(h) + msix_table_size(s->cfg.vectors)));
	memcpy(buf, &h, sizeof(h));
	return (int)ivshmem_snap_size(s);
}

int ivshmem_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	struct ivshmem *s = state;
	const struct msix_entry *table = NULL;
	const uint64_t *pending = NULL;
	struct ivshmem_snap h;
	void *copy = NULL;
	int r;

	if (len < sizeof(h))
		return err_set(err, EINVAL, "%s: state is %zu bytes, too short", s->name, len);
	memcpy(&h, buf, sizeof(h));
	if (h.version != IVSHMEM_SNAP_VERSION)
		return err_set(err, EINVAL, "%s: state version %u, expected %u", s->name, h.version,
			       IVSHMEM_SNAP_VERSION);
	if (h.doorbell != s->doorbell || h.vectors != (s->doorbell ? s->cfg.vectors : 0))
		return err_set(err, EINVAL,
			       "%s: the snapshot's device is %s with %u vectors, this one %s with "
			       "%u (use the same --ivshmem options)",
			       s->name, h.doorbell ? "ivshmem-doorbell" : "ivshmem-plain",
			       h.vectors, s->doorbell ? "ivshmem-doorbell" : "ivshmem-plain",
			       s->doorbell ? s->cfg.vectors : 0);
	if (h.shm_size != s->shm_size)
		return err_set(err, EINVAL,
			       "%s: the snapshot's shared memory was %llu bytes, this one is %llu",
			       s->name, (unsigned long long)h.shm_size,
			       (unsigned long long)s->shm_size);
	if (len != ivshmem_snap_size(s))
		return err_set(err, EINVAL, "%s: state is %zu bytes, expected %zu", s->name, len,
			       ivshmem_snap_size(s));
	if (s->doorbell) {
		/* An aligned copy: the table and bits sit at arbitrary offsets in @buf. */
		copy = malloc(len - sizeof(h));
		if (!copy)
			return err_set(err, ENOMEM, "%s: out of memory", s->name);
		memcpy(copy, (const uint8_t *)buf + sizeof(h), len - sizeof(h));
		table = copy;
		pending = (const uint64_t *)((uint8_t *)copy + msix_table_size(s->cfg.vectors));
		r = msix_check(&s->msix, table, pending, err);
		if (r < 0)
			goto out;
	}
	r = pci_device_load_config(s->pdev, h.pci_config, err);
	if (r < 0)
		goto out;
	if (s->doorbell)
		msix_load(&s->msix, table, pending);
	pthread_mutex_lock(&s->lock);
	s->intrmask = h.intrmask;
	s->intrstatus = h.intrstatus;
	/* IVPOSITION stays the ID this device got from the server at realize:
	 * peers know it by that one now (docs/devices.md). */
	pthread_mutex_unlock(&s->lock);
out:
	free(copy);
	return r;
}

/* ---- as a kvmini device ---- */

static int ivshmem_vm_slot_alloc(void *opaque)
{
	return vm_mem_slot_alloc(opaque);
}

static void ivshmem_vm_slot_free(void *opaque, int slot)
{
	vm_mem_slot_free(opaque, slot);
}

static int ivshmem_vm_mem_map(void *opaque, int slot, uint64_t gpa, uint64_t size, void *host)
{
	return vm_mem_slot_map(opaque, slot, gpa, size, host);
}

static int ivshmem_vm_snap_mem(void *opaque, const char *name, void *host, uint64_t size,
			       struct errbuf *err)
{
	return vm_add_snapshot_mem(opaque, name, host, size, err);
}

static bool ivshmem_is_ops(const struct device_ops *ops)
{
	return ops == &ivshmem_plain_ops || ops == &ivshmem_doorbell_ops;
}

static int ivshmem_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct ivshmem_config *cfg = malloc(sizeof(*cfg));
	struct ivshmem_env env = {
	    .host = vm->pci,
	    .ctx = vm->main_ctx,
	    .mem = &vm->mem,
	    .opaque = vm,
	    .slot_alloc = ivshmem_vm_slot_alloc,
	    .slot_free = ivshmem_vm_slot_free,
	    .mem_map = ivshmem_vm_mem_map,
	    .snap_mem = ivshmem_vm_snap_mem,
	};
	unsigned index = 0;
	int r;

	if (!cfg)
		return err_set(err, ENOMEM, "ivshmem: out of memory");
	if (!vm->pci) {
		free(cfg);
		return err_set(err, ENODEV, "ivshmem: the VM has no PCI host bridge");
	}
	for (int i = 0; i < vm->ndevices; i++)
		if (ivshmem_is_ops(vm->devices[i].ops))
			index++;
	r = ivshmem_config_parse(opts, cfg, err);
	if (r == 0)
		r = ivshmem_create(&env, index, cfg, (struct ivshmem **)state, err);
	free(cfg);
	return r;
}

static void ivshmem_exit(void *state)
{
	ivshmem_destroy(state);
}

const struct device_ops ivshmem_plain_ops = {
    .name = "ivshmem-plain",
    .realize = ivshmem_realize,
    .save = ivshmem_save,
    .load = ivshmem_load,
    .exit = ivshmem_exit,
};

const struct device_ops ivshmem_doorbell_ops = {
    .name = "ivshmem-doorbell",
    .realize = ivshmem_realize,
    .save = ivshmem_save,
    .load = ivshmem_load,
    .exit = ivshmem_exit,
};

const struct device_ops *ivshmem_ops_for(const char *opts)
{
	struct ivshmem_config *cfg = malloc(sizeof(*cfg));
	struct errbuf err;
	const struct device_ops *ops = NULL;

	if (cfg && ivshmem_config_parse(opts, cfg, &err) == 0)
		ops = cfg->backend == IVSHMEM_BACKEND_SERVER ? &ivshmem_doorbell_ops
							     : &ivshmem_plain_ops;
	free(cfg);
	return ops;
}
