/* SPDX-License-Identifier: MIT */
/* Crash report: why and where the guest died, on stderr. */
#ifndef KVMINI_CRASH_H
#define KVMINI_CRASH_H

#include "vmm/memory.h"

/*
 * Print @reason, the registers of vCPU @vcpu_id (fd @vcpu_fd) and the code
 * at its RIP (read from @mem through its page tables, disassembled) to
 * stderr as one block. The crashing vCPU's own thread.
 */
void crash_report(int vcpu_fd, int vcpu_id, const struct guest_mem *mem, const char *reason);

#endif
