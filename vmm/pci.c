// SPDX-License-Identifier: MIT
/*
 * PCI host bridge, configuration mechanism #1, configuration space of type 0
 * functions, BAR placement and mapping. See vmm/pci.h.
 *
 * Every guest write goes through per-byte masks: bits outside wmask keep
 * their value (IDs, class, header type, capability pointers, BAR type bits,
 * the low bits of a BAR below its size), bits in w1cmask are cleared by
 * writing 1. BAR mappings are recomputed after any write that touches the
 * command register or a BAR.
 */
#include <errno.h>
#include <linux/pci_regs.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/pci.h"
#include "vmm/vm.h"

/* Command bits the guest may set; only I/O and memory enable have effect
 * (no INTx, no DMA control in kvmini). */
#define PCI_COMMAND_WMASK                                                                          \
	(PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY |           \
	 PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE)
/* Error bits of the status register are write-1-to-clear. */
#define PCI_STATUS_W1C                                                                             \
	(PCI_STATUS_PARITY | PCI_STATUS_SIG_TARGET_ABORT | PCI_STATUS_REC_TARGET_ABORT |           \
	 PCI_STATUS_REC_MASTER_ABORT | PCI_STATUS_SIG_SYSTEM_ERROR | PCI_STATUS_DETECTED_PARITY)

void pci_config_set8(struct pci_device *d, uint32_t off, uint8_t v)
{
	d->config[off] = v;
}

void pci_config_set16(struct pci_device *d, uint32_t off, uint16_t v)
{
	d->config[off] = (uint8_t)v;
	d->config[off + 1] = (uint8_t)(v >> 8);
}

void pci_config_set32(struct pci_device *d, uint32_t off, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		d->config[off + i] = (uint8_t)(v >> (8 * i));
}

uint8_t pci_config_get8(const struct pci_device *d, uint32_t off)
{
	return d->config[off];
}

uint16_t pci_config_get16(const struct pci_device *d, uint32_t off)
{
	return (uint16_t)(d->config[off] | d->config[off + 1] << 8);
}

uint32_t pci_config_get32(const struct pci_device *d, uint32_t off)
{
	return (uint32_t)d->config[off] | (uint32_t)d->config[off + 1] << 8 |
	       (uint32_t)d->config[off + 2] << 16 | (uint32_t)d->config[off + 3] << 24;
}

void pci_config_set_wmask(struct pci_device *d, uint32_t off, uint32_t mask, uint32_t width)
{
	for (uint32_t i = 0; i < width; i++)
		d->wmask[off + i] = (uint8_t)(mask >> (8 * i));
}

/* The parts of a type 0 header every function shares. */
static void pci_init_header(struct pci_device *d, const struct pci_device_info *info)
{
	memset(d->config, 0, sizeof(d->config));
	memset(d->wmask, 0, sizeof(d->wmask));
	memset(d->w1cmask, 0, sizeof(d->w1cmask));
	pci_config_set16(d, PCI_VENDOR_ID, info->vendor_id);
	pci_config_set16(d, PCI_DEVICE_ID, info->device_id);
	pci_config_set8(d, PCI_REVISION_ID, info->revision);
	pci_config_set8(d, PCI_CLASS_PROG, (uint8_t)info->class_code);
	pci_config_set16(d, PCI_CLASS_DEVICE, (uint16_t)(info->class_code >> 8));
	pci_config_set8(d, PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL); /* single function */
	pci_config_set16(d, PCI_SUBSYSTEM_VENDOR_ID, info->subsystem_vendor_id);
	pci_config_set16(d, PCI_SUBSYSTEM_ID, info->subsystem_id);
	pci_config_set_wmask(d, PCI_COMMAND, PCI_COMMAND_WMASK, 2);
	for (int i = 0; i < 2; i++)
		d->w1cmask[PCI_STATUS + i] = (uint8_t)(PCI_STATUS_W1C >> (8 * i));
	pci_config_set_wmask(d, PCI_CACHE_LINE_SIZE, 0xff, 1);
	pci_config_set_wmask(d, PCI_INTERRUPT_LINE, 0xff, 1); /* scratch for the OS */
	/* Interrupt pin 0: no INTx, MSI-X only. Expansion ROM: none. */
	d->info = info;
	d->cap_end = PCI_STD_HEADER_SIZEOF;
	for (int i = 0; i < PCI_BARS; i++)
		d->bars[i].mapped = PCI_BAR_UNMAPPED;
}

/* Decoded address BAR @i would be mapped at if decoding were on. */
static uint64_t pci_bar_decode(const struct pci_device *d, int i)
{
	const struct pci_bar *b = &d->bars[i];
	uint32_t lo = pci_config_get32(d, PCI_BASE_ADDRESS_0 + 4 * (uint32_t)i);

	switch (b->type) {
	case PCI_BAR_MEM32:
		return lo & PCI_BASE_ADDRESS_MEM_MASK;
	case PCI_BAR_MEM64:
		return (lo & PCI_BASE_ADDRESS_MEM_MASK) |
		       (uint64_t)pci_config_get32(d, PCI_BASE_ADDRESS_0 + 4 * (uint32_t)i + 4)
			   << 32;
	case PCI_BAR_IO:
		return lo & PCI_BASE_ADDRESS_IO_MASK;
	default:
		return PCI_BAR_UNMAPPED;
	}
}

/*
 * Where BAR @i should be on the bus now: PCI_BAR_UNMAPPED if decoding is
 * off, or the address is 0 (unassigned), the all-ones sizing pattern, or
 * past the end of its address space.
 */
static uint64_t pci_bar_target(const struct pci_device *d, int i)
{
	const struct pci_bar *b = &d->bars[i];
	uint16_t cmd = pci_config_get16(d, PCI_COMMAND);
	uint64_t addr = pci_bar_decode(d, i), limit, ones;

	switch (b->type) {
	case PCI_BAR_MEM32:
		if (!(cmd & PCI_COMMAND_MEMORY))
			return PCI_BAR_UNMAPPED;
		limit = LAYOUT_MMIO32_END;
		ones = (uint32_t) ~(b->size - 1);
		break;
	case PCI_BAR_MEM64:
		if (!(cmd & PCI_COMMAND_MEMORY))
			return PCI_BAR_UNMAPPED;
		limit = PCI_MMIO64_LIMIT;
		ones = ~(b->size - 1);
		break;
	case PCI_BAR_IO:
		if (!(cmd & PCI_COMMAND_IO))
			return PCI_BAR_UNMAPPED;
		limit = PCI_IO_END;
		ones = 0xffff & ~(b->size - 1);
		break;
	default:
		return PCI_BAR_UNMAPPED;
	}
	/* addr < limit first, so addr + size cannot wrap. */
	if (addr == 0 || addr == ones || addr >= limit || b->size > limit - addr)
		return PCI_BAR_UNMAPPED;
	return addr;
}

static struct bus *pci_bar_bus(struct pci_device *d, const struct pci_bar *b)
{
	return b->type == PCI_BAR_IO ? d->host->pio : d->host->mmio;
}

static void pci_bar_unmap(struct pci_device *d, struct pci_bar *b)
{
	struct bus *bus = pci_bar_bus(d, b);

	if (b->mapped == PCI_BAR_UNMAPPED)
		return;
	for (int r = 0; r < b->nregions; r++)
		bus_unregister(bus, b->mapped + b->regions[r].offset);
	b->mapped = PCI_BAR_UNMAPPED;
	for (int r = 0; r < b->nregions; r++)
		if (b->regions[r].map)
			b->regions[r].map(b->regions[r].opaque, PCI_BAR_UNMAPPED);
}

/* Register every region at @addr; all or nothing (an overlap with another
 * device leaves the BAR unmapped, as the guest asked for a conflict). */
static void pci_bar_map(struct pci_device *d, struct pci_bar *b, uint64_t addr)
{
	struct bus *bus = pci_bar_bus(d, b);
	int r;

	for (r = 0; r < b->nregions; r++) {
		const struct pci_region *g = &b->regions[r];

		if (bus_register(bus, addr + g->offset, g->len, g->fn, g->opaque, g->name, NULL) <
		    0)
			break;
	}
	if (r < b->nregions) {
		while (r-- > 0)
			bus_unregister(bus, addr + b->regions[r].offset);
		return;
	}
	b->mapped = addr;
	for (r = 0; r < b->nregions; r++)
		if (b->regions[r].map)
			b->regions[r].map(b->regions[r].opaque, addr + b->regions[r].offset);
}

/* Bring every BAR's bus registration in line with the config space.
 * Config lock held (or realize). */
static void pci_update_mappings(struct pci_device *d)
{
	for (int i = 0; i < PCI_BARS; i++) {
		struct pci_bar *b = &d->bars[i];
		uint64_t want;

		if (b->type == PCI_BAR_NONE || b->type == PCI_BAR_MEM64_HI)
			continue;
		want = pci_bar_target(d, i);
		if (want == b->mapped)
			continue;
		pci_bar_unmap(d, b);
		if (want != PCI_BAR_UNMAPPED)
			pci_bar_map(d, b, want);
	}
}

void pci_device_enable(struct pci_device *d, uint16_t cmd)
{
	pci_config_set16(d, PCI_COMMAND, pci_config_get16(d, PCI_COMMAND) | cmd);
	pci_update_mappings(d);
}

static bool ranges_overlap(uint32_t a, uint32_t alen, uint32_t b, uint32_t blen)
{
	return a < b + blen && b < a + alen;
}

/* Guest config read of [off, off + len), inside one dword. Config lock held. */
static void pci_config_read(struct pci_device *d, uint32_t off, uint8_t *data, uint32_t len)
{
	if (d->info->config_read)
		d->info->config_read(d->opaque, off, len);
	memcpy(data, &d->config[off], len);
}

/* Guest config write of [off, off + len), inside one dword. Config lock held. */
static void pci_config_write(struct pci_device *d, uint32_t off, const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++) {
		uint32_t o = off + i;
		uint8_t w = d->wmask[o], c = d->w1cmask[o];

		d->config[o] = (uint8_t)((d->config[o] & ~w) | (data[i] & w));
		d->config[o] &= (uint8_t) ~(data[i] & c);
	}
	if (ranges_overlap(off, len, PCI_COMMAND, 2) ||
	    ranges_overlap(off, len, PCI_BASE_ADDRESS_0, 4 * PCI_BARS))
		pci_update_mappings(d);
	if (d->info->config_write)
		d->info->config_write(d->opaque, off, len);
}

/* The function mechanism #1's address latch selects, or NULL. Lock held. */
static struct pci_device *pci_decode(struct pci_host *h, uint32_t latch)
{
	if (!(latch & 0x80000000u))
		return NULL;
	if (((latch >> 16) & 0xff) != 0) /* bus 0 only */
		return NULL;
	if (((latch >> 8) & 0x7) != 0) /* single-function devices */
		return NULL;
	return h->slots[(latch >> 11) & 0x1f];
}

/*
 * Ports 0xcf8-0xcff. 0xcf8 takes only 32-bit accesses (narrower ones there
 * belong to other chipset registers, which kvmini does not have); the data
 * window takes any width that stays inside 0xcfc-0xcff (the bus guarantees
 * that). Absent functions read all-ones and ignore writes.
 */
static void pci_port_io(void *opaque, uint64_t off, void *data, uint32_t len, bool is_write)
{
	struct pci_host *h = opaque;
	struct pci_device *d;
	uint32_t v;

	if (off < 4) {
		if (off != 0 || len != 4) {
			if (!is_write)
				memset(data, 0xff, len);
			return;
		}
		pthread_mutex_lock(&h->lock);
		if (is_write) {
			memcpy(&v, data, 4);
			h->addr_latch = v;
		} else {
			/* Bits 1:0 are reserved and read as 0 (Linux's probe
			 * checks it), but kept: see below. */
			v = h->addr_latch & ~3u;
			memcpy(data, &v, 4);
		}
		pthread_mutex_unlock(&h->lock);
		return;
	}
	pthread_mutex_lock(&h->lock);
	d = pci_decode(h, h->addr_latch);
	if (!d) {
		if (!is_write)
			memset(data, 0xff, len);
	} else {
		/* As QEMU: latch bits 1:0 select bytes too (kvm-unit-tests reads
		 * the device ID as 0x80000002 then 16 bits at 0xcfc). */
		uint32_t reg = (h->addr_latch & 0xff) | (uint32_t)(off - 4);

		if (reg + len > PCI_CFG_SIZE) {
			if (!is_write)
				memset(data, 0xff, len);
		} else if (is_write)
			pci_config_write(d, reg, data, len);
		else
			pci_config_read(d, reg, data, len);
	}
	pthread_mutex_unlock(&h->lock);
}

static const struct pci_device_info pci_bridge_info = {
    .name = "pci-host",
    .vendor_id = PCI_HOST_VENDOR,
    .device_id = PCI_HOST_DEVICE,
    .subsystem_vendor_id = PCI_HOST_VENDOR,
    .subsystem_id = 0x1100,
    .class_code = 0x060000, /* bridge, host bridge */
};

int pci_host_init(struct pci_host *h, struct bus *pio, struct bus *mmio, uint64_t mmio64_start,
		  const struct kvm_irq_ops *kvm, void *kvm_opaque, struct errbuf *err)
{
	int ret;

	memset(h, 0, sizeof(*h));
	h->pio = pio;
	h->mmio = mmio;
	h->kvm = kvm;
	h->kvm_opaque = kvm_opaque;
	h->next_mmio32 = LAYOUT_MMIO32_START;
	h->next_mmio64 = mmio64_start;
	h->mmio64_base = mmio64_start;
	h->next_io = PCI_IO_START;
	pthread_mutex_init(&h->lock, NULL);
	ret = msi_router_init(&h->msi, kvm, kvm_opaque);
	if (ret < 0) {
		err_set(err, -ret, "pci: cannot set up MSI routing: out of memory");
		goto fail_lock;
	}
	pci_init_header(&h->bridge, &pci_bridge_info);
	h->bridge.host = h;
	h->bridge.slot = 0;
	h->slots[0] = &h->bridge;
	ret = bus_register(pio, PCI_CONFIG_ADDR_PORT, 8, pci_port_io, h, "pci-config", err);
	if (ret < 0)
		goto fail_router;
	return 0;
fail_router:
	msi_router_destroy(&h->msi);
fail_lock:
	pthread_mutex_destroy(&h->lock);
	return ret;
}

void pci_unregister_device(struct pci_device *d)
{
	struct pci_host *h = d->host;

	pthread_mutex_lock(&h->lock);
	for (int i = 0; i < PCI_BARS; i++)
		pci_bar_unmap(d, &d->bars[i]);
	h->slots[d->slot] = NULL;
	pthread_mutex_unlock(&h->lock);
	free(d);
}

void pci_host_destroy(struct pci_host *h)
{
	bus_unregister(h->pio, PCI_CONFIG_ADDR_PORT);
	/* Devices normally took themselves off in their exit op; whatever is
	 * left (a realize that failed half way) is dropped without calling
	 * its hooks, whose owner may be gone. */
	for (unsigned s = 1; s < PCI_SLOTS; s++) {
		struct pci_device *d = h->slots[s];

		if (!d)
			continue;
		for (int i = 0; i < PCI_BARS; i++) {
			struct pci_bar *b = &d->bars[i];

			if (b->mapped == PCI_BAR_UNMAPPED)
				continue;
			for (int r = 0; r < b->nregions; r++)
				bus_unregister(pci_bar_bus(d, b), b->mapped + b->regions[r].offset);
		}
		free(d);
		h->slots[s] = NULL;
	}
	msi_router_destroy(&h->msi);
	pthread_mutex_destroy(&h->lock);
}

int pci_host_add_device(struct pci_host *h, const struct pci_device_info *info, void *opaque,
			struct pci_device **out, struct errbuf *err)
{
	struct pci_device *d;
	unsigned s;

	for (s = 1; s < PCI_SLOTS && h->slots[s]; s++)
		;
	if (s == PCI_SLOTS)
		return err_set(err, ENOSPC, "%s: no free PCI slot (at most %d devices)", info->name,
			       PCI_SLOTS - 1);
	d = calloc(1, sizeof(*d));
	if (!d)
		return err_set(err, ENOMEM, "%s: out of memory", info->name);
	pci_init_header(d, info);
	d->host = h;
	d->opaque = opaque;
	d->slot = s;
	pthread_mutex_lock(&h->lock);
	h->slots[s] = d;
	pthread_mutex_unlock(&h->lock);
	*out = d;
	return 0;
}

int pci_register_device(struct vm *vm, const struct pci_device_info *info, void *opaque,
			struct pci_device **out, struct errbuf *err)
{
	if (!vm->pci)
		return err_set(err, ENODEV, "%s: the VM has no PCI host bridge", info->name);
	return pci_host_add_device(vm->pci, info, opaque, out, err);
}

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

int pci_add_bar(struct pci_device *d, int bar, enum pci_bar_type type, uint64_t size, bool prefetch,
		struct errbuf *err)
{
	struct pci_host *h = d->host;
	const char *name = d->info->name;
	uint64_t *next, end, addr;
	uint32_t off, flags;

	if (bar < 0 || bar >= PCI_BARS || d->bars[bar].type != PCI_BAR_NONE ||
	    (type == PCI_BAR_MEM64 && (bar == PCI_BARS - 1 || d->bars[bar + 1].type)))
		return err_set(err, EINVAL, "%s: BAR %d is not free", name, bar);
	if (!is_pow2(size) || (type == PCI_BAR_IO ? size < 4 || size > 256 : size < 4096) ||
	    (type == PCI_BAR_MEM32 && size > (1ULL << 30)))
		return err_set(err, EINVAL, "%s: BAR %d: bad size 0x%llx", name, bar,
			       (unsigned long long)size);
	switch (type) {
	case PCI_BAR_MEM32:
		next = &h->next_mmio32;
		end = LAYOUT_IOAPIC;
		flags = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_32;
		break;
	case PCI_BAR_MEM64:
		next = &h->next_mmio64;
		end = PCI_MMIO64_LIMIT;
		flags = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64;
		break;
	case PCI_BAR_IO:
		next = &h->next_io;
		end = PCI_IO_END;
		flags = PCI_BASE_ADDRESS_SPACE_IO;
		prefetch = false;
		break;
	default:
		return err_set(err, EINVAL, "%s: BAR %d: bad type", name, bar);
	}
	if (prefetch)
		flags |= PCI_BASE_ADDRESS_MEM_PREFETCH;
	addr = ALIGN_UP(*next, size);
	if (addr < *next || addr >= end || size > end - addr)
		return err_set(err, ENOSPC,
			       "%s: BAR %d (0x%llx bytes) does not fit in the %s window", name, bar,
			       (unsigned long long)size,
			       type == PCI_BAR_IO      ? "I/O"
			       : type == PCI_BAR_MEM32 ? "32-bit"
						       : "64-bit");
	*next = addr + size;

	d->bars[bar] = (struct pci_bar){
	    .type = type, .prefetch = prefetch, .size = size, .mapped = PCI_BAR_UNMAPPED};
	if (type == PCI_BAR_MEM64)
		d->bars[bar + 1] =
		    (struct pci_bar){.type = PCI_BAR_MEM64_HI, .mapped = PCI_BAR_UNMAPPED};
	off = PCI_BASE_ADDRESS_0 + 4 * (uint32_t)bar;
	pci_config_set32(d, off, (uint32_t)addr | flags);
	if (type == PCI_BAR_IO) {
		pci_config_set_wmask(d, off, (uint32_t) ~(size - 1) & 0xfffc, 4);
	} else {
		pci_config_set_wmask(d, off, (uint32_t) ~(size - 1) & ~0xfu, 4);
		if (type == PCI_BAR_MEM64) {
			pci_config_set32(d, off + 4, (uint32_t)(addr >> 32));
			pci_config_set_wmask(d, off + 4, (uint32_t)(~(size - 1) >> 32), 4);
		}
	}
	return 0;
}

int pci_bar_add_region(struct pci_device *d, int bar, const struct pci_region *r,
		       struct errbuf *err)
{
	struct pci_bar *b;

	if (bar < 0 || bar >= PCI_BARS || d->bars[bar].type == PCI_BAR_NONE ||
	    d->bars[bar].type == PCI_BAR_MEM64_HI)
		return err_set(err, EINVAL, "%s: BAR %d is not implemented", d->info->name, bar);
	b = &d->bars[bar];
	if (r->len == 0 || r->offset >= b->size || r->len > b->size - r->offset)
		return err_set(err, EINVAL, "%s: region %s does not fit in BAR %d", d->info->name,
			       r->name, bar);
	for (int i = 0; i < b->nregions; i++)
		if (r->offset < b->regions[i].offset + b->regions[i].len &&
		    b->regions[i].offset < r->offset + r->len)
			return err_set(err, EEXIST, "%s: region %s overlaps %s in BAR %d",
				       d->info->name, r->name, b->regions[i].name, bar);
	if (b->nregions == PCI_BAR_MAX_REGIONS)
		return err_set(err, ENOSPC, "%s: too many regions in BAR %d", d->info->name, bar);
	b->regions[b->nregions++] = *r;
	return 0;
}

int pci_add_capability(struct pci_device *d, uint8_t id, uint8_t len, struct errbuf *err)
{
	uint32_t off = (uint32_t)ALIGN_UP(d->cap_end, 4);
	uint8_t last;

	if (len < 2 || off + len > PCI_CFG_SIZE)
		return err_set(err, ENOSPC, "%s: no room for capability 0x%02x in config space",
			       d->info->name, id);
	pci_config_set8(d, off + PCI_CAP_LIST_ID, id);
	pci_config_set8(d, off + PCI_CAP_LIST_NEXT, 0);
	last = pci_config_get8(d, PCI_CAPABILITY_LIST);
	if (!last) {
		pci_config_set8(d, PCI_CAPABILITY_LIST, (uint8_t)off);
	} else {
		while (pci_config_get8(d, last + PCI_CAP_LIST_NEXT))
			last = pci_config_get8(d, last + PCI_CAP_LIST_NEXT);
		pci_config_set8(d, last + PCI_CAP_LIST_NEXT, (uint8_t)off);
	}
	pci_config_set16(d, PCI_STATUS, pci_config_get16(d, PCI_STATUS) | PCI_STATUS_CAP_LIST);
	d->cap_end = (uint16_t)(off + len);
	return (int)off;
}

uint64_t pci_bar_address(const struct pci_device *d, int bar)
{
	if (bar < 0 || bar >= PCI_BARS)
		return PCI_BAR_UNMAPPED;
	return d->bars[bar].mapped;
}

bool pci_bar_access(struct pci_device *d, int bar, uint64_t off, void *data, uint32_t len,
		    bool is_write)
{
	const struct pci_bar *b;

	if (bar < 0 || bar >= PCI_BARS)
		return false;
	b = &d->bars[bar];
	for (int i = 0; i < b->nregions; i++) {
		const struct pci_region *r = &b->regions[i];

		if (off >= r->offset && len <= r->len && off - r->offset <= r->len - len) {
			r->fn(r->opaque, off - r->offset, data, len, is_write);
			return true;
		}
	}
	if (!is_write)
		memset(data, 0xff, len);
	return false;
}

void pci_device_save_config(struct pci_device *d, uint8_t *config)
{
	pthread_mutex_lock(&d->host->lock);
	memcpy(config, d->config, PCI_CFG_SIZE);
	pthread_mutex_unlock(&d->host->lock);
}

/*
 * Bring every device's BARs in line with its config space: unmap all that
 * move first, then map, so two BARs that traded places both land. Config
 * lock held.
 */
static void pci_host_remap_all(struct pci_host *h)
{
	for (unsigned s = 0; s < PCI_SLOTS; s++) {
		struct pci_device *d = h->slots[s];

		for (int i = 0; d && i < PCI_BARS; i++) {
			struct pci_bar *b = &d->bars[i];

			if (b->type != PCI_BAR_NONE && b->type != PCI_BAR_MEM64_HI &&
			    b->mapped != pci_bar_target(d, i))
				pci_bar_unmap(d, b);
		}
	}
	for (unsigned s = 0; s < PCI_SLOTS; s++)
		if (h->slots[s])
			pci_update_mappings(h->slots[s]);
}

int pci_device_load_config(struct pci_device *d, const uint8_t *config, struct errbuf *err)
{
	struct pci_host *h = d->host;
	int ret = 0;

	pthread_mutex_lock(&h->lock);
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++) {
		uint8_t ro = (uint8_t)(~d->wmask[i] & ~d->w1cmask[i]);

		if ((config[i] ^ d->config[i]) & ro) {
			ret = err_set(err, EINVAL,
				      "%s: read-only config byte 0x%02x is 0x%02x, expected 0x%02x",
				      d->info->name, i, config[i], d->config[i]);
			goto out;
		}
		if (config[i] & d->w1cmask[i] & ~d->config[i]) {
			ret = err_set(err, EINVAL,
				      "%s: config byte 0x%02x has status bits 0x%02x set that the "
				      "guest cannot set",
				      d->info->name, i, config[i] & d->w1cmask[i] & ~d->config[i]);
			goto out;
		}
	}
	memcpy(d->config, config, PCI_CFG_SIZE);
	pci_host_remap_all(h);
out:
	pthread_mutex_unlock(&h->lock);
	return ret;
}

#define PCI_HOST_SNAP_VERSION 1

struct pci_host_snap {
	uint32_t version;
	uint32_t latch;
	uint8_t bridge_config[PCI_CFG_SIZE];
};

int pci_host_save(struct pci_host *h, void *buf, size_t len)
{
	struct pci_host_snap s = {.version = PCI_HOST_SNAP_VERSION};

	if (len < sizeof(s))
		return -ENOSPC;
	pthread_mutex_lock(&h->lock);
	s.latch = h->addr_latch;
	memcpy(s.bridge_config, h->bridge.config, sizeof(s.bridge_config));
	pthread_mutex_unlock(&h->lock);
	memcpy(buf, &s, sizeof(s));
	return (int)sizeof(s);
}

int pci_host_load(struct pci_host *h, const void *buf, size_t len, struct errbuf *err)
{
	struct pci_host_snap s;

	if (len != sizeof(s))
		return err_set(err, EINVAL, "pci-host: state is %zu bytes, expected %zu", len,
			       sizeof(s));
	memcpy(&s, buf, sizeof(s));
	if (s.version != PCI_HOST_SNAP_VERSION)
		return err_set(err, EINVAL, "pci-host: state version %u, expected %u", s.version,
			       PCI_HOST_SNAP_VERSION);
	/* A snapshot is trusted no more than the guest: it may only carry
	 * what the guest could have written. */
	for (unsigned i = 0; i < PCI_CFG_SIZE; i++)
		if ((s.bridge_config[i] ^ h->bridge.config[i]) & ~h->bridge.wmask[i])
			return err_set(err, EINVAL,
				       "pci-host: read-only config byte 0x%02x is 0x%02x, expected "
				       "0x%02x",
				       i, s.bridge_config[i], h->bridge.config[i]);
	pthread_mutex_lock(&h->lock);
	h->addr_latch = s.latch;
	memcpy(h->bridge.config, s.bridge_config, sizeof(s.bridge_config));
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* The host bridge as a kvmini device: owns vm->pci. */
struct pci_host_dev {
	struct vm *vm;
	struct pci_host host;
};

static int pci_host_realize(struct vm *vm, const char *opts, void **state, struct errbuf *err)
{
	struct pci_host_dev *hd = calloc(1, sizeof(*hd));
	uint64_t top = LAYOUT_MMIO32_END;
	int ret;

	if (!hd)
		return err_set(err, ENOMEM, "pci: out of memory");
	/* 64-bit BARs start at the first 1 GiB boundary above RAM. */
	for (int i = 0; i < vm->mem.nregions; i++) {
		uint64_t end = vm->mem.regions[i].gpa + vm->mem.regions[i].size;

		if (end > top)
			top = end;
	}
	ret = pci_host_init(&hd->host, &vm->pio, &vm->mmio, ALIGN_UP(top, 1ULL << 30),
			    &kvm_irq_ops_vm, &vm->vm_fd, err);
	if (ret < 0) {
		free(hd);
		return ret;
	}
	if (vm->cfg->iommu)
		msi_router_split(&hd->host.msi);
	hd->vm = vm;
	vm->pci = &hd->host;
	*state = hd;
	return 0;
}

static void pci_host_exit(void *state)
{
	struct pci_host_dev *hd = state;

	pci_host_destroy(&hd->host);
	hd->vm->pci = NULL;
	free(hd);
}

static int pci_host_dev_save(void *state, void *buf, size_t len)
{
	return pci_host_save(&((struct pci_host_dev *)state)->host, buf, len);
}

static int pci_host_dev_load(void *state, const void *buf, size_t len, struct errbuf *err)
{
	return pci_host_load(&((struct pci_host_dev *)state)->host, buf, len, err);
}

const struct device_ops pci_host_ops = {
    .name = "pci-host",
    .realize = pci_host_realize,
    .save = pci_host_dev_save,
    .load = pci_host_dev_load,
    .exit = pci_host_exit,
};
