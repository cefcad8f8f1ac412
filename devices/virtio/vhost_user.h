/* SPDX-License-Identifier: MIT */
/*
 * vhost-user, front-end side: the messages kvmini sends to a backend
 * (qemu-storage-daemon, SPDK) over a UNIX stream socket, with file
 * descriptors in SCM_RIGHTS, and the replies it accepts.
 *
 * The backend is trusted no more than a guest: every reply is checked
 * (header flags and version, the request code it answers, its size
 * against what that request's reply must be, at most the descriptors
 * due), and a wait for a reply ends after the connection's timeout. A
 * reply that is wrong or late leaves the stream out of step, so the
 * connection is shut down then (vu->broken; the descriptor stays open until
 * vhost_user_close, so that a main-loop watch on it sees the end and can
 * remove itself before the number is reused) and every later call fails
 * with -ENOTCONN; the message in @err says what happened.
 *
 * Threads: a connection is used by one thread at a time; the caller
 * serializes (vhost_user_blk.c calls under its virtio device lock).
 */
#ifndef KVMINI_VHOST_USER_H
#define KVMINI_VHOST_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/memory.h"
#include "vmm/util.h"

/* Request codes (the vhost-user specification's front-end messages). */
enum vhost_user_request {
	VHOST_USER_GET_FEATURES = 1,
	VHOST_USER_SET_FEATURES = 2,
	VHOST_USER_SET_OWNER = 3,
	VHOST_USER_SET_MEM_TABLE = 5,
	VHOST_USER_SET_VRING_NUM = 8,
	VHOST_USER_SET_VRING_ADDR = 9,
	VHOST_USER_SET_VRING_BASE = 10,
	VHOST_USER_GET_VRING_BASE = 11,
	VHOST_USER_SET_VRING_KICK = 12,
	VHOST_USER_SET_VRING_CALL = 13,
	VHOST_USER_SET_VRING_ERR = 14,
	VHOST_USER_GET_PROTOCOL_FEATURES = 15,
	VHOST_USER_SET_PROTOCOL_FEATURES = 16,
	VHOST_USER_GET_QUEUE_NUM = 17,
	VHOST_USER_SET_VRING_ENABLE = 18,
	VHOST_USER_GET_CONFIG = 24,
	VHOST_USER_GET_INFLIGHT_FD = 31,
	VHOST_USER_SET_INFLIGHT_FD = 32,
};

/* Virtio feature bit 30: the backend speaks protocol features. */
#define VHOST_USER_F_PROTOCOL_FEATURES 30

/* Protocol feature bits kvmini knows. */
#define VHOST_USER_PROTOCOL_F_MQ	     0
#define VHOST_USER_PROTOCOL_F_REPLY_ACK	     3
#define VHOST_USER_PROTOCOL_F_CONFIG	     9
#define VHOST_USER_PROTOCOL_F_INFLIGHT_SHMFD 12

#define VHOST_USER_VERSION	   0x1
#define VHOST_USER_FLAG_REPLY	   (1u << 2)
#define VHOST_USER_FLAG_NEED_REPLY (1u << 3)
#define VHOST_USER_VRING_NOFD	   (1ULL << 8) /* kick/call/err payload: no fd */
#define VHOST_USER_MAX_RAM_SLOTS   8
#define VHOST_USER_MAX_CONFIG	   256	/* GET_CONFIG payload bytes */
#define VHOST_USER_MAX_PAYLOAD	   4096 /* anything larger is refused */
#define VHOST_USER_MAX_QUEUES	   64

/* The message header (packed: 12 bytes on the wire). */
struct vhost_user_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes that follow */
} __attribute__((packed));

struct vhost_user_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc, used, avail, log; /* front-end virtual addresses */
};

struct vhost_user_inflight {
	uint64_t mmap_size;
	uint64_t mmap_offset;
	uint16_t num_queues;
	uint16_t queue_size;
	uint8_t pad[4];
};

struct vhost_user {
	int fd;		     /* the connection, or -1 */
	bool broken;	     /* shut down after an error; fd still open */
	uint64_t timeout_ns; /* longest wait for one reply */
	char name[40];	     /* who we are, for messages */
	uint64_t features;   /* the backend's virtio features (GET_FEATURES) */
	uint64_t protocol;   /* protocol features in force (both sides have them) */
	unsigned max_queues; /* GET_QUEUE_NUM, or 1 without MQ */
};

/*
 * Take @fd (a connected stream socket; owned from now on, closed on
 * error) as @vu's connection. No message is exchanged. Any thread.
 */
void vhost_user_init(struct vhost_user *vu, int fd, const char *name, uint64_t timeout_ns);

/*
 * Connect to the backend listening at @path. Does not block: a backend
 * whose listen queue is full is -EAGAIN. -errno with @err. Any thread.
 */
int vhost_user_connect(struct vhost_user *vu, const char *path, const char *name,
		       uint64_t timeout_ns, struct errbuf *err);

/* Close the connection (harmless when closed). */
void vhost_user_close(struct vhost_user *vu);

/*
 * The handshake: GET_FEATURES, and if the backend has protocol features,
 * GET_PROTOCOL_FEATURES, SET_PROTOCOL_FEATURES (theirs & @want), and with
 * MQ GET_QUEUE_NUM; then SET_OWNER. Fills vu->features, vu->protocol and
 * vu->max_queues. -errno with @err.
 */
int vhost_user_handshake(struct vhost_user *vu, uint64_t want, struct errbuf *err);

/*
 * Messages that set something. With REPLY_ACK in force each asks for an
 * acknowledgement and waits for it (a nonzero status is -EIO); without,
 * they return once sent. -errno with @err.
 */
int vhost_user_set_u64(struct vhost_user *vu, enum vhost_user_request req, uint64_t val,
		       struct errbuf *err);
int vhost_user_set_vring(struct vhost_user *vu, enum vhost_user_request req, unsigned index,
			 uint32_t num, struct errbuf *err);
int vhost_user_set_vring_addr(struct vhost_user *vu, const struct vhost_user_vring_addr *a,
			      struct errbuf *err);
/* SET_VRING_KICK / CALL / ERR: @fd (not taken; -1 sends NOFD). */
int vhost_user_set_vring_fd(struct vhost_user *vu, enum vhost_user_request req, unsigned index,
			    int fd, struct errbuf *err);
/* Every region of @mem, each with its memfd (guest_mem_init_shared). */
int vhost_user_set_mem_table(struct vhost_user *vu, const struct guest_mem *mem,
			     struct errbuf *err);
int vhost_user_set_inflight_fd(struct vhost_user *vu, const struct vhost_user_inflight *inf, int fd,
			       struct errbuf *err);

/*
 * SET_VRING_ENABLE, acknowledged: it returns only once the backend has
 * processed it (NEED_REPLY with REPLY_ACK, else a GET_FEATURES round trip
 * behind it, which the backend answers in order), so a kick sent after it
 * cannot overtake it. -errno with @err.
 */
int vhost_user_set_vring_enable(struct vhost_user *vu, unsigned index, bool enable,
				struct errbuf *err);

/* GET_VRING_BASE (stops the ring): *base = the backend's next avail index. */
int vhost_user_get_vring_base(struct vhost_user *vu, unsigned index, uint32_t *base,
			      struct errbuf *err);

/* GET_CONFIG of @len (<= VHOST_USER_MAX_CONFIG) bytes from offset 0. */
int vhost_user_get_config(struct vhost_user *vu, void *buf, uint32_t len, struct errbuf *err);

/* GET_INFLIGHT_FD: *out and *fd (the caller's to close) for @nq queues of @qsize. */
int vhost_user_get_inflight_fd(struct vhost_user *vu, uint16_t nq, uint16_t qsize,
			       struct vhost_user_inflight *out, int *fd, struct errbuf *err);

static inline bool vhost_user_connected(const struct vhost_user *vu)
{
	return vu->fd >= 0 && !vu->broken;
}

static inline bool vhost_user_has(const struct vhost_user *vu, unsigned protocol_bit)
{
	return vu->protocol & (1ULL << protocol_bit);
}

#endif
