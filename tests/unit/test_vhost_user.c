/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for devices/virtio/vhost_user.c against a fake backend on the
 * other end of a socketpair: replies are queued in the socket before the
 * call that reads them, and what the front-end sent is read back after.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "devices/virtio/vhost_user.h"

#define TIMEOUT_NS 200000000ULL /* how long a missing reply is waited for */

struct fake {
	struct vhost_user vu;
	int peer;
};

static void fake_open(struct fake *f)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	vhost_user_init(&f->vu, sv[0], "test", TIMEOUT_NS);
	f->peer = sv[1];
}

static void fake_close(struct fake *f)
{
	vhost_user_close(&f->vu);
	close(f->peer);
}

/* Queue a reply (or any message) from the backend, with @fd if >= 0. */
static void fake_send(struct fake *f, uint32_t req, uint32_t flags, const void *payload,
		      uint32_t size, int fd)
{
	uint8_t buf[64 + 300];
	struct vhost_user_hdr h = {req, flags, size};
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {buf, sizeof(h) + size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	assert_true(size <= 300);
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), payload, size);
	if (fd >= 0) {
		struct cmsghdr *c;

		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	assert_int_equal(sendmsg(f->peer, &mh, 0), (ssize_t)iov.iov_len);
}

static void fake_reply_u64(struct fake *f, uint32_t req, uint64_t v)
{
	fake_send(f, req, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, &v, sizeof(v), -1);
}

/* Read the next message the front-end sent; returns how many fds came
 * (closed after counting). */
static unsigned fake_recv(struct fake *f, struct vhost_user_hdr *h, void *payload, size_t max)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 8)];
	struct iovec iov = {h, sizeof(*h)};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	unsigned nfds = 0;

	assert_int_equal(recvmsg(f->peer, &mh, MSG_DONTWAIT), (ssize_t)sizeof(*h));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
			nfds++;
		}
	}
	assert_true(h->size <= max);
	if (h->size)
		assert_int_equal(recv(f->peer, payload, h->size, MSG_DONTWAIT), (ssize_t)h->size);
	return nfds;
}

static void expect_msg(struct fake *f, uint32_t req, uint32_t flags, uint32_t size)
{
	struct vhost_user_hdr h;
	uint8_t p[512];

	fake_recv(f, &h, p, sizeof(p));
	assert_int_equal(h.request, req);
	assert_int_equal(h.flags, flags);
	assert_int_equal(h.size, size);
}

static bool nothing_sent(struct fake *f)
{
	char c;

	return recv(f->peer, &c, 1, MSG_DONTWAIT | MSG_PEEK) < 0 && errno == EAGAIN;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The handshake with every feature: order, values, the protocol features
 * kept, SET_OWNER acknowledged. */
static void test_handshake(void **state)
{
	const uint64_t want = (1ULL << VHOST_USER_PROTOCOL_F_MQ) |
			      (1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK) |
			      (1ULL << VHOST_USER_PROTOCOL_F_CONFIG);
	struct errbuf err = {{0}};
	struct vhost_user_hdr h;
	uint64_t v;
	struct fake f;

	fake_open(&f);
	fake_reply_u64(&f, VHOST_USER_GET_FEATURES, (1ULL << VHOST_USER_F_PROTOCOL_FEATURES) | 7);
	fake_reply_u64(&f, VHOST_USER_GET_PROTOCOL_FEATURES,
		       want | (1ULL << 20) | (1ULL << VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD));
	fake_reply_u64(&f, VHOST_USER_GET_QUEUE_NUM, 4);
	fake_reply_u64(&f, VHOST_USER_SET_OWNER, 0);
	assert_int_equal(vhost_user_handshake(&f.vu, want, &err), 0);
	assert_int_equal(f.vu.protocol, want);
	assert_int_equal(f.vu.max_queues, 4);
	assert_int_equal(f.vu.features & 7, 7);

	expect_msg(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0);
	expect_msg(&f, VHOST_USER_GET_PROTOCOL_FEATURES, VHOST_USER_VERSION, 0);
	fake_recv(&f, &h, &v, sizeof(v));
	assert_int_equal(h.request, VHOST_USER_SET_PROTOCOL_FEATURES);
	assert_int_equal(h.flags, VHOST_USER_VERSION); /* not acknowledged */
	assert_int_equal(v, want);
	expect_msg(&f, VHOST_USER_GET_QUEUE_NUM, VHOST_USER_VERSION, 0);
	expect_msg(&f, VHOST_USER_SET_OWNER, VHOST_USER_VERSION | VHOST_USER_FLAG_NEED_REPLY, 0);
	assert_true(nothing_sent(&f));
	fake_close(&f);
}

/* A backend without protocol features: one queue, nothing acknowledged. */
static void test_handshake_minimal(void **state)
{
	struct errbuf err = {{0}};
	struct fake f;

	fake_open(&f);
	fake_reply_u64(&f, VHOST_USER_GET_FEATURES, 1ULL << 32);
	assert_int_equal(vhost_user_handshake(&f.vu, ~0ULL, &err), 0);
	assert_int_equal(f.vu.protocol, 0);
	assert_int_equal(f.vu.max_queues, 1);
	expect_msg(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0);
	expect_msg(&f, VHOST_USER_SET_OWNER, VHOST_USER_VERSION, 0);
	assert_true(nothing_sent(&f));
	fake_close(&f);
}

/* SET_VRING_ENABLE returns only after the backend answered: with
 * REPLY_ACK its ack, without it a GET_FEATURES reply behind it. */
static void test_enable_acknowledged(void **state)
{
	struct errbuf err = {{0}};
	struct fake f;

	fake_open(&f);
	f.vu.protocol = 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK;
	/* No answer yet: it waits, then gives up and drops the connection. */
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 1, true, &err), -ETIMEDOUT);
	assert_true(f.vu.broken);
	assert_non_null(strstr(err.msg, "did not answer"));
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 1, true, &err), -ENOTCONN);
	fake_close(&f);

	fake_open(&f);
	f.vu.protocol = 1ULL << VHOST_USER_PROTOCOL_F_REPLY_ACK;
	fake_reply_u64(&f, VHOST_USER_SET_VRING_ENABLE, 0);
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 1, true, &err), 0);
	expect_msg(&f, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION | VHOST_USER_FLAG_NEED_REPLY,
		   8);
	/* A refusal is an error, but the stream is still in step. */
	fake_reply_u64(&f, VHOST_USER_SET_VRING_ENABLE, 1);
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 0, true, &err), -EIO);
	assert_true(vhost_user_connected(&f.vu));
	fake_close(&f);

	fake_open(&f);
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 2, true, &err), -ETIMEDOUT);
	fake_close(&f);
	fake_open(&f);
	fake_reply_u64(&f, VHOST_USER_GET_FEATURES, 0);
	assert_int_equal(vhost_user_set_vring_enable(&f.vu, 2, true, &err), 0);
	expect_msg(&f, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_VERSION, 8);
	expect_msg(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, 0);
	fake_close(&f);
}

/* Replies that are wrong end the connection with a clear error. */
static void test_bad_replies(void **state)
{
	struct errbuf err = {{0}};
	uint64_t big[40] = {0};
	struct fake f;
	uint64_t v;
	int before, efd;

	fake_open(&f); /* another request's reply */
	fake_reply_u64(&f, VHOST_USER_GET_QUEUE_NUM, 1);
	assert_int_equal(vhost_user_handshake(&f.vu, 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "GET_FEATURES"));
	assert_true(f.vu.broken);
	fake_close(&f);

	fake_open(&f); /* not flagged as a reply */
	fake_send(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION, &v, sizeof(v), -1);
	assert_int_equal(vhost_user_handshake(&f.vu, 0, &err), -EPROTO);
	fake_close(&f);

	fake_open(&f); /* wrong size */
	fake_send(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, big, 4,
		  -1);
	assert_int_equal(vhost_user_handshake(&f.vu, 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "4 bytes"));
	fake_close(&f);

	fake_open(&f); /* a huge size is refused before anything is read */
	{
		struct vhost_user_hdr h = {VHOST_USER_GET_FEATURES,
					   VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, 1u << 30};

		assert_int_equal(write(f.peer, &h, sizeof(h)), (ssize_t)sizeof(h));
	}
	assert_int_equal(vhost_user_handshake(&f.vu, 0, &err), -EPROTO);
	fake_close(&f);

	fake_open(&f); /* a descriptor where none is due: refused and closed */
	efd = eventfd(0, EFD_CLOEXEC);
	before = count_fds();
	v = 0;
	fake_send(&f, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, &v,
		  sizeof(v), efd);
	assert_int_equal(vhost_user_handshake(&f.vu, 0, &err), -EPROTO);
	assert_non_null(strstr(err.msg, "file descriptor"));
	assert_int_equal(count_fds(), before); /* nothing came */
	close(efd);
	fake_close(&f);

	fake_open(&f); /* GET_CONFIG answered with another size */
	{
		uint8_t p[12 + 8] = {0};
		uint8_t cfg[16];

		p[4] = 8;
		fake_send(&f, VHOST_USER_GET_CONFIG, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, p,
			  sizeof(p), -1);
		assert_int_equal(vhost_user_get_config(&f.vu, cfg, sizeof(cfg), &err), -EPROTO);
	}
	fake_close(&f);

	fake_open(&f); /* GET_INFLIGHT_FD without its descriptor */
	{
		struct vhost_user_inflight inf = {.mmap_size = 4096};
		int fd = -1;

		fake_send(&f, VHOST_USER_GET_INFLIGHT_FD,
			  VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, &inf, sizeof(inf), -1);
		assert_int_equal(vhost_user_get_inflight_fd(&f.vu, 1, 128, &inf, &fd, &err),
				 -EPROTO);
		assert_int_equal(fd, -1);
	}
	fake_close(&f);
}

/* The peer closed: an error naming it, never SIGPIPE. */
static void test_peer_gone(void **state)
{
	struct errbuf err = {{0}};
	struct fake f;
	int r;

	fake_open(&f);
	close(f.peer);
	r = vhost_user_handshake(&f.vu, 0, &err);
	assert_true(r == -EPIPE || r == -ECONNRESET);
	assert_non_null(strstr(err.msg, "the backend closed the connection"));
	assert_true(f.vu.broken);
	vhost_user_close(&f.vu);
}

/* Messages with descriptors: the memory table, ring fds, inflight. */
static void test_fds(void **state)
{
	struct errbuf err = {{0}};
	struct guest_mem mem;
	struct vhost_user_hdr h;
	uint8_t p[512];
	struct fake f;
	int efd = eventfd(0, EFD_CLOEXEC), fd = -1;
	struct vhost_user_inflight inf = {.mmap_size = 8192, .num_queues = 2, .queue_size = 128};

	fake_open(&f);
	assert_int_equal(guest_mem_init_shared(&mem, 4ULL << 20), 0);
	assert_int_equal(vhost_user_set_mem_table(&f.vu, &mem, &err), 0);
	assert_int_equal(fake_recv(&f, &h, p, sizeof(p)), 1);
	assert_int_equal(h.request, VHOST_USER_SET_MEM_TABLE);
	assert_int_equal(h.size, 8 + 32);
	assert_int_equal(*(uint32_t *)p, 1);
	assert_int_equal(*(uint64_t *)(p + 8 + 8), 4ULL << 20);
	assert_int_equal(*(uint64_t *)(p + 8 + 16), (uint64_t)(uintptr_t)mem.regions[0].host);
	guest_mem_free(&mem);

	/* Anonymous RAM cannot be shared: refused before anything is sent. */
	assert_int_equal(guest_mem_init(&mem, 2ULL << 20), 0);
	assert_int_equal(vhost_user_set_mem_table(&f.vu, &mem, &err), -EINVAL);
	guest_mem_free(&mem);

	assert_int_equal(vhost_user_set_vring_fd(&f.vu, VHOST_USER_SET_VRING_KICK, 3, efd, &err),
			 0);
	assert_int_equal(fake_recv(&f, &h, p, sizeof(p)), 1);
	assert_int_equal(*(uint64_t *)p, 3);
	assert_int_equal(vhost_user_set_vring_fd(&f.vu, VHOST_USER_SET_VRING_CALL, 2, -1, &err), 0);
	assert_int_equal(fake_recv(&f, &h, p, sizeof(p)), 0);
	assert_int_equal(*(uint64_t *)p, 2 | VHOST_USER_VRING_NOFD);

	fake_send(&f, VHOST_USER_GET_INFLIGHT_FD, VHOST_USER_VERSION | VHOST_USER_FLAG_REPLY, &inf,
		  sizeof(inf), efd);
	memset(&inf, 0, sizeof(inf));
	assert_int_equal(vhost_user_get_inflight_fd(&f.vu, 2, 128, &inf, &fd, &err), 0);
	assert_true(fd >= 0 && fd != efd);
	assert_int_equal(inf.mmap_size, 8192);
	close(fd);
	expect_msg(&f, VHOST_USER_GET_INFLIGHT_FD, VHOST_USER_VERSION, 24);
	assert_true(nothing_sent(&f));
	close(efd);
	fake_close(&f);
}

/*
 * vhost_user_connect never blocks (reconnect= calls it from the main
 * loop): nobody listening is an error at once, and so is a backend whose
 * listen queue is full (-EAGAIN), instead of a wait for it to accept.
 */
static void test_connect_never_blocks(void **state)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct vhost_user vu[8];
	struct errbuf err = {{0}};
	char dir[] = "/tmp/kvmini-vu-XXXXXX";
	int lfd, r = 0;
	unsigned n;

	assert_non_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	r = vhost_user_connect(&vu[0], sa.sun_path, "test", TIMEOUT_NS, &err);
	assert_int_equal(r, -ENOENT);
	assert_non_null(strstr(err.msg, "cannot connect to the vhost-user backend"));
	assert_int_equal(vu[0].fd, -1);

	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 0), 0);
	/* Nobody accepts: the queue fills, then connecting fails at once. */
	for (n = 0; n < 8; n++) {
		r = vhost_user_connect(&vu[n], sa.sun_path, "test", TIMEOUT_NS, &err);
		if (r < 0)
			break;
		assert_true(vhost_user_connected(&vu[n]));
	}
	assert_true(n >= 1 && n < 8);
	assert_int_equal(r, -EAGAIN);
	while (n--)
		vhost_user_close(&vu[n]);
	close(lfd);
	unlink(sa.sun_path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake),
	    cmocka_unit_test(test_handshake_minimal),
	    cmocka_unit_test(test_enable_acknowledged),
	    cmocka_unit_test(test_bad_replies),
	    cmocka_unit_test(test_peer_gone),
	    cmocka_unit_test(test_fds),
	    cmocka_unit_test(test_connect_never_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
