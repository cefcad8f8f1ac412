// SPDX-License-Identifier: MIT
/*
 * The ivshmem client protocol (devices/ivshmem/ivshmem_proto.c) as a
 * hostile server drives it: messages over a real UNIX socket, split at any
 * byte, with no, one or two fds each, received by ivshmem_msg_recv,
 * classified by ivshmem_client_classify and applied to the peer table the
 * way ivshmem.c does (ivshmem_handle_msg).
 *
 * Input: records of 10 bytes: flags (bit 0: one fd, bit 1: a second fd,
 * bit 2: split the message), the split point, the 64-bit message.
 * Checked: no fd leaks (every fd received is closed or owned), the peer
 * table stays sorted with at most IVSHMEM_MAX_VECTORS fds a peer,
 * refusals come with a one-line message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/ivshmem/ivshmem.h"
#include "tests/fuzz/fuzz.h"

#define FD_RANGE 256 /* fds checked for leaks: the input makes fewer */

struct rec {
	uint8_t flags, split;
	uint8_t msg[8];
};

static void seed_run(const char *dir, const char *name, const int64_t *msgs, const uint8_t *flags,
		     size_t n)
{
	struct rec r[16];

	for (size_t i = 0; i < n; i++) {
		r[i].flags = flags[i];
		r[i].split = (uint8_t)i;
		memcpy(r[i].msg, &msgs[i], 8);
	}
	fuzz_write_seed(dir, name, r, n * sizeof(r[0]));
}

/* What QEMU's ivshmem-server sends a new client with 2 vectors and 2 peers. */
int fuzz_seeds(const char *dir)
{
	static const int64_t setup[] = {IVSHMEM_PROTOCOL_VERSION, 3, -1, 1, 1, 2, 2, 3, 3, 2, 1};
	static const uint8_t fds[] = {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0};

	seed_run(dir, "setup", setup, fds, 9);
	seed_run(dir, "gone", setup, fds, 11);
	return 0;
}

static int send_part(int sock, const void *buf, size_t len, int nfds)
{
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)buf, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	int fds[2] = {-1, -1}, ret;

	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		for (int i = 0; i < nfds; i++)
			fds[i] = eventfd(0, EFD_CLOEXEC);
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	}
	ret = sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -1;
	for (int i = 0; i < nfds; i++)
		close(fds[i]); /* in flight now: the receiver holds its own */
	return ret;
}

static void check_peers(const struct ivshmem_peers *t)
{
	for (unsigned i = 0; i < t->n; i++) {
		if (i && t->p[i - 1].id >= t->p[i].id)
			fuzz_fail("peer table out of order at %u", i);
		if (t->p[i].nvec > IVSHMEM_MAX_VECTORS)
			fuzz_fail("peer %u has %u vectors", t->p[i].id, t->p[i].nvec);
	}
}

/* Apply one message as ivshmem_handle_msg does; takes @fd. <0: disconnect. */
static int handle(struct ivshmem_client *c, struct ivshmem_peers *t, int64_t msg, int fd)
{
	struct errbuf err = {0};
	struct ivshmem_peer gone;
	unsigned peer = 0;
	int ev = ivshmem_client_classify(c, msg, fd, &peer, &err), r;

	if (ev < 0) {
		fuzz_check_msg("ivshmem_client_classify", err.msg);
		if (fd >= 0)
			close(fd);
		return ev;
	}
	switch (ev) {
	case IVSHMEM_EV_PEER_VECTOR:
		if (peer > IVSHMEM_MAX_ID || (int)peer == c->id)
			fuzz_fail("vector for peer %u (own ID %d)", peer, c->id);
		r = ivshmem_peer_add_fd(t, peer, fd);
		if (r >= 0 && ivshmem_peer_find(t, peer)->fd[r] != fd)
			fuzz_fail("peer %u vector %d is not the fd added", peer, r);
		if (r < 0)
			close(fd);
		break;
	case IVSHMEM_EV_PEER_GONE:
		if (fd >= 0)
			fuzz_fail("peer gone with an fd");
		if (ivshmem_peer_remove(t, peer, &gone) == 0) {
			if (ivshmem_peer_find(t, peer))
				fuzz_fail("peer %u still there after removal", peer);
			ivshmem_peer_close(&gone);
		}
		break;
	case IVSHMEM_EV_SHM:
	case IVSHMEM_EV_OWN_VECTOR:
		if (fd < 0)
			fuzz_fail("event %d without an fd", ev);
		close(fd); /* the device maps or attaches it */
		break;
	default:
		if (fd >= 0)
			fuzz_fail("event %d with an fd", ev);
		break;
	}
	check_peers(t);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ivshmem_msg_reader rd;
	struct ivshmem_client c;
	struct ivshmem_peers t = {0};
	int sv[2], fd, r = 0;
	bool open_before[FD_RANGE];
	int64_t msg;

	for (fd = 0; fd < FD_RANGE; fd++)
		open_before[fd] = fcntl(fd, F_GETFD) >= 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		fuzz_fail("socketpair: %s", strerror(errno));
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	ivshmem_msg_reader_init(&rd);
	ivshmem_client_init(&c);
	for (size_t off = 0; off + sizeof(struct rec) <= size && r >= 0;
	     off += sizeof(struct rec)) {
		struct rec rc;
		size_t split;
		int nfds;

		memcpy(&rc, data + off, sizeof(rc));
		nfds = (rc.flags & 1) + ((rc.flags >> 1) & 1);
		split = rc.flags & 4 ? rc.split % 8 : 8;
		if (send_part(sv[1], rc.msg, split, nfds) < 0 ||
		    (split < 8 && send_part(sv[1], rc.msg + split, 8 - split, 0) < 0))
			fuzz_fail("send: %s", strerror(errno));
		while ((r = ivshmem_msg_recv(sv[0], &rd, &msg, &fd)) > 0)
			if ((r = handle(&c, &t, msg, fd)) < 0)
				break;
		if (r == -EPROTO || r == -EPIPE)
			break;
		if (r < 0 && r != -EPROTO) /* handle's refusals are -EPROTO too */
			fuzz_fail("ivshmem_msg_recv: %s", strerror(-r));
	}
	if (r >= 0) {
		/* The server leaves: a half message is dropped with its fd. */
		shutdown(sv[1], SHUT_WR);
		while ((r = ivshmem_msg_recv(sv[0], &rd, &msg, &fd)) > 0)
			if (handle(&c, &t, msg, fd) < 0)
				break;
		if (r == 0)
			fuzz_fail("no end of file after shutdown");
	}
	ivshmem_msg_reader_reset(&rd);
	ivshmem_peers_free(&t);
	close(sv[0]);
	close(sv[1]);
	for (fd = 0; fd < FD_RANGE; fd++)
		if (!open_before[fd] && fcntl(fd, F_GETFD) >= 0)
			fuzz_fail("fd %d leaked", fd);
	return 0;
}
