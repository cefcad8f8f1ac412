// SPDX-License-Identifier: MIT
/*
 * kvmini ctl: a QMP client. One connection, one command: read the greeting,
 * negotiate capabilities, send the command, read replies until the one that
 * is not an event. QMP servers (kvmini's and QEMU's) end every message with
 * a newline and never put a raw newline inside one, so messages are read
 * line by line and each is parsed whole with jsmn (vmm/json.c).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/ctl.h"
#include "vmm/json.h"
#include "vmm/util.h"

#define CTL_MSG_MAX	     (16u << 20) /* a larger message is not QMP's */
#define CTL_GREETING_MS	     10000
#define CTL_QUIT_WAIT_MS     10000
#define CTL_MIGRATE_POLL_NS  20000000L
#define CTL_CONNECT_RETRY_NS 50000000L

/* The commands, as `kvmini ctl --help` and `kvmini --help` list them. */
static const char ctl_commands[] =
    "  status                print the run state: running, paused, postmigrate, ...\n"
    "  stop                  pause the VM\n"
    "  cont                  resume the VM\n"
    "  snapshot FILE         save the VM to FILE (QMP migrate), wait until it is\n"
    "                        complete, print its size and the time taken; the VM\n"
    "                        stays stopped (cont resumes it; restore it with\n"
    "                        kvmini run --incoming file:FILE)\n"
    "  quit                  end the VM, wait until it is gone\n"
    "  reset                 reboot the VM\n"
    "  blocks                list the disks: device, I/O status, read-only, file\n"
    "  events [COUNT]        print events as they come, one JSON object per line,\n"
    "                        until the VM ends (or COUNT events)\n"
    "  raw JSON              send one QMP command, print the reply as JSON\n"
    "  --wait SECONDS        before the command: wait up to SECONDS for SOCKET to\n"
    "                        accept connections (default: 0, fail at once)\n";

void ctl_print_help(FILE *f, bool alone)
{
	if (alone)
		fputs("Usage: kvmini ctl [--wait SECONDS] SOCKET COMMAND [ARGS]\n"
		      "Control a running VM over QMP.\n\n",
		      f);
	fputs("Commands of kvmini ctl SOCKET (kvmini --qmp SOCKET or QEMU -qmp unix:SOCKET):\n", f);
	fputs(ctl_commands, f);
	fputs(alone ? "\nExit status:\n" : "\nExit status of kvmini ctl:\n", f);
	fputs("  0 done, 1 the VM answered with an error (printed), 125 bad usage or no\n"
	      "  QMP connection\n",
	      f);
}

struct ctl {
	const char *sock;
	int fd;
	char *buf; /* bytes received; the current message starts at buf[0] */
	size_t len, cap;
	size_t used;	/* bytes of buf taken by the current message */
	char *msg;	/* the current message, NUL-terminated, in buf */
	jsmntok_t *t;	/* its tokens */
	int n;		/* their number */
	bool is_kvmini; /* the greeting's package names kvmini */
	int major, minor;
};

static void ctl_sleep_ns(long ns)
{
	struct timespec ts = {.tv_sec = ns / 1000000000L, .tv_nsec = ns % 1000000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connect to c->sock, retrying a missing or refusing socket for @wait_s. */
static int ctl_connect(struct ctl *c, unsigned wait_s, struct errbuf *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int64_t deadline = ctl_now_ms() + (int64_t)wait_s * 1000;
	int e;

	if (strlen(c->sock) >= sizeof(addr.sun_path))
		return err_set(err, ENAMETOOLONG, "%s: socket path too long (max %zu bytes)",
			       c->sock, sizeof(addr.sun_path) - 1);
	strcpy(addr.sun_path, c->sock);
	for (;;) {
		c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			return err_set(err, errno, "socket: %s", strerror(errno));
		if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
			return 0;
		e = errno;
		close(c->fd);
		c->fd = -1;
		if ((e != ENOENT && e != ECONNREFUSED && e != EINTR) || ctl_now_ms() >= deadline)
			break;
		ctl_sleep_ns(CTL_CONNECT_RETRY_NS);
	}
	if (e == ENOENT)
		return err_set(err, e,
			       "%s: no such socket (start the VM with kvmini run --qmp %s; "
			       "--wait SECONDS waits for it)",
			       c->sock, c->sock);
	if (e == ECONNREFUSED)
		return err_set(err, e,
			       "%s: connection refused: no VM is listening there (it may have "
			       "ended), or it is not a socket",
			       c->sock);
	return err_set(err, e, "%s: cannot connect: %s", c->sock, strerror(e));
}

/*
 * Receive the next message into c->msg / c->t / c->n, waiting at most
 * @timeout_ms (-1: for ever). Returns 1, 0 at end of stream, or -errno.
 */
static int ctl_recv(struct ctl *c, int timeout_ms, struct errbuf *err)
{
	int64_t deadline = ctl_now_ms() + timeout_ms;

	if (c->used) { /* drop the previous message */
		memmove(c->buf, c->buf + c->used, c->len - c->used);
		c->len -= c->used;
		c->used = 0;
	}
	free(c->t);
	c->t = NULL;
	for (;;) {
		char *nl = c->len ? memchr(c->buf, '\n', c->len) : NULL;
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		ssize_t r;
		int wait = -1;

		if (nl) {
			size_t l = (size_t)(nl - c->buf);

			c->used = l + 1;
			while (l && (c->buf[l - 1] == '\r' || c->buf[l - 1] == ' '))
				l--;
			c->buf[l] = '\0';
			if (l == 0) { /* a blank line: nothing to parse */
				memmove(c->buf, c->buf + c->used, c->len - c->used);
				c->len -= c->used;
				c->used = 0;
				continue;
			}
			c->msg = c->buf;
			c->n = json_parse_alloc(c->msg, l, &c->t);
			if (c->n == -ENOMEM)
				return err_set(err, ENOMEM, "out of memory");
			if (c->n < 1 || c->t[0].type != JSMN_OBJECT)
				return err_set(err, EPROTO,
					       "%s: not QMP (a message is not a JSON "
					       "object): %.80s",
					       c->sock, c->msg);
			return 1;
		}
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 65536;
			char *b;

			if (cap > CTL_MSG_MAX)
				return err_set(err, EMSGSIZE,
					       "%s: not QMP (a message over %u MiB, or no newline)",
					       c->sock, CTL_MSG_MAX >> 20);
			b = realloc(c->buf, cap);
			if (!b)
				return err_set(err, ENOMEM, "out of memory");
			c->buf = b;
			c->cap = cap;
		}
		if (timeout_ms >= 0) {
			int64_t left = deadline - ctl_now_ms();

			wait = left > 0 ? (int)left : 0;
		}
		r = poll(&pfd, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -ETIMEDOUT;
		r = r < 0 ? r : read(c->fd, c->buf + c->len, c->cap - c->len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, errno, "%s: %s", c->sock, strerror(errno));
		if (r == 0)
			return 0;
		c->len += (size_t)r;
	}
}

static int ctl_send(struct ctl *c, const char *json, struct errbuf *err)
{
	size_t len = strlen(json), off = 0;

	while (off < len) {
		ssize_t r = send(c->fd, json + off, len - off, MSG_NOSIGNAL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_set(err, errno, "%s: lost the connection: %s", c->sock,
				       strerror(errno));
		off += (size_t)r;
	}
	return 0;
}

static int ctl_member(const struct ctl *c, int obj, const char *key)
{
	return json_member(c->msg, c->t, c->n, obj, key);
}

/* Decode string (or other) token @i of the current message into @dst. */
static void ctl_text(const struct ctl *c, int i, char *dst, size_t size)
{
	if (i < 0) {
		snprintf(dst, size, "-");
		return;
	}
	json_str_decode(c->msg, &c->t[i], dst, size);
}

static long ctl_number(const struct ctl *c, int i)
{
	return i >= 0 && c->t[i].type == JSMN_PRIMITIVE ? strtol(c->msg + c->t[i].start, NULL, 10)
							: -1;
}

/*
 * Send one command and read up to its reply (events before it are skipped).
 * Returns the token index of "return", -EREMOTEIO with the VM's error in
 * @err, -EPIPE when the connection ended first, or another -errno.
 */
static int ctl_exec(struct ctl *c, const char *json, struct errbuf *err)
{
	int r = ctl_send(c, json, err), ret, e;
	char desc[sizeof(err->msg) - 64];

	if (r < 0)
		return r;
	for (;;) {
		r = ctl_recv(c, -1, err);
		if (r <= 0)
			return r ? r
				 : err_set(err, EPIPE, "%s: the VM closed the connection", c->sock);
		if (ctl_member(c, 0, "event") < 0)
			break;
	}
	ret = ctl_member(c, 0, "return");
	if (ret >= 0)
		return ret;
	e = ctl_member(c, 0, "error");
	if (e < 0)
		return err_set(err, EPROTO, "%s: not a QMP reply: %.80s", c->sock, c->msg);
	ctl_text(c, ctl_member(c, e, "desc"), desc, sizeof(desc));
	return err_set(err, EREMOTEIO, "%s", desc);
}

/* Read the greeting and leave capabilities negotiation. */
static int ctl_handshake(struct ctl *c, struct errbuf *err)
{
	char pkg[64];
	int r = ctl_recv(c, CTL_GREETING_MS, err), q, v;

	if (r == -ETIMEDOUT)
		return err_set(err, ETIMEDOUT,
			       "%s: no QMP greeting within %d s (QEMU serves one QMP client at a "
			       "time: is another one connected?)",
			       c->sock, CTL_GREETING_MS / 1000);
	if (r <= 0)
		return r ? r : err_set(err, EPIPE, "%s: closed without a QMP greeting", c->sock);
	q = ctl_member(c, 0, "QMP");
	if (q < 0) {
		int e = ctl_member(c, 0, "error");

		if (e < 0)
			return err_set(err, EPROTO, "%s: not a QMP greeting: %.80s", c->sock,
				       c->msg);
		ctl_text(c, ctl_member(c, e, "desc"), pkg, sizeof(pkg));
		return err_set(err, EBUSY, "%s: the VM refused the connection: %s", c->sock, pkg);
	}
	v = ctl_member(c, q, "version");
	ctl_text(c, ctl_member(c, v, "package"), pkg, sizeof(pkg));
	c->is_kvmini = !strncmp(pkg, "kvmini", 6);
	v = ctl_member(c, v, "qemu");
	c->major = (int)ctl_number(c, ctl_member(c, v, "major"));
	c->minor = (int)ctl_number(c, ctl_member(c, v, "minor"));
	r = ctl_exec(c, "{\"execute\": \"qmp_capabilities\"}\n", err);
	if (r == -EREMOTEIO) { /* the session, not a command, failed */
		char desc[sizeof(err->msg)];

		memcpy(desc, err->msg, sizeof(desc));
		return err_set(err, EPROTO, "%s: qmp_capabilities failed: %s", c->sock, desc);
	}
	return r < 0 ? r : 0;
}

/* ---- commands ---- */

struct ctl_cmd {
	const char *name;
	int min_args, max_args;
	const char *execute; /* for the commands that only execute this */
	int (*run)(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		   struct errbuf *err);
	/* Check the arguments before connecting (NULL-terminated); optional. */
	int (*check)(char **args, struct errbuf *err);
};

/* stop, cont, reset: execute, print nothing. */
static int ctl_simple(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		      struct errbuf *err)
{
	char json[128];
	int r;

	snprintf(json, sizeof(json), "{\"execute\": \"%s\"}\n", cmd->execute);
	r = ctl_exec(c, json, err);
	return r < 0 ? r : 0;
}

static int ctl_status(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		      struct errbuf *err)
{
	char status[64];
	int r = ctl_exec(c, "{\"execute\": \"query-status\"}\n", err);

	if (r < 0)
		return r;
	ctl_text(c, ctl_member(c, r, "status"), status, sizeof(status));
	printf("%s\n", status);
	return 0;
}

static int ctl_quit(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		    struct errbuf *err)
{
	int r = ctl_exec(c, "{\"execute\": \"quit\"}\n", err);

	if (r == -EPIPE)
		return 0; /* gone before it could answer: what was asked */
	if (r < 0)
		return r;
	/* The VM closes the connection as it ends; a VM slow to end has
	 * still accepted the quit, so waiting is a courtesy, not a check. */
	while ((r = ctl_recv(c, CTL_QUIT_WAIT_MS, err)) > 0)
		;
	return 0;
}

int ctl_migrate_uri(char *uri, size_t size, const char *path, int kvmini, int major, int minor)
{
	size_t o;

	/* QEMU learnt file: URIs in 8.2; before, a shell writes the stream. */
	if (kvmini || major > 8 || (major == 8 && minor >= 2)) {
		if ((size_t)snprintf(uri, size, "file:%s", path) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	o = (size_t)snprintf(uri, size, "exec:cat > '");
	for (; *path && o + 5 < size; path++) {
		if (*path == '\'') {
			memcpy(uri + o, "'\\''", 4); /* close, escaped quote, reopen */
			o += 4;
		} else {
			uri[o++] = *path;
		}
	}
	if (*path || o + 2 > size)
		return -ENAMETOOLONG;
	uri[o++] = '\'';
	uri[o] = '\0';
	return 0;
}

static void ctl_print_size(uint64_t bytes)
{
	if (bytes >= 1u << 20)
		printf("%.1f MiB", (double)bytes / (1u << 20));
	else
		printf("%.1f KiB", (double)bytes / 1024);
}

static int ctl_snapshot(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
			struct errbuf *err)
{
	char path[4096], uri[4200], esc[8600], json[8700], status[32], desc[400];
	int64_t t0 = ctl_now_ms();
	struct stat st;
	uint64_t bytes;
	long ms;
	int r;

	/* The VM resolves the path in its own working directory, not ours. */
	if (!args[0][0])
		return err_set(err, EINVAL, "snapshot: empty file name");
	if (args[0][0] == '/')
		r = snprintf(path, sizeof(path), "%s", args[0]);
	else if (getcwd(path, sizeof(path)))
		r = snprintf(path + strlen(path), sizeof(path) - strlen(path), "/%s", args[0]);
	else
		return err_set(err, errno, "snapshot: cannot get the working directory: %s",
			       strerror(errno));
	if (r < 0 || (size_t)r >= sizeof(path) - strlen(path) ||
	    ctl_migrate_uri(uri, sizeof(uri), path, c->is_kvmini, c->major, c->minor) < 0)
		return err_set(err, ENAMETOOLONG, "snapshot: file name too long: %s", args[0]);
	json_escape(esc, sizeof(esc), uri);
	snprintf(json, sizeof(json),
		 "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"%s\"}}\n", esc);
	r = ctl_exec(c, json, err);
	if (r < 0)
		return r;
	/* kvmini answers when the file is complete, QEMU at once: both say
	 * in query-migrate when it is done. */
	for (;;) {
		r = ctl_exec(c, "{\"execute\": \"query-migrate\"}\n", err);
		if (r < 0)
			return r;
		ctl_text(c, ctl_member(c, r, "status"), status, sizeof(status));
		if (!strcmp(status, "completed"))
			break;
		if (!strcmp(status, "failed") || !strcmp(status, "cancelled")) {
			ctl_text(c, ctl_member(c, r, "error-desc"), desc, sizeof(desc));
			return err_set(err, EREMOTEIO, "snapshot %s: migration %s: %s", path,
				       status, desc);
		}
		ctl_sleep_ns(CTL_MIGRATE_POLL_NS);
	}
	ms = ctl_number(c, ctl_member(c, r, "total-time"));
	if (ms < 0)
		ms = (long)(ctl_now_ms() - t0);
	if (stat(path, &st) == 0)
		bytes = (uint64_t)st.st_size;
	else /* on another host's file system: what the VM says it wrote */
		bytes =
		    (uint64_t)ctl_number(c, ctl_member(c, ctl_member(c, r, "ram"), "transferred"));
	printf("%s: ", path);
	ctl_print_size(bytes);
	printf(" (%llu bytes) in %ld ms\n", (unsigned long long)bytes, ms);
	return 0;
}

static int ctl_blocks(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		      struct errbuf *err)
{
	int r = ctl_exec(c, "{\"execute\": \"query-block\"}\n", err), i, count;
	int wdev = (int)strlen("DEVICE"), wio = (int)strlen("IO-STATUS");
	char dev[256], io[32], file[4096];

	if (r < 0)
		return r;
	if (c->t[r].type != JSMN_ARRAY)
		return err_set(err, EPROTO, "%s: query-block did not return a list", c->sock);
	/* Two passes over the entries: column widths, then the rows. */
	for (int pass = 0; pass < 2; pass++) {
		if (pass)
			printf("%-*s  %-*s  %-3s  %s\n", wdev, "DEVICE", wio, "IO-STATUS", "RO",
			       "FILE");
		count = c->t[r].size;
		for (i = r + 1; count-- > 0; i = json_skip(c->t, c->n, i)) {
			int in = ctl_member(c, i, "inserted");
			int ro = ctl_member(c, in, "ro");
			int d = ctl_member(c, i, "device");

			ctl_text(c, d, dev, sizeof(dev));
			if (!dev[0]) /* QEMU: a -blockdev has no name, its device has */
				ctl_text(c, ctl_member(c, i, "qdev"), dev, sizeof(dev));
			ctl_text(c, ctl_member(c, i, "io-status"), io, sizeof(io));
			if (!pass) {
				wdev = (int)strlen(dev) > wdev ? (int)strlen(dev) : wdev;
				wio = (int)strlen(io) > wio ? (int)strlen(io) : wio;
				continue;
			}
			if (in < 0)
				snprintf(file, sizeof(file), "(no medium)");
			else
				ctl_text(c, ctl_member(c, in, "file"), file, sizeof(file));
			printf("%-*s  %-*s  %-3s  %s\n", wdev, dev, wio, io,
			       ro < 0			       ? "-"
			       : c->msg[c->t[ro].start] == 't' ? "yes"
							       : "no",
			       file);
		}
	}
	return 0;
}

static int ctl_events_check(char **args, struct errbuf *err)
{
	uint64_t count;

	if (args[0] && parse_uint(args[0], 1, UINT32_MAX, &count) < 0)
		return err_set(err, EINVAL, "events: COUNT '%s' must be a number from 1", args[0]);
	return 0;
}

static int ctl_events(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		      struct errbuf *err)
{
	uint64_t count = 0, seen = 0;
	int r;

	if (nargs)
		parse_uint(args[0], 1, UINT32_MAX, &count); /* ctl_events_check passed */
	while (!count || seen < count) {
		r = ctl_recv(c, -1, err);
		if (r <= 0)
			return r; /* the VM ended: all its events were printed */
		if (ctl_member(c, 0, "event") < 0)
			continue;
		printf("%s\n", c->msg);
		fflush(stdout);
		seen++;
	}
	return 0;
}

static int ctl_raw_check(char **args, struct errbuf *err)
{
	jsmntok_t *t = NULL;
	int n = json_parse_alloc(args[0], strlen(args[0]), &t);
	bool ok = n >= 1 && t[0].type == JSMN_OBJECT && json_skip(t, n, 0) == n &&
		  json_member(args[0], t, n, 0, "execute") >= 0;

	free(t);
	if (!ok)
		return err_set(err, EINVAL,
			       "raw: '%.200s' is not one JSON object with \"execute\" (e.g. "
			       "'{\"execute\": \"query-status\"}')",
			       args[0]);
	return 0;
}

static int ctl_raw(struct ctl *c, const struct ctl_cmd *cmd, char **args, int nargs,
		   struct errbuf *err)
{
	size_t len = strlen(args[0]);
	char *json;
	int r;

	json = malloc(len + 2);
	if (!json)
		return err_set(err, ENOMEM, "out of memory");
	/* One line: the server reads objects, we read lines. */
	for (size_t i = 0; i < len; i++)
		json[i] = args[0][i] == '\n' || args[0][i] == '\r' ? ' ' : args[0][i];
	memcpy(json + len, "\n", 2);
	r = ctl_exec(c, json, err);
	free(json);
	if (r >= 0 || r == -EREMOTEIO)
		printf("%s\n", c->msg); /* the reply, error or not, as the VM wrote it */
	if (r == -EREMOTEIO)
		err->msg[0] = '\0'; /* already printed in full */
	return r < 0 ? r : 0;
}

static const struct ctl_cmd ctl_cmds[] = {
    {.name = "status", .run = ctl_status},
    {.name = "stop", .execute = "stop", .run = ctl_simple},
    {.name = "cont", .execute = "cont", .run = ctl_simple},
    {.name = "snapshot", .min_args = 1, .max_args = 1, .run = ctl_snapshot},
    {.name = "quit", .run = ctl_quit},
    {.name = "reset", .execute = "system_reset", .run = ctl_simple},
    {.name = "blocks", .run = ctl_blocks},
    {.name = "events", .max_args = 1, .run = ctl_events, .check = ctl_events_check},
    {.name = "raw", .min_args = 1, .max_args = 1, .run = ctl_raw, .check = ctl_raw_check},
};

/* [--wait SECONDS] SOCKET COMMAND [ARGS]: the command and the index of
 * SOCKET, or -EINVAL with a message. */
static int ctl_parse(int argc, char **argv, unsigned *wait_s, const struct ctl_cmd **cmd,
		     struct errbuf *err)
{
	int i = 0;
	uint64_t n;

	*wait_s = 0;
	if (i < argc && !strncmp(argv[i], "--wait", 6)) {
		const char *v = argv[i][6] == '=' ? argv[i] + 7 : NULL;

		if (argv[i][6] && !v)
			return err_set(err, EINVAL, "unknown option '%s' (see kvmini ctl --help)",
				       argv[i]);
		if (!v && ++i >= argc)
			return err_set(err, EINVAL, "--wait needs a number of seconds");
		if (parse_uint(v ? v : argv[i], 0, 3600, &n) < 0)
			return err_set(err, EINVAL, "--wait '%s': must be whole seconds, 0..3600",
				       v ? v : argv[i]);
		*wait_s = (unsigned)n;
		i++;
	}
	if (i < argc && argv[i][0] == '-')
		return err_set(err, EINVAL, "unknown option '%s' (see kvmini ctl --help)", argv[i]);
	if (argc - i < 2)
		return err_set(err, EINVAL,
			       "usage: kvmini ctl [--wait SECONDS] SOCKET COMMAND [ARGS] "
			       "(kvmini ctl --help lists the commands)");
	for (size_t k = 0; k < ARRAY_SIZE(ctl_cmds); k++) {
		int nargs = argc - i - 2;

		if (strcmp(argv[i + 1], ctl_cmds[k].name) != 0)
			continue;
		if (nargs < ctl_cmds[k].min_args || nargs > ctl_cmds[k].max_args)
			return err_set(err, EINVAL, "%s: %s (see kvmini ctl --help)",
				       ctl_cmds[k].name,
				       nargs < ctl_cmds[k].min_args ? "missing argument"
								    : "too many arguments");
		*cmd = &ctl_cmds[k];
		if (ctl_cmds[k].check) {
			int r = ctl_cmds[k].check(argv + i + 2, err);

			if (r < 0)
				return r;
		}
		return i;
	}
	return err_set(err, EINVAL, "unknown command '%s' (see kvmini ctl --help)", argv[i + 1]);
}

int ctl_main(int argc, char **argv)
{
	struct ctl c = {.fd = -1};
	struct errbuf err = {{0}};
	const struct ctl_cmd *cmd = NULL;
	unsigned wait_s;
	int i, r;

	if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
		ctl_print_help(stdout, true);
		return CTL_EXIT_OK;
	}
	i = ctl_parse(argc, argv, &wait_s, &cmd, &err);
	if (i < 0) {
		fprintf(stderr, "kvmini ctl: %s\n", err.msg);
		return CTL_EXIT_USAGE;
	}
	c.sock = argv[i];
	r = ctl_connect(&c, wait_s, &err);
	if (r == 0)
		r = ctl_handshake(&c, &err);
	if (r == 0)
		r = cmd->run(&c, cmd, argv + i + 2, argc - i - 2, &err);
	if (c.fd >= 0)
		close(c.fd);
	free(c.t);
	free(c.buf);
	fflush(stdout);
	if (r < 0 && err.msg[0])
		fprintf(stderr, "kvmini ctl: %s\n", err.msg);
	return r == 0 ? CTL_EXIT_OK : r == -EREMOTEIO ? CTL_EXIT_VM : CTL_EXIT_USAGE;
}
