// SPDX-License-Identifier: MIT
/*
 * Command-line option strings: cli_parse (argv), ivshmem_config_parse,
 * disk_config_parse, scsi_disk_config_parse and disk_config_check.
 *
 * Input: one selector byte, then NUL-separated strings (argv after
 * "kvmini", or the option string). Every refusal must come with a one-line
 * message; nothing may crash.
 */
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"
#include "tests/fuzz/fuzz.h"
#include "vmm/cli.h"

#define MAX_ARGS 64

#define SEED(s)                                                                                    \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}

static const struct {
	const char *s;
	size_t len;
} seeds[] = {
    SEED("\0run\0--kernel\0k.elf\0--memory\0256M\0--cpus\0002\0--cmdline\0console=ttyS0"),
    SEED("\0run\0--kernel\0k\0--disk\0path=a.img,readonly=on,serial=S1,aio=threads,werror=stop,"
	 "rerror=ignore\0--scsi-disk\0path=b.img,lun=3\0--serial\0file=out.txt\0--timeout\0005"),
    SEED("\0run\0--kernel\0k\0--ivshmem\0shm=x,size=1M,role=master\0--qmp\0q.sock\0--paused"
	 "\0--testdev"),
    SEED("\0run\0--incoming\0file:snap.bin\0--memory\0001G\0--cpu-features\0-avx2,+cx16\0--reboot"),
    SEED("\0snapshot\0inspect\0s.bin\0--verify"),
    SEED("\0ivshmem-server\0--socket\0s\0--shm\0n\0--size\0004M\0--vectors\0008"),
    SEED("\001server=/tmp/s,vectors=4,role=peer,timeout=10"),
    SEED("\001mem=/dev/shm/x,size=64K"),
    SEED("\002path=disk.img,readonly=off,serial=ABC,aio=io_uring,werror=enospc"),
    SEED("\003path=disk.img,lun=255,serial=xyz,rerror=stop"),
};

int fuzz_seeds(const char *dir)
{
	char name[32];

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		snprintf(name, sizeof(name), "seed%zu", i);
		fuzz_write_seed(dir, name, seeds[i].s, seeds[i].len);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *argv[MAX_ARGS + 2], *buf;
	int argc = 1, ret;
	struct vm_config cfg;
	struct ivshmem_config ic;
	struct disk_config dc;
	enum cli_command cmd;
	struct errbuf err = {0};

	if (size < 1)
		return 0;
	buf = malloc(size); /* exactly the input: ASan sees reads past it */
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	argv[0] = "kvmini";
	for (size_t i = 0; i < size - 1 && argc <= MAX_ARGS; i++) {
		argv[argc++] = buf + i;
		i += strlen(buf + i);
	}
	argv[argc] = NULL;
	switch (data[0] % 4) {
	case 0:
		memset(&cfg, 0, sizeof(cfg));
		ret = cli_parse(argc, argv, &cmd, &cfg, &err);
		if (ret == 0 && cmd == CLI_RUN) {
			memset(&err, 0, sizeof(err));
			ret = disk_config_check(&cfg, &err);
			if (ret < 0)
				fuzz_check_msg("disk_config_check", err.msg);
		} else if (ret < 0) {
			fuzz_check_msg("cli_parse", err.msg);
		}
		break;
	case 1:
		ret = ivshmem_config_parse(argc > 1 ? argv[1] : "", &ic, &err);
		if (ret < 0)
			fuzz_check_msg("ivshmem_config_parse", err.msg);
		break;
	case 2:
		ret = disk_config_parse(argc > 1 ? argv[1] : "", &dc, &err);
		if (ret < 0)
			fuzz_check_msg("disk_config_parse", err.msg);
		break;
	default:
		ret = scsi_disk_config_parse(argc > 1 ? argv[1] : "", &dc, &err);
		if (ret < 0)
			fuzz_check_msg("scsi_disk_config_parse", err.msg);
		break;
	}
	free(buf);
	return 0;
}
