// SPDX-License-Identifier: MIT
/* Command line: `kvmini run OPTIONS`, `kvmini --help`, `kvmini --version`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/cli.h"
#include "vmm/config.h"
#include "vmm/cpuid.h"

const char cli_usage[] =
    "usage: kvmini run --kernel ELF [options]\n"
    "       kvmini ivshmem-server --socket PATH (--shm NAME | --path FILE) --size SIZE\n"
    "       kvmini snapshot inspect [--verify] FILE\n"
    "       kvmini --help | --version\n"
    "\n"
    "run options:\n"
    "  --kernel PATH          PVH ELF kernel to boot (required)\n"
    "  --initrd PATH          initrd, passed as PVH module 0\n"
    "  --cmdline STRING       kernel command line\n"
    "  --memory SIZE          guest RAM, K/M/G suffixes (default 128M)\n"
    "  --cpus N               vCPUs (default 1)\n"
    "  --cpu-features LIST    comma-separated -name (hide) / +name (require) CPUID features\n"
    "  --serial MODE          stdio (default) | file=PATH | none\n"
    "  --timeout SECONDS      stop the VM and exit 124 after SECONDS\n"
    "  --reboot               a guest reset reboots the VM (default: exit 0)\n"
    "  --qmp PATH[,mode=OCTAL] QMP server on a UNIX socket (mode default 0600)\n"
    "  --disk path=FILE[,readonly=on][,serial=STR][,aio=auto|threads|io_uring]\n"
    "         [,werror=report|stop|ignore|enospc][,rerror=report|stop|ignore]\n"
    "                         a virtio-blk disk backed by a raw image (repeatable;\n"
    "                         size must be a multiple of 512 bytes)\n"
    "  --scsi-disk path=FILE[,lun=N][,readonly=on][,serial=STR][,aio=..][,werror=..]\n"
    "         [,rerror=..]    a LUN (0..255; default: the first free one) of the\n"
    "                         virtio-scsi controller, one target, backed by a raw\n"
    "                         image (repeatable; same options as --disk)\n"
    "  --ivshmem mem=PATH|shm=NAME[,size=SIZE][,role=master|peer]\n"
    "                         ivshmem-plain: shared memory from a file or POSIX shm\n"
    "                         object (created or opened; size a power of two)\n"
    "  --ivshmem server=SOCKET[,vectors=N][,role=master|peer][,timeout=SECONDS]\n"
    "                         ivshmem-doorbell: shared memory and interrupts from an\n"
    "                         ivshmem server (repeatable, at most 8 --ivshmem)\n"
    "\n"
    "kvmini ivshmem-server --socket PATH (--shm NAME | --path FILE) --size SIZE\n"
    "                      [--vectors N]\n"
    "                         serve shared memory and doorbells to kvmini and QEMU\n"
    "                         (QEMU's ivshmem-server protocol) until SIGINT/SIGTERM\n"
    "\n"
    "exit status: the guest's status (0..123) written to port 0xf4;\n"
    "  124 timeout, 125 kvmini/host error or bad usage, 126 guest crash\n";

struct cli_opt {
	const char *name;
	bool has_arg;
};

static const struct cli_opt cli_run_opts[] = {
    {"kernel", true},  {"initrd", true},       {"cmdline", true},   {"memory", true},
    {"cpus", true},    {"cpu-features", true}, {"serial", true},    {"timeout", true},
    {"reboot", false}, {"qmp", true},	       {"incoming", true},  {"paused", false},
    {"disk", true},    {"ivshmem", true},      {"scsi-disk", true},
};

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
		if (opt->has_arg) {
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
