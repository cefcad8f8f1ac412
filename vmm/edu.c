// SPDX-License-Identifier: MIT
/* QEMU's edu PCI device for --edu. See vmm/edu.h. */
#include <errno.h>
#include <linux/pci_regs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/edu.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

#define EDU_BAR_SIZE (1u << 20)
#define EDU_ID	     0x010000edu
#define EDU_DMA_BASE 0x40000u
#define EDU_DMA_SIZE 4096u
#define EDU_DMA_MASK ((1ULL << 28) - 1) /* QEMU's default dma_mask */

#define EDU_STATUS_COMPUTING 0x01u
#define EDU_STATUS_IRQFACT   0x80u
#define EDU_IRQ_FACT	     0x001u
#define EDU_IRQ_DMA	     0x100u
#define EDU_CMD_START	     0x1u
#define EDU_CMD_TO_RAM	     0x2u
#define EDU_CMD_IRQ	     0x4u

#define EDU_MSI_LEN 14 /* 64-bit address, no per-vector masking */

struct edu {
	struct vm *vm;
	struct pci_device *pdev;
	unsigned pin;	      /* IOAPIC input of INTx */
	uint16_t sid;	      /* requester id */
	int msi_cap;	      /* config offset */
	pthread_mutex_t lock; /* everything below */
	uint32_t alive, fact, status, irq_status;
	uint64_t dma_src, dma_dst, dma_cnt, dma_cmd;
	bool intx;	 /* INTx asserted */
	unsigned warned; /* refused DMAs: the first is reported, not each (no log flood) */
	/* From config space, refreshed by the config hook. */
	bool msi_on, master, intx_disabled;
	uint64_t msi_addr;
	uint32_t msi_data;
	uint8_t buf[EDU_DMA_SIZE];
};

/* INTx follows the interrupt status unless MSI or INTx-disable. Lock held. */
static void edu_update_intx(struct edu *e)
{
	bool level = e->irq_status && !e->msi_on && !e->intx_disabled;

	if (level != e->intx) {
		e->intx = level;
		vm_irq_line(e->vm, e->pin, level);
	}
}

static void edu_raise(struct edu *e, uint32_t v)
{
	e->irq_status |= v;
	if (e->irq_status && e->msi_on)
		vm_msi_send(e->vm, e->msi_addr, e->msi_data, e->sid);
	edu_update_intx(e);
}

static void edu_lower(struct edu *e, uint32_t v)
{
	e->irq_status &= ~v;
	edu_update_intx(e);
}

/* The DMA command just written. Lock held. */
static void edu_dma(struct edu *e)
{
	bool to_ram = e->dma_cmd & EDU_CMD_TO_RAM;
	uint64_t dev = to_ram ? e->dma_src : e->dma_dst, bus = to_ram ? e->dma_dst : e->dma_src;
	uint64_t cnt = e->dma_cnt;

	if (dev < EDU_DMA_BASE || cnt > EDU_DMA_SIZE || dev - EDU_DMA_BASE > EDU_DMA_SIZE - cnt) {
		if (!e->warned++)
			fprintf(stderr,
				"kvmini: edu: DMA of %llu bytes at device address 0x%llx is "
				"outside its buffer [0x%x, 0x%x): ignored\n",
				(unsigned long long)cnt, (unsigned long long)dev, EDU_DMA_BASE,
				EDU_DMA_BASE + EDU_DMA_SIZE);
	} else if (!e->master) {
		if (!e->warned++)
			fprintf(stderr, "kvmini: edu: DMA with bus mastering off: ignored\n");
	} else {
		/* A remapping fault is recorded by the IOMMU; an address that is
		 * not RAM is a master abort. Either way nothing more is copied. */
		(void)vm_dma(e->vm, e->sid, bus & EDU_DMA_MASK, e->buf + (dev - EDU_DMA_BASE), cnt,
			     to_ram);
	}
	e->dma_cmd &= ~(uint64_t)EDU_CMD_START;
	if (e->dma_cmd & EDU_CMD_IRQ)
		edu_raise(e, EDU_IRQ_DMA);
}

static uint32_t edu_factorial(uint32_t n)
{
	uint32_t f = 1;

	while (n > 1)
		f *= n--;
	return f;
}

static uint64_t edu_read(struct edu *e, uint64_t off)
{
	switch (off) {
	case 0x00:
		return EDU_ID;
	case 0x04:
		return ~e->alive;
	case 0x08:
		return e->fact;
	case 0x20:
		return e->status;
	case 0x24:
		return e->irq_status;
	case 0x80:
		return e->dma_src;
	case 0x88:
		return e->dma_dst;
	case 0x90:
		return e->dma_cnt;
	case 0x98:
		return e->dma_cmd;
	default:
		return ~0ULL;
	}
}

static void edu_write(struct edu *e, uint64_t off, uint64_t v)
{
	switch (off) {
	case 0x04:
		e->alive = (uint32_t)v;
		break;
	case 0x08:
		e->fact = edu_factorial((uint32_t)v);
		if (e->status & EDU_STATUS_IRQFACT)
			edu_raise(e, EDU_IRQ_FACT);
		break;
	case 0x20:
		e->status = (e->status & ~EDU_STATUS_IRQFACT) | ((uint32_t)v & EDU_STATUS_IRQFACT);
		break;
	case 0x60:
		edu_raise(e, (uint32_t)v);
		break;
	case 0x64:
		edu_lower(e, (uint32_t)v);
		break;
	case 0x80:
		e->dma_src = v;
		break;
	case 0x88:
		e->dma_dst = v;
		break;
	case 0x90:
		e->dma_cnt = v;
		break;
	case 0x98:
		if (v & EDU_CMD_START) {
			e->dma_cmd = v;
			edu_dma(e);
		}
		break;
	default:
		break;
	}
}

/* vCPU threads: BAR 0. */
static void edu_mmio(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct edu *e = opaque;
	bool ok = off < 0x80 ? len == 4 : (len == 4 || len == 8);
	uint64_t v = 0;

	if (!ok || (off & (len - 1))) {
		if (!is_write)
			memset(data, 0xff, len);
		return;
	}
	pthread_mutex_lock(&e->lock);
	if (is_write) {
		memcpy(&v, data, len);
		edu_write(e, off, v);
	} else {
		v = edu_read(e, off);
		memcpy(data, &v, len);
	}
	pthread_mutex_unlock(&e->lock);
}

/* Config lock held: cache what interrupts and DMA need. */
static void edu_config_write(void *opaque, uint32_t off, uint32_t len)
{
	struct edu *e = opaque;
	struct pci_device *d = e->pdev;
	uint16_t cmd = pci_config_get16(d, PCI_COMMAND);
	uint16_t ctl = pci_config_get16(d, (uint32_t)e->msi_cap + PCI_MSI_FLAGS);

	(void)off;
	(void)len;
	pthread_mutex_lock(&e->lock);
	e->master = cmd & PCI_COMMAND_MASTER;
	e->intx_disabled = cmd & PCI_COMMAND_INTX_DISABLE;
	e->msi_on = ctl & PCI_MSI_FLAGS_ENABLE;
	e->msi_addr = pci_config_get32(d, (uint32_t)e->msi_cap + PCI_MSI_ADDRESS_LO) |
		      (uint64_t)pci_config_get32(d, (uint32_t)e->msi_cap + PCI_MSI_ADDRESS_HI)
			  << 32;
	e->msi_data = pci_config_get16(d, (uint32_t)e->msi_cap + PCI_MSI_DATA_64);
	edu_update_intx(e);
	pthread_mutex_unlock(&e->lock);
}

static const struct pci_device_info edu_info = {
    .name = "edu",
    .vendor_id = EDU_VENDOR,
    .device_id = EDU_DEVICE,
    .subsystem_vendor_id = 0x1af4, /* QEMU's defaults */
    .subsystem_id = 0x1100,
    .revision = 0x10,
    .class_code = 0x00ff00,
    .config_write = edu_config_write,
};

static void edu_exit(void *state)
{
	struct edu *e = state;

	if (e->pdev)
		pci_unregister_device(e->pdev);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static int edu_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct pci_region reg = {.len = EDU_BAR_SIZE, .fn = edu_mmio, .name = "edu"};
	struct edu *e;
	int r;

	if (!vm->pci)
		return err_set(err, ENODEV, "edu: the VM has no PCI host bridge");
	e = calloc(1, sizeof(*e));
	if (!e)
		return err_set(err, ENOMEM, "edu: out of memory");
	e->vm = vm;
	pthread_mutex_init(&e->lock, NULL);
	r = pci_register_device(vm, &edu_info, e, &e->pdev, err);
	if (r < 0)
		goto fail;
	reg.opaque = e;
	r = pci_add_bar(e->pdev, 0, PCI_BAR_MEM32, EDU_BAR_SIZE, false, err);
	if (r == 0)
		r = pci_bar_add_region(e->pdev, 0, &reg, err);
	if (r < 0)
		goto fail;
	r = pci_add_capability(e->pdev, PCI_CAP_ID_MSI, EDU_MSI_LEN, err);
	if (r < 0)
		goto fail;
	e->msi_cap = r;
	pci_config_set16(e->pdev, (uint32_t)r + PCI_MSI_FLAGS, PCI_MSI_FLAGS_64BIT);
	pci_config_set_wmask(e->pdev, (uint32_t)r + PCI_MSI_FLAGS,
			     PCI_MSI_FLAGS_ENABLE | PCI_MSI_FLAGS_QSIZE, 2);
	pci_config_set_wmask(e->pdev, (uint32_t)r + PCI_MSI_ADDRESS_LO, 0xfffffffcu, 4);
	pci_config_set_wmask(e->pdev, (uint32_t)r + PCI_MSI_ADDRESS_HI, 0xffffffffu, 4);
	pci_config_set_wmask(e->pdev, (uint32_t)r + PCI_MSI_DATA_64, 0xffffu, 2);
	e->sid = (uint16_t)(e->pdev->slot << 3);
	e->pin = 16 + e->pdev->slot % 8;
	pci_config_set8(e->pdev, PCI_INTERRUPT_PIN, 1);
	pci_config_set8(e->pdev, PCI_INTERRUPT_LINE, (uint8_t)e->pin);
	pci_device_enable(e->pdev, PCI_COMMAND_MEMORY);
	*state = e;
	return 0;

fail:
	edu_exit(e);
	return r;
}

const struct device_ops edu_ops = {
    .name = "edu",
    .realize = edu_realize,
    .exit = edu_exit,
};
