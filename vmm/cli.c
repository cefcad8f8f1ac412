// SPDX-License-Identifier: MIT
/* Command line: `kvmini run OPTIONS`, `kvmini --help`, `kvmini --version`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"
#include "vmm/vm.h"

const char cli_usage[] =
    "usage: kvmini run --kernel ELF [options]\n"
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
    "  --disk path=FILE[,readonly=on][,serial=STR][,aio=auto|threads|io_uring]\n"
    "                         a virtio-blk disk backed by a raw image (repeatable;\n"
    "                         size must be a multiple of 512 bytes)\n"
    "\n"
    "exit status: the guest's status (0..123) written to port 0xf4;\n"
    "  124 timeout, 125 kvmini/host error or bad usage, 126 guest crash\n";

struct cli_opt {
	const char *name;
	bool has_arg;
};

static const struct cli_opt cli_run_opts[] = {
    {"kernel", true},	    {"initrd", true},  {"cmdline", true}, {"memory", true},  {"cpus", true},
    {"cpu-features", true}, {"serial", true},  {"timeout", true}, {"reboot", false}, {"qmp", true},
    {"incoming", true},	    {"paused", false}, {"disk", true},
};

static int disk_set_bool(const char *spec, const char *key, const char *val, bool *out,
			 struct errbuf *err)
{
	if (!strcmp(val, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(val, "off")) {
		*out = false;
		return 0;
	}
	return err_set(err, EINVAL, "--disk '%s': %s must be on or off, not '%s'", spec, key, val);
}

int disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err)
{
	bool seen_path = false, seen_ro = false, seen_serial = false, seen_aio = false;
	const char *p = spec;

	memset(dc, 0, sizeof(*dc));
	while (*p) {
		const char *end = strchr(p, ','), *eq;
		size_t len = end ? (size_t)(end - p) : strlen(p), klen, vlen;
		char val[DISK_PATH_MAX];

		if (len == 0)
			return err_set(err, EINVAL, "--disk '%s': empty option", spec);
		eq = memchr(p, '=', len);
		if (!eq)
			return err_set(
			    err, EINVAL,
			    "--disk '%s': '%.*s' is not key=value (keys: path, readonly, "
			    "serial, aio)",
			    spec, (int)len, p);
		klen = (size_t)(eq - p);
		vlen = len - klen - 1;
		if (vlen >= sizeof(val))
			return err_set(err, EINVAL, "--disk '%s': %.*s is too long", spec,
				       (int)klen, p);
		memcpy(val, eq + 1, vlen);
		val[vlen] = '\0';
		if (klen == 4 && !strncmp(p, "path", 4)) {
			if (seen_path)
				return err_set(err, EINVAL, "--disk '%s': path given twice", spec);
			if (!vlen)
				return err_set(err, EINVAL, "--disk '%s': empty path", spec);
			seen_path = true;
			memcpy(dc->path, val, vlen + 1);
		} else if (klen == 8 && !strncmp(p, "readonly", 8)) {
			if (seen_ro)
				return err_set(err, EINVAL, "--disk '%s': readonly given twice",
					       spec);
			seen_ro = true;
			if (disk_set_bool(spec, "readonly", val, &dc->readonly, err) < 0)
				return -EINVAL;
		} else if (klen == 6 && !strncmp(p, "serial", 6)) {
			if (seen_serial)
				return err_set(err, EINVAL, "--disk '%s': serial given twice",
					       spec);
			seen_serial = true;
			if (vlen > DISK_SERIAL_MAX)
				return err_set(err, EINVAL,
					       "--disk '%s': serial is longer than %d characters",
					       spec, DISK_SERIAL_MAX);
			for (size_t i = 0; i < vlen; i++)
				if (val[i] < 0x20 || val[i] > 0x7e)
					return err_set(
					    err, EINVAL,
					    "--disk '%s': serial must be printable ASCII", spec);
			memcpy(dc->serial, val, vlen + 1);
		} else if (klen == 3 && !strncmp(p, "aio", 3)) {
			if (seen_aio)
				return err_set(err, EINVAL, "--disk '%s': aio given twice", spec);
			seen_aio = true;
			if (!strcmp(val, "auto"))
				dc->aio = DISK_AIO_AUTO;
			else if (!strcmp(val, "threads"))
				dc->aio = DISK_AIO_THREADS;
			else if (!strcmp(val, "io_uring"))
				dc->aio = DISK_AIO_IO_URING;
			else
				return err_set(
				    err, EINVAL,
				    "--disk '%s': aio must be auto, threads or io_uring, "
				    "not '%s'",
				    spec, val);
		} else {
			return err_set(err, EINVAL,
				       "--disk '%s': unknown option '%.*s' (keys: path, readonly, "
				       "serial, aio)",
				       spec, (int)klen, p);
		}
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return err_set(err, EINVAL, "--disk '%s': trailing comma", spec);
	}
	if (!seen_path)
		return err_set(err, EINVAL, "--disk '%s': no path= given", spec);
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
	} else if (!strcmp(name, "disk")) {
		struct disk_config *dc = malloc(sizeof(*dc));
		int r;

		if (!dc)
			return err_set(err, ENOMEM, "out of memory");
		r = disk_config_parse(val, dc, err);
		free(dc);
		if (r < 0)
			return r;
		if (cfg->ndisks == CONFIG_MAX_DISKS)
			return err_set(err, EINVAL, "--disk: at most %d disks", CONFIG_MAX_DISKS);
		cfg->disks[cfg->ndisks++] = val;
	} else if (!strcmp(name, "qmp")) {
		if (!val[0])
			return err_set(err, EINVAL, "--qmp: empty path");
		cfg->qmp_path = val;
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
	if (!strcmp(argv[1], "run")) {
		*cmd = CLI_RUN;
		return cli_parse_run(argc, argv, cmd, cfg, err);
	}
	return err_set(err, EINVAL, "unknown command '%s' (try 'kvmini --help')", argv[1]);
}
