/* SPDX-License-Identifier: MIT */
/*
 * ivshmem: inter-VM shared memory, as QEMU's ivshmem-plain and
 * ivshmem-doorbell devices (PCI 1af4:1110, revision 1) and the protocol of
 * QEMU's ivshmem-server (docs/devices.md has what a guest and a host see).
 *
 *  - ivshmem-plain (`--ivshmem mem=PATH|shm=NAME,size=SIZE`): BAR 0 holds
 *    the registers, BAR 2 the shared memory (a file or POSIX shm object).
 *  - ivshmem-doorbell (`--ivshmem server=SOCKET[,vectors=N]`): the shared
 *    memory and the peers' eventfds come from an ivshmem server over a UNIX
 *    socket. BAR 0 registers, BAR 1 MSI-X, BAR 2 the shared memory.
 *
 * BAR 2 is a KVM memory slot while the guest decodes it: guest accesses
 * never leave the kernel. DOORBELL writes are KVM ioeventfds with a data
 * match per (peer, vector) on the peer's eventfd; the eventfds the server
 * gives the device for its own vectors are irqfds on its MSI-X vectors.
 *
 * The server protocol (version 0): the server sends 8-byte little-endian
 * signed numbers, some with one file descriptor (SCM_RIGHTS): the version,
 * the client's ID, -1 with the shared memory, then for every other peer
 * its ID once per vector with an eventfd (to interrupt it), then the
 * client's own ID once per vector with an eventfd (its interrupts). Later:
 * a peer ID with an eventfd (a peer joined: one per vector) or without
 * (that peer left). The client never writes.
 *
 * Files: ivshmem.c (the devices), ivshmem_proto.c (messages, the client's
 * view of them, the peer table), ivshmem_server.c (`kvmini ivshmem-server`).
 */
#ifndef KVMINI_IVSHMEM_H
#define KVMINI_IVSHMEM_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/config.h"
#include "vmm/device.h"
#include "vmm/util.h"

#define IVSHMEM_VENDOR_ID	 0x1af4
#define IVSHMEM_DEVICE_ID	 0x1110
#define IVSHMEM_REVISION	 1
#define IVSHMEM_CLASS		 0x050000 /* memory controller, RAM: what QEMU reports */
#define IVSHMEM_PROTOCOL_VERSION 0
#define IVSHMEM_MAX_ID		 65535 /* the doorbell has 16 bits for a peer */

/* BAR 0 registers. */
#define IVSHMEM_REG_INTRMASK   0x0
#define IVSHMEM_REG_INTRSTATUS 0x4
#define IVSHMEM_REG_IVPOSITION 0x8
#define IVSHMEM_REG_DOORBELL   0xc
#define IVSHMEM_BAR0_SIZE      4096 /* QEMU's is 256 bytes; kvmini's BARs are pages */
#define IVSHMEM_BAR1_SIZE      4096 /* MSI-X table at 0, PBA at 0x800 */
#define IVSHMEM_PBA_OFFSET     0x800

/* The doorbell value: peer ID in bits 31:16, vector in 15:0. */
static inline uint32_t ivshmem_doorbell_value(unsigned peer, unsigned vector)
{
	return (uint32_t)peer << 16 | (vector & 0xffff);
}

/* --- devices (ivshmem.c) --- */

/* `--ivshmem` devices; opts is the option string (ivshmem_config_parse). */
extern const struct device_ops ivshmem_plain_ops;
extern const struct device_ops ivshmem_doorbell_ops;

/* The ops for a --ivshmem option string (plain or doorbell), or NULL if it
 * does not parse. Pure. */
const struct device_ops *ivshmem_ops_for(const char *opts);

/* --- messages (ivshmem_proto.c) --- */

/*
 * One message being received: the bytes so far and the fd that came with
 * them. Stream sockets may split a message; the fd arrives with its first
 * byte. Start zeroed with fd = -1 (ivshmem_msg_reader_init).
 */
struct ivshmem_msg_reader {
	uint8_t buf[8];
	unsigned have;
	int fd;
};

void ivshmem_msg_reader_init(struct ivshmem_msg_reader *r);
/* Close an fd held by a half-received message. */
void ivshmem_msg_reader_reset(struct ivshmem_msg_reader *r);

/*
 * Read from @sock until one whole message is in: returns 1 with *@msg and
 * *@fd (-1 if none came; the caller owns it), 0 if the socket has no more
 * data for now (non-blocking sockets), -EPIPE at end of file (the peer
 * closed; a half message is dropped), -EPROTO if a message came with more
 * than one fd or with a truncated control message (every fd received is
 * closed), or another -errno from recvmsg. Received fds are close-on-exec.
 * Any thread; one reader per socket.
 */
int ivshmem_msg_recv(int sock, struct ivshmem_msg_reader *r, int64_t *msg, int *fd);

/*
 * Send one message, with @fd (or none if -1). Returns 0, -EAGAIN if the
 * socket buffer is full (nothing was sent), -EIO for a partial send, or
 * another -errno (-EPIPE: the peer is gone). Never raises SIGPIPE.
 */
int ivshmem_msg_send(int sock, int64_t msg, int fd);

/* What a message from the server means to a client. */
enum ivshmem_event {
	IVSHMEM_EV_VERSION,	/* protocol version accepted */
	IVSHMEM_EV_ID,		/* the client's ID (ivshmem_client.id) */
	IVSHMEM_EV_SHM,		/* the shared memory fd */
	IVSHMEM_EV_OWN_VECTOR,	/* an eventfd for one of the client's own vectors */
	IVSHMEM_EV_PEER_VECTOR, /* an eventfd to interrupt peer `peer` */
	IVSHMEM_EV_PEER_GONE,	/* peer `peer` left */
};

/* The client's side of the conversation: where it is in the setup. */
struct ivshmem_client {
	enum { IVSHMEM_WANT_VERSION, IVSHMEM_WANT_ID, IVSHMEM_WANT_SHM, IVSHMEM_READY } state;
	int id; /* own ID once received, else -1 */
};

void ivshmem_client_init(struct ivshmem_client *c);

/*
 * Classify message (@msg, @fd) in @c's state and advance it. Returns the
 * event (IVSHMEM_EV_PEER_* set *@peer), or -EPROTO with a one-line
 * description in @err: another protocol version, an ID out of range or
 * with an fd, no fd with the shared memory, a number below -1, a message
 * that makes no sense before setup is done, or the client's own ID without
 * an fd. Does not close @fd (the caller owns it in every case). Pure.
 */
int ivshmem_client_classify(struct ivshmem_client *c, int64_t msg, int fd, unsigned *peer,
			    struct errbuf *err);

/* --- the peer table (ivshmem_proto.c) --- */

struct ivshmem_peer {
	unsigned id;
	unsigned nvec;			     /* fds received, in vector order */
	int fd[IVSHMEM_MAX_VECTORS];	     /* eventfds to interrupt the peer */
	bool ioeventfd[IVSHMEM_MAX_VECTORS]; /* fd is attached as a KVM ioeventfd */
};

/* Peers by ID, kept sorted (binary search on every doorbell exit). */
struct ivshmem_peers {
	struct ivshmem_peer *p;
	unsigned n, cap;
};

/* The peer with @id, or NULL. Pure. */
struct ivshmem_peer *ivshmem_peer_find(struct ivshmem_peers *t, unsigned id);

/*
 * Add @fd as peer @id's next vector (creating the peer): returns the
 * vector index it got, -E2BIG if the peer already has IVSHMEM_MAX_VECTORS
 * (fd not taken), -ENOMEM. The table owns @fd on success.
 */
int ivshmem_peer_add_fd(struct ivshmem_peers *t, unsigned id, int fd);

/* Take peer @id out of the table into *@out (its fds are the caller's
 * now). -ENOENT if there is no such peer. */
int ivshmem_peer_remove(struct ivshmem_peers *t, unsigned id, struct ivshmem_peer *out);

/* Close every fd in @p. */
void ivshmem_peer_close(struct ivshmem_peer *p);

/* Close every peer's fds and free the table. */
void ivshmem_peers_free(struct ivshmem_peers *t);

/* --- the server (ivshmem_server.c) --- */

#define IVSHMEM_SERVER_MAX_PEERS 1024 /* connections beyond are closed at once */
/* Peers a device keeps: a server announcing more is disconnected (each
 * peer holds up to the device's vectors eventfds). */
#define IVSHMEM_MAX_PEERS IVSHMEM_SERVER_MAX_PEERS

struct aio_context;
struct ivshmem_server;

/*
 * Create the shared memory (ivshmem_server_open_shm) and listen on
 * @cfg->socket (a stale socket file nobody listens on is replaced; a live
 * one, or anything but a socket, is an error), serving clients from fd handlers on @ctx: each gets
 * an ID (the lowest free one at or after the last given, wrapping at 65536),
 * @cfg->vectors new eventfds, and the messages of the protocol; the other
 * clients hear of joins and leaves. A client that closes its end or sends
 * anything (the protocol is one-way) is dropped, as is one whose socket
 * buffer is full. Joins and leaves are logged on stderr. Main thread.
 * -errno with @err.
 */
int ivshmem_server_new(const struct ivshmem_server_config *cfg, struct aio_context *ctx,
		       struct ivshmem_server **out, struct errbuf *err);

/* Close every client and the shared memory, remove the socket file, free. */
void ivshmem_server_free(struct ivshmem_server *srv);

/* Number of connected clients (tests). */
unsigned ivshmem_server_npeers(const struct ivshmem_server *srv);

/*
 * `kvmini ivshmem-server`: serve @cfg's shared memory and @cfg->vectors
 * eventfds per peer on the UNIX socket @cfg->socket until SIGINT/SIGTERM,
 * then remove the socket. Prints one line to stdout once it listens. Main
 * thread of its own process. Returns the exit status (0, or 125 after a
 * one-line error on stderr).
 */
int ivshmem_server_main(const struct ivshmem_server_config *cfg);

/*
 * Create or open the shared memory object @cfg names (file or POSIX shm,
 * never through a symbolic link). A new or empty one is made @cfg->size
 * bytes; an existing one of another size is refused (-EEXIST), never
 * truncated. Returns the fd (close-on-exec) or -errno
 * with @err. Main thread.
 */
int ivshmem_server_open_shm(const struct ivshmem_server_config *cfg, struct errbuf *err);

#endif
