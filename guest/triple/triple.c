// SPDX-License-Identifier: MIT
/*
 * Triple-faults on purpose: with an IDT of limit 0, the #UD from ud2 cannot
 * be delivered, nor can the #GP that raises, nor the #DF: the CPU shuts down
 * (KVM_EXIT_SHUTDOWN). kvmini reports a crash and exits 126; QEMU with
 * -no-reboot exits 0. If the CPU survives, prints so and exits 1.
 * (int3 is no good here: on our hosts KVM's CPL0 emulator fails on it with
 * an empty IDT, an internal error rather than a shutdown.)
 */
#include "guest.h"

int main(void)
{
	static const struct idt_ptr empty = {0, 0};

	printf("triple: loading an empty IDT and executing ud2\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	printf("triple: still alive after ud2 with an empty IDT\n");
	return 1;
}
