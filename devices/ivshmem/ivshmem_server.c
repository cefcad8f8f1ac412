// SPDX-License-Identifier: MIT
/*
 * `kvmini ivshmem-server`: shared memory and doorbell eventfds for kvmini's
 * and QEMU's ivshmem-doorbell devices, speaking the protocol of QEMU's
 * contrib/ivshmem-server (version 0; see ivshmem.h). Everything runs on one
 * AioContext on the main thread: the listening socket, one fd handler per
 * client, and a signalfd for SIGINT/SIGTERM/SIGHUP.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "aio/aio.h"
#include "devices/ivshmem/ivshmem.h"

#define IVS_ID_SPACE (IVSHMEM_MAX_ID + 1)

struct ivs_peer {
	struct ivshmem_server *srv;
	int sock;
	unsigned id;
	bool dead; /* a send failed: drop it once the current broadcast ends */
	int efd[IVSHMEM_MAX_VECTORS];
};

struct ivshmem_server {
	const struct ivshmem_server_config *cfg;
	struct aio_context *ctx;
	int listen_fd;
	int shm_fd;
	bool bound; /* we created cfg->socket: remove it at the end */
	struct ivs_peer *peers[IVSHMEM_SERVER_MAX_PEERS];
	unsigned npeers;
	unsigned next_id;
};

int ivshmem_server_open_shm(const struct ivshmem_server_config *cfg, struct errbuf *err)
{
	const char *what = cfg->shm ? "shm object" : "file",
		   *name = cfg->shm ? cfg->shm : cfg->path;
	struct stat st;
	int fd;

	/* Never through a symbolic link: a link planted at a shared path
	 * must not hand the guests another file. */
	if (cfg->shm)
		fd = shm_open(cfg->shm, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	else
		fd = open(cfg->path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return err_set(err, errno, "ivshmem-server: cannot open %s '%s': %s", what, name,
			       errno == ELOOP ? "it is a symbolic link" : strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, EINVAL, "ivshmem-server: %s '%s' is not a regular file", what,
			       name);
	}
	/* Only a new (empty) file is sized: one with data is someone's
	 * memory, kept as it is or refused, never truncated. */
	if (st.st_size != 0 && (uint64_t)st.st_size != cfg->size) {
		close(fd);
		return err_set(err, EEXIST,
			       "ivshmem-server: %s '%s' exists with %lld bytes, not --size %llu "
			       "(remove it or give its size)",
			       what, name, (long long)st.st_size, (unsigned long long)cfg->size);
	}
	if (st.st_size == 0 && ftruncate(fd, (off_t)cfg->size) < 0) {
		int e = errno;

		close(fd);
		return err_set(err, e, "ivshmem-server: cannot size %s '%s': %s", what, name,
			       strerror(e));
	}
	return fd;
}

static void ivs_peer_free(struct ivs_peer *p)
{
	aio_set_fd_handler(p->srv->ctx, p->sock, NULL, NULL, NULL);
	close(p->sock);
	for (unsigned v = 0; v < p->srv->cfg->vectors; v++)
		if (p->efd[v] >= 0)
			close(p->efd[v]);
	free(p);
}

/* Send to @p; a failure marks it dead (dropped by ivs_reap). */
static void ivs_send(struct ivs_peer *p, int64_t msg, int fd)
{
	if (p->dead)
		return;
	if (ivshmem_msg_send(p->sock, msg, fd) < 0)
		p->dead = true;
}

static void ivs_drop(struct ivshmem_server *srv, unsigned i, const char *why)
{
	struct ivs_peer *p = srv->peers[i];
	unsigned id = p->id;

	fprintf(stderr, "ivshmem-server: peer %u %s\n", id, why);
	srv->peers[i] = srv->peers[--srv->npeers];
	ivs_peer_free(p);
	/* A peer ID without an fd: that peer left. */
	for (unsigned j = 0; j < srv->npeers; j++)
		ivs_send(srv->peers[j], id, -1);
}

/* Drop peers whose sockets failed; each drop is announced, which may fail
 * more. */
static void ivs_reap(struct ivshmem_server *srv)
{
	bool again = true;

	while (again) {
		again = false;
		for (unsigned i = 0; i < srv->npeers; i++)
			if (srv->peers[i]->dead) {
				ivs_drop(srv, i, "left (its socket failed)");
				again = true;
				break;
			}
	}
}

/* A client's socket is readable: it closed, failed, or sent something,
 * which the one-way protocol does not allow. Either way it goes. */
static void ivs_peer_readable(void *opaque)
{
	struct ivs_peer *p = opaque;
	struct ivshmem_server *srv = p->srv;
	char buf[64];
	ssize_t n = recv(p->sock, buf, sizeof(buf), MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	for (unsigned i = 0; i < srv->npeers; i++)
		if (srv->peers[i] == p) {
			ivs_drop(srv, i, n > 0 ? "sent data: disconnected" : "left");
			break;
		}
	ivs_reap(srv);
}

static bool ivs_id_used(const struct ivshmem_server *srv, unsigned id)
{
	for (unsigned i = 0; i < srv->npeers; i++)
		if (srv->peers[i]->id == id)
			return true;
	return false;
}

static void ivs_accept(void *opaque)
{
	struct ivshmem_server *srv = opaque;
	unsigned nvec = srv->cfg->vectors, id;
	struct ivs_peer *p;
	int sock = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (sock < 0)
		return;
	if (srv->npeers == IVSHMEM_SERVER_MAX_PEERS) {
		fprintf(stderr, "ivshmem-server: %d peers already: connection refused\n",
			IVSHMEM_SERVER_MAX_PEERS);
		close(sock);
		return;
	}
	/* npeers < IVS_ID_SPACE, so a free ID exists. */
	for (id = srv->next_id % IVS_ID_SPACE; ivs_id_used(srv, id); id = (id + 1) % IVS_ID_SPACE)
		;
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(sock);
		return;
	}
	p->srv = srv;
	p->sock = sock;
	p->id = id;
	for (unsigned v = 0; v < IVSHMEM_MAX_VECTORS; v++)
		p->efd[v] = -1;
	for (unsigned v = 0; v < nvec; v++) {
		p->efd[v] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (p->efd[v] < 0) {
			fprintf(stderr, "ivshmem-server: eventfd: %s: connection refused\n",
				strerror(errno));
			ivs_peer_free(p);
			return;
		}
	}
	if (aio_set_fd_handler(srv->ctx, sock, ivs_peer_readable, NULL, p) < 0) {
		ivs_peer_free(p);
		return;
	}
	srv->next_id = id + 1;
	/* The order QEMU's server uses: setup, tell the others, tell the new
	 * one about the others, then its own vectors (which end its setup). */
	ivs_send(p, IVSHMEM_PROTOCOL_VERSION, -1);
	ivs_send(p, id, -1);
	ivs_send(p, -1, srv->shm_fd);
	for (unsigned i = 0; i < srv->npeers; i++)
		for (unsigned v = 0; v < nvec; v++)
			ivs_send(srv->peers[i], id, p->efd[v]);
	for (unsigned i = 0; i < srv->npeers; i++)
		for (unsigned v = 0; v < nvec; v++)
			ivs_send(p, srv->peers[i]->id, srv->peers[i]->efd[v]);
	for (unsigned v = 0; v < nvec; v++)
		ivs_send(p, id, p->efd[v]);
	srv->peers[srv->npeers++] = p;
	fprintf(stderr, "ivshmem-server: peer %u joined\n", id);
	ivs_reap(srv);
}

static int ivs_listen(struct ivshmem_server *srv, struct errbuf *err)
{
	const char *path = srv->cfg->socket;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct stat st;
	int probe;

	if (strlen(path) >= sizeof(a.sun_path))
		return err_set(err, ENAMETOOLONG, "ivshmem-server: socket path '%s' is too long",
			       path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0)
		return err_set(err, errno, "ivshmem-server: socket: %s", strerror(errno));
	if (bind(srv->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (errno != EADDRINUSE)
			return err_set(err, errno, "ivshmem-server: cannot bind '%s': %s", path,
				       strerror(errno));
		/* Only a socket is ever replaced: anything else there is
		 * someone's file. */
		if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
			return err_set(err, EEXIST,
				       "ivshmem-server: '%s' exists and is not a socket", path);
		/* Someone listening there, or a stale file from a server that died? */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof(a)) == 0) {
			close(probe);
			return err_set(err, EADDRINUSE,
				       "ivshmem-server: socket '%s' is in use by a running server",
				       path);
		}
		if (probe >= 0)
			close(probe);
		if (unlink(path) < 0 || bind(srv->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
			return err_set(err, errno, "ivshmem-server: cannot bind '%s': %s", path,
				       strerror(errno));
	}
	srv->bound = true;
	if (listen(srv->listen_fd, 64) < 0)
		return err_set(err, errno, "ivshmem-server: listen on '%s': %s", path,
			       strerror(errno));
	return 0;
}

int ivshmem_server_new(const struct ivshmem_server_config *cfg, struct aio_context *ctx,
		       struct ivshmem_server **out, struct errbuf *err)
{
	struct ivshmem_server *srv = calloc(1, sizeof(*srv));
	int r;

	if (!srv)
		return err_set(err, ENOMEM, "ivshmem-server: out of memory");
	srv->cfg = cfg;
	srv->ctx = ctx;
	srv->listen_fd = -1;
	srv->shm_fd = ivshmem_server_open_shm(cfg, err);
	if (srv->shm_fd < 0) {
		r = srv->shm_fd;
		goto fail;
	}
	r = ivs_listen(srv, err);
	if (r < 0)
		goto fail;
	r = aio_set_fd_handler(ctx, srv->listen_fd, ivs_accept, NULL, srv);
	if (r < 0) {
		err_set(err, -r, "ivshmem-server: cannot watch the socket: %s", strerror(-r));
		goto fail;
	}
	*out = srv;
	return 0;
fail:
	ivshmem_server_free(srv);
	return r;
}

void ivshmem_server_free(struct ivshmem_server *srv)
{
	if (!srv)
		return;
	while (srv->npeers)
		ivs_peer_free(srv->peers[--srv->npeers]);
	if (srv->listen_fd >= 0) {
		aio_set_fd_handler(srv->ctx, srv->listen_fd, NULL, NULL, NULL);
		close(srv->listen_fd);
	}
	if (srv->bound)
		unlink(srv->cfg->socket);
	if (srv->shm_fd >= 0)
		close(srv->shm_fd);
	free(srv);
}

unsigned ivshmem_server_npeers(const struct ivshmem_server *srv)
{
	return srv->npeers;
}

struct ivs_main {
	int sig_fd;
	int signo;
};

static void ivs_signal(void *opaque)
{
	struct ivs_main *m = opaque;
	struct signalfd_siginfo si;

	if (read(m->sig_fd, &si, sizeof(si)) == sizeof(si))
		m->signo = (int)si.ssi_signo;
}

int ivshmem_server_main(const struct ivshmem_server_config *cfg)
{
	struct ivs_main m = {.sig_fd = -1};
	struct ivshmem_server *srv = NULL;
	struct aio_context *ctx;
	struct errbuf err;
	sigset_t set;
	int status = 125;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (aio_context_new(&ctx) < 0) {
		fprintf(stderr, "kvmini: cannot create the event loop\n");
		return status;
	}
	m.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (m.sig_fd < 0 || aio_set_fd_handler(ctx, m.sig_fd, ivs_signal, NULL, &m) < 0) {
		fprintf(stderr, "kvmini: cannot watch signals: %s\n", strerror(errno));
		goto out;
	}
	if (ivshmem_server_new(cfg, ctx, &srv, &err) < 0) {
		fprintf(stderr, "kvmini: %s\n", err.msg);
		goto out;
	}
	printf("ivshmem-server: listening on %s (%s %s, %llu bytes, %u vectors)\n", cfg->socket,
	       cfg->shm ? "shm" : "file", cfg->shm ? cfg->shm : cfg->path,
	       (unsigned long long)cfg->size, cfg->vectors);
	fflush(stdout);
	while (!m.signo)
		aio_poll(ctx, true);
	fprintf(stderr, "ivshmem-server: stopped on %s\n", strsignal(m.signo));
	status = 0;
out:
	ivshmem_server_free(srv);
	if (m.sig_fd >= 0) {
		aio_set_fd_handler(ctx, m.sig_fd, NULL, NULL, NULL);
		close(m.sig_fd);
	}
	aio_context_free(ctx);
	return status;
}
