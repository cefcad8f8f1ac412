// SPDX-License-Identifier: MIT
/* Command-line parsing: good forms, and every bad input gets a message. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/block/block.h"
#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/cpuid.h"

#define MAXARGS 48

#ifndef SRCDIR
#define SRCDIR "." /* the tree's root, where docs/ is */
#endif

static int parse(struct vm_config *cfg, enum cli_command *cmd, struct errbuf *err, ...)
{
	static char store[MAXARGS][256];
	char *argv[MAXARGS];
	int argc = 0;
	va_list ap;
	const char *a;

	argv[argc] = strcpy(store[argc], "kvmini");
	argc++;
	va_start(ap, err);
	while ((a = va_arg(ap, const char *)) != NULL) {
		argv[argc] = strcpy(store[argc], a);
		argc++;
	}
	va_end(ap);
	memset(err, 0, sizeof(*err));
	return cli_parse(argc, argv, cmd, cfg, err);
}

static void test_defaults(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k.elf", NULL), 0);
	assert_int_equal(cmd, CLI_RUN);
	assert_string_equal(c.kernel, "k.elf");
	assert_int_equal(c.mem_size, 128ULL << 20);
	assert_int_equal(c.ncpus, 1);
	assert_int_equal(c.serial, SERIAL_STDIO);
	assert_int_equal(c.timeout_ns, 0);
	assert_false(c.reboot);
	assert_null(c.cmdline);
}

static void test_all_options(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel=k", "--cpus", "4", "--memory", "256M",
			       "--cmdline", "status=7", "--timeout", "30", "--initrd", "i.img",
			       "--serial", "file=/tmp/x", "--reboot", "--cpu-features",
			       "-cx16,-xsave,+sse2", NULL),
			 0);
	assert_int_equal(c.ncpus, 4);
	assert_int_equal(c.mem_size, 256ULL << 20);
	assert_string_equal(c.cmdline, "status=7");
	assert_int_equal(c.timeout_ns, 30000000000ULL);
	assert_string_equal(c.initrd, "i.img");
	assert_int_equal(c.serial, SERIAL_FILE);
	assert_string_equal(c.serial_path, "/tmp/x");
	assert_true(c.reboot);
	assert_int_equal(c.nfeatures, 3);
	assert_string_equal(cpuid_feature_name(c.features[0].feature), "cx16");
	assert_false(c.features[0].enable);
	assert_string_equal(cpuid_feature_name(c.features[2].feature), "sse2");
	assert_true(c.features[2].enable);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--serial", "none", NULL), 0);
	assert_int_equal(c.serial, SERIAL_NONE);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--memory", "1G", NULL), 0);
	assert_int_equal(c.mem_size, 1ULL << 30);
}

static void test_help_version(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "--help", NULL), 0);
	assert_int_equal(cmd, CLI_HELP);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--help", NULL), 0);
	assert_int_equal(cmd, CLI_HELP);
	assert_int_equal(parse(&c, &cmd, &e, "--version", NULL), 0);
	assert_int_equal(cmd, CLI_VERSION);
}

/* Each bad command line fails with a message that names the culprit. */
static void bad(const char *needle, ...)
{
	static char store[MAXARGS][256];
	char *argv[MAXARGS];
	int argc = 0;
	va_list ap;
	const char *a;
	struct vm_config c;
	struct errbuf e = {{0}};
	enum cli_command cmd;
	int r;

	argv[argc] = strcpy(store[argc], "kvmini");
	argc++;
	va_start(ap, needle);
	while ((a = va_arg(ap, const char *)) != NULL) {
		argv[argc] = strcpy(store[argc], a);
		argc++;
	}
	va_end(ap);
	/* As the top level does: the CLI, then the block layer's check of
	 * the disk option strings. */
	r = cli_parse(argc, argv, &cmd, &c, &e);
	if (r == 0 && cmd == CLI_RUN)
		r = disk_config_check(&c, &e);
	assert_int_equal(r, -EINVAL);
	if (!strstr(e.msg, needle))
		fail_msg("message '%s' does not name '%s'", e.msg, needle);
	assert_null(strchr(e.msg, '\n'));
}

static void test_bad_input(void **st)
{
	bad("no command", NULL);
	bad("'frobnicate'", "frobnicate", NULL);
	bad("no kernel", "run", NULL);
	bad("--kernel", "run", "--kernel", "", NULL);
	bad("--kernel needs a value", "run", "--kernel", NULL);
	bad("'--bogus'", "run", "--kernel", "k", "--bogus", "1", NULL);
	bad("'stray'", "run", "--kernel", "k", "stray", NULL);
	bad("--memory '12X'", "run", "--kernel", "k", "--memory", "12X", NULL);
	bad("--memory '0'", "run", "--kernel", "k", "--memory", "0", NULL);
	bad("--memory '1K'", "run", "--kernel", "k", "--memory", "1K", NULL);
	bad("--memory '-5M'", "run", "--kernel", "k", "--memory", "-5M", NULL);
	bad("--memory '99999999999999999999'", "run", "--kernel", "k", "--memory",
	    "99999999999999999999", NULL);
	bad("--memory '2T'", "run", "--kernel", "k", "--memory", "2T", NULL);
	bad("--memory '4097K'", "run", "--kernel", "k", "--memory", "4097K", NULL);
	bad("--cpus '0'", "run", "--kernel", "k", "--cpus", "0", NULL);
	bad("--cpus '256'", "run", "--kernel", "k", "--cpus", "256", NULL);
	bad("--cpus 'two'", "run", "--kernel", "k", "--cpus", "two", NULL);
	bad("--timeout '0'", "run", "--kernel", "k", "--timeout", "0", NULL);
	bad("--timeout '1.5'", "run", "--kernel", "k", "--timeout", "1.5", NULL);
	bad("unknown CPU feature 'warp'", "run", "--kernel", "k", "--cpu-features", "-warp", NULL);
	bad("'cx16'", "run", "--kernel", "k", "--cpu-features", "cx16", NULL);
	bad("empty", "run", "--kernel", "k", "--cpu-features", ",", NULL);
	bad("--serial 'tcp:1'", "run", "--kernel", "k", "--serial", "tcp:1", NULL);
	bad("--serial 'file='", "run", "--kernel", "k", "--serial", "file=", NULL);
	bad("--reboot takes no value", "run", "--kernel", "k", "--reboot=yes", NULL);
}

static void test_sandbox_option(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", NULL), 0);
	assert_false(c.sandbox_off); /* on by default */
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--sandbox", "off", NULL), 0);
	assert_true(c.sandbox_off);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--sandbox=on", NULL), 0);
	assert_false(c.sandbox_off);
	bad("--sandbox 'no': expected on or off", "run", "--kernel", "k", "--sandbox", "no", NULL);
	bad("--sandbox", "run", "--kernel", "k", "--sandbox", NULL);
}

static void test_disks(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;
	struct disk_config dc;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", NULL), 0);
	assert_int_equal(c.ndisks, 0);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--disk", "path=a.img",
			       "--disk=serial=SN 01,readonly=on,path=/x/b=c.img", NULL),
			 0);
	assert_int_equal(c.ndisks, 2);
	assert_string_equal(c.disks[0], "path=a.img");
	assert_int_equal(disk_config_parse(c.disks[0], &dc, &e), 0);
	assert_string_equal(dc.path, "a.img");
	assert_false(dc.readonly);
	assert_string_equal(dc.serial, "");
	assert_int_equal(disk_config_parse(c.disks[1], &dc, &e), 0);
	assert_string_equal(dc.path, "/x/b=c.img");
	assert_true(dc.readonly);
	assert_string_equal(dc.serial, "SN 01");
	assert_int_equal(disk_config_parse("path=a,readonly=off", &dc, &e), 0);
	assert_false(dc.readonly);
	assert_int_equal(disk_config_parse("serial=12345678901234567890,path=p", &dc, &e), 0);
	assert_string_equal(dc.serial, "12345678901234567890");
	assert_int_equal(dc.aio, DISK_AIO_AUTO);
	assert_int_equal(disk_config_parse("path=p,aio=threads", &dc, &e), 0);
	assert_int_equal(dc.aio, DISK_AIO_THREADS);
	assert_int_equal(disk_config_parse("aio=io_uring,path=p", &dc, &e), 0);
	assert_int_equal(dc.aio, DISK_AIO_IO_URING);
	assert_int_equal(disk_config_parse("aio=auto,path=p", &dc, &e), 0);
	assert_int_equal(dc.aio, DISK_AIO_AUTO);
	/* Error policies: report unless told otherwise. */
	assert_int_equal(dc.werror, DISK_ERROR_REPORT);
	assert_int_equal(dc.rerror, DISK_ERROR_REPORT);
	assert_int_equal(disk_config_parse("path=p,werror=stop,rerror=ignore", &dc, &e), 0);
	assert_int_equal(dc.werror, DISK_ERROR_STOP);
	assert_int_equal(dc.rerror, DISK_ERROR_IGNORE);
	assert_int_equal(disk_config_parse("rerror=stop,werror=enospc,path=p", &dc, &e), 0);
	assert_int_equal(dc.werror, DISK_ERROR_ENOSPC);
	assert_int_equal(dc.rerror, DISK_ERROR_STOP);
	assert_int_equal(disk_config_parse("path=p,werror=ignore,rerror=report", &dc, &e), 0);
	assert_int_equal(dc.werror, DISK_ERROR_IGNORE);
	assert_int_equal(dc.rerror, DISK_ERROR_REPORT);
	assert_int_equal(disk_config_parse("path=p,werror=report", &dc, &e), 0);
	assert_int_equal(dc.werror, DISK_ERROR_REPORT);
	assert_int_equal(dc.delay_ms, 0);
	assert_int_equal(disk_config_parse("delay=10000,path=p", &dc, &e), 0);
	assert_int_equal(dc.delay_ms, 10000);
	assert_int_equal(scsi_disk_config_parse("path=p,delay=5,lun=3", &dc, &e), 0);
	assert_int_equal(dc.delay_ms, 5);
}

static void test_error_policy(void **st)
{
	static const int errs[] = {EIO, ENOSPC, EFBIG, EDQUOT, EROFS};

	for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
		int x = errs[i];

		assert_int_equal(disk_error_action(DISK_ERROR_REPORT, x), DISK_ACTION_REPORT);
		assert_int_equal(disk_error_action(DISK_ERROR_IGNORE, x), DISK_ACTION_IGNORE);
		assert_int_equal(disk_error_action(DISK_ERROR_STOP, x), DISK_ACTION_STOP);
		/* enospc: stop only when the host ran out of space. */
		assert_int_equal(disk_error_action(DISK_ERROR_ENOSPC, x),
				 x == ENOSPC ? DISK_ACTION_STOP : DISK_ACTION_REPORT);
	}
}

static void test_bad_disks(void **st)
{
	bad("--disk needs a value", "run", "--kernel", "k", "--disk", NULL);
	bad("--disk '': no path", "run", "--kernel", "k", "--disk", "", NULL);
	bad("'a.img' is not key=value", "run", "--kernel", "k", "--disk", "a.img", NULL);
	bad("empty path", "run", "--kernel", "k", "--disk", "path=", NULL);
	bad("no path= given", "run", "--kernel", "k", "--disk", "readonly=on", NULL);
	bad("path given twice", "run", "--kernel", "k", "--disk", "path=a,path=b", NULL);
	bad("readonly given twice", "run", "--kernel", "k", "--disk",
	    "path=a,readonly=on,readonly=on", NULL);
	bad("readonly must be on or off, not 'yes'", "run", "--kernel", "k", "--disk",
	    "path=a,readonly=yes", NULL);
	bad("unknown option 'cache'", "run", "--kernel", "k", "--disk", "path=a,cache=none", NULL);
	bad("serial is longer than 20", "run", "--kernel", "k", "--disk",
	    "path=a,serial=123456789012345678901", NULL);
	bad("printable", "run", "--kernel", "k", "--disk", "path=a,serial=\x01", NULL);
	bad("aio must be auto, threads or io_uring, not 'native'", "run", "--kernel", "k", "--disk",
	    "path=a,aio=native", NULL);
	bad("aio given twice", "run", "--kernel", "k", "--disk", "path=a,aio=auto,aio=auto", NULL);
	bad("werror must be stop, report, ignore or enospc, not 'retry'", "run", "--kernel", "k",
	    "--disk", "path=a,werror=retry", NULL);
	bad("rerror must be stop, report, ignore, not 'enospc'", "run", "--kernel", "k", "--disk",
	    "path=a,rerror=enospc", NULL);
	bad("werror given twice", "run", "--kernel", "k", "--disk",
	    "path=a,werror=stop,werror=stop", NULL);
	bad("rerror given twice", "run", "--kernel", "k", "--disk",
	    "path=a,rerror=stop,rerror=report", NULL);
	bad("werror must be", "run", "--kernel", "k", "--disk", "path=a,werror=", NULL);
	bad("delay must be a number of ms from 0 to 10000, not '10001'", "run", "--kernel", "k",
	    "--disk", "path=a,delay=10001", NULL);
	bad("delay must be a number of ms from 0 to 10000, not '-1'", "run", "--kernel", "k",
	    "--scsi-disk", "path=a,delay=-1", NULL);
	bad("delay given twice", "run", "--kernel", "k", "--disk", "path=a,delay=1,delay=1", NULL);
	bad("trailing comma", "run", "--kernel", "k", "--disk", "path=a,", NULL);
	bad("empty option", "run", "--kernel", "k", "--disk", ",,path=a", NULL);
	bad("at most 16 disks", "run", "--kernel", "k", "--disk", "path=1", "--disk", "path=2",
	    "--disk", "path=3", "--disk", "path=4", "--disk", "path=5", "--disk", "path=6",
	    "--disk", "path=7", "--disk", "path=8", "--disk", "path=9", "--disk", "path=10",
	    "--disk", "path=11", "--disk", "path=12", "--disk", "path=13", "--disk", "path=14",
	    "--disk", "path=15", "--disk", "path=16", "--disk", "path=17", NULL);
}

static void test_ivshmem(void **st)
{
	struct ivshmem_config ic;
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--ivshmem", "shm=pp,size=1M",
			       "--ivshmem=server=/tmp/s,vectors=4,role=master,timeout=2",
			       "--ivshmem", "mem=/x,y/f", NULL),
			 -EINVAL); /* paths cannot contain commas */
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--ivshmem", "shm=pp,size=1M",
			       "--ivshmem=server=/tmp/s,vectors=4,role=master,timeout=2",
			       "--ivshmem", "mem=/dev/shm/f", NULL),
			 0);
	assert_int_equal(c.nivshmem, 3);
	assert_int_equal(ivshmem_config_parse(c.ivshmem[0], &ic, &e), 0);
	assert_int_equal(ic.backend, IVSHMEM_BACKEND_SHM);
	assert_string_equal(ic.path, "pp");
	assert_int_equal(ic.size, 1 << 20);
	assert_int_equal(ic.role, IVSHMEM_ROLE_PEER);
	assert_int_equal(ivshmem_config_parse(c.ivshmem[1], &ic, &e), 0);
	assert_int_equal(ic.backend, IVSHMEM_BACKEND_SERVER);
	assert_string_equal(ic.path, "/tmp/s");
	assert_int_equal(ic.vectors, 4);
	assert_int_equal(ic.role, IVSHMEM_ROLE_MASTER);
	assert_int_equal(ic.timeout_ns, 2000000000ULL);
	assert_int_equal(ivshmem_config_parse(c.ivshmem[2], &ic, &e), 0);
	assert_int_equal(ic.backend, IVSHMEM_BACKEND_FILE);
	assert_int_equal(ic.size, 0);
	assert_int_equal(ivshmem_config_parse("server=s", &ic, &e), 0);
	assert_int_equal(ic.vectors, 1);
	assert_int_equal(ic.timeout_ns, 5000000000ULL);

	assert_int_equal(parse(&c, &cmd, &e, "ivshmem-server", "--socket", "/tmp/s", "--shm",
			       "ivshmem", "--size", "4M", "--vectors", "8", NULL),
			 0);
	assert_int_equal(cmd, CLI_IVSHMEM_SERVER);
	assert_string_equal(c.ivserver.socket, "/tmp/s");
	assert_string_equal(c.ivserver.shm, "ivshmem");
	assert_null(c.ivserver.path);
	assert_int_equal(c.ivserver.size, 4 << 20);
	assert_int_equal(c.ivserver.vectors, 8);
	assert_int_equal(parse(&c, &cmd, &e, "ivshmem-server", "--path", "/tmp/m", "--size", "4096",
			       "--socket", "s", NULL),
			 0);
	assert_int_equal(c.ivserver.vectors, 1);
	assert_int_equal(parse(&c, &cmd, &e, "ivshmem-server", "--help", NULL), 0);
	assert_int_equal(cmd, CLI_HELP);
}

static void test_bad_ivshmem(void **st)
{
	bad("give exactly one of mem=PATH, shm=NAME", "run", "--kernel", "k", "--ivshmem",
	    "size=1M", NULL);
	bad("give exactly one of", "run", "--kernel", "k", "--ivshmem", "mem=a,shm=b", NULL);
	bad("unknown option 'master' (keys: mem, shm, server", "run", "--kernel", "k", "--ivshmem",
	    "shm=a,master=on", NULL);
	bad("size given twice", "run", "--kernel", "k", "--ivshmem", "shm=a,size=4K,size=8K", NULL);
	bad("size '3M' must be a power of two from 4K to 1T", "run", "--kernel", "k", "--ivshmem",
	    "shm=a,size=3M", NULL);
	bad("size '2K' must be a power of two", "run", "--kernel", "k", "--ivshmem",
	    "shm=a,size=2K", NULL);
	bad("size 'lots'", "run", "--kernel", "k", "--ivshmem", "shm=a,size=lots", NULL);
	bad("vectors '0' must be a number from 1 to 64", "run", "--kernel", "k", "--ivshmem",
	    "server=s,vectors=0", NULL);
	bad("vectors '65'", "run", "--kernel", "k", "--ivshmem", "server=s,vectors=65", NULL);
	bad("role must be master or peer, not 'boss'", "run", "--kernel", "k", "--ivshmem",
	    "server=s,role=boss", NULL);
	bad("timeout '0' must be whole seconds", "run", "--kernel", "k", "--ivshmem",
	    "server=s,timeout=0", NULL);
	bad("size= is for mem=/shm=", "run", "--kernel", "k", "--ivshmem", "server=s,size=1M",
	    NULL);
	bad("vectors= and timeout= need server=SOCKET", "run", "--kernel", "k", "--ivshmem",
	    "shm=a,vectors=2", NULL);
	bad("shm= takes a POSIX shm object name", "run", "--kernel", "k", "--ivshmem",
	    "shm=/dev/shm/a", NULL);
	bad("empty server", "run", "--kernel", "k", "--ivshmem", "server=", NULL);
	bad("'x' is not key=value", "run", "--kernel", "k", "--ivshmem", "x", NULL);
	bad("--ivshmem 'shm=a,': trailing comma", "run", "--kernel", "k", "--ivshmem", "shm=a,",
	    NULL);
	bad("at most 8 devices", "run", "--kernel", "k", "--ivshmem", "shm=1", "--ivshmem", "shm=2",
	    "--ivshmem", "shm=3", "--ivshmem", "shm=4", "--ivshmem", "shm=5", "--ivshmem", "shm=6",
	    "--ivshmem", "shm=7", "--ivshmem", "shm=8", "--ivshmem", "shm=9", NULL);

	bad("no --socket given", "ivshmem-server", "--shm", "a", "--size", "1M", NULL);
	bad("exactly one of --shm NAME or --path FILE", "ivshmem-server", "--socket", "s", "--size",
	    "1M", NULL);
	bad("exactly one of --shm NAME or --path FILE", "ivshmem-server", "--socket", "s", "--shm",
	    "a", "--path", "b", "--size", "1M", NULL);
	bad("no --size given", "ivshmem-server", "--socket", "s", "--shm", "a", NULL);
	bad("--size '1000' must be a power of two", "ivshmem-server", "--socket", "s", "--shm", "a",
	    "--size", "1000", NULL);
	bad("--vectors '100' must be a number from 1 to 64", "ivshmem-server", "--socket", "s",
	    "--shm", "a", "--size", "1M", "--vectors", "100", NULL);
	bad("--socket given twice", "ivshmem-server", "--socket", "s", "--socket", "t", NULL);
	bad("--socket needs a value", "ivshmem-server", "--socket", NULL);
	bad("unknown argument '--port'", "ivshmem-server", "--port", "1", NULL);
	bad("must be a POSIX shm object name", "ivshmem-server", "--socket", "s", "--shm", "a/b",
	    "--size", "1M", NULL);
}

/* "--name ARG" or "--name" for option @o. */
static void opt_head(const struct cli_opt *o, char *buf, size_t size)
{
	snprintf(buf, size, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

/* --help: every option at the start of a line with its value's name, then
 * its default; nothing wider than 79 columns. */
static void test_help_lists_every_option(void **st)
{
	char *text = NULL, head[128], want[256];
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	assert_non_null(f);
	cli_print_help(f);
	fclose(f);
	for (const char *l = text; *l;) {
		size_t n = strcspn(l, "\n");

		if (n > 79)
			fail_msg("--help line wider than 79 columns: %.*s", (int)n, l);
		l += n + (l[n] == '\n');
	}
	for (size_t i = 0; i < cli_run_nopts; i++) {
		const struct cli_opt *o = &cli_run_opts[i];
		const char *at, *next;

		assert_non_null(o->def);
		assert_non_null(o->help);
		opt_head(o, head, sizeof(head));
		snprintf(want, sizeof(want), "\n  %s ", head);
		at = strstr(text, want);
		if (!at) { /* a flag, or a name long enough to end its line */
			snprintf(want, sizeof(want), "\n  %s\n", head);
			at = strstr(text, want);
		}
		if (!at) {
			fail_msg("--help does not list %s", head);
			return;
		}
		next = strstr(at + 1, "\n  --");
		snprintf(want, sizeof(want), "(default: %s)", o->def);
		at = strstr(at, want);
		if (!at || (next && at > next))
			fail_msg("--help does not give %s's default '%s'", head, o->def);
	}
	free(text);
}

/* Cut a markdown table row into its cells: '|' separates them unless
 * escaped ("\\|"); each cell is trimmed of spaces and backticks. */
static int md_cells(char *row, char **cells, int max)
{
	int n = 0;
	char *p = row;

	if (*p == '|')
		p++;
	while (*p && *p != '\n' && n < max) {
		char *start = p, *end;

		while (*p && *p != '\n' && !(*p == '|' && (p == start || p[-1] != '\\')))
			p++;
		end = p;
		if (*p)
			*p++ = '\0';
		while (start < end && (*start == ' ' || *start == '`'))
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '`'))
			*--end = '\0';
		cells[n++] = start;
	}
	return n;
}

/*
 * docs/cli.md's table of run options and cli_run_opts agree, both ways:
 * each option has one row whose first cell is "--name ARG" as in the
 * table and whose default cell is the table's default, and each row is an
 * option kvmini has. So adding an option to cli.c fails here until it is
 * documented, and a documented option cannot outlive its code.
 */
static void test_docs_match_option_table(void **st)
{
	static const char marker[] = "<!-- The run options:";
	char line[4096], head[128], *cells[8];
	unsigned seen[128] = {0};
	FILE *f = fopen(SRCDIR "/docs/cli.md", "r");
	bool in_table = false, found = false;

	assert_true(cli_run_nopts <= ARRAY_SIZE(seen));
	if (!f)
		fail_msg("cannot open %s/docs/cli.md", SRCDIR);
	while (fgets(line, sizeof(line), f)) {
		if (!found) {
			found = !strncmp(line, marker, strlen(marker));
			continue;
		}
		if (line[0] != '|') {
			if (in_table)
				break; /* the end of the table */
			continue;
		}
		in_table = true;
		if (md_cells(line, cells, 8) < 4)
			fail_msg("docs/cli.md: a run option row with fewer than 4 cells: %s", line);
		if (!strcmp(cells[0], "option") || !strncmp(cells[0], "---", 3))
			continue; /* the header and its rule */
		size_t i;

		for (i = 0; i < cli_run_nopts; i++) {
			opt_head(&cli_run_opts[i], head, sizeof(head));
			if (!strcmp(cells[0], head))
				break;
		}
		if (i == cli_run_nopts)
			fail_msg("docs/cli.md lists '%s', which is not in cli_run_opts (vmm/cli.c) "
				 "with that value name",
				 cells[0]);
		if (seen[i]++)
			fail_msg("docs/cli.md lists '%s' twice", cells[0]);
		if (strcmp(cells[2], cli_run_opts[i].def) != 0)
			fail_msg("docs/cli.md gives '%s' the default '%s'; vmm/cli.c says '%s'",
				 cells[0], cells[2], cli_run_opts[i].def);
	}
	fclose(f);
	if (!found)
		fail_msg("docs/cli.md lost its marker '%s' before the run options", marker);
	for (size_t i = 0; i < cli_run_nopts; i++)
		if (!seen[i])
			fail_msg(
			    "docs/cli.md has no row for --%s (add it to the run options table)",
			    cli_run_opts[i].name);
}

/* Each option of the table reaches its handler in cli_set: whatever its
 * value makes of it, it is never "no handler". */
static void test_every_option_is_handled(void **st)
{
	for (size_t i = 0; i < cli_run_nopts; i++) {
		const struct cli_opt *o = &cli_run_opts[i];
		struct vm_config c;
		struct errbuf e;
		enum cli_command cmd;
		char opt[64];

		snprintf(opt, sizeof(opt), "--%s", o->name);
		if (o->arg)
			parse(&c, &cmd, &e, "run", "--kernel", "k", opt, "x", NULL);
		else
			parse(&c, &cmd, &e, "run", "--kernel", "k", opt, NULL);
		if (strstr(e.msg, "no handler"))
			fail_msg("%s", e.msg);
	}
}

static void test_ctl_command(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "ctl", "s", "status", NULL), 0);
	assert_int_equal(cmd, CLI_CTL);
}

/* --qmp PATH[,mode=OCTAL]: 0600 unless told. */
static void test_qmp_mode(void **st)
{
	struct vm_config c;
	struct errbuf e;
	enum cli_command cmd;

	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--qmp", "/tmp/q", NULL), 0);
	assert_string_equal(c.qmp_path, "/tmp/q");
	assert_int_equal(c.qmp_mode, 0600);
	assert_int_equal(
	    parse(&c, &cmd, &e, "run", "--kernel", "k", "--qmp", "/tmp/a,b,mode=0660", NULL), 0);
	assert_string_equal(c.qmp_path, "/tmp/a,b");
	assert_int_equal(c.qmp_mode, 0660);
	assert_int_equal(parse(&c, &cmd, &e, "run", "--kernel", "k", "--qmp=q,mode=0", NULL), 0);
	assert_int_equal(c.qmp_mode, 0);
	bad("mode '0800'", "run", "--kernel", "k", "--qmp", "q,mode=0800", NULL);
	bad("mode '1777'", "run", "--kernel", "k", "--qmp", "q,mode=1777", NULL);
	bad("mode ''", "run", "--kernel", "k", "--qmp", "q,mode=", NULL);
	bad("mode '-1'", "run", "--kernel", "k", "--qmp", "q,mode=-1", NULL);
	bad("mode ' 600'", "run", "--kernel", "k", "--qmp", "q,mode= 600", NULL);
	bad("--qmp: empty path", "run", "--kernel", "k", "--qmp", ",mode=0600", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_disks),
	    cmocka_unit_test(test_bad_disks),
	    cmocka_unit_test(test_all_options),
	    cmocka_unit_test(test_help_version),
	    cmocka_unit_test(test_bad_input),
	    cmocka_unit_test(test_error_policy),
	    cmocka_unit_test(test_ivshmem),
	    cmocka_unit_test(test_bad_ivshmem),
	    cmocka_unit_test(test_help_lists_every_option),
	    cmocka_unit_test(test_docs_match_option_table),
	    cmocka_unit_test(test_ctl_command),
	    cmocka_unit_test(test_every_option_is_handled),
	    cmocka_unit_test(test_sandbox_option),
	    cmocka_unit_test(test_qmp_mode),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
