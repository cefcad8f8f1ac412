// SPDX-License-Identifier: MIT
/* vhost-user front-end messages; see devices/virtio/vhost_user.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "devices/virtio/vhost_user.h"

#define VU_MAX_FDS	 VHOST_USER_MAX_RAM_SLOTS
#define VU_MAX_INFLIGHT	 (256ULL << 20) /* an inflight region larger than this is refused */
#define VU_HDR_VERSION_M 0x3u

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_mem_region {
	uint64_t gpa, size, uaddr, mmap_offset;
};

struct vu_mem {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VHOST_USER_MAX_RAM_SLOTS];
};

struct vu_config {
	uint32_t offset, size, flags;
	uint8_t data[VHOST_USER_MAX_CONFIG];
};

_Static_assert(sizeof(struct vhost_user_hdr) == 12, "vhost-user header is 12 bytes");
_Static_assert(sizeof(struct vhost_user_inflight) == 24, "inflight payload layout");
_Static_assert(sizeof(struct vhost_user_vring_addr) == 40, "vring address layout");

static int64_t vu_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The backend broke the protocol or went away: the stream cannot be
 * trusted to be in step any more, so the connection ends here (shut down;
 * the descriptor stays open for whoever watches it, see vhost_user.h). */
static int vu_broken(struct vhost_user *vu, struct errbuf *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int vu_broken(struct vhost_user *vu, struct errbuf *err, int errnum, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (vu->fd >= 0)
		shutdown(vu->fd, SHUT_RDWR);
	vu->broken = true;
	return err_set(err, errnum, "%s: %s", vu->name, why);
}

void vhost_user_init(struct vhost_user *vu, int fd, const char *name, uint64_t timeout_ns)
{
	memset(vu, 0, sizeof(*vu));
	vu->fd = fd;
	vu->timeout_ns = timeout_ns;
	vu->max_queues = 1;
	snprintf(vu->name, sizeof(vu->name), "%s", name);
}

int vhost_user_connect(struct vhost_user *vu, const char *path, const char *name,
		       uint64_t timeout_ns, struct errbuf *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	vhost_user_init(vu, -1, name, timeout_ns);
	if (strlen(path) >= sizeof(sa.sun_path))
		return err_set(err, ENAMETOOLONG, "%s: socket path '%s' is too long", name, path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Non-blocking: a backend whose listen queue is full must not hold
	 * the caller (the main loop, when reconnecting); every send and
	 * receive below waits with poll and the timeout anyway. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return err_set(err, errno, "%s: socket: %s", name, strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		return err_set(err, e, "%s: cannot connect to the vhost-user backend at '%s': %s",
			       name, path, strerror(e));
	}
	vu->fd = fd;
	return 0;
}

void vhost_user_close(struct vhost_user *vu)
{
	if (vu->fd >= 0)
		close(vu->fd);
	vu->fd = -1;
	vu->broken = false;
}

/* Wait until the socket is ready for @events or the deadline passes. */
static int vu_wait(struct vhost_user *vu, short events, int64_t deadline, struct errbuf *err)
{
	for (;;) {
		struct pollfd p = {.fd = vu->fd, .events = events};
		int64_t left = deadline - vu_now_ns();
		int r;

		if (left <= 0)
			return vu_broken(vu, err, ETIMEDOUT,
					 "the backend did not answer within %llu s",
					 (unsigned long long)(vu->timeout_ns / 1000000000ULL));
		r = poll(&p, 1, (int)((left + 999999) / 1000000));
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return vu_broken(vu, err, errno, "poll: %s", strerror(errno));
	}
}

static int vu_send(struct vhost_user *vu, uint32_t req, uint32_t flags, const void *payload,
		   uint32_t size, const int *fds, unsigned nfds, struct errbuf *err)
{
	uint8_t buf[sizeof(struct vhost_user_hdr) + VHOST_USER_MAX_PAYLOAD];
	struct vhost_user_hdr h = {req, VHOST_USER_VERSION | flags, size};
	union {
		char b[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} cbuf;
	size_t total = sizeof(h) + size, done = 0;
	int64_t deadline = vu_now_ns() + (int64_t)vu->timeout_ns;

	if (!vhost_user_connected(vu))
		return err_set(err, ENOTCONN, "%s: not connected to the vhost-user backend",
			       vu->name);
	if (size > VHOST_USER_MAX_PAYLOAD || nfds > VU_MAX_FDS)
		return err_set(err, EINVAL, "%s: message %u too large", vu->name, req);
	memcpy(buf, &h, sizeof(h));
	if (size)
		memcpy(buf + sizeof(h), payload, size);
	while (done < total) {
		struct iovec iov = {buf + done, total - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		ssize_t n;

		/* The descriptors travel with the first byte. */
		if (nfds && done == 0) {
			struct cmsghdr *c;

			memset(&cbuf, 0, sizeof(cbuf));
			mh.msg_control = cbuf.b;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
		}
		n = sendmsg(vu->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = vu_wait(vu, POLLOUT, deadline, err);

			if (r < 0)
				return r;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return vu_broken(vu, err, errno, "the backend closed the connection");
		return vu_broken(vu, err, n < 0 ? errno : EIO, "sending message %u: %s", req,
				 n < 0 ? strerror(errno) : "nothing sent");
	}
	return 0;
}

/*
 * Read exactly @len bytes. Descriptors that come along are stored in
 * @fds (room for @maxfds); *@nfds counts every one received, including
 * those closed for lack of room.
 */
static int vu_read_full(struct vhost_user *vu, void *buf, size_t len, int *fds, unsigned maxfds,
			unsigned *nfds, int64_t deadline, struct errbuf *err)
{
	size_t done = 0;

	while (done < len) {
		union {
			char b[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
			struct cmsghdr align;
		} cbuf;
		struct iovec iov = {(uint8_t *)buf + done, len - done};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf.b,
				    .msg_controllen = sizeof(cbuf.b)};
		ssize_t n = recvmsg(vu->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = vu_wait(vu, POLLIN, deadline, err);

			if (r < 0)
				return r;
			continue;
		}
		if (n < 0 && errno == ECONNRESET)
			return vu_broken(vu, err, ECONNRESET, "the backend closed the connection");
		if (n < 0)
			return vu_broken(vu, err, errno, "receiving: %s", strerror(errno));
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*nfds < maxfds)
					fds[*nfds] = fd;
				else
					close(fd);
				(*nfds)++;
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			(*nfds) += VU_MAX_FDS + 1; /* more than anyone is due */
		if (n == 0)
			return vu_broken(vu, err, ECONNRESET, "the backend closed the connection");
		done += (size_t)n;
	}
	return 0;
}

static const char *vu_req_name(uint32_t req)
{
	switch (req) {
	case VHOST_USER_GET_FEATURES:
		return "GET_FEATURES";
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VHOST_USER_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VHOST_USER_GET_VRING_BASE:
		return "GET_VRING_BASE";
	case VHOST_USER_GET_CONFIG:
		return "GET_CONFIG";
	case VHOST_USER_GET_INFLIGHT_FD:
		return "GET_INFLIGHT_FD";
	default:
		return "a request";
	}
}

/*
 * Receive the reply to @req: its payload (between @min and @max bytes,
 * *@got of them) into @payload, and when @fd is given, exactly one
 * descriptor (else none may come).
 */
static int vu_recv_reply(struct vhost_user *vu, uint32_t req, void *payload, uint32_t min,
			 uint32_t max, uint32_t *got, int *fd, struct errbuf *err)
{
	int64_t deadline = vu_now_ns() + (int64_t)vu->timeout_ns;
	const char *what = vu_req_name(req);
	struct vhost_user_hdr h;
	int fds[1];
	unsigned nfds = 0;
	int r;

	if (!vhost_user_connected(vu))
		return err_set(err, ENOTCONN, "%s: not connected to the vhost-user backend",
			       vu->name);
	r = vu_read_full(vu, &h, sizeof(h), fds, fd ? 1 : 0, &nfds, deadline, err);
	if (r < 0)
		goto out;
	if ((h.flags & VU_HDR_VERSION_M) != VHOST_USER_VERSION ||
	    !(h.flags & VHOST_USER_FLAG_REPLY)) {
		r = vu_broken(vu, err, EPROTO, "reply to %s has flags 0x%x (want version 1, reply)",
			      what, h.flags);
		goto out;
	}
	if (h.request != req) {
		r = vu_broken(vu, err, EPROTO, "answered request %u where %s (%u) was due",
			      h.request, what, req);
		goto out;
	}
	if (h.size < min || h.size > max) {
		r = vu_broken(vu, err, EPROTO, "reply to %s has %u bytes (want %u..%u)", what,
			      h.size, min, max);
		goto out;
	}
	r = vu_read_full(vu, payload, h.size, fds, fd ? 1 : 0, &nfds, deadline, err);
	if (r < 0)
		goto out;
	if (nfds > (fd ? 1u : 0u)) {
		r = vu_broken(vu, err, EPROTO,
			      "reply to %s came with %u file descriptors (want %d)", what, nfds,
			      fd ? 1 : 0);
		goto out;
	}
	if (fd && nfds == 0) {
		r = vu_broken(vu, err, EPROTO, "reply to %s came without its file descriptor",
			      what);
		goto out;
	}
	if (got)
		*got = h.size;
	if (fd)
		*fd = fds[0];
	return 0;
out:
	for (unsigned i = 0; i < nfds && i < (fd ? 1u : 0u); i++)
		close(fds[i]);
	return r;
}

/* A request with a u64 (or nothing) in and a u64 out. */
static int vu_get_u64(struct vhost_user *vu, uint32_t req, uint64_t *val, struct errbuf *err)
{
	int r = vu_send(vu, req, 0, NULL, 0, NULL, 0, err);

	if (r == 0)
		r = vu_recv_reply(vu, req, val, sizeof(*val), sizeof(*val), NULL, NULL, err);
	return r;
}

/* Send a message that sets something; with REPLY_ACK wait for its status. */
static int vu_set(struct vhost_user *vu, uint32_t req, const void *payload, uint32_t size,
		  const int *fds, unsigned nfds, struct errbuf *err)
{
	bool ack = vhost_user_has(vu, VHOST_USER_PROTOCOL_F_REPLY_ACK);
	uint64_t status;
	int r;

	r = vu_send(vu, req, ack ? VHOST_USER_FLAG_NEED_REPLY : 0, payload, size, fds, nfds, err);
	if (r < 0 || !ack)
		return r;
	r = vu_recv_reply(vu, req, &status, sizeof(status), sizeof(status), NULL, NULL, err);
	if (r == 0 && status != 0)
		r = err_set(err, EIO, "%s: the backend refused request %u (status %llu)", vu->name,
			    req, (unsigned long long)status);
	return r;
}

int vhost_user_handshake(struct vhost_user *vu, uint64_t want, struct errbuf *err)
{
	uint64_t pf = 0, nq = 1;
	int r;

	vu->protocol = 0;
	vu->max_queues = 1;
	r = vu_get_u64(vu, VHOST_USER_GET_FEATURES, &vu->features, err);
	if (r < 0)
		return r;
	if (vu->features & (1ULL << VHOST_USER_F_PROTOCOL_FEATURES)) {
		r = vu_get_u64(vu, VHOST_USER_GET_PROTOCOL_FEATURES, &pf, err);
		if (r < 0)
			return r;
		pf &= want;
		/* Not acknowledged: REPLY_ACK is in force only after it. */
		r = vu_send(vu, VHOST_USER_SET_PROTOCOL_FEATURES, 0, &pf, sizeof(pf), NULL, 0, err);
		if (r < 0)
			return r;
		vu->protocol = pf;
	}
	if (vhost_user_has(vu, VHOST_USER_PROTOCOL_F_MQ)) {
		r = vu_get_u64(vu, VHOST_USER_GET_QUEUE_NUM, &nq, err);
		if (r < 0)
			return r;
		if (nq == 0)
			return vu_broken(vu, err, EPROTO, "the backend has 0 queues");
		vu->max_queues = nq > VHOST_USER_MAX_QUEUES ? VHOST_USER_MAX_QUEUES : (unsigned)nq;
	}
	return vu_set(vu, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, err);
}

int vhost_user_set_u64(struct vhost_user *vu, enum vhost_user_request req, uint64_t val,
		       struct errbuf *err)
{
	return vu_set(vu, req, &val, sizeof(val), NULL, 0, err);
}

int vhost_user_set_vring(struct vhost_user *vu, enum vhost_user_request req, unsigned index,
			 uint32_t num, struct errbuf *err)
{
	struct vu_vring_state s = {index, num};

	return vu_set(vu, req, &s, sizeof(s), NULL, 0, err);
}

int vhost_user_set_vring_addr(struct vhost_user *vu, const struct vhost_user_vring_addr *a,
			      struct errbuf *err)
{
	return vu_set(vu, VHOST_USER_SET_VRING_ADDR, a, sizeof(*a), NULL, 0, err);
}

int vhost_user_set_vring_fd(struct vhost_user *vu, enum vhost_user_request req, unsigned index,
			    int fd, struct errbuf *err)
{
	uint64_t v = (index & 0xff) | (fd < 0 ? VHOST_USER_VRING_NOFD : 0);

	return vu_set(vu, req, &v, sizeof(v), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1, err);
}

int vhost_user_set_mem_table(struct vhost_user *vu, const struct guest_mem *mem, struct errbuf *err)
{
	struct vu_mem m = {.nregions = (uint32_t)mem->nregions};
	int fds[VHOST_USER_MAX_RAM_SLOTS];

	for (int i = 0; i < mem->nregions; i++) {
		const struct guest_mem_region *g = &mem->regions[i];

		if (g->fd < 0)
			return err_set(err, EINVAL, "%s: guest RAM is not shared memory", vu->name);
		m.regions[i] = (struct vu_mem_region){g->gpa, g->size, (uint64_t)(uintptr_t)g->host,
						      g->fd_offset};
		fds[i] = g->fd;
	}
	return vu_set(vu, VHOST_USER_SET_MEM_TABLE, &m,
		      (uint32_t)(8 + mem->nregions * sizeof(struct vu_mem_region)), fds,
		      (unsigned)mem->nregions, err);
}

int vhost_user_set_inflight_fd(struct vhost_user *vu, const struct vhost_user_inflight *inf, int fd,
			       struct errbuf *err)
{
	return vu_set(vu, VHOST_USER_SET_INFLIGHT_FD, inf, sizeof(*inf), &fd, 1, err);
}

int vhost_user_set_vring_enable(struct vhost_user *vu, unsigned index, bool enable,
				struct errbuf *err)
{
	struct vu_vring_state s = {index, enable};
	uint64_t features;
	int r;

	if (vhost_user_has(vu, VHOST_USER_PROTOCOL_F_REPLY_ACK))
		return vu_set(vu, VHOST_USER_SET_VRING_ENABLE, &s, sizeof(s), NULL, 0, err);
	/* No acknowledgements: a request with a reply, sent behind it, is
	 * answered only after the backend processed the enable. */
	r = vu_send(vu, VHOST_USER_SET_VRING_ENABLE, 0, &s, sizeof(s), NULL, 0, err);
	if (r == 0)
		r = vu_get_u64(vu, VHOST_USER_GET_FEATURES, &features, err);
	return r;
}

int vhost_user_get_vring_base(struct vhost_user *vu, unsigned index, uint32_t *base,
			      struct errbuf *err)
{
	struct vu_vring_state s = {index, 0};
	int r = vu_send(vu, VHOST_USER_GET_VRING_BASE, 0, &s, sizeof(s), NULL, 0, err);

	if (r == 0)
		r = vu_recv_reply(vu, VHOST_USER_GET_VRING_BASE, &s, sizeof(s), sizeof(s), NULL,
				  NULL, err);
	if (r < 0)
		return r;
	if (s.index != index)
		return vu_broken(vu, err, EPROTO, "GET_VRING_BASE for ring %u answered for ring %u",
				 index, s.index);
	*base = s.num;
	return 0;
}

int vhost_user_get_config(struct vhost_user *vu, void *buf, uint32_t len, struct errbuf *err)
{
	struct vu_config c = {.offset = 0, .size = len};
	uint32_t got;
	int r;

	if (len > VHOST_USER_MAX_CONFIG)
		return err_set(err, EINVAL, "%s: config of %u bytes asked", vu->name, len);
	r = vu_send(vu, VHOST_USER_GET_CONFIG, 0, &c, 12 + len, NULL, 0, err);
	if (r == 0)
		r = vu_recv_reply(vu, VHOST_USER_GET_CONFIG, &c, 12 + len, 12 + len, &got, NULL,
				  err);
	if (r < 0)
		return r;
	if (c.offset != 0 || c.size != len)
		return vu_broken(vu, err, EPROTO,
				 "GET_CONFIG answered offset %u size %u for offset 0 size %u",
				 c.offset, c.size, len);
	memcpy(buf, c.data, len);
	return 0;
}

int vhost_user_get_inflight_fd(struct vhost_user *vu, uint16_t nq, uint16_t qsize,
			       struct vhost_user_inflight *out, int *fd, struct errbuf *err)
{
	struct vhost_user_inflight in = {.num_queues = nq, .queue_size = qsize};
	int r = vu_send(vu, VHOST_USER_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0, err);

	if (r == 0)
		r = vu_recv_reply(vu, VHOST_USER_GET_INFLIGHT_FD, out, sizeof(*out), sizeof(*out),
				  NULL, fd, err);
	if (r < 0)
		return r;
	if (out->mmap_size == 0 || out->mmap_size > VU_MAX_INFLIGHT ||
	    out->mmap_offset > VU_MAX_INFLIGHT) {
		close(*fd);
		return vu_broken(vu, err, EPROTO, "GET_INFLIGHT_FD: region of %llu bytes at %llu",
				 (unsigned long long)out->mmap_size,
				 (unsigned long long)out->mmap_offset);
	}
	return 0;
}
