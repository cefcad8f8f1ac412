// SPDX-License-Identifier: MIT
/*
 * QMP server. Clients are non-blocking UNIX stream sockets watched by the
 * main AioContext; input is split into top-level JSON objects by a small
 * scanner (so several commands in one read, or one command over many
 * reads, both work) and each object is parsed with jsmn (strict mode).
 * Output is queued per client and flushed when the socket is writable, so
 * a client that does not read cannot block the main loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/json.h"
#include "vmm/qmp.h"
#include "vmm/snapshot.h"
#include "vmm/vm.h"

#define QMP_MAX_CLIENTS 8
#define QMP_IN_MAX	(64 * 1024) /* one command may not be larger */
#define QMP_OUT_MAX	(1024 * 1024)
#define QMP_MAX_TOKENS	256

struct qmp_client {
	struct qmp_server *qs;
	int fd;
	bool negotiated;
	char in[QMP_IN_MAX];
	size_t in_len;
	/* Scanner state over in[0..in_len): see qmp_scan. */
	size_t scan_pos;
	size_t obj_start; /* where the unfinished object starts */
	size_t moved;	  /* bytes compacted so far: at most what was read */
	int depth;
	bool in_string, escape;
	bool discarding; /* skipping an oversized or garbled object */
	char *out;
	size_t out_len, out_cap;
	bool want_write;
};

struct qmp_server {
	struct aio_context *ctx;
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct qmp_client *clients[QMP_MAX_CLIENTS];
	struct vm *vm;
	/* Last migrate, for query-migrate. */
	bool migrated;
	bool migrate_ok;
	int64_t migrate_ms;
	uint64_t migrate_bytes;
	char migrate_err[512];
};

struct qmp_cmd_ctx {
	struct qmp_client *c;
	const char *json;
	const jsmntok_t *toks;
	int ntoks;
	int args; /* token index of "arguments" object, or -1 */
	char *id; /* "id" re-serialised as JSON (malloc'd), or NULL */
};

/* ---- output ---- */

static void qmp_client_close(struct qmp_client *c);
static void qmp_client_writable(void *opaque);
static void free_client_bh(void *opaque);

static void qmp_flush(struct qmp_client *c)
{
	while (c->out_len) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			qmp_client_close(c);
			return;
		}
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
}

/* Queue text for @c; a client more than QMP_OUT_MAX behind is dropped. */
static int qmp_write(struct qmp_client *c, const char *s, size_t len)
{
	if (c->out_len + len > QMP_OUT_MAX) {
		qmp_client_close(c);
		return -ENOBUFS;
	}
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *n;

		while (cap < c->out_len + len)
			cap *= 2;
		n = realloc(c->out, cap);
		if (!n) {
			qmp_client_close(c);
			return -ENOMEM;
		}
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, s, len);
	c->out_len += len;
	return 0;
}

static void qmp_send(struct qmp_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void qmp_send(struct qmp_client *c, const char *fmt, ...)
{
	va_list ap;
	char *buf;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || c->fd < 0)
		return;
	buf = malloc((size_t)n + 3);
	if (!buf) {
		qmp_client_close(c);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(buf, (size_t)n + 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\r';
	buf[n++] = '\n';
	n = qmp_write(c, buf, (size_t)n);
	free(buf);
	if (n < 0)
		return;
	qmp_flush(c);
	/* Only a client with output left over needs the write handler. */
	if (c->fd >= 0 && c->out_len && !c->want_write) {
		c->want_write = true;
		aio_set_fd_handler(c->qs->ctx, c->fd, NULL, qmp_client_writable, c);
	}
}

static void qmp_reply_error(struct qmp_cmd_ctx *x, const char *cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void qmp_reply_error(struct qmp_cmd_ctx *x, const char *cls, const char *fmt, ...)
{
	char desc[1024], esc[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(desc, sizeof(desc), fmt, ap);
	va_end(ap);
	json_escape(esc, sizeof(esc), desc);
	if (x->id)
		qmp_send(x->c, "{\"error\": {\"class\": \"%s\", \"desc\": \"%s\"}, \"id\": %s}",
			 cls, esc, x->id);
	else
		qmp_send(x->c, "{\"error\": {\"class\": \"%s\", \"desc\": \"%s\"}}", cls, esc);
}

static void qmp_reply(struct qmp_cmd_ctx *x, const char *ret_json)
{
	if (x->id)
		qmp_send(x->c, "{\"return\": %s, \"id\": %s}", ret_json, x->id);
	else
		qmp_send(x->c, "{\"return\": %s}", ret_json);
}

void qmp_event(struct qmp_server *qs, const char *name, const char *data_json)
{
	struct timeval tv;

	if (!qs)
		return;
	gettimeofday(&tv, NULL);
	for (int i = 0; i < QMP_MAX_CLIENTS; i++) {
		struct qmp_client *c = qs->clients[i];

		if (c && c->negotiated)
			qmp_send(
			    c,
			    "{\"event\": \"%s\", \"data\": %s, \"timestamp\": {\"seconds\": %lld, "
			    "\"microseconds\": %lld}}",
			    name, data_json ? data_json : "{}", (long long)tv.tv_sec,
			    (long long)tv.tv_usec);
	}
}

/* ---- JSON checks over jsmn tokens (helpers: vmm/json.c) ---- */

/* Is @p[0..len) one JSON number (RFC 8259 grammar)? */
static bool json_number_ok(const char *p, size_t len)
{
	size_t i = 0, d;

	if (i < len && p[i] == '-')
		i++;
	if (i < len && p[i] == '0')
		i++;
	else if (i < len && p[i] >= '1' && p[i] <= '9')
		while (i < len && p[i] >= '0' && p[i] <= '9')
			i++;
	else
		return false;
	if (i < len && p[i] == '.') {
		for (d = ++i; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		for (d = i; i < len && p[i] >= '0' && p[i] <= '9'; i++)
			;
		if (i == d)
			return false;
	}
	return i == len;
}

/*
 * Check the value at token @i is JSON and return the index of the token
 * after it, or -1: jsmn's strict mode leaves some of that to us (a key
 * without a value, a primitive such as 'tru' or '01').
 */
static int tok_check(const char *json, const jsmntok_t *t, int n, int i, int depth)
{
	const char *p = json + t[i].start;
	size_t len = (size_t)(t[i].end - t[i].start);
	int next = i + 1;

	if (depth > QMP_MAX_TOKENS)
		return -1;
	switch (t[i].type) {
	case JSMN_STRING:
		return t[i].size == 0 ? next : -1;
	case JSMN_PRIMITIVE:
		if ((len == 4 && !memcmp(p, "true", 4)) || (len == 5 && !memcmp(p, "false", 5)) ||
		    (len == 4 && !memcmp(p, "null", 4)) || json_number_ok(p, len))
			return t[i].size == 0 ? next : -1;
		return -1;
	case JSMN_OBJECT:
	case JSMN_ARRAY:
		for (int m = 0; m < t[i].size; m++) {
			if (next >= n)
				return -1;
			if (t[i].type == JSMN_OBJECT) {
				/* A key is a string whose one child is its value. */
				if (t[next].type != JSMN_STRING || t[next].size != 1 || ++next >= n)
					return -1;
			}
			next = tok_check(json, t, n, next, depth + 1);
			if (next < 0)
				return -1;
		}
		return next;
	default:
		return -1;
	}
}

/*
 * Write the value at token @i as JSON to @dst (room for 6 bytes per input
 * byte plus 1 is always enough) and return the index of the next token,
 * or -1 if a string is not UTF-8 (tok_check ran first). Strings keep their
 * escapes (jsmn's strict mode checked them) and get raw control characters
 * escaped.
 */
static int tok_serialize(const char *json, const jsmntok_t *t, int n, int i, char *dst, size_t *o)
{
	const char *p = json + t[i].start;
	size_t len = (size_t)(t[i].end - t[i].start);
	int next = i + 1;

	switch (t[i].type) {
	case JSMN_STRING:
		dst[(*o)++] = '"';
		for (size_t k = 0; k < len;) {
			unsigned char ch = (unsigned char)p[k];
			size_t u = json_utf8_len((const unsigned char *)p + k, len - k);

			if (!u)
				return -1;
			if (ch < 0x20) {
				*o += (size_t)sprintf(dst + *o, "\\u%04x", ch);
			} else {
				memcpy(dst + *o, p + k, u);
				*o += u;
			}
			k += u;
		}
		dst[(*o)++] = '"';
		return next;
	case JSMN_PRIMITIVE: /* checked by tok_check */
		memcpy(dst + *o, p, len);
		*o += len;
		return next;
	case JSMN_OBJECT:
	case JSMN_ARRAY: {
		bool obj = t[i].type == JSMN_OBJECT;

		dst[(*o)++] = obj ? '{' : '[';
		for (int m = 0; m < t[i].size; m++) {
			if (next >= n)
				return -1;
			if (m)
				dst[(*o)++] = ',';
			if (obj) {
				if (t[next].type != JSMN_STRING)
					return -1;
				next = tok_serialize(json, t, n, next, dst, o);
				if (next < 0 || next >= n)
					return -1;
				dst[(*o)++] = ':';
			}
			next = tok_serialize(json, t, n, next, dst, o);
			if (next < 0)
				return -1;
		}
		dst[(*o)++] = obj ? '}' : ']';
		return next;
	}
	default:
		return -1;
	}
}

/* ---- commands ---- */

static const char *qmp_run_state_name(enum vm_run_state s)
{
	switch (s) {
	case VM_RUN_PRELAUNCH:
		return "prelaunch";
	case VM_RUN_RUNNING:
		return "running";
	case VM_RUN_PAUSED:
		return "paused";
	case VM_RUN_POSTMIGRATE:
		return "postmigrate";
	case VM_RUN_IO_ERROR:
		return "io-error";
	case VM_RUN_SHUTDOWN:
		return "shutdown";
	}
	return "debug";
}

static bool qmp_need_vm(struct qmp_cmd_ctx *x)
{
	if (x->c->qs->vm)
		return true;
	qmp_reply_error(x, "GenericError", "the VM is being reset; try again");
	return false;
}

static void cmd_qmp_capabilities(struct qmp_cmd_ctx *x)
{
	if (x->c->negotiated) {
		qmp_reply_error(x, "CommandNotFound",
				"Capabilities negotiation is already complete, command ignored");
		return;
	}
	x->c->negotiated = true;
	qmp_reply(x, "{}");
}

static void cmd_query_status(struct qmp_cmd_ctx *x)
{
	char buf[160];
	struct vm *vm = x->c->qs->vm;
	enum vm_run_state st = vm ? vm->run_state : VM_RUN_PRELAUNCH;

	snprintf(buf, sizeof(buf), "{\"status\": \"%s\", \"singlestep\": false, \"running\": %s}",
		 qmp_run_state_name(st), st == VM_RUN_RUNNING ? "true" : "false");
	qmp_reply(x, buf);
}

static void cmd_stop(struct qmp_cmd_ctx *x)
{
	struct vm *vm = x->c->qs->vm;

	if (!qmp_need_vm(x))
		return;
	/* As QEMU: the reply says the VM is stopped (its disks quiet: the
	 * devices' drain ops ran), after the event. */
	if (vm->run_state == VM_RUN_RUNNING) {
		vm_pause(vm);
		vm->run_state = VM_RUN_PAUSED;
		qmp_event(x->c->qs, "STOP", NULL);
	}
	qmp_reply(x, "{}");
}

static void cmd_cont(struct qmp_cmd_ctx *x)
{
	struct vm *vm = x->c->qs->vm;
	struct errbuf err;

	if (!qmp_need_vm(x))
		return;
	if (vm->run_state == VM_RUN_RUNNING) {
		qmp_reply(x, "{}");
		return;
	}
	if (vm_cont(vm, &err) < 0) {
		qmp_reply_error(x, "GenericError", "%s", err.msg);
		return;
	}
	qmp_reply(x, "{}");
	qmp_event(x->c->qs, "RESUME", NULL);
}

static void cmd_system_reset(struct qmp_cmd_ctx *x)
{
	if (!qmp_need_vm(x))
		return;
	qmp_reply(x, "{}");
	/* A reset rebuilds the VM in main; requested by the host, it always
	 * reboots, --reboot or not. */
	vm_request_exit(x->c->qs->vm, VM_EXIT_RESET, VM_RESET_HOST);
}

static void cmd_quit(struct qmp_cmd_ctx *x)
{
	qmp_reply(x, "{}");
	if (x->c->qs->vm)
		vm_request_exit(x->c->qs->vm, VM_EXIT_QUIT, 0);
}

static void cmd_migrate(struct qmp_cmd_ctx *x)
{
	struct qmp_server *qs = x->c->qs;
	struct vm *vm = qs->vm;
	char uri[4096];
	struct errbuf err;
	struct snapshot_stats stats;
	int u = json_member(x->json, x->toks, x->ntoks, x->args, "uri");
	bool was_running;
	int64_t t0;

	if (!qmp_need_vm(x))
		return;
	if (u < 0 || !json_str(x->json, &x->toks[u], uri, sizeof(uri))) {
		qmp_reply_error(x, "GenericError", "Parameter 'uri' is missing or not a string");
		return;
	}
	if (strncmp(uri, "file:", 5) != 0 || uri[5] == '\0') {
		qmp_reply_error(x, "GenericError",
				"Invalid migration URI '%s': kvmini supports only file:PATH", uri);
		return;
	}
	/* The VM is stopped first and stays stopped afterwards ("postmigrate"),
	 * as in QEMU: cont resumes it. vm_pause also quiesces the devices of
	 * a VM that never ran (--paused). */
	was_running = vm->run_state == VM_RUN_RUNNING;
	vm_pause(vm);
	if (was_running) {
		vm->run_state = VM_RUN_PAUSED;
		qmp_event(qs, "STOP", NULL);
	}
	t0 = aio_clock_ns();
	qs->migrated = true;
	if (snapshot_save(vm, uri + 5, &stats, &err) < 0) {
		struct errbuf cerr;

		qs->migrate_ok = false;
		snprintf(qs->migrate_err, sizeof(qs->migrate_err), "%s", err.msg);
		qmp_reply_error(x, "GenericError", "%s", err.msg);
		/* Nothing was saved: a VM that was running runs on, as in QEMU. */
		if (was_running && vm_cont(vm, &cerr) == 0)
			qmp_event(qs, "RESUME", NULL);
		return;
	}
	qs->migrate_ok = true;
	qs->migrate_ms = (aio_clock_ns() - t0) / 1000000;
	qs->migrate_bytes = stats.file_bytes;
	vm->run_state = VM_RUN_POSTMIGRATE;
	qmp_reply(x, "{}");
}

static void cmd_query_migrate(struct qmp_cmd_ctx *x)
{
	struct qmp_server *qs = x->c->qs;
	char buf[2048], esc[1100];

	if (!qs->migrated) {
		qmp_reply(x, "{}");
		return;
	}
	if (qs->migrate_ok) {
		snprintf(
		    buf, sizeof(buf),
		    "{\"status\": \"completed\", \"total-time\": %lld, \"ram\": {\"transferred\": "
		    "%llu, \"total\": %llu}}",
		    (long long)qs->migrate_ms, (unsigned long long)qs->migrate_bytes,
		    qs->vm ? (unsigned long long)qs->vm->mem.ram_size : 0ULL);
	} else {
		json_escape(esc, sizeof(esc), qs->migrate_err);
		snprintf(buf, sizeof(buf), "{\"status\": \"failed\", \"error-desc\": \"%s\"}", esc);
	}
	qmp_reply(x, buf);
}

static void cmd_query_block(struct qmp_cmd_ctx *x)
{
	char buf[32768];

	if (!qmp_need_vm(x))
		return;
	vm_query_block_json(x->c->qs->vm, buf, sizeof(buf));
	qmp_reply(x, buf);
}

struct qmp_command {
	const char *name;
	void (*fn)(struct qmp_cmd_ctx *x);
};

static const struct qmp_command qmp_commands[] = {
    {"qmp_capabilities", cmd_qmp_capabilities},
    {"query-status", cmd_query_status},
    {"stop", cmd_stop},
    {"cont", cmd_cont},
    {"system_reset", cmd_system_reset},
    {"quit", cmd_quit},
    {"migrate", cmd_migrate},
    {"query-migrate", cmd_query_migrate},
    {"query-block", cmd_query_block},
};

/* Run the command in @x's object, its id already taken. */
static void qmp_run(struct qmp_cmd_ctx *x)
{
	const char *json = x->json;
	const jsmntok_t *toks = x->toks;
	int n = x->ntoks, e = json_member(json, toks, n, 0, "execute");
	char name[64];

	if (e < 0) {
		qmp_reply_error(x, "GenericError", "QMP input lacks member 'execute'");
		return;
	}
	if (!json_str(json, &toks[e], name, sizeof(name))) {
		qmp_reply_error(x, "GenericError", "QMP input member 'execute' must be a string");
		return;
	}
	x->args = json_member(json, toks, n, 0, "arguments");
	if (x->args >= 0 && toks[x->args].type != JSMN_OBJECT) {
		qmp_reply_error(x, "GenericError",
				"QMP input member 'arguments' must be an object");
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(qmp_commands); i++) {
		if (strcmp(name, qmp_commands[i].name) != 0)
			continue;
		if (!x->c->negotiated && qmp_commands[i].fn != cmd_qmp_capabilities) {
			qmp_reply_error(
			    x, "CommandNotFound",
			    "Expecting capabilities negotiation with 'qmp_capabilities'");
			return;
		}
		qmp_commands[i].fn(x);
		return;
	}
	qmp_reply_error(x, "CommandNotFound", "The command %s has not been found", name);
}

static void qmp_dispatch(struct qmp_client *c, const char *json, size_t len)
{
	jsmntok_t toks[QMP_MAX_TOKENS];
	jsmn_parser p;
	struct qmp_cmd_ctx x = {.c = c, .json = json, .toks = toks, .args = -1};
	int n, idt;

	jsmn_init(&p);
	n = jsmn_parse(&p, json, len, toks, QMP_MAX_TOKENS);
	if (n < 1 || toks[0].type != JSMN_OBJECT) {
		qmp_reply_error(&x, "GenericError",
				n == JSMN_ERROR_NOMEM ? "JSON too complex"
				: n < 1		      ? "JSON parse error"
						      : "QMP input must be a JSON object");
		return;
	}
	if (tok_check(json, toks, n, 0, 0) != n) {
		qmp_reply_error(&x, "GenericError", "JSON parse error");
		return;
	}
	x.ntoks = n;
	idt = json_member(json, toks, n, 0, "id");
	if (idt >= 0) {
		/* Echoed as any JSON value (as QEMU), re-serialised from its
		 * tokens so that the reply is JSON whatever the input was. */
		size_t o = 0;

		x.id = malloc(6 * len + 1);
		if (!x.id) {
			qmp_client_close(c);
			return;
		}
		if (tok_serialize(json, toks, n, idt, x.id, &o) < 0) {
			free(x.id);
			x.id = NULL;
			qmp_reply_error(&x, "GenericError", "JSON parse error: 'id' is not UTF-8");
			return;
		}
		x.id[o] = '\0';
	}
	qmp_run(&x);
	free(x.id);
}

/*
 * Find complete top-level objects in c->in and dispatch them. Text outside
 * an object (other than whitespace) is a parse error reported once per
 * run; an object larger than the buffer is discarded with an error.
 *
 * Linear in the input however it arrives: each byte is scanned once, and
 * an unfinished object stays where it is until the buffer is full; only
 * then is it moved to the front, once (no per-read memmove).
 */
static void qmp_scan(struct qmp_client *c)
{
	bool garbage = false;
	size_t i;

	for (i = c->scan_pos; i < c->in_len && c->fd >= 0; i++) {
		char ch = c->in[i];

		if (c->depth == 0) {
			if (ch == '{') {
				c->obj_start = i;
				c->depth = 1;
				c->in_string = c->escape = false;
			} else if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
				garbage = true;
			}
			continue;
		}
		if (c->in_string) {
			if (c->escape)
				c->escape = false;
			else if (ch == '\\')
				c->escape = true;
			else if (ch == '"')
				c->in_string = false;
			continue;
		}
		if (ch == '"')
			c->in_string = true;
		else if (ch == '{' || ch == '[')
			c->depth++;
		else if (ch == '}' || ch == ']')
			c->depth--;
		if (c->depth == 0) {
			if (garbage) {
				struct qmp_cmd_ctx x = {.c = c};

				qmp_reply_error(&x, "GenericError", "JSON parse error");
				garbage = false;
			}
			if (c->discarding) {
				struct qmp_cmd_ctx x = {.c = c};

				c->discarding = false;
				qmp_reply_error(&x, "GenericError", "QMP input too large");
			} else {
				qmp_dispatch(c, c->in + c->obj_start, i + 1 - c->obj_start);
			}
		}
	}
	if (c->fd < 0)
		return;
	c->scan_pos = i;
	if (garbage) {
		struct qmp_cmd_ctx x = {.c = c};

		qmp_reply_error(&x, "GenericError", "JSON parse error");
	}
	if (c->depth == 0) {
		c->in_len = c->scan_pos = c->obj_start = 0;
	} else if (c->in_len == sizeof(c->in) && c->obj_start > 0) {
		/* Full: move the unfinished object to the front. */
		c->in_len -= c->obj_start;
		memmove(c->in, c->in + c->obj_start, c->in_len);
		c->moved += c->in_len;
		c->scan_pos = c->in_len;
		c->obj_start = 0;
	} else if (c->in_len == sizeof(c->in)) {
		/* Too large: drop what we have, keep scanning for its end. */
		c->discarding = true;
		c->in_len = c->scan_pos = 0;
	}
}

static void qmp_client_readable(void *opaque)
{
	struct qmp_client *c = opaque;
	ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		qmp_client_close(c);
		return;
	}
	c->in_len += (size_t)n;
	qmp_scan(c);
}

static void qmp_client_writable(void *opaque)
{
	struct qmp_client *c = opaque;

	qmp_flush(c);
	if (c->fd >= 0 && c->out_len == 0) {
		c->want_write = false;
		aio_set_fd_handler(c->qs->ctx, c->fd, qmp_client_readable, NULL, c);
	}
}

static void qmp_client_close(struct qmp_client *c)
{
	struct qmp_server *qs = c->qs;

	if (c->fd < 0)
		return;
	aio_set_fd_handler(qs->ctx, c->fd, NULL, NULL, NULL);
	close(c->fd);
	c->fd = -1;
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		if (qs->clients[i] == c)
			qs->clients[i] = NULL;
	/* Freed from a BH: we may be inside this client's own callbacks. */
	aio_bh_schedule_oneshot(qs->ctx, free_client_bh, c);
}

static void free_client_bh(void *opaque)
{
	struct qmp_client *c = opaque;

	free(c->out);
	free(c);
}

static void qmp_accept(void *opaque)
{
	struct qmp_server *qs = opaque;
	struct qmp_client *c;
	int fd, slot = -1;

	fd = accept4(qs->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		if (!qs->clients[i]) {
			slot = i;
			break;
		}
	c = slot < 0 ? NULL : calloc(1, sizeof(*c));
	if (!c) {
		static const char busy[] = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
					   "\"too many QMP clients\"}}\r\n";

		if (send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			/* nothing more to tell a client we cannot take */
		}
		close(fd);
		return;
	}
	c->qs = qs;
	c->fd = fd;
	qs->clients[slot] = c;
	if (aio_set_fd_handler(qs->ctx, fd, qmp_client_readable, NULL, c) < 0) {
		qs->clients[slot] = NULL;
		close(fd);
		free(c);
		return;
	}
	qmp_send(c,
		 "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
		 "\"package\": \"kvmini " KVMINI_VERSION "\"}, \"capabilities\": []}}");
}

int qmp_server_new(struct aio_context *ctx, const char *path, unsigned mode,
		   struct qmp_server **out, struct errbuf *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct qmp_server *qs;
	struct stat st;
	mode_t old_umask;
	int ret, r;

	if (strlen(path) >= sizeof(addr.sun_path))
		return err_set(err, ENAMETOOLONG, "--qmp '%s': socket path too long (max %zu)",
			       path, sizeof(addr.sun_path) - 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return err_set(err, EEXIST, "--qmp '%s': exists and is not a socket", path);
		unlink(path); /* a stale socket from an earlier run */
	}
	qs = calloc(1, sizeof(*qs));
	if (!qs)
		return err_set(err, ENOMEM, "--qmp: out of memory");
	qs->ctx = ctx;
	snprintf(qs->path, sizeof(qs->path), "%s", path);
	strcpy(addr.sun_path, path);
	qs->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (qs->listen_fd < 0) {
		ret = err_set(err, errno, "--qmp: socket: %s", strerror(errno));
		goto fail;
	}
	/* The socket is created with exactly @mode: whoever can connect
	 * controls the VM, so the umask must not widen it (0777 under umask
	 * 000) and no chmod window may follow. Setup runs before any other
	 * thread exists, so the process-wide umask is ours to flip. */
	old_umask = umask(~(mode_t)mode & 0777);
	r = bind(qs->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	ret = errno;
	umask(old_umask);
	if (r < 0) {
		ret = err_set(err, ret, "--qmp '%s': %s", path, strerror(ret));
		goto fail_fd;
	}
	if (listen(qs->listen_fd, 4) < 0 ||
	    aio_set_fd_handler(ctx, qs->listen_fd, qmp_accept, NULL, qs) < 0) {
		ret = err_set(err, errno ? errno : EIO, "--qmp '%s': cannot listen", path);
		goto fail_unlink;
	}
	*out = qs;
	return 0;
fail_unlink:
	unlink(path);
fail_fd:
	close(qs->listen_fd);
fail:
	free(qs);
	return ret;
}

void qmp_server_free(struct qmp_server *qs)
{
	if (!qs)
		return;
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		if (qs->clients[i]) {
			qmp_flush(qs->clients[i]);
			if (qs->clients[i])
				qmp_client_close(qs->clients[i]);
		}
	aio_set_fd_handler(qs->ctx, qs->listen_fd, NULL, NULL, NULL);
	close(qs->listen_fd);
	unlink(qs->path);
	/* Let the clients' free BHs run before the context goes. */
	while (aio_poll(qs->ctx, false))
		;
	free(qs);
}

void qmp_server_set_vm(struct qmp_server *qs, struct vm *vm)
{
	if (qs)
		qs->vm = vm;
}
