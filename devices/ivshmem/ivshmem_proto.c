// SPDX-License-Identifier: MIT
/*
 * The ivshmem server protocol: sending and receiving its 8-byte messages
 * with SCM_RIGHTS, what each message means to a client, and the peer
 * table a client keeps. See devices/ivshmem/ivshmem.h.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/ivshmem/ivshmem.h"

void ivshmem_msg_reader_init(struct ivshmem_msg_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

void ivshmem_msg_reader_reset(struct ivshmem_msg_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	ivshmem_msg_reader_init(r);
}

/* Close every fd in a control message (all of them, whatever we keep). */
static void cmsg_close_all(struct msghdr *mh, int keep)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (fd != keep)
				close(fd);
		}
	}
}

int ivshmem_msg_recv(int sock, struct ivshmem_msg_reader *r, int64_t *msg, int *fd)
{
	while (r->have < sizeof(r->buf)) {
		/* Room for a few fds, so a server sending several is caught
		 * (and they are closed) rather than silently truncated. */
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {r->buf + r->have, sizeof(r->buf) - r->have};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		int nfds = 0, got = -1;
		ssize_t n;

		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
				nfds += (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
				if (got < 0)
					memcpy(&got, CMSG_DATA(c), sizeof(int));
			}
		if ((mh.msg_flags & MSG_CTRUNC) || nfds > 1 || (nfds && r->fd >= 0)) {
			cmsg_close_all(&mh, -1);
			ivshmem_msg_reader_reset(r);
			return -EPROTO;
		}
		if (nfds)
			r->fd = got;
		if (n == 0) {
			ivshmem_msg_reader_reset(r);
			return -EPIPE;
		}
		r->have += (unsigned)n;
	}
	/* Little-endian on the wire; kvmini runs on x86_64 only. */
	memcpy(msg, r->buf, sizeof(*msg));
	*fd = r->fd;
	r->have = 0;
	r->fd = -1;
	return 1;
}

int ivshmem_msg_send(int sock, int64_t msg, int fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&msg, sizeof(msg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (fd >= 0) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	return n == sizeof(msg) ? 0 : -EIO;
}

void ivshmem_client_init(struct ivshmem_client *c)
{
	c->state = IVSHMEM_WANT_VERSION;
	c->id = -1;
}

int ivshmem_client_classify(struct ivshmem_client *c, int64_t msg, int fd, unsigned *peer,
			    struct errbuf *err)
{
	switch (c->state) {
	case IVSHMEM_WANT_VERSION:
		if (msg != IVSHMEM_PROTOCOL_VERSION || fd >= 0)
			return err_set(err, EPROTO,
				       "speaks protocol version %lld, kvmini speaks version %d",
				       (long long)msg, IVSHMEM_PROTOCOL_VERSION);
		c->state = IVSHMEM_WANT_ID;
		return IVSHMEM_EV_VERSION;
	case IVSHMEM_WANT_ID:
		if (msg < 0 || msg > IVSHMEM_MAX_ID || fd >= 0)
			return err_set(err, EPROTO, "sent %lld%s as our ID (must be 0..%d, no fd)",
				       (long long)msg, fd >= 0 ? " with an fd" : "",
				       IVSHMEM_MAX_ID);
		c->id = (int)msg;
		c->state = IVSHMEM_WANT_SHM;
		return IVSHMEM_EV_ID;
	case IVSHMEM_WANT_SHM:
		if (msg != -1 || fd < 0)
			return err_set(
			    err, EPROTO,
			    "sent %lld%s where the shared memory (-1 with an fd) belongs",
			    (long long)msg, fd >= 0 ? " with an fd" : " without an fd");
		c->state = IVSHMEM_READY;
		return IVSHMEM_EV_SHM;
	case IVSHMEM_READY:
		break;
	}
	if (msg < 0 || msg > IVSHMEM_MAX_ID)
		return err_set(err, EPROTO, "sent %lld%s, not a peer ID", (long long)msg,
			       fd >= 0 ? " with an fd" : "");
	if (msg == c->id) {
		if (fd < 0)
			return err_set(err, EPROTO, "sent our own ID %d without an fd", c->id);
		return IVSHMEM_EV_OWN_VECTOR;
	}
	*peer = (unsigned)msg;
	return fd >= 0 ? IVSHMEM_EV_PEER_VECTOR : IVSHMEM_EV_PEER_GONE;
}

/* Index of the first peer with an ID >= @id. */
static unsigned peer_lower_bound(const struct ivshmem_peers *t, unsigned id)
{
	unsigned lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (t->p[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct ivshmem_peer *ivshmem_peer_find(struct ivshmem_peers *t, unsigned id)
{
	unsigned i = peer_lower_bound(t, id);

	return i < t->n && t->p[i].id == id ? &t->p[i] : NULL;
}

int ivshmem_peer_add_fd(struct ivshmem_peers *t, unsigned id, int fd)
{
	unsigned i = peer_lower_bound(t, id);
	struct ivshmem_peer *p;

	if (i == t->n || t->p[i].id != id) {
		if (t->n == t->cap) {
			unsigned cap = t->cap ? t->cap * 2 : 8;
			struct ivshmem_peer *np = realloc(t->p, cap * sizeof(*np));

			if (!np)
				return -ENOMEM;
			t->p = np;
			t->cap = cap;
		}
		memmove(&t->p[i + 1], &t->p[i], (t->n - i) * sizeof(*t->p));
		t->n++;
		memset(&t->p[i], 0, sizeof(t->p[i]));
		t->p[i].id = id;
	}
	p = &t->p[i];
	if (p->nvec == IVSHMEM_MAX_VECTORS)
		return -E2BIG;
	p->fd[p->nvec] = fd;
	p->ioeventfd[p->nvec] = false;
	return (int)p->nvec++;
}

int ivshmem_peer_remove(struct ivshmem_peers *t, unsigned id, struct ivshmem_peer *out)
{
	unsigned i = peer_lower_bound(t, id);

	if (i == t->n || t->p[i].id != id)
		return -ENOENT;
	*out = t->p[i];
	memmove(&t->p[i], &t->p[i + 1], (t->n - i - 1) * sizeof(*t->p));
	t->n--;
	return 0;
}

void ivshmem_peer_close(struct ivshmem_peer *p)
{
	for (unsigned v = 0; v < p->nvec; v++)
		close(p->fd[v]);
	p->nvec = 0;
}

void ivshmem_peers_free(struct ivshmem_peers *t)
{
	for (unsigned i = 0; i < t->n; i++)
		ivshmem_peer_close(&t->p[i]);
	free(t->p);
	memset(t, 0, sizeof(*t));
}
