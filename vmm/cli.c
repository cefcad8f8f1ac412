// SPDX-License-Identifier: MIT
/* Command line: `kvmini run OPTIONS`, `kvmini --help`, `kvmini --version`, and
 * which other command (ctl, ivshmem-server, snapshot inspect) to run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/cpuid.h"
#include "vmm/ctl.h"

const struct cli_opt cli_run_opts[] = {
    {"kernel", "PATH", "none; required unless --incoming",
     "the guest kernel: a PVH ELF (XEN_ELFNOTE_PHYS32_ENTRY),\n"
     "a multiboot v1 image (kvm-unit-tests' x86 tests)\n"
     "or a Linux bzImage (boot protocol 2.12+, 64-bit)"},
    {"initrd", "PATH", "none",
     "initrd: PVH or multiboot module 0, or the bzImage's\n"
     "ramdisk"},
    {"cmdline", "STRING", "empty",
     "guest kernel command line (at most 4095 bytes;\n"
     "a bzImage's cmdline_size too; multiboot: after the\n"
     "kernel's path, together at most 57343 bytes)"},
    {"memory", "SIZE", "128M",
     "guest RAM: K/M/G/T suffixes, 2M..1T, a multiple\n"
     "of 4K"},
    {"cpus", "N", "1", "vCPUs, 1..255"},
    {"cpu-features", "LIST", "the host KVM's CPUID",
     "comma-separated CPUID edits: -name hides a feature,\n"
     "+name requires it (names as in /proc/cpuinfo)"},
    {"serial", "MODE", "stdio", "where COM1 goes: stdio, file=PATH or none"},
    {"timeout", "SECONDS", "none", "stop the VM after SECONDS and exit 124"},
    {"reboot", NULL, "off: a guest reset ends the VM, status 0", "a guest reset reboots the VM"},
    {"qmp", "PATH[,mode=OCTAL]", "none",
     "a QMP control socket at PATH, for kvmini ctl PATH\n"
     "and QMP clients (docs/qmp.md); mode 0600 unless\n"
     "mode= says otherwise"},
    {"incoming", "file:PATH", "none",
     "restore the VM saved in PATH (kvmini ctl SOCKET\n"
     "snapshot PATH) instead of booting --kernel; give the\n"
     "same --memory, --cpus and devices as the saved VM"},
    {"paused", NULL, "off",
     "start with the vCPUs stopped; kvmini ctl SOCKET\n"
     "cont starts them (needs --qmp)"},
    {"sandbox", "MODE", "on",
     "on: per-thread seccomp allow-lists\n"
     "(docs/security.md); off: none, only to debug"},
    {"testdev", NULL, "off",
     "QEMU's test devices for kvm-unit-tests: pc-testdev\n"
     "(ports 0xe0-0xe7, 0x2000-0x2017), pci-testdev\n"
     "(PCI 1b36:0005), a CMOS RTC (0x70-0x71) and ACPI S3;\n"
     "docs/devices.md"},
    {"hyperv", NULL, "off",
     "Hyper-V enlightenments: every one this host's KVM\n"
     "has (as QEMU's -cpu hv_passthrough: SynIC, timers,\n"
     "...), KVM's own CPUID leaves at 0x40000100; with\n"
     "--testdev also QEMU's hyperv-testdev (port 0x3000)"},
    {"iommu", NULL, "off",
     "an Intel VT-d unit at 0xfed90000 (DMA and interrupt\n"
     "remapping, queued invalidation) and KVM's split\n"
     "irqchip with kvmini's own IOAPIC: no PIC, no PIT, no\n"
     "snapshots; for kvm-unit-tests' intel_iommu\n"
     "(docs/devices.md)"},
    {"edu", NULL, "off",
     "QEMU's edu PCI device (1234:11e8), DMA through\n"
     "--iommu; no snapshots (docs/devices.md)"},
    {"disk", "SPEC", "none",
     "a virtio-blk disk on a raw image (size a multiple\n"
     "of 512), repeatable up to 16; SPEC:\n"
     "path=FILE[,readonly=on][,serial=STR]\n"
     "[,aio=auto|threads|io_uring]\n"
     "[,werror=report|stop|ignore|enospc]\n"
     "[,rerror=report|stop|ignore][,delay=MS]"},
    {"scsi-disk", "SPEC", "none",
     "a LUN of the virtio-scsi controller on a raw image,\n"
     "repeatable up to 16; SPEC: path=FILE[,lun=N]\n"
     "[,readonly=on][,serial=STR][,aio=..][,werror=..]\n"
     "[,rerror=..][,delay=MS] as --disk; lun 0..255,\n"
     "default the first free one"},
    {"ivshmem", "SPEC", "none",
     "an ivshmem device, repeatable up to 8; SPEC:\n"
     "mem=PATH|shm=NAME[,size=SIZE][,role=master|peer]\n"
     "for ivshmem-plain (shared memory from a file or a\n"
     "POSIX shm object, size a power of two), or\n"
     "server=SOCKET[,vectors=N][,role=..][,timeout=SECONDS]\n"
     "for ivshmem-doorbell (memory and interrupts from an\n"
     "ivshmem server: kvmini ivshmem-server)"},
    {"vhost-user-blk", "SPEC", "none",
     "a virtio-blk disk served by a vhost-user backend\n"
     "(qemu-storage-daemon, SPDK), repeatable up to 16;\n"
     "SPEC: socket=PATH[,num-queues=N][,timeout=SECONDS]\n"
     "[,reconnect=SECONDS]; num-queues 1..16 (default 1),\n"
     "timeout 1..3600 s (default 5); reconnect 1..3600 s:\n"
     "retry a lost backend that often (default: never);\n"
     "guest RAM becomes shared memory"},
};
const size_t cli_run_nopts = ARRAY_SIZE(cli_run_opts);

#define CLI_HELP_COL 24 /* where an option's text starts */
#define CLI_HELP_MAX 79 /* columns */

static void cli_print_opt(FILE *f, const struct cli_opt *o)
{
	const char *p = o->help;
	int col = fprintf(f, "  --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");

	for (;;) {
		size_t n = strcspn(p, "\n");

		if (col >= CLI_HELP_COL) {
			fputc('\n', f);
			col = 0;
		}
		col += fprintf(f, "%*s%.*s", CLI_HELP_COL - col, "", (int)n, p);
		p += n;
		if (*p == '\n') {
			p++;
			col = CLI_HELP_COL; /* a new line */
			continue;
		}
		/* The default ends the last line, or gets a line of its own. */
		if (col + (int)strlen(o->def) + 12 > CLI_HELP_MAX)
			fprintf(f, "\n%*s(default: %s)\n", CLI_HELP_COL, "", o->def);
		else
			fprintf(f, " (default: %s)\n", o->def);
		return;
	}
}

void cli_print_help(FILE *f)
{
	fputs("Usage: kvmini run (--kernel ELF | --incoming file:SNAPSHOT) [OPTION]...\n"
	      "  or:  kvmini ctl [--wait SECONDS] SOCKET COMMAND [ARGS]\n"
	      "  or:  kvmini ivshmem-server --socket PATH --shm NAME|--path FILE --size SIZE\n"
	      "  or:  kvmini snapshot inspect [--verify] FILE\n"
	      "  or:  kvmini --help | --version\n"
	      "Run a KVM microVM (kvmini run); control a running VM, kvmini's or QEMU's,\n"
	      "over QMP (kvmini ctl): status, stop, cont, snapshot, quit, reset, ...\n"
	      "\n"
	      "Options of kvmini run (--name VALUE or --name=VALUE):\n",
	      f);
	for (size_t i = 0; i < cli_run_nopts; i++)
		cli_print_opt(f, &cli_run_opts[i]);
	fputs("\n", f);
	ctl_print_help(f, false);
	fputs("\n"
	      "Options of kvmini ivshmem-server (serves shared memory and doorbells to\n"
	      "kvmini and QEMU VMs, QEMU's protocol, until SIGINT/SIGTERM):\n"
	      "  --socket PATH         the UNIX socket to listen on (required)\n"
	      "  --shm NAME            a POSIX shm object to share, or\n"
	      "  --path FILE           a file to share (exactly one of the two)\n"
	      "  --size SIZE           its size: a power of two, 4K..1T (required)\n"
	      "  --vectors N           eventfds per client, 1..64 (default: 1)\n"
	      "\n"
	      "kvmini snapshot inspect lists a snapshot file's sections; --verify checks\n"
	      "every checksum too.\n"
	      "\n"
	      "Exit status of kvmini run:\n"
	      "  0..123 the guest's status, written to port 0xf4; 124 --timeout expired;\n"
	      "  125 kvmini/host error or bad usage (one line on stderr says what);\n"
	      "  126 guest crash (a report on stderr); 128+N stopped by signal N\n"
	      "\n"
	      "More: man kvmini; docs/cli.md, docs/qmp.md, docs/snapshot.md in the source.\n",
	      f);
}

/* A power of two of at least 4 KiB and at most 1 TiB: a BAR's size. */
static bool ivshmem_size_ok(uint64_t n)
{
	return n >= 4096 && n <= IVSHMEM_MAX_SIZE && !(n & (n - 1));
}

int ivshmem_config_parse(const char *spec, struct ivshmem_config *c, struct errbuf *err)
{
	static const char keys[] = "mem, shm, server, size, vectors, role, timeout";
	static const char *const names[] = {"mem",     "shm",  "server", "size",
					    "vectors", "role", "timeout"};
	enum { K_MEM, K_SHM, K_SERVER, K_SIZE, K_VECTORS, K_ROLE, K_TIMEOUT, K_N };
	const char *p = spec, *k;
	char val[IVSHMEM_PATH_MAX];
	unsigned seen = 0, key;
	size_t klen;
	uint64_t n;
	int r;

	memset(c, 0, sizeof(*c));
	c->vectors = 1;
	c->timeout_ns = IVSHMEM_DEFAULT_TIMEOUT_NS;
	while ((r = opt_list_next("ivshmem", spec, keys, &p, &k, &klen, val, sizeof(val), err)) >
	       0) {
		for (key = 0; key < K_N && !opt_key_is(k, klen, names[key]); key++)
			;
		if (key == K_N)
			return err_set(err, EINVAL,
				       "--ivshmem '%s': unknown option '%.*s' (keys: %s)", spec,
				       (int)klen, k, keys);
		if (seen & (1u << key))
			return err_set(err, EINVAL, "--ivshmem '%s': %s given twice", spec,
				       names[key]);
		seen |= 1u << key;
		switch (key) {
		case K_MEM:
		case K_SHM:
		case K_SERVER:
			if (!val[0])
				return err_set(err, EINVAL, "--ivshmem '%s': empty %s", spec,
					       names[key]);
			if (key == K_SHM && (strchr(val, '/') || strlen(val) > 255))
				return err_set(
				    err, EINVAL,
				    "--ivshmem '%s': shm= takes a POSIX shm object name "
				    "(no '/', at most 255 characters); use mem=PATH for a "
				    "file",
				    spec);
			c->backend = key == K_MEM   ? IVSHMEM_BACKEND_FILE
				     : key == K_SHM ? IVSHMEM_BACKEND_SHM
						    : IVSHMEM_BACKEND_SERVER;
			memcpy(c->path, val, strlen(val) + 1);
			break;
		case K_SIZE:
			if (parse_size(val, &n) < 0 || !ivshmem_size_ok(n))
				return err_set(err, EINVAL,
					       "--ivshmem '%s': size '%s' must be a power of two "
					       "from 4K to 1T",
					       spec, val);
			c->size = n;
			break;
		case K_VECTORS:
			if (parse_uint(val, 1, IVSHMEM_MAX_VECTORS, &n) < 0)
				return err_set(
				    err, EINVAL,
				    "--ivshmem '%s': vectors '%s' must be a number from 1 "
				    "to %d",
				    spec, val, IVSHMEM_MAX_VECTORS);
			c->vectors = (unsigned)n;
			break;
		case K_ROLE:
			if (!strcmp(val, "master"))
				c->role = IVSHMEM_ROLE_MASTER;
			else if (!strcmp(val, "peer"))
				c->role = IVSHMEM_ROLE_PEER;
			else
				return err_set(
				    err, EINVAL,
				    "--ivshmem '%s': role must be master or peer, not '%s'", spec,
				    val);
			break;
		case K_TIMEOUT:
			if (parse_uint(val, 1, 3600, &n) < 0)
				return err_set(err, EINVAL,
					       "--ivshmem '%s': timeout '%s' must be whole seconds "
					       "from 1 to 3600",
					       spec, val);
			c->timeout_ns = n * 1000000000ULL;
			break;
		}
	}
	if (r < 0)
		return r;
	n = !!(seen & 1u << K_MEM) + !!(seen & 1u << K_SHM) + !!(seen & 1u << K_SERVER);
	if (n != 1)
		return err_set(err, EINVAL,
			       "--ivshmem '%s': give exactly one of mem=PATH, shm=NAME (plain) or "
			       "server=SOCKET (doorbell)",
			       spec);
	if (c->backend == IVSHMEM_BACKEND_SERVER) {
		if (seen & 1u << K_SIZE)
			return err_set(err, EINVAL,
				       "--ivshmem '%s': size= is for mem=/shm=; with server= the "
				       "server decides the size",
				       spec);
	} else if (seen & (1u << K_VECTORS | 1u << K_TIMEOUT)) {
		return err_set(err, EINVAL,
			       "--ivshmem '%s': vectors= and timeout= need server=SOCKET "
			       "(ivshmem-plain has no interrupts)",
			       spec);
	}
	return 0;
}

static int cli_parse_features(char *list, struct vm_config *cfg, struct errbuf *err)
{
	char *save = NULL;

	/* strtok_r edits argv in place; kvmini owns its argv. */
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool enable;
		int f;

		if (tok[0] != '-' && tok[0] != '+')
			return err_set(
			    err, EINVAL,
			    "--cpu-features: '%s' must start with '-' (hide) or '+' (require)",
			    tok);
		enable = tok[0] == '+';
		f = cpuid_feature_lookup(tok + 1);
		if (f < 0)
			return err_set(err, EINVAL, "--cpu-features: unknown CPU feature '%s'",
				       tok + 1);
		if (cfg->nfeatures == CONFIG_MAX_FEATURE_EDITS)
			return err_set(err, EINVAL, "--cpu-features: more than %d features",
				       CONFIG_MAX_FEATURE_EDITS);
		cfg->features[cfg->nfeatures++] = (struct feature_edit){f, enable};
	}
	if (cfg->nfeatures == 0)
		return err_set(err, EINVAL, "--cpu-features: empty feature list");
	return 0;
}

static int cli_set(struct vm_config *cfg, const char *name, char *val, struct errbuf *err)
{
	uint64_t n;

	if (!strcmp(name, "kernel")) {
		cfg->kernel = val;
	} else if (!strcmp(name, "initrd")) {
		cfg->initrd = val;
	} else if (!strcmp(name, "cmdline")) {
		cfg->cmdline = val;
	} else if (!strcmp(name, "memory")) {
		int r = parse_size(val, &n);

		if (r == -ERANGE || (r == 0 && (n < CONFIG_MIN_MEM || n > CONFIG_MAX_MEM)))
			return err_set(err, EINVAL, "--memory '%s': must be between 2M and 1T",
				       val);
		if (r < 0)
			return err_set(err, EINVAL,
				       "--memory '%s': not a size (use e.g. 128M, 1G, 65536K)",
				       val);
		if (n % 4096)
			return err_set(err, EINVAL, "--memory '%s': must be a multiple of 4K", val);
		cfg->mem_size = n;
	} else if (!strcmp(name, "cpus")) {
		if (parse_uint(val, 1, CONFIG_MAX_CPUS, &n) < 0)
			return err_set(err, EINVAL, "--cpus '%s': must be a number from 1 to %d",
				       val, CONFIG_MAX_CPUS);
		cfg->ncpus = (unsigned)n;
	} else if (!strcmp(name, "cpu-features")) {
		return cli_parse_features(val, cfg, err);
	} else if (!strcmp(name, "serial")) {
		if (!strcmp(val, "stdio")) {
			cfg->serial = SERIAL_STDIO;
		} else if (!strcmp(val, "none")) {
			cfg->serial = SERIAL_NONE;
		} else if (!strncmp(val, "file=", 5) && val[5]) {
			cfg->serial = SERIAL_FILE;
			cfg->serial_path = val + 5;
		} else {
			return err_set(err, EINVAL,
				       "--serial '%s': expected stdio, none or file=PATH", val);
		}
	} else if (!strcmp(name, "timeout")) {
		if (parse_uint(val, 1, 1000000000, &n) < 0)
			return err_set(
			    err, EINVAL,
			    "--timeout '%s': must be a whole number of seconds, at least 1", val);
		cfg->timeout_ns = n * 1000000000ULL;
	} else if (!strcmp(name, "reboot")) {
		cfg->reboot = true;
	} else if (!strcmp(name, "disk") || !strcmp(name, "scsi-disk")) {
		bool scsi = name[0] == 's';
		const char **list = scsi ? cfg->scsi_disks : cfg->disks;
		unsigned *count = scsi ? &cfg->nscsi_disks : &cfg->ndisks;
		/* The option string is the block layer's to check
		 * (disk_config_check, before /dev/kvm is opened). */
		if (*count == CONFIG_MAX_DISKS)
			return err_set(err, EINVAL, "--%s: at most %d disks", name,
				       CONFIG_MAX_DISKS);
		list[(*count)++] = val;
	} else if (!strcmp(name, "vhost-user-blk")) {
		/* Checked by vhost_user_blk_config_check, before /dev/kvm. */
		if (cfg->nvhost_user_blk == CONFIG_MAX_DISKS)
			return err_set(err, EINVAL, "--vhost-user-blk: at most %d disks",
				       CONFIG_MAX_DISKS);
		cfg->vhost_user_blks[cfg->nvhost_user_blk++] = val;
	} else if (!strcmp(name, "ivshmem")) {
		struct ivshmem_config *ic = malloc(sizeof(*ic));
		int r;

		if (!ic)
			return err_set(err, ENOMEM, "out of memory");
		r = ivshmem_config_parse(val, ic, err);
		free(ic);
		if (r < 0)
			return r;
		if (cfg->nivshmem == CONFIG_MAX_IVSHMEM)
			return err_set(err, EINVAL, "--ivshmem: at most %d devices",
				       CONFIG_MAX_IVSHMEM);
		cfg->ivshmem[cfg->nivshmem++] = val;
	} else if (!strcmp(name, "qmp")) {
		char *opt = strstr(val, ",mode="), *end;
		unsigned long mode = 0600;

		if (opt) { /* the socket's permissions; its path ends there */
			*opt = '\0';
			errno = 0;
			mode = strtoul(opt + 6, &end, 8);
			if (opt[6] < '0' || opt[6] > '7' || errno || *end || mode > 0777)
				return err_set(
				    err, EINVAL,
				    "--qmp: mode '%s' is not an octal mode (0..0777, e.g. "
				    "0660)",
				    opt + 6);
		}
		if (!val[0])
			return err_set(err, EINVAL, "--qmp: empty path");
		cfg->qmp_path = val;
		cfg->qmp_mode = (unsigned)mode;
	} else if (!strcmp(name, "incoming")) {
		if (strncmp(val, "file:", 5) != 0 || !val[5])
			return err_set(err, EINVAL, "--incoming '%s': expected file:PATH", val);
		cfg->incoming_path = val + 5;
	} else if (!strcmp(name, "paused")) {
		cfg->paused = true;
	} else if (!strcmp(name, "testdev")) {
		cfg->testdev = true;
	} else if (!strcmp(name, "hyperv")) {
		cfg->hyperv = true;
	} else if (!strcmp(name, "iommu")) {
		cfg->iommu = true;
	} else if (!strcmp(name, "edu")) {
		cfg->edu = true;
	} else if (!strcmp(name, "sandbox")) {
		if (strcmp(val, "on") && strcmp(val, "off"))
			return err_set(err, EINVAL, "--sandbox '%s': expected on or off", val);
		cfg->sandbox_off = !strcmp(val, "off");
	} else {
		/* In cli_run_opts but not here: test_every_option_is_handled. */
		return err_set(err, ENOSYS, "--%s: no handler in cli_set (vmm/cli.c)", name);
	}
	return 0;
}

static int cli_parse_run(int argc, char **argv, enum cli_command *cmd, struct vm_config *cfg,
			 struct errbuf *err)
{
	for (int i = 2; i < argc; i++) {
		char *arg = argv[i], *val = NULL, *eq;
		const struct cli_opt *opt = NULL;
		size_t namelen;
		int ret;

		if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
			*cmd = CLI_HELP;
			return 0;
		}
		if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0')
			return err_set(err, EINVAL,
				       "unexpected argument '%s' (options start with --)", arg);
		eq = strchr(arg, '=');
		namelen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		for (size_t j = 0; j < ARRAY_SIZE(cli_run_opts); j++)
			if (strlen(cli_run_opts[j].name) == namelen &&
			    !strncmp(cli_run_opts[j].name, arg + 2, namelen))
				opt = &cli_run_opts[j];
		if (!opt)
			return err_set(err, EINVAL, "unknown option '%.*s' (see kvmini --help)",
				       (int)namelen + 2, arg);
		if (opt->arg) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return err_set(err, EINVAL, "option --%s needs a value", opt->name);
		} else if (eq) {
			return err_set(err, EINVAL, "option --%s takes no value", opt->name);
		}
		ret = cli_set(cfg, opt->name, val, err);
		if (ret < 0)
			return ret;
	}
	if (cfg->incoming_path && cfg->nfeatures)
		return err_set(err, EINVAL,
			       "--cpu-features does not apply to --incoming: the snapshot holds "
			       "the guest's CPUID");
	if (cfg->incoming_path && !cfg->kernel)
		return 0; /* a kernel is only needed to reboot a restored VM */
	if (!cfg->kernel)
		return err_set(err, EINVAL, "no kernel given: use --kernel PATH");
	if (cfg->kernel[0] == '\0')
		return err_set(err, EINVAL, "--kernel: empty path");
	return 0;
}

/* `kvmini ivshmem-server --socket PATH (--shm NAME | --path FILE) --size SIZE [--vectors N]` */
static int cli_parse_ivserver(int argc, char **argv, struct vm_config *cfg, struct errbuf *err)
{
	static const char usage[] = "usage: kvmini ivshmem-server --socket PATH (--shm NAME | "
				    "--path FILE) --size SIZE [--vectors N]";
	struct ivshmem_server_config *c = &cfg->ivserver;
	const char *size = NULL;
	uint64_t n;

	c->vectors = 1;
	for (int i = 2; i < argc; i++) {
		const char *arg = argv[i], *val;
		const char **slot;

		if (!strcmp(arg, "--socket"))
			slot = &c->socket;
		else if (!strcmp(arg, "--shm"))
			slot = &c->shm;
		else if (!strcmp(arg, "--path"))
			slot = &c->path;
		else if (!strcmp(arg, "--size"))
			slot = &size;
		else if (!strcmp(arg, "--vectors"))
			slot = &val;
		else
			return err_set(err, EINVAL, "ivshmem-server: unknown argument '%s' (%s)",
				       arg, usage);
		if (i + 1 >= argc || !argv[i + 1][0])
			return err_set(err, EINVAL, "ivshmem-server: %s needs a value", arg);
		val = argv[++i];
		if (slot != &val) {
			if (*slot)
				return err_set(err, EINVAL, "ivshmem-server: %s given twice", arg);
			*slot = val;
		} else if (parse_uint(val, 1, IVSHMEM_MAX_VECTORS, &n) < 0) {
			return err_set(
			    err, EINVAL,
			    "ivshmem-server: --vectors '%s' must be a number from 1 to %d", val,
			    IVSHMEM_MAX_VECTORS);
		} else {
			c->vectors = (unsigned)n;
		}
	}
	if (!c->socket)
		return err_set(err, EINVAL, "ivshmem-server: no --socket given (%s)", usage);
	if (!c->shm == !c->path)
		return err_set(err, EINVAL,
			       "ivshmem-server: give exactly one of --shm NAME or --path FILE");
	if (c->shm && (strchr(c->shm, '/') || strlen(c->shm) > 255))
		return err_set(
		    err, EINVAL,
		    "ivshmem-server: --shm '%s' must be a POSIX shm object name (no '/', "
		    "at most 255 characters)",
		    c->shm);
	if (!size)
		return err_set(err, EINVAL, "ivshmem-server: no --size given (%s)", usage);
	if (parse_size(size, &n) < 0 || !ivshmem_size_ok(n))
		return err_set(err, EINVAL,
			       "ivshmem-server: --size '%s' must be a power of two from 4K to 1T",
			       size);
	c->size = n;
	return 0;
}

int cli_parse(int argc, char **argv, enum cli_command *cmd, struct vm_config *cfg,
	      struct errbuf *err)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->ncpus = 1;
	cfg->serial = SERIAL_STDIO;

	if (argc < 2)
		return err_set(err, EINVAL, "no command given (try 'kvmini --help')");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		*cmd = CLI_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		*cmd = CLI_VERSION;
		return 0;
	}
	if (!strcmp(argv[1], "snapshot")) {
		int i = 3;

		if (argc < 3 || strcmp(argv[2], "inspect") != 0)
			return err_set(err, EINVAL,
				       "usage: kvmini snapshot inspect [--verify] FILE");
		if (i < argc && !strcmp(argv[i], "--verify")) {
			cfg->inspect_verify = true;
			i++;
		}
		if (i != argc - 1)
			return err_set(err, EINVAL,
				       "usage: kvmini snapshot inspect [--verify] FILE");
		cfg->inspect_path = argv[i];
		*cmd = CLI_SNAPSHOT_INSPECT;
		return 0;
	}
	if (!strcmp(argv[1], "ctl")) {
		*cmd = CLI_CTL; /* ctl_main parses the rest */
		return 0;
	}
	if (!strcmp(argv[1], "ivshmem-server")) {
		if (argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			*cmd = CLI_HELP;
			return 0;
		}
		*cmd = CLI_IVSHMEM_SERVER;
		return cli_parse_ivserver(argc, argv, cfg, err);
	}
	if (!strcmp(argv[1], "run")) {
		*cmd = CLI_RUN;
		return cli_parse_run(argc, argv, cmd, cfg, err);
	}
	return err_set(err, EINVAL, "unknown command '%s' (try 'kvmini --help')", argv[1]);
}
