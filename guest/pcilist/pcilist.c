// SPDX-License-Identifier: MIT
/*
 * Lists PCI bus 0: the configuration method, every function with its IDs
 * and class, and (with `bars`) its BARs after pci_dev_enable, plus its
 * capability IDs. Exits 0, or 1 if there is no PCI at all.
 */
#include "guest.h"
#include "pci.h"

int main(void)
{
	int n = pci_init();

	if (n < 0) {
		printf("pcilist: no PCI configuration mechanism\n");
		return 1;
	}
	printf("pcilist: method %s, %d functions on bus 0\n", pci_method(), n);
	for (int i = 0; i < n; i++) {
		struct pci_dev *d = pci_get(i);
		if (cmdline_has("bars") && d->header_type == 0) {
			int r = pci_dev_enable(d);
			if (r)
				printf("pcilist: %02x.%x: enable failed: %d\n", d->dev, d->fn, r);
		}
		pci_dev_print(d);
		for (uint8_t c = pci_read8(d, PCI_CAP_PTR), k = 0;
		     (pci_read16(d, PCI_STATUS) & PCI_STATUS_CAPS) && c >= 0x40 && k < 48; k++) {
			printf("pci:   cap 0x%02x at 0x%02x\n", pci_read8(d, c), c);
			c = pci_read8(d, c + 1);
		}
	}
	return 0;
}
