/* SPDX-License-Identifier: MIT */
/*
 * Device model. A device is one file with one const struct device_ops.
 * realize is required; the rest are optional. All ops are called from the
 * main thread while no vCPU runs, except where a device says otherwise.
 */
#ifndef KVMINI_DEVICE_H
#define KVMINI_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/util.h"

struct vm;

struct device_ops {
	const char *name;
	/* Create the device's state in *state from its option string @opts
	 * (NULL for devices without options) and attach it to @vm (buses,
	 * interrupts). On error: -errno, message in @err, nothing left behind. */
	int (*realize)(struct vm *vm, const char *opts, void **state, struct errbuf *err);
	/* Back to power-on state (system reset). */
	void (*reset)(void *state);
	/* Serialize into @buf (at most @len bytes); returns bytes used or -errno. */
	int (*save)(void *state, void *buf, size_t len);
	/* Validate and load what save wrote; -errno and @err on bad input. */
	int (*load)(void *state, const void *buf, size_t len, struct errbuf *err);
	/* Flush and free everything realize created. */
	void (*exit)(void *state);
};

struct device {
	const struct device_ops *ops;
	void *state;
};

#endif
