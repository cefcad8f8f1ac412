/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for vmm/qmp.c: a real server on a UNIX socket, driven through
 * the main AioContext, with the VM side stubbed (vm_pause, vm_cont,
 * vm_request_exit, vm_query_block_json, snapshot_save). qmp.c is included
 * so that the tests can see a client's input buffer bookkeeping. Every
 * reply is checked to be valid JSON by a strict validator of our own.
 */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/qmp.c"

/* ---- the VM side ---- */

static struct {
	int pauses, conts, exits, saves;
	enum vm_exit_kind exit_kind;
	char saved_path[256];
	int fail_save; /* errno */
} V;

void vm_pause(struct vm *vm)
{
	V.pauses++;
}

int vm_cont(struct vm *vm, struct errbuf *err)
{
	V.conts++;
	vm->run_state = VM_RUN_RUNNING;
	return 0;
}

void vm_request_exit(struct vm *vm, enum vm_exit_kind kind, int status)
{
	V.exits++;
	V.exit_kind = kind;
}

void vm_query_block_json(struct vm *vm, char *buf, size_t size)
{
	snprintf(buf, size, "[]");
}

int snapshot_save(struct vm *vm, const char *path, struct snapshot_stats *stats, struct errbuf *err)
{
	V.saves++;
	snprintf(V.saved_path, sizeof(V.saved_path), "%s", path);
	memset(stats, 0, sizeof(*stats));
	if (V.fail_save)
		return err_set(err, V.fail_save, "snapshot: cannot create a file in '/x': \"%s\"",
			       strerror(V.fail_save));
	stats->file_bytes = 4096;
	return 0;
}

/* ---- a strict JSON validator (RFC 8259) ---- */

static const char *jv_value(const char *p, const char *e, int depth);

static const char *jv_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static const char *jv_string(const char *p, const char *e)
{
	if (p >= e || *p++ != '"')
		return NULL;
	while (p < e) {
		unsigned char ch = (unsigned char)*p++;

		if (ch == '"')
			return p;
		if (ch < 0x20)
			return NULL;
		if (ch == '\\') {
			if (p >= e)
				return NULL;
			ch = (unsigned char)*p++;
			if (ch == 'u') {
				for (int i = 0; i < 4; i++, p++)
					if (p >= e || !strchr("0123456789abcdefABCDEF", *p) || !*p)
						return NULL;
			} else if (!strchr("\"\\/bfnrt", ch) || !ch) {
				return NULL;
			}
		} else if (ch >= 0x80) {
			int more = ch >= 0xf0 ? 3 : ch >= 0xe0 ? 2 : ch >= 0xc2 ? 1 : -1;

			if (more < 0 || ch > 0xf4)
				return NULL;
			for (; more; more--, p++)
				if (p >= e || ((unsigned char)*p & 0xc0) != 0x80)
					return NULL;
		}
	}
	return NULL;
}

static const char *jv_number(const char *p, const char *e)
{
	const char *d;

	if (p < e && *p == '-')
		p++;
	if (p < e && *p == '0')
		p++;
	else if (p < e && *p >= '1' && *p <= '9')
		while (p < e && *p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (p < e && *p == '.') {
		for (d = ++p; p < e && *p >= '0' && *p <= '9'; p++)
			;
		if (p == d)
			return NULL;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		if (++p < e && (*p == '+' || *p == '-'))
			p++;
		for (d = p; p < e && *p >= '0' && *p <= '9'; p++)
			;
		if (p == d)
			return NULL;
	}
	return p;
}

static const char *jv_value(const char *p, const char *e, int depth)
{
	p = jv_ws(p, e);
	if (p >= e || depth > 200)
		return NULL;
	if (*p == '"')
		return jv_string(p, e);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		bool obj = *p == '{';

		p = jv_ws(p + 1, e);
		if (p < e && *p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				p = jv_string(jv_ws(p, e), e);
				if (!p)
					return NULL;
				p = jv_ws(p, e);
				if (p >= e || *p++ != ':')
					return NULL;
			}
			p = jv_value(p, e, depth + 1);
			if (!p)
				return NULL;
			p = jv_ws(p, e);
			if (p < e && *p == ',') {
				p++;
				continue;
			}
			return p < e && *p == close ? p + 1 : NULL;
		}
	}
	for (const char *lit = "true\0false\0null\0"; *lit; lit += strlen(lit) + 1)
		if ((size_t)(e - p) >= strlen(lit) && !memcmp(p, lit, strlen(lit)))
			return p + strlen(lit);
	return jv_number(p, e);
}

static bool json_valid(const char *s)
{
	const char *e = s + strlen(s), *p = jv_value(s, e, 0);

	return p && jv_ws(p, e) == e;
}

static void test_validator(void **st)
{
	assert_true(json_valid("{\"a\": [1, -2.5e3, true, null, \"\\u00e9\\n\"], \"b\": {}}"));
	assert_true(json_valid("\"\xc3\xa9\""));
	assert_false(json_valid("{\"a\": 1"));
	assert_false(json_valid("{\"a\": 01}"));
	assert_false(json_valid("{\"a\": tru}"));
	assert_false(json_valid("\"a\x01\""));
	assert_false(json_valid("\"\\x\""));
	assert_false(json_valid("\"\xff\""));
	assert_false(json_valid("[1,]"));
	assert_false(json_valid("{\"a\" 1}"));
	assert_false(json_valid("{} {}"));
}

/* ---- a client ---- */

struct fx {
	struct aio_context *ctx;
	struct qmp_server *qs;
	char dir[64], path[128];
	struct vm vm;
};

static struct fx F;

struct qc {
	int fd;
	char buf[1 << 18];
	size_t len;
};

static int setup(void **st)
{
	memset(&F, 0, sizeof(F));
	memset(&V, 0, sizeof(V));
	snprintf(F.dir, sizeof(F.dir), "/tmp/kvmini-qmptest.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.path, sizeof(F.path), "%s/qmp.sock", F.dir);
	assert_int_equal(aio_context_new(&F.ctx), 0);
	return 0;
}

static int teardown(void **st)
{
	qmp_server_free(F.qs);
	aio_context_free(F.ctx);
	unlink(F.path);
	rmdir(F.dir);
	return 0;
}

static void server_start(void)
{
	struct errbuf err;

	if (qmp_server_new(F.ctx, F.path, 0600, &F.qs, &err) < 0)
		fail_msg("qmp_server_new: %s", err.msg);
	F.vm.run_state = VM_RUN_RUNNING;
	F.vm.mem.ram_size = 1 << 20;
	qmp_server_set_vm(F.qs, &F.vm);
}

/* Run the server until @fd is readable (or a while passed). */
static void pump_until_readable(int fd)
{
	for (int i = 0; i < 2000; i++) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		while (aio_poll(F.ctx, false))
			;
		if (poll(&p, 1, i < 10 ? 0 : 5) > 0)
			return;
	}
}

/* The next reply line (without CRLF), checked to be valid JSON. */
static char *qc_line(struct qc *c)
{
	for (int tries = 0; tries < 1000; tries++) {
		char *nl = memmem(c->buf, c->len, "\r\n", 2);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - c->buf);
			char *line = strndup(c->buf, l);

			memmove(c->buf, nl + 2, c->len - l - 2);
			c->len -= l + 2;
			if (!json_valid(line))
				fail_msg("reply is not valid JSON: %s", line);
			return line;
		}
		pump_until_readable(c->fd);
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, MSG_DONTWAIT);
		if (n > 0)
			c->len += (size_t)n;
		else if (n == 0)
			fail_msg("the server closed the connection");
	}
	fail_msg("no reply");
	return NULL;
}

/* Send all of @s, letting the server read meanwhile. */
static void qc_send_n(struct qc *c, const char *s, size_t len)
{
	while (len) {
		ssize_t n = send(c->fd, s, len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			while (aio_poll(F.ctx, false))
				;
			continue;
		}
		assert_true(n > 0);
		s += n;
		len -= (size_t)n;
	}
}

static void qc_send(struct qc *c, const char *s)
{
	qc_send_n(c, s, strlen(s));
}

/* Send @cmd, expect a reply containing @needle; returns it. */
static char *qc_cmd(struct qc *c, const char *cmd, const char *needle)
{
	char *r;

	qc_send(c, cmd);
	r = qc_line(c);
	if (needle && !strstr(r, needle))
		fail_msg("'%s' not in the reply to %s: %s", needle, cmd, r);
	return r;
}

static void qc_expect(struct qc *c, const char *cmd, const char *needle)
{
	free(qc_cmd(c, cmd, needle));
}

static struct qc *qc_connect(bool negotiate)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct qc *c = calloc(1, sizeof(*c));
	char *greeting;

	memcpy(a.sun_path, F.path, strlen(F.path) + 1);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	greeting = qc_line(c);
	assert_non_null(strstr(greeting, "{\"QMP\": {\"version\": {\"qemu\""));
	assert_non_null(strstr(greeting, "\"capabilities\": []"));
	free(greeting);
	if (negotiate)
		qc_expect(c, "{\"execute\": \"qmp_capabilities\"}", "{\"return\": {}}");
	return c;
}

static void qc_close(struct qc *c)
{
	close(c->fd);
	free(c);
	for (int i = 0; i < 10; i++)
		aio_poll(F.ctx, false);
}

/* The client object the server keeps for its @n-th connection. */
static struct qmp_client *server_client(int n)
{
	for (int i = 0, k = 0; i < QMP_MAX_CLIENTS; i++)
		if (F.qs->clients[i] && k++ == n)
			return F.qs->clients[i];
	fail_msg("no client %d", n);
	return NULL;
}

/* ---- tests ---- */

static void test_negotiation(void **st)
{
	struct qc *c;

	server_start();
	c = qc_connect(false);
	qc_expect(c, "{\"execute\": \"query-status\"}",
		  "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"Expecting "
		  "capabilities negotiation with 'qmp_capabilities'\"}}");
	qc_expect(c, "{\"execute\": \"stop\", \"id\": 4}", "\"id\": 4}");
	assert_int_equal(V.pauses, 0);
	qc_expect(c, "{\"execute\": \"qmp_capabilities\", \"id\": \"neg\"}",
		  "{\"return\": {}, \"id\": \"neg\"}");
	qc_expect(c, "{\"execute\": \"qmp_capabilities\"}",
		  "Capabilities negotiation is already complete");
	qc_expect(c, "{\"execute\": \"query-status\"}",
		  "{\"return\": {\"status\": \"running\", \"singlestep\": false, \"running\": "
		  "true}}");
	qc_close(c);
}

static void test_events(void **st)
{
	struct qc *a, *b;
	char *r;

	server_start();
	a = qc_connect(true);
	b = qc_connect(false); /* not negotiated: no events */
	/* The VM stops first (an event), then the reply, as in QEMU. */
	qc_expect(a, "{\"execute\": \"stop\"}",
		  "{\"event\": \"STOP\", \"data\": {}, \"timestamp\": {\"seconds\": ");
	qc_expect(a, "", "{\"return\": {}}");
	assert_int_equal(V.pauses, 1);
	qmp_event(F.qs, "BLOCK_IO_ERROR", "{\"device\": \"vda\"}");
	r = qc_line(a);
	assert_non_null(
	    strstr(r, "\"event\": \"BLOCK_IO_ERROR\", \"data\": {\"device\": \"vda\"}"));
	free(r);
	F.vm.run_state = VM_RUN_PAUSED;
	qc_expect(a, "{\"execute\": \"cont\"}", "{\"return\": {}}");
	free(qc_cmd(a, "", "RESUME"));
	/* b saw none of it: its next line is the reply to its command. */
	qc_expect(b, "{\"execute\": \"qmp_capabilities\"}", "{\"return\": {}}");
	qc_expect(b, "{\"execute\": \"query-status\"}", "\"running\": true");
	/* quit and system_reset ask the main loop. */
	qc_expect(a, "{\"execute\": \"system_reset\"}", "{\"return\": {}}");
	assert_int_equal(V.exit_kind, VM_EXIT_RESET);
	qc_expect(a, "{\"execute\": \"quit\"}", "{\"return\": {}}");
	assert_int_equal(V.exit_kind, VM_EXIT_QUIT);
	/* Between a reset and the next boot there is no VM. */
	qmp_server_set_vm(F.qs, NULL);
	qc_expect(a, "{\"execute\": \"stop\"}", "the VM is being reset");
	qc_expect(a, "{\"execute\": \"query-status\"}", "prelaunch");
	qc_close(a);
	qc_close(b);
}

static void test_migrate(void **st)
{
	struct qc *c;

	server_start();
	c = qc_connect(true);
	qc_expect(c, "{\"execute\": \"query-migrate\"}", "{\"return\": {}}");
	qc_expect(c, "{\"execute\": \"migrate\"}", "Parameter 'uri' is missing");
	qc_expect(c, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"tcp:1\"}}",
		  "kvmini supports only file:PATH");
	assert_int_equal(V.saves, 0);
	/* The VM stops first (an event), then the reply. */
	qc_expect(c, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/tmp/s\"}}",
		  "\"event\": \"STOP\"");
	qc_expect(c, "", "{\"return\": {}}");
	assert_string_equal(V.saved_path, "/tmp/s");
	qc_expect(c, "{\"execute\": \"query-status\"}", "postmigrate");
	qc_expect(c, "{\"execute\": \"query-migrate\"}",
		  "\"status\": \"completed\", \"total-time\": ");
	/* A failure's message (quotes and all) stays JSON. */
	V.fail_save = ENOSPC;
	qc_expect(c, "{\"execute\": \"migrate\", \"arguments\": {\"uri\": \"file:/x/s\"}}",
		  "No space left on device");
	qc_expect(c, "{\"execute\": \"query-migrate\"}", "\"status\": \"failed\"");
	qc_close(c);
}

static void test_errors(void **st)
{
	static const struct {
		const char *in, *needle;
	} cases[] = {
	    {"{\"execute\": \"frobnicate\"}", "The command frobnicate has not been found"},
	    {"{\"exec\": \"stop\"}", "QMP input lacks member 'execute'"},
	    {"{\"execute\": 7}", "member 'execute' must be a string"},
	    {"{\"execute\": \"stop\", \"arguments\": [1]}", "'arguments' must be an object"},
	    {"{\"execute\": }", "JSON parse error"},
	    {"{\"execute\" \"stop\"}", "JSON parse error"},
	    {"[\"execute\"]", "JSON parse error"},
	    {"{\"execute\": \"stop\", \"x\": tru}", "JSON parse error"},
	    {"{\"execute\": \"stop\", \"x\": [01]}", "JSON parse error"},
	    {"hello {\"execute\": \"query-status\"}", "JSON parse error"},
	};
	struct qc *c;
	char big[4096];
	size_t o = 0;

	server_start();
	c = qc_connect(true);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		qc_expect(c, cases[i].in, cases[i].needle);
	/* "hello" was garbage before a good command: that one still ran. */
	qc_expect(c, "", "\"status\": \"running\"");
	/* More tokens than the parser takes. */
	o += (size_t)snprintf(big + o, sizeof(big) - o, "{\"execute\": \"stop\", \"arguments\": [");
	for (int i = 0; i < 400; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%s1", i ? "," : "");
	snprintf(big + o, sizeof(big) - o, "]}");
	qc_expect(c, big, "JSON too complex");
	/* The connection lives on. */
	qc_expect(c, "{\"execute\": \"query-status\"}", "\"running\": true");
	qc_close(c);
}

/* Objects split anyhow, several per write, one larger than the buffer. */
static void test_framing(void **st)
{
	static const char two[] = "{\"execute\": \"query-status\", \"id\": 1}\r\n"
				  "  {\"execute\": \"query-status\", \"id\": \"}{\\\"\"}";
	static const char split[] =
	    "{\"execute\": \"query-status\", \"id\": [\"]\", {\"a\": \"}\"}]}";
	struct qc *c;
	char *big;

	server_start();
	c = qc_connect(true);
	qc_send(c, two);
	free(qc_cmd(c, "", "\"id\": 1}"));
	free(qc_cmd(c, "", "\"id\": \"}{\\\"\"}"));
	for (size_t i = 0; i < sizeof(split) - 1; i++) {
		qc_send_n(c, split + i, 1);
		while (aio_poll(F.ctx, false))
			;
	}
	qc_expect(c, "", "\"id\": [\"]\",{\"a\":\"}\"}]}");
	/* Larger than the input buffer: an error, and the next one works. */
	big = malloc(QMP_IN_MAX + 100);
	memset(big, ' ', QMP_IN_MAX + 100);
	memcpy(big, "{\"execute\": \"stop\", \"arguments\": {\"pad\": \"", 42);
	memcpy(big + QMP_IN_MAX + 100 - 4, "\"}}", 3);
	big[QMP_IN_MAX + 99] = '\0';
	qc_expect(c, big, "QMP input too large");
	free(big);
	assert_int_equal(V.pauses, 0);
	qc_expect(c, "{\"execute\": \"query-status\", \"id\": 2}", "\"id\": 2}");
	qc_close(c);
}

/*
 * A 64 KB object trickled byte by byte: each read gets one byte, and the
 * buffer work stays linear (before, every read moved the whole unfinished
 * object: n^2/2 bytes).
 */
static void test_trickle_linear(void **st)
{
	size_t n = QMP_IN_MAX - 16, sent = 0;
	struct qmp_client *sc;
	struct qc *c;
	char *obj = malloc(n + 1);
	char *r;

	server_start();
	c = qc_connect(true);
	memset(obj, 'x', n);
	memcpy(obj, "{\"execute\": \"query-status\", \"arguments\": {\"pad\": \"", 50);
	memcpy(obj + n - 3, "\"}}", 3);
	obj[n] = '\0';
	sc = server_client(0);
	/* A command, then the big one's first byte: it starts mid-buffer, so
	 * the buffer fills before it ends and it must be moved, once. */
	qc_send(c, "{\"execute\": \"query-status\", \"id\": \"first\"}{");
	free(qc_line(c));
	for (size_t i = 1; i < n; i++) {
		qc_send_n(c, obj + i, 1);
		while (aio_poll(F.ctx, false))
			;
		sent++;
	}
	r = qc_line(c);
	assert_non_null(strstr(r, "\"running\": true"));
	free(r);
	/* Moved once, every byte at most once. */
	assert_true(sc->moved > 0);
	if (sc->moved > sent)
		fail_msg("%zu bytes moved for %zu read: not linear", sc->moved, sent);
	free(obj);
	qc_close(c);
}

/* Whatever the id, the reply is JSON and carries it, re-serialised. */
static void test_ids(void **st)
{
	static const struct {
		const char *id, *echo; /* echo NULL: the same text */
	} ids[] = {
	    {"1", NULL},
	    {"-0.5e+10", NULL},
	    {"true", NULL},
	    {"null", NULL},
	    {"\"a\"", NULL},
	    {"\"\"", NULL},
	    {"{}", NULL},
	    {"[]", NULL},
	    {"{\"a\": 1}", "{\"a\":1}"},
	    {"[1, \"two\", {\"three\": [3]}]", "[1,\"two\",{\"three\":[3]}]"},
	    {"{\"k\": {\"deep\": [[[{\"x\": \"}\"}]]]}}", "{\"k\":{\"deep\":[[[{\"x\":\"}\"}]]]}}"},
	    {"[\"ends in a string\"]", NULL},
	    {"\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\"", NULL},
	    {"\"raw\x01\x1f\ttab\nnl\"", "\"raw\\u0001\\u001f\\u0009tab\\u000anl\""},
	    {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", NULL},
	};
	static const char *const refused[] = {
	    "tru", "01", "1.", "-", "1e", "nulll", "\"\xff\"", "\"\xc0\xaf\"", "[1, tru]",
	};
	struct qc *c;
	char cmd[8192], want[8192], *r;
	char *long_id;

	server_start();
	c = qc_connect(true);
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		const char *echo = ids[i].echo ? ids[i].echo : ids[i].id;

		snprintf(cmd, sizeof(cmd), "{\"execute\": \"query-status\", \"id\": %s}",
			 ids[i].id);
		snprintf(want, sizeof(want), ", \"id\": %s}", echo);
		r = qc_cmd(c, cmd, want);
		free(r);
		/* An error reply carries it too. */
		snprintf(cmd, sizeof(cmd), "{\"id\": %s, \"execute\": \"nope\"}", ids[i].id);
		free(qc_cmd(c, cmd, want));
	}
	/* Long string ids, past any fixed buffer. */
	for (size_t len = 200; len <= 6000; len += 1450) {
		long_id = malloc(len + 3);
		long_id[0] = '"';
		memset(long_id + 1, 'i', len);
		long_id[len + 1] = '"';
		long_id[len + 2] = '\0';
		snprintf(cmd, sizeof(cmd), "{\"execute\": \"query-status\", \"id\": %s}", long_id);
		snprintf(want, sizeof(want), ", \"id\": %s}", long_id);
		free(qc_cmd(c, cmd, want));
		free(long_id);
	}
	/* Every control character, raw. */
	for (int ch = 1; ch < 0x20; ch++) {
		snprintf(cmd, sizeof(cmd), "{\"execute\": \"query-status\", \"id\": \"<%c>\"}", ch);
		snprintf(want, sizeof(want), ", \"id\": \"<\\u%04x>\"}", ch);
		free(qc_cmd(c, cmd, want));
	}
	/* Not JSON after all: refused, without an id, as JSON. */
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		snprintf(cmd, sizeof(cmd), "{\"execute\": \"stop\", \"id\": %s}", refused[i]);
		r = qc_cmd(c, cmd, "JSON parse error");
		assert_null(strstr(r, "\"id\""));
		free(r);
	}
	assert_int_equal(V.pauses, 0);
	qc_close(c);
}

/* The socket is 0600 whatever the umask, or the mode asked for. */
static void test_socket_mode(void **st)
{
	struct errbuf err;
	struct stat sb;
	mode_t old = umask(0);

	assert_int_equal(qmp_server_new(F.ctx, F.path, 0600, &F.qs, &err), 0);
	assert_int_equal(stat(F.path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0600);
	qmp_server_free(F.qs);
	umask(077);
	assert_int_equal(qmp_server_new(F.ctx, F.path, 0660, &F.qs, &err), 0);
	assert_int_equal(stat(F.path, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0660);
	umask(old);
	assert_int_equal(umask(old), old); /* restored */
	qmp_server_free(F.qs);
	F.qs = NULL;
	/* Not a socket: refused, left alone. */
	close(open(F.path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
	assert_int_equal(qmp_server_new(F.ctx, F.path, 0600, &F.qs, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "exists and is not a socket"));
	assert_int_equal(stat(F.path, &sb), 0);
	assert_true(S_ISREG(sb.st_mode));
	F.qs = NULL;
}

static void test_too_many_clients(void **st)
{
	struct qc *c[QMP_MAX_CLIENTS];
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char buf[256];
	int fd;
	ssize_t n;

	server_start();
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		c[i] = qc_connect(false);
	memcpy(a.sun_path, F.path, strlen(F.path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	pump_until_readable(fd);
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "too many QMP clients"));
	close(fd);
	for (int i = 0; i < QMP_MAX_CLIENTS; i++)
		qc_close(c[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_validator),
	    cmocka_unit_test_setup_teardown(test_negotiation, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrate, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trickle_linear, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_socket_mode, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_clients, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
