/* SPDX-License-Identifier: MIT */
/*
 * hyperv-testdev (hyperv_testdev.c): QEMU's Hyper-V test device for
 * kvm-unit-tests' hyperv_synic and hyperv_connections, with --hyperv and
 * --testdev. One 4-byte port, HV_TESTDEV_PORT; a write of
 *     conn_id << 24 | ctl << 16 | vcpu << 8 | sint
 * runs command ctl (enum hv_testdev_ctl) for vCPU @vcpu's SINT @sint and
 * connection @conn_id:
 *  - SINT_ROUTE_CREATE / _DESTROY: a KVM SINT route (KVM_IRQ_ROUTING_HV_SINT
 *    with an irqfd) to (vcpu, sint); SINT_ROUTE_SET_SINT signals it;
 *  - MSG_CONN_CREATE / _DESTROY: message connection conn_id to (vcpu, sint):
 *    the guest's HvPostMessage on it puts the message in the vCPU's SIMP
 *    slot for sint and signals the SINT; to a busy slot it sets msg_pending
 *    and delivers when the guest acknowledges (EOM), one message held per
 *    connection (HV_STATUS_INSUFFICIENT_BUFFERS beyond);
 *  - EVT_CONN_CREATE / _DESTROY: event connection conn_id to (vcpu, sint):
 *    HvSignalEvent on it (in KVM, KVM_HYPERV_EVENTFD) sets bit conn_id in
 *    the vCPU's SIEFP slot for sint and signals the SINT if the bit was
 *    clear.
 * Bad commands (vCPU or SINT out of range, unknown ctl, no such route or
 * connection, more than HV_TESTDEV_ROUTES routes) are ignored with one line
 * on stderr. Reads return 0.
 *
 * Threads: commands and HvPostMessage run on vCPU threads; acknowledgements
 * and KVM's event signals on the main loop (or hyperv_testdev_poll). One
 * lock orders them.
 */
#ifndef KVMINI_HYPERV_TESTDEV_H
#define KVMINI_HYPERV_TESTDEV_H

#include <stdint.h>

#include "aio/aio.h"
#include "vmm/bus.h"
#include "vmm/device.h"
#include "vmm/hyperv.h"
#include "vmm/kvm_irq.h"

#define HV_TESTDEV_PORT	  0x3000
#define HV_TESTDEV_ROUTES 64 /* 16 SINTs of 4 vCPUs: hyperv_synic's most */

enum hv_testdev_ctl {
	HV_TESTDEV_SINT_ROUTE_CREATE = 1,
	HV_TESTDEV_SINT_ROUTE_DESTROY,
	HV_TESTDEV_SINT_ROUTE_SET_SINT,
	HV_TESTDEV_MSG_CONN_CREATE,
	HV_TESTDEV_MSG_CONN_DESTROY,
	HV_TESTDEV_EVT_CONN_CREATE,
	HV_TESTDEV_EVT_CONN_DESTROY,
};

/* The device on vm->hyperv (realize fails without --hyperv). */
extern const struct device_ops hyperv_testdev_ops;

/*
 * What realize does, with its seams: the port on @pio, SINT routes in
 * @router through @kvm (irqfd, irqfd_resample, hyperv_eventfd) with
 * @kvm_opaque, connections registered with @hv. Acknowledgements and event
 * signals are watched on @ctx, or, with @ctx NULL, only when
 * hyperv_testdev_poll runs. Main thread; the ops' exit frees the state.
 * -errno with @err.
 */
int hyperv_testdev_new(struct hyperv *hv, struct bus *pio, struct msi_router *router,
		       const struct kvm_irq_ops *kvm, void *kvm_opaque, struct aio_context *ctx,
		       void **state, struct errbuf *err);

/* Handle every pending acknowledgement and event signal now. Any thread. */
void hyperv_testdev_poll(void *state);

#endif
