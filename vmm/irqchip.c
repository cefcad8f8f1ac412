// SPDX-License-Identifier: MIT
/* KVM's PICs, IOAPIC, PIT and clock: creation and snapshot state. See vmm/irqchip.h. */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm/irqchip.h"

int irqchip_create(int vm_fd, bool split, struct errbuf *err)
{
	struct kvm_pit_config pit = {.flags = KVM_PIT_SPEAKER_DUMMY};

	if (split) {
		struct kvm_enable_cap cap = {.cap = KVM_CAP_SPLIT_IRQCHIP,
					     .args = {IRQCHIP_IOAPIC_PINS}};

		if (ioctl(vm_fd, KVM_ENABLE_CAP, &cap) < 0)
			return err_set(err, errno,
				       "--iommu: this KVM has no split irqchip "
				       "(KVM_CAP_SPLIT_IRQCHIP): %s",
				       strerror(errno));
		return 0;
	}
	if (ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0) < 0)
		return err_set(err, errno, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
	if (ioctl(vm_fd, KVM_CREATE_PIT2, &pit) < 0)
		return err_set(err, errno, "KVM_CREATE_PIT2: %s", strerror(errno));
	return 0;
}

int irqchip_state_save(int vm_fd, struct irqchip_state *s, struct errbuf *err)
{
	memset(s, 0, sizeof(*s));
	for (uint32_t i = 0; i < 3; i++) {
		s->chip[i].chip_id = i;
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &s->chip[i]) < 0)
			return err_set(err, errno, "snapshot: KVM_GET_IRQCHIP %u: %s", i,
				       strerror(errno));
	}
	if (ioctl(vm_fd, KVM_GET_PIT2, &s->pit) < 0 || ioctl(vm_fd, KVM_GET_CLOCK, &s->clock) < 0)
		return err_set(err, errno, "snapshot: KVM_GET_PIT2/CLOCK: %s", strerror(errno));
	return 0;
}

int irqchip_state_check(const struct irqchip_state *s, struct errbuf *err)
{
	for (uint32_t i = 0; i < 3; i++)
		if (s->chip[i].chip_id != i)
			return err_set(err, EINVAL, "snapshot: irqchip %u has id %u", i,
				       s->chip[i].chip_id);
	return 0;
}

int irqchip_state_load(int vm_fd, const struct irqchip_state *s, struct errbuf *err)
{
	struct kvm_clock_data clock = s->clock;

	for (uint32_t i = 0; i < 3; i++)
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &s->chip[i]) < 0)
			return err_set(err, errno, "snapshot: KVM refused irqchip %u: %s", i,
				       strerror(errno));
	if (ioctl(vm_fd, KVM_SET_PIT2, &s->pit) < 0)
		return err_set(err, errno, "snapshot: KVM refused the PIT state: %s",
			       strerror(errno));
	/* Only the clock value: host-realtime correction flags are not ours. */
	clock.flags = 0;
	memset(clock.pad, 0, sizeof(clock.pad));
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return err_set(err, errno, "snapshot: KVM refused the clock: %s", strerror(errno));
	return 0;
}
