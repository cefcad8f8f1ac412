/* SPDX-License-Identifier: MIT */
/*
 * Device model. A device is one file with one const struct device_ops.
 * realize is required; the rest are optional. All ops are called from the
 * main thread while no vCPU runs, except where a device says otherwise.
 *
 * Pausing (vm_pause / vm_resume): each device's pause op runs in device
 * order, then the vCPUs are parked, then each drain op runs; resume ops
 * run in reverse order before the vCPUs run again. save is called only
 * once vm_pause returned (vCPUs parked), load on a freshly realized device
 * that snapshot_restore paused first; what load brings back (in-flight
 * requests, say) runs at the next resume.
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
	/* Validate and load what save wrote; -errno and @err on bad input.
	 * On error the VM is destroyed without running: exit must cope. */
	int (*load)(void *state, const void *buf, size_t len, struct errbuf *err);
	/*
	 * Quiesce: take no new work from the guest, let host work already
	 * started finish, and hold (neither complete nor lose) whatever the
	 * guest has in flight; return once the device writes no guest memory
	 * and raises no interrupt by itself, so that once the vCPUs are
	 * parked its state and guest RAM can be saved. The vCPUs may still
	 * run (and access the device) until vm_pause parks them: register
	 * accesses must keep working, a driver reset may drop what is held.
	 * Devices without it have nothing that runs by itself.
	 */
	void (*pause)(void *state);
	/*
	 * After pause, once the vCPUs are parked (so the guest adds nothing):
	 * wait until work that runs outside kvmini (a vhost-user backend) has
	 * finished what the guest made available, for a bounded time, so that
	 * a paused VM's disks are quiet. A wait that times out is reported on
	 * stderr and the VM stays paused. Called by whoever calls vm_pause.
	 */
	void (*drain)(void *state);
	/* Undo pause: finish or restart what was held, each request exactly
	 * once, and take new work again. */
	void (*resume)(void *state);
	/* Flush and free everything realize created. */
	void (*exit)(void *state);
};

struct device {
	const struct device_ops *ops;
	void *state;
};

#endif
