// SPDX-License-Identifier: MIT
/*
 * QMP input (vmm/qmp.c) through its socket, as a client sends it: the
 * real server on a UNIX socket in the real main loop, the input written in
 * pieces of any size, the connection closed at the end. The VM behind it
 * is a stub (below): this target is about the protocol, not the commands'
 * effects.
 *
 * Input: one byte (bits 0-5: piece size - 1, bit 6: a VM is attached,
 * bit 7: migrate and cont fail), then what the client sends. Checked:
 * every line the server sends is one valid JSON object (json_check.c:
 * strict RFC 8259, UTF-8), and the server answers until the client leaves.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/json_check.h"
#include "vmm/qmp.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

/* ---- the VM QMP commands act on: stubs of vmm/vm.c and snapshot.c ---- */

static struct vm vm;
static bool fail_ops;

void vm_pause(struct vm *v)
{
	v->devices_paused = true;
}

int vm_cont(struct vm *v, struct errbuf *err)
{
	if (fail_ops)
		return err_set(err, EIO, "device \"blk0\\x\" cannot resume:\n\tI/O error");
	v->devices_paused = false;
	v->run_state = VM_RUN_RUNNING;
	return 0;
}

void vm_request_exit(struct vm *v, enum vm_exit_kind kind, int status)
{
	(void)v;
	(void)kind;
	(void)status;
}

void vm_query_block_json(struct vm *v, char *buf, size_t size)
{
	(void)v;
	snprintf(buf, size, "[{\"device\": \"disk0\", \"locked\": false, \"removable\": false}]");
}

int snapshot_save(struct vm *v, const char *path, struct snapshot_stats *stats, struct errbuf *err)
{
	(void)v;
	memset(stats, 0, sizeof(*stats));
	if (fail_ops) /* the message quotes the client's path, as the real one does */
		return err_set(err, EACCES, "snapshot: cannot create '%s.tmp.1': %s", path,
			       strerror(EACCES));
	stats->file_bytes = 4096;
	return 0;
}

/* ---- seeds ---- */

static const char *const seeds[] = {
    "\x47{\"execute\": \"qmp_capabilities\"}\r\n{\"execute\": \"query-status\", \"id\": 1}\n"
    "{\"execute\": \"stop\"}{\"execute\": \"cont\", \"id\": \"c1\"}",
    "\x43{\"execute\": \"qmp_capabilities\", \"id\": [1, {\"a\": \"b\"}]}\n"
    "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/tmp/x\"}, \"id\": {\"n\": 2}}"
    "{\"execute\": \"query-migrate\"}{\"execute\": \"query-block\"}",
    "\xc0{\"execute\": \"qmp_capabilities\"} {\"execute\": \"migrate\", \"arguments\": "
    "{\"uri\": \"file:\\u00e9\\\"q\"}} {\"execute\": \"query-migrate\", \"id\": -1.5e3}"
    "{\"execute\": \"cont\"}",
    /* Text QMP echoes, one seed each: bytes that are not UTF-8, ids jsmn
     * takes that are not JSON, a control character, an over-long id. */
    "\x41{\"execute\": \"qmp_capabilities\"}{\"execute\": \"q\xff\xc3(\"}",
    "\x41{\"execute\": \"qmp_capabilities\"}{\"execute\": \"query-status\", \"id\": tru}",
    "\x41{\"execute\": \"qmp_capabilities\"}{\"execute\": \"x\", \"id\": [, 1 2]}",
    "\x41{\"execute\": \"qmp_capabilities\"}{\"execute\": \"stop\", \"id\": \"a\nb\x01\"}",
    "\x41{\"execute\": \"qmp_capabilities\"}{\"execute\": \"stop\", \"id\": \""
    "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123"
    "4567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
    "89012345678901234567890123456789012345678901234567890123456789012345678901234567890\"}",
    "\x01garbage{\"execute\": 1}{\"arguments\": []}{\"execute\": \"nope\", \"id\": null}"
    "[1,2]{\"execute\": \"system_reset\"}{\"execute\": \"quit\", \"id\": true}",
};

int fuzz_seeds(const char *dir)
{
	char name[32];

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		snprintf(name, sizeof(name), "seed%zu", i);
		fuzz_write_seed(dir, name, seeds[i], strlen(seeds[i]));
	}
	return 0;
}

/* ---- the target ---- */

static struct aio_context *ctx;
static struct qmp_server *qs;
static char sock_path[108];

/* Everything the server wrote so far. */
static char *out;
static size_t out_len, out_cap;

static void cleanup(void)
{
	qmp_server_free(qs);
	unlink(sock_path);
}

/* A run that found something aborted without cleanup(): its socket goes
 * when the next run starts. */
static void remove_stale_sockets(void)
{
	glob_t g;

	if (glob("/tmp/kvmini-fuzz-qmp-*.sock", 0, NULL, &g) != 0)
		return;
	for (size_t i = 0; i < g.gl_pathc; i++) {
		int pid = atoi(g.gl_pathv[i] + strlen("/tmp/kvmini-fuzz-qmp-"));

		if (pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
			unlink(g.gl_pathv[i]);
	}
	globfree(&g);
}

static void setup(void)
{
	struct errbuf err;

	remove_stale_sockets();

	snprintf(sock_path, sizeof(sock_path), "/tmp/kvmini-fuzz-qmp-%d.sock", (int)getpid());
	if (aio_context_new(&ctx) < 0 || qmp_server_new(ctx, sock_path, 0600, &qs, &err) < 0)
		fuzz_fail("QMP server: %s", err.msg);
	vm.run_state = VM_RUN_RUNNING;
	atexit(cleanup);
}

/* Read what is there; returns false at end of file. */
static bool drain(int fd)
{
	for (;;) {
		ssize_t n;

		if (out_cap - out_len < 65536) {
			out_cap = out_cap * 2 + 65536;
			out = realloc(out, out_cap);
		}
		n = read(fd, out + out_len, out_cap - out_len);
		if (n > 0) {
			out_len += (size_t)n;
			continue;
		}
		if (n == 0)
			return false;
		if (errno == EAGAIN)
			return true;
		if (errno == ECONNRESET)
			return false;
		fuzz_fail("read: %s", strerror(errno));
	}
}

static void check_output(void)
{
	size_t start = 0;
	int lines = 0;

	for (size_t i = 0; i + 1 < out_len; i++) {
		const char *why;
		size_t at;

		if (out[i] != '\r' || out[i + 1] != '\n')
			continue;
		if (!json_check_object(out + start, i - start, &why, &at))
			fuzz_fail("reply %d is not valid JSON (%s at byte %zu): %.*s", lines, why,
				  at, (int)(i - start), out + start);
		lines++;
		start = i + 2;
	}
	if (start != out_len)
		fuzz_fail("output ends in a partial line: %.*s", (int)(out_len - start),
			  out + start);
	if (lines < 1)
		fuzz_fail("no greeting");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	size_t piece, sent = 0;
	int fd;
	bool open = true;

	if (!ctx)
		setup();
	if (size < 1)
		return 0;
	piece = (data[0] & 63) + 1;
	qmp_server_set_vm(qs, data[0] & 64 ? &vm : NULL);
	fail_ops = data[0] & 128;
	vm.run_state = VM_RUN_RUNNING;
	data++;
	size--;
	out_len = 0;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(addr.sun_path, sock_path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		fuzz_fail("connect: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	while (sent < size) {
		size_t n = size - sent < piece ? size - sent : piece;
		ssize_t w = write(fd, data + sent, n);

		if (w < 0 && errno != EAGAIN) {
			open = false; /* the server hung up (input too large, say) */
			break;
		}
		if (w > 0)
			sent += (size_t)w;
		while (aio_poll(ctx, false))
			;
		if (!drain(fd)) {
			open = false;
			break;
		}
	}
	/* The client leaves; the server must notice and close its side. */
	shutdown(fd, SHUT_WR);
	for (int spins = 0; open; spins++) {
		struct pollfd p = {fd, POLLIN, 0};

		aio_poll(ctx, false);
		open = drain(fd);
		if (open && spins > 1000)
			fuzz_fail("the server did not close a connection its client left");
		if (open)
			poll(&p, 1, 1);
	}
	close(fd);
	while (aio_poll(ctx, false))
		;
	check_output();
	return 0;
}
