/* SPDX-License-Identifier: MIT */
/*
 * QMP: a QEMU Machine Protocol server on a UNIX socket (--qmp PATH).
 * Speaks what existing QMP clients expect: a greeting, capabilities
 * negotiation, commands with optional "id", errors as {"error": {"class",
 * "desc"}}, and timestamped events. Malformed JSON or unknown commands get
 * an error reply; the connection lives on.
 *
 * Everything here runs on the main thread (the main AioContext).
 */
#ifndef KVMINI_QMP_H
#define KVMINI_QMP_H

#include "aio/aio.h"
#include "vmm/util.h"

struct qmp_server;
struct vm;

/* Listen on @path, created with permissions @mode (--qmp PATH,mode=;
 * 0600 by default), whatever the umask; an existing socket file is
 * replaced, anything else there is an error. Main thread, before other
 * threads exist (the umask is set around bind). */
int qmp_server_new(struct aio_context *ctx, const char *path, unsigned mode,
		   struct qmp_server **out, struct errbuf *err);

/* Close every client and remove the socket file. */
void qmp_server_free(struct qmp_server *qs);

/* The VM commands act on; NULL between a reset and the next boot. */
void qmp_server_set_vm(struct qmp_server *qs, struct vm *vm);

/* Send an event to every negotiated client. @data_json: a JSON object, or
 * NULL for {}. */
void qmp_event(struct qmp_server *qs, const char *name, const char *data_json);

#endif
