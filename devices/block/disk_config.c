// SPDX-License-Identifier: MIT
/*
 * --disk and --scsi-disk option strings, and the werror/rerror policy:
 * what a failed host I/O does. Pure, any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/block.h"

static int disk_set_bool(const char *opt, const char *spec, const char *key, const char *val,
			 bool *out, struct errbuf *err)
{
	if (!strcmp(val, "on")) {
		*out = true;
		return 0;
	}
	if (!strcmp(val, "off")) {
		*out = false;
		return 0;
	}
	return err_set(err, EINVAL, "--%s '%s': %s must be on or off, not '%s'", opt, spec, key,
		       val);
}

enum disk_error_action disk_error_action(enum disk_error_policy p, int error)
{
	switch (p) {
	case DISK_ERROR_IGNORE:
		return DISK_ACTION_IGNORE;
	case DISK_ERROR_STOP:
		return DISK_ACTION_STOP;
	case DISK_ERROR_ENOSPC:
		return error == ENOSPC ? DISK_ACTION_STOP : DISK_ACTION_REPORT;
	case DISK_ERROR_REPORT:
		break;
	}
	return DISK_ACTION_REPORT;
}

static int disk_set_policy(const char *opt, const char *spec, const char *key, const char *val,
			   bool enospc_ok, enum disk_error_policy *out, struct errbuf *err)
{
	static const struct {
		const char *name;
		enum disk_error_policy p;
	} names[] = {{"report", DISK_ERROR_REPORT},
		     {"ignore", DISK_ERROR_IGNORE},
		     {"stop", DISK_ERROR_STOP},
		     {"enospc", DISK_ERROR_ENOSPC}};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(val, names[i].name) != 0 ||
		    (names[i].p == DISK_ERROR_ENOSPC && !enospc_ok))
			continue;
		*out = names[i].p;
		return 0;
	}
	return err_set(err, EINVAL, "--%s '%s': %s must be stop, report, ignore%s, not '%s'", opt,
		       spec, key, enospc_ok ? " or enospc" : "", val);
}

/* --disk and --scsi-disk (@scsi: lun= is allowed too). */
static int disk_spec_parse(const char *opt, bool scsi, const char *spec, struct disk_config *dc,
			   struct errbuf *err)
{
	const char *keys = scsi ? "path, lun, readonly, serial, aio, werror, rerror, delay"
				: "path, readonly, serial, aio, werror, rerror, delay";
	bool seen_lun = false;
	bool seen_path = false, seen_ro = false, seen_serial = false, seen_aio = false;
	bool seen_werror = false, seen_rerror = false, seen_delay = false;
	const char *p = spec, *k;
	char val[DISK_PATH_MAX];
	size_t klen, vlen;
	int r;

	memset(dc, 0, sizeof(*dc));
	dc->lun = -1;
	while ((r = opt_list_next(opt, spec, keys, &p, &k, &klen, val, sizeof(val), err)) > 0) {
		vlen = strlen(val);
		if (opt_key_is(k, klen, "path")) {
			if (seen_path)
				return err_set(err, EINVAL, "--%s '%s': path given twice", opt,
					       spec);
			if (!vlen)
				return err_set(err, EINVAL, "--%s '%s': empty path", opt, spec);
			seen_path = true;
			memcpy(dc->path, val, vlen + 1);
		} else if (scsi && opt_key_is(k, klen, "lun")) {
			uint64_t n;

			if (seen_lun)
				return err_set(err, EINVAL, "--%s '%s': lun given twice", opt,
					       spec);
			seen_lun = true;
			if (parse_uint(val, 0, DISK_LUN_MAX, &n) < 0)
				return err_set(
				    err, EINVAL,
				    "--%s '%s': lun must be a number from 0 to %d, not '%s'", opt,
				    spec, DISK_LUN_MAX, val);
			dc->lun = (int)n;
		} else if (opt_key_is(k, klen, "readonly")) {
			if (seen_ro)
				return err_set(err, EINVAL, "--%s '%s': readonly given twice", opt,
					       spec);
			seen_ro = true;
			if (disk_set_bool(opt, spec, "readonly", val, &dc->readonly, err) < 0)
				return -EINVAL;
		} else if (opt_key_is(k, klen, "serial")) {
			if (seen_serial)
				return err_set(err, EINVAL, "--%s '%s': serial given twice", opt,
					       spec);
			seen_serial = true;
			if (vlen > DISK_SERIAL_MAX)
				return err_set(err, EINVAL,
					       "--%s '%s': serial is longer than %d characters",
					       opt, spec, DISK_SERIAL_MAX);
			for (size_t i = 0; i < vlen; i++)
				if (val[i] < 0x20 || val[i] > 0x7e)
					return err_set(err, EINVAL,
						       "--%s '%s': serial must be printable ASCII",
						       opt, spec);
			memcpy(dc->serial, val, vlen + 1);
		} else if (opt_key_is(k, klen, "aio")) {
			if (seen_aio)
				return err_set(err, EINVAL, "--%s '%s': aio given twice", opt,
					       spec);
			seen_aio = true;
			if (!strcmp(val, "auto"))
				dc->aio = DISK_AIO_AUTO;
			else if (!strcmp(val, "threads"))
				dc->aio = DISK_AIO_THREADS;
			else if (!strcmp(val, "io_uring"))
				dc->aio = DISK_AIO_IO_URING;
			else
				return err_set(err, EINVAL,
					       "--%s '%s': aio must be auto, threads or io_uring, "
					       "not '%s'",
					       opt, spec, val);
		} else if (opt_key_is(k, klen, "delay")) {
			uint64_t n;

			if (seen_delay)
				return err_set(err, EINVAL, "--%s '%s': delay given twice", opt,
					       spec);
			seen_delay = true;
			if (parse_uint(val, 0, DISK_DELAY_MAX, &n) < 0)
				return err_set(err, EINVAL,
					       "--%s '%s': delay must be a number of ms from 0 to "
					       "%d, not '%s'",
					       opt, spec, DISK_DELAY_MAX, val);
			dc->delay_ms = (uint32_t)n;
		} else if (opt_key_is(k, klen, "werror") || opt_key_is(k, klen, "rerror")) {
			bool w = *k == 'w';
			bool *seen = w ? &seen_werror : &seen_rerror;

			if (*seen)
				return err_set(err, EINVAL, "--%s '%s': %s given twice", opt, spec,
					       w ? "werror" : "rerror");
			*seen = true;
			if (disk_set_policy(opt, spec, w ? "werror" : "rerror", val, w,
					    w ? &dc->werror : &dc->rerror, err) < 0)
				return -EINVAL;
		} else {
			return err_set(err, EINVAL, "--%s '%s': unknown option '%.*s' (keys: %s)",
				       opt, spec, (int)klen, k, keys);
		}
	}
	if (r < 0)
		return r;
	if (!seen_path)
		return err_set(err, EINVAL, "--%s '%s': no path= given", opt, spec);
	return 0;
}

int disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err)
{
	return disk_spec_parse("disk", false, spec, dc, err);
}

int scsi_disk_config_parse(const char *spec, struct disk_config *dc, struct errbuf *err)
{
	return disk_spec_parse("scsi-disk", true, spec, dc, err);
}

int disk_config_check(const struct vm_config *cfg, struct errbuf *err)
{
	struct disk_config *dc = malloc(sizeof(*dc));
	int ret = 0;

	if (!dc)
		return err_set(err, ENOMEM, "out of memory");
	for (unsigned i = 0; i < cfg->ndisks && !ret; i++)
		ret = disk_config_parse(cfg->disks[i], dc, err);
	for (unsigned i = 0; i < cfg->nscsi_disks && !ret; i++)
		ret = scsi_disk_config_parse(cfg->scsi_disks[i], dc, err);
	free(dc);
	return ret;
}
