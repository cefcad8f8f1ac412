// SPDX-License-Identifier: MIT
/* RSDP, RSDT/XSDT and MCFG lookup. */
#include "acpi.h"
#include "guest.h"

struct acpi_rsdp {
	char signature[8]; /* "RSD PTR " */
	uint8_t checksum;  /* first 20 bytes */
	char oem_id[6];
	uint8_t revision; /* 2+: the fields below are valid */
	uint32_t rsdt;
	uint32_t length;
	uint64_t xsdt;
	uint8_t xchecksum; /* whole structure */
	uint8_t reserved[3];
} __attribute__((packed));

struct acpi_header {
	char signature[4];
	uint32_t length;
	uint8_t revision;
	uint8_t checksum;
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	uint32_t creator_id;
	uint32_t creator_revision;
} __attribute__((packed));

struct acpi_mcfg_entry {
	uint64_t base;
	uint16_t segment;
	uint8_t bus_start;
	uint8_t bus_end;
	uint32_t reserved;
} __attribute__((packed));

#define ACPI_TABLE_MAX 0x100000u /* larger is corrupt for our purposes */

static bool sum_ok(uint64_t pa, uint32_t len)
{
	const uint8_t *p = (const uint8_t *)pa;
	uint8_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s += p[i];
	return s == 0;
}

static bool rsdp_ok(uint64_t pa)
{
	const struct acpi_rsdp *r = (const void *)pa;

	return !memcmp(r->signature, "RSD PTR ", 8) && sum_ok(pa, 20);
}

static uint64_t rsdp_find(void)
{
	uint64_t pa = boot_rsdp();

	if (pa && pa < GUEST_MAPPED_END - sizeof(struct acpi_rsdp) && rsdp_ok(pa))
		return pa;
	for (pa = 0xe0000; pa < 0x100000; pa += 16)
		if (rsdp_ok(pa))
			return pa;
	return 0;
}

/* A valid table at @pa, or NULL. */
static const struct acpi_header *table_at(uint64_t pa)
{
	const struct acpi_header *h = (const void *)pa;

	if (!pa || pa >= GUEST_MAPPED_END - ACPI_TABLE_MAX)
		return NULL;
	if (h->length < sizeof(*h) || h->length > ACPI_TABLE_MAX || !sum_ok(pa, h->length))
		return NULL;
	return h;
}

uint64_t acpi_find_table(const char *sig)
{
	uint64_t rp = rsdp_find();
	const struct acpi_rsdp *r = (const void *)rp;
	const struct acpi_header *root;
	unsigned int esize;

	if (!rp)
		return 0;
	if (r->revision >= 2 && r->xsdt && sum_ok(rp, sizeof(*r))) {
		root = table_at(r->xsdt);
		esize = 8;
	} else {
		root = table_at(r->rsdt);
		esize = 4;
	}
	if (!root)
		return 0;
	unsigned int n = (root->length - sizeof(*root)) / esize;
	const uint8_t *entries = (const uint8_t *)(root + 1);
	for (unsigned int i = 0; i < n; i++) {
		uint64_t pa = 0;
		memcpy(&pa, entries + i * esize, esize);
		const struct acpi_header *h = table_at(pa);
		if (h && !memcmp(h->signature, sig, 4))
			return pa;
	}
	return 0;
}

int acpi_mcfg_bus0(uint64_t *base)
{
	uint64_t pa = acpi_find_table("MCFG");
	const struct acpi_header *h = (const void *)pa;

	if (!pa || h->length < sizeof(*h) + 8)
		return -ENOENT;
	/* header, 8 reserved bytes, then the allocation entries */
	unsigned int n = (h->length - sizeof(*h) - 8) / sizeof(struct acpi_mcfg_entry);
	const struct acpi_mcfg_entry *e = (const void *)(pa + sizeof(*h) + 8);
	for (unsigned int i = 0; i < n; i++) {
		if (e[i].segment == 0 && e[i].bus_start == 0) {
			*base = e[i].base;
			return 0;
		}
	}
	return -ENOENT;
}
