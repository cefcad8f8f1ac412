// SPDX-License-Identifier: MIT
/*
 * ACPI tables (ACPI 6.x layouts, written from the specification): RSDP,
 * RSDT and XSDT, FADT, FACS, MADT and a DSDT whose AML this file encodes by
 * hand. The DSDT describes what a guest cannot probe: the PCI host bridge
 * with the windows kvmini assigns BARs from, COM1 and its IRQ, the pvpanic
 * and fw_cfg ports, and \_S5 for power-off through PM1_CNT.
 */
#include <errno.h>
#include <string.h>

#include "vmm/acpi.h"
#include "vmm/fw_cfg.h"
#include "vmm/layout.h"

#define ACPI_OEM_ID	  "KVMINI"
#define ACPI_CREATOR_ID	  "KVMI"
#define ACPI_HEADER_SIZE  36
#define ACPI_FADT_SIZE	  276 /* revision 6 */
#define ACPI_FACS_SIZE	  64
#define ACPI_RSDP_SIZE	  36
#define ACPI_AML_MAX	  1024
#define ACPI_MADT_MAX_CPU 255

/* FADT flags and IA-PC boot architecture flags. */
#define FADT_F_WBINVD	     (1u << 0)
#define FADT_F_PROC_C1	     (1u << 2)
#define FADT_F_PWR_BUTTON    (1u << 4) /* no fixed power button */
#define FADT_F_SLP_BUTTON    (1u << 5) /* no fixed sleep button */
#define FADT_F_RTC_S4	     (1u << 7)
#define FADT_F_TMR_VAL_EXT   (1u << 8) /* 32-bit PM timer */
#define FADT_F_RESET_REG_SUP (1u << 10)
#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_CMOS_RTC_ABSENT (1u << 5)

/* A byte buffer that records overflow instead of writing past its end. */
struct acpi_buf {
	uint8_t *p;
	size_t len, cap;
	bool overflow;
};

static void put(struct acpi_buf *b, const void *data, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put8(struct acpi_buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct acpi_buf *b, uint16_t v)
{
	uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};

	put(b, x, 2);
}

static void put32(struct acpi_buf *b, uint32_t v)
{
	put16(b, (uint16_t)v);
	put16(b, (uint16_t)(v >> 16));
}

static void put64(struct acpi_buf *b, uint64_t v)
{
	put32(b, (uint32_t)v);
	put32(b, (uint32_t)(v >> 32));
}

static uint8_t acpi_checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return (uint8_t)-s;
}

/* ---------------------------------------------------------------- AML */

/* AML opcodes (ACPI 6.x, section 20). */
#define AML_ZERO       0x00
#define AML_ONE	       0x01
#define AML_NAME       0x08
#define AML_BYTE       0x0a
#define AML_WORD       0x0b
#define AML_DWORD      0x0c
#define AML_STRING     0x0d
#define AML_QWORD      0x0e
#define AML_SCOPE      0x10
#define AML_BUFFER     0x11
#define AML_PACKAGE    0x12
#define AML_EXT	       0x5b
#define AML_EXT_DEVICE 0x82
#define AML_ROOT       0x5c

static void aml_int(struct acpi_buf *b, uint64_t v)
{
	if (v == 0) {
		put8(b, AML_ZERO);
	} else if (v == 1) {
		put8(b, AML_ONE);
	} else if (v <= 0xff) {
		put8(b, AML_BYTE);
		put8(b, (uint8_t)v);
	} else if (v <= 0xffff) {
		put8(b, AML_WORD);
		put16(b, (uint16_t)v);
	} else if (v <= 0xffffffff) {
		put8(b, AML_DWORD);
		put32(b, (uint32_t)v);
	} else {
		put8(b, AML_QWORD);
		put64(b, v);
	}
}

/* A NameSeg: exactly four characters (callers pad with '_'). */
static void aml_seg(struct acpi_buf *b, const char *seg)
{
	put(b, seg, 4);
}

/* PkgLength for @inner bytes that follow it: the encoding counts itself. */
static void aml_pkglen(struct acpi_buf *b, size_t inner)
{
	size_t total;

	if (inner + 1 < 0x40) {
		put8(b, (uint8_t)(inner + 1));
		return;
	}
	for (unsigned extra = 1; extra <= 3; extra++) {
		total = inner + 1 + extra;
		if (total < (1ULL << (4 + 8 * extra))) {
			put8(b, (uint8_t)((extra << 6) | (total & 0xf)));
			for (unsigned i = 0; i < extra; i++)
				put8(b, (uint8_t)(total >> (4 + 8 * i)));
			return;
		}
	}
	b->overflow = true;
}

/* @op (one or two bytes), PkgLength, then @body. */
static void aml_pkg(struct acpi_buf *b, const uint8_t *op, size_t oplen,
		    const struct acpi_buf *body)
{
	if (body->overflow) {
		b->overflow = true;
		return;
	}
	put(b, op, oplen);
	aml_pkglen(b, body->len);
	put(b, body->p, body->len);
}

#define AML_LOCAL(name)                                                                            \
	uint8_t name##_mem[ACPI_AML_MAX];                                                          \
	struct acpi_buf name = {.p = name##_mem, .cap = sizeof(name##_mem)}

/* Name(SEG, EisaId("ABC1234")): three letters and four hex digits. */
static void aml_name_eisaid(struct acpi_buf *b, const char *seg, const char *id)
{
	uint32_t v = ((uint32_t)(id[0] - 0x40) << 26) | ((uint32_t)(id[1] - 0x40) << 21) |
		     ((uint32_t)(id[2] - 0x40) << 16);

	for (int i = 3; i < 7; i++) {
		char c = id[i];

		v |= (uint32_t)(c <= '9' ? c - '0' : c - 'A' + 10) << (4 * (6 - i));
	}
	put8(b, AML_NAME);
	aml_seg(b, seg);
	put8(b, AML_DWORD);
	/* The compressed id is stored big-endian. */
	put8(b, (uint8_t)(v >> 24));
	put8(b, (uint8_t)(v >> 16));
	put8(b, (uint8_t)(v >> 8));
	put8(b, (uint8_t)v);
}

static void aml_name_string(struct acpi_buf *b, const char *seg, const char *s)
{
	put8(b, AML_NAME);
	aml_seg(b, seg);
	put8(b, AML_STRING);
	put(b, s, strlen(s) + 1);
}

static void aml_name_int(struct acpi_buf *b, const char *seg, uint64_t v)
{
	put8(b, AML_NAME);
	aml_seg(b, seg);
	aml_int(b, v);
}

/* Name(SEG, Buffer(){resource descriptors..., EndTag}). */
static void aml_name_resources(struct acpi_buf *b, const char *seg, const struct acpi_buf *res)
{
	static const uint8_t end_tag[] = {0x79, 0x00};
	const uint8_t op = AML_BUFFER;
	AML_LOCAL(body);

	aml_int(&body, res->len + sizeof(end_tag));
	put(&body, res->p, res->len);
	put(&body, end_tag, sizeof(end_tag));
	if (res->overflow)
		body.overflow = true;
	put8(b, AML_NAME);
	aml_seg(b, seg);
	aml_pkg(b, &op, 1, &body);
}

/* Resource descriptors (ACPI 6.x, section 6.4). */
static void res_io(struct acpi_buf *b, uint16_t port, uint8_t len)
{
	put8(b, 0x47); /* I/O port, 16-bit decode */
	put8(b, 0x01);
	put16(b, port);
	put16(b, port);
	put8(b, 1); /* alignment */
	put8(b, len);
}

static void res_irq(struct acpi_buf *b, unsigned irq)
{
	put8(b, 0x22); /* IRQ, no flags: edge, active high */
	put16(b, (uint16_t)(1u << irq));
}

/* Producer windows of the host bridge: min and max fixed, positive decode. */
#define RES_TYPE_MEM 0
#define RES_TYPE_IO  1
#define RES_TYPE_BUS 2
#define RES_GFLAGS   0x0c

static void res_word(struct acpi_buf *b, uint8_t type, uint8_t tflags, uint16_t min, uint16_t max)
{
	put8(b, 0x88);
	put16(b, 13);
	put8(b, type);
	put8(b, RES_GFLAGS);
	put8(b, tflags);
	put16(b, 0); /* granularity */
	put16(b, min);
	put16(b, max);
	put16(b, 0); /* translation */
	put16(b, (uint16_t)(max - min + 1));
}

static void res_dword_mem(struct acpi_buf *b, uint32_t min, uint32_t max)
{
	put8(b, 0x87);
	put16(b, 23);
	put8(b, RES_TYPE_MEM);
	put8(b, RES_GFLAGS);
	put8(b, 0x01); /* read/write, non-cacheable */
	put32(b, 0);
	put32(b, min);
	put32(b, max);
	put32(b, 0);
	put32(b, max - min + 1);
}

static void res_qword_mem(struct acpi_buf *b, uint64_t min, uint64_t max)
{
	put8(b, 0x8a);
	put16(b, 43);
	put8(b, RES_TYPE_MEM);
	put8(b, RES_GFLAGS);
	put8(b, 0x01);
	put64(b, 0);
	put64(b, min);
	put64(b, max);
	put64(b, 0);
	put64(b, max - min + 1);
}

static void aml_device(struct acpi_buf *b, const char *seg, const struct acpi_buf *body)
{
	static const uint8_t op[] = {AML_EXT, AML_EXT_DEVICE};
	AML_LOCAL(inner);

	aml_seg(&inner, seg);
	put(&inner, body->p, body->len);
	if (body->overflow)
		inner.overflow = true;
	aml_pkg(b, op, sizeof(op), &inner);
}

static void dsdt_pci0(struct acpi_buf *b, const struct acpi_config *cfg)
{
	AML_LOCAL(res);
	AML_LOCAL(dev);

	res_word(&res, RES_TYPE_BUS, 0, 0x00, 0xff);
	res_io(&res, 0xcf8, 8); /* the config ports the bridge itself decodes */
	res_word(&res, RES_TYPE_IO, 0x03, 0x0000, 0x0cf7);
	res_word(&res, RES_TYPE_IO, 0x03, 0x0d00, (uint16_t)(cfg->io_end - 1));
	res_dword_mem(&res, (uint32_t)cfg->mmio32_start, (uint32_t)(cfg->mmio32_end - 1));
	if (cfg->mmio64_end > cfg->mmio64_start)
		res_qword_mem(&res, cfg->mmio64_start, cfg->mmio64_end - 1);
	aml_name_eisaid(&dev, "_HID", "PNP0A03");
	aml_name_int(&dev, "_UID", 0);
	aml_name_int(&dev, "_BBN", 0);
	aml_name_resources(&dev, "_CRS", &res);
	aml_device(b, "PCI0", &dev);
}

static void dsdt_com1(struct acpi_buf *b)
{
	AML_LOCAL(res);
	AML_LOCAL(dev);

	res_io(&res, 0x3f8, 8);
	res_irq(&res, 4);
	aml_name_eisaid(&dev, "_HID", "PNP0501");
	aml_name_int(&dev, "_UID", 1);
	aml_name_resources(&dev, "_CRS", &res);
	aml_device(b, "COM1", &dev);
}

static void dsdt_pvpanic(struct acpi_buf *b)
{
	AML_LOCAL(res);
	AML_LOCAL(dev);

	/* QEMU's pvpanic id: Linux's pvpanic driver matches it. */
	res_io(&res, ACPI_PVPANIC_PORT, 1);
	aml_name_string(&dev, "_HID", "QEMU0001");
	aml_name_int(&dev, "_UID", 0);
	aml_name_resources(&dev, "_CRS", &res);
	aml_device(b, "PEVT", &dev);
}

static void dsdt_fwcfg(struct acpi_buf *b)
{
	AML_LOCAL(res);
	AML_LOCAL(dev);

	/* As QEMU describes it: Linux's qemu_fw_cfg driver matches the id. */
	res_io(&res, FW_CFG_PORT_SEL, FW_CFG_PORTS);
	aml_name_string(&dev, "_HID", "QEMU0002");
	aml_name_int(&dev, "_STA", 0x0b); /* present, enabled, functioning; not shown */
	aml_name_resources(&dev, "_CRS", &res);
	aml_device(b, "FWCF", &dev);
}

/* Name(\NAME, Package(4){SLP_TYPa, SLP_TYPb, 0, 0}): a sleep state. */
static void dsdt_sleep_state(struct acpi_buf *b, const char *name, uint8_t slp_typ)
{
	static const uint8_t pkg_op = AML_PACKAGE;
	AML_LOCAL(pkg);

	put8(&pkg, 4);
	aml_int(&pkg, slp_typ);
	aml_int(&pkg, slp_typ);
	aml_int(&pkg, 0);
	aml_int(&pkg, 0);
	put8(b, AML_NAME);
	put8(b, AML_ROOT);
	aml_seg(b, name);
	aml_pkg(b, &pkg_op, 1, &pkg);
}

/* The DSDT's AML body (after the table header). */
static void dsdt_body(struct acpi_buf *b, const struct acpi_config *cfg)
{
	static const uint8_t scope_op = AML_SCOPE;
	AML_LOCAL(sb);

	put8(&sb, AML_ROOT);
	aml_seg(&sb, "_SB_");
	dsdt_pci0(&sb, cfg);
	dsdt_com1(&sb);
	dsdt_pvpanic(&sb);
	dsdt_fwcfg(&sb);
	aml_pkg(b, &scope_op, 1, &sb);
	dsdt_sleep_state(b, "_S5_", ACPI_S5_TYPE);
	if (cfg->s3)
		dsdt_sleep_state(b, "_S3_", ACPI_S3_TYPE);
}

/* ---------------------------------------------------------------- tables */

/* The standard header; length and checksum are fixed up by table_end(). */
static size_t table_begin(struct acpi_buf *b, const char *sig, uint8_t rev, const char *oem_table)
{
	size_t at = b->len;
	char id[8];

	memset(id, ' ', sizeof(id));
	memcpy(id, oem_table, strnlen(oem_table, sizeof(id)));
	put(b, sig, 4);
	put32(b, 0);
	put8(b, rev);
	put8(b, 0);
	put(b, ACPI_OEM_ID, 6);
	put(b, id, 8);
	put32(b, 1);
	put(b, ACPI_CREATOR_ID, 4);
	put32(b, 1);
	return at;
}

static void table_end(struct acpi_buf *b, size_t at)
{
	uint32_t n;

	if (b->overflow)
		return;
	n = (uint32_t)(b->len - at);
	memcpy(b->p + at + 4, &n, 4);
	b->p[at + 9] = 0;
	b->p[at + 9] = acpi_checksum(b->p + at, n);
}

static void align(struct acpi_buf *b, size_t a)
{
	while (!b->overflow && b->len % a)
		put8(b, 0);
}

/* Generic Address Structure in system I/O space. */
static void put_gas_io(struct acpi_buf *b, uint8_t bits, uint8_t access, uint64_t port)
{
	put8(b, 1);
	put8(b, bits);
	put8(b, 0);
	put8(b, access);
	put64(b, port);
}

static void put_gas_none(struct acpi_buf *b)
{
	put32(b, 0);
	put64(b, 0);
}

static void fadt(struct acpi_buf *b, uint64_t facs, uint64_t dsdt, bool cmos_rtc)
{
	size_t at = table_begin(b, "FACP", 6, "KVMIFACP");

	put32(b, (uint32_t)facs);
	put32(b, (uint32_t)dsdt);
	put8(b, 0);		   /* reserved (ACPI 1.0 INT_MODEL) */
	put8(b, 0);		   /* preferred PM profile: unspecified */
	put16(b, ACPI_SCI_IRQ);	   /* SCI_INT */
	put32(b, 0);		   /* SMI_CMD: ACPI mode is always on */
	put32(b, 0);		   /* ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT */
	put32(b, ACPI_PM1_EVT);	   /* PM1a_EVT_BLK */
	put32(b, 0);		   /* PM1b_EVT_BLK */
	put32(b, ACPI_PM1_CNT);	   /* PM1a_CNT_BLK */
	put32(b, 0);		   /* PM1b_CNT_BLK */
	put32(b, 0);		   /* PM2_CNT_BLK */
	put32(b, ACPI_PM_TMR);	   /* PM_TMR_BLK */
	put32(b, 0);		   /* GPE0_BLK */
	put32(b, 0);		   /* GPE1_BLK */
	put8(b, ACPI_PM1_EVT_LEN); /* PM1_EVT_LEN */
	put8(b, ACPI_PM1_CNT_LEN); /* PM1_CNT_LEN */
	put8(b, 0);		   /* PM2_CNT_LEN */
	put8(b, ACPI_PM_TMR_LEN);  /* PM_TMR_LEN */
	put32(b, 0);		   /* GPE0/1_BLK_LEN, GPE1_BASE, CST_CNT */
	put16(b, 101);		   /* P_LVL2_LAT > 100: no C2 */
	put16(b, 1001);		   /* P_LVL3_LAT > 1000: no C3 */
	put32(b, 0);		   /* FLUSH_SIZE, FLUSH_STRIDE */
	put8(b, 0);		   /* DUTY_OFFSET */
	put8(b, 0);		   /* DUTY_WIDTH */
	put8(b, 0);		   /* DAY_ALRM */
	put8(b, 0);		   /* MON_ALRM */
	put8(b, 0);		   /* CENTURY */
	/* no 8042, no legacy devices; no CMOS RTC but with --testdev */
	put16(b, IAPC_VGA_NOT_PRESENT | (cmos_rtc ? 0 : IAPC_CMOS_RTC_ABSENT));
	put8(b, 0);
	put32(b, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_PWR_BUTTON | FADT_F_SLP_BUTTON |
		     FADT_F_TMR_VAL_EXT | FADT_F_RESET_REG_SUP);
	put_gas_io(b, 8, 1, ACPI_RESET_PORT); /* RESET_REG */
	put8(b, ACPI_RESET_VALUE);
	put16(b, 0); /* ARM_BOOT_ARCH */
	put8(b, 0);  /* FADT minor version */
	put64(b, 0); /* X_FIRMWARE_CTRL: the 32-bit field is used */
	put64(b, dsdt);
	/* X_PM1a_EVT .. X_GPE1: zero, the 32-bit blocks above are used. */
	for (int i = 0; i < 8; i++)
		put_gas_none(b);
	put_gas_none(b);	 /* SLEEP_CONTROL_REG */
	put_gas_none(b);	 /* SLEEP_STATUS_REG */
	put(b, "KVMINI\0\0", 8); /* hypervisor vendor identity */
	table_end(b, at);
}

static void facs(struct acpi_buf *b)
{
	put(b, "FACS", 4);
	put32(b, ACPI_FACS_SIZE);
	put32(b, 0); /* hardware signature */
	put32(b, 0); /* firmware waking vector */
	put32(b, 0); /* global lock */
	put32(b, 0); /* flags */
	put64(b, 0); /* X firmware waking vector */
	put8(b, 2);  /* version */
	for (int i = 0; i < 31; i++)
		put8(b, 0);
}

static void madt(struct acpi_buf *b, const struct acpi_config *cfg)
{
	size_t at = table_begin(b, "APIC", 5, "KVMIAPIC");

	put32(b, (uint32_t)LAYOUT_LAPIC);
	put32(b, 1); /* PCAT_COMPAT: there are 8259 PICs (masked by the OS) */
	for (unsigned i = 0; i < cfg->ncpus; i++) {
		put8(b, 0); /* processor local APIC */
		put8(b, 8);
		put8(b, (uint8_t)i); /* ACPI processor UID */
		put8(b, (uint8_t)i); /* APIC id, as CPUID reports it */
		put32(b, 1);	     /* enabled */
	}
	put8(b, 1); /* I/O APIC: KVM's, id 0, GSIs 0..23 */
	put8(b, 12);
	put8(b, 0);
	put8(b, 0);
	put32(b, (uint32_t)LAYOUT_IOAPIC);
	put32(b, 0);
	/* ISA IRQs are identity-mapped to GSIs (KVM's routing, vmm/kvm_irq.c):
	 * only the SCI needs an override, for its level trigger. */
	put8(b, 2);
	put8(b, 10);
	put8(b, 0); /* ISA bus */
	put8(b, ACPI_SCI_IRQ);
	put32(b, ACPI_SCI_IRQ);
	put16(b, 0x000d); /* active high, level */
	put8(b, 4);	  /* local APIC NMI on LINT1 of every CPU */
	put8(b, 6);
	put8(b, 0xff);
	put16(b, 0);
	put8(b, 1);
	table_end(b, at);
}

uint64_t acpi_facs_address(uint64_t base)
{
	/* RSDP (16-aligned), RSDT and XSDT with two entries each, FADT. */
	size_t fadt_at =
	    ((ACPI_RSDP_SIZE + 15) & ~(size_t)15) + 2 * ACPI_HEADER_SIZE + 2 * 4 + 2 * 8;

	return base + ((fadt_at + ACPI_FADT_SIZE + 63) & ~(size_t)63);
}

int acpi_build_tables(const struct acpi_config *cfg, uint64_t base, void *out, size_t len)
{
	struct acpi_buf b = {.p = out, .cap = len};
	size_t rsdp, rsdt, xsdt, fadt_at, facs_at, madt_at, dsdt_at, at;
	AML_LOCAL(aml);

	if (cfg->ncpus == 0 || cfg->ncpus > ACPI_MADT_MAX_CPU || base % 16 ||
	    cfg->mmio32_start >= cfg->mmio32_end || cfg->mmio32_end > (1ULL << 32) ||
	    cfg->mmio64_start > cfg->mmio64_end || cfg->io_end <= 0x0d00 || cfg->io_end > 0x10000)
		return -EINVAL;
	dsdt_body(&aml, cfg);
	if (aml.overflow)
		return -ENOSPC;
	memset(out, 0, len);

	/* Layout: RSDP, RSDT, XSDT, FADT, FACS (64-byte aligned), MADT, DSDT. */
	rsdp = b.len;
	put(&b, "RSD PTR ", 8);
	put8(&b, 0);
	put(&b, ACPI_OEM_ID, 6);
	put8(&b, 2);  /* revision: XSDT present */
	put32(&b, 0); /* RSDT address, fixed up below */
	put32(&b, ACPI_RSDP_SIZE);
	put64(&b, 0); /* XSDT address */
	put8(&b, 0);  /* extended checksum */
	put(&b, "\0\0\0", 3);
	align(&b, 16);

	/* Addresses of the tables that follow, known once their sizes are. */
	rsdt = b.len;
	xsdt = rsdt + ACPI_HEADER_SIZE + 2 * 4;
	fadt_at = xsdt + ACPI_HEADER_SIZE + 2 * 8;
	facs_at = (size_t)(acpi_facs_address(base) - base);
	madt_at = facs_at + ACPI_FACS_SIZE;
	dsdt_at = madt_at + ACPI_HEADER_SIZE + 8 + 8 * cfg->ncpus + 12 + 10 + 6;

	at = table_begin(&b, "RSDT", 1, "KVMIRSDT");
	put32(&b, (uint32_t)(base + fadt_at));
	put32(&b, (uint32_t)(base + madt_at));
	table_end(&b, at);
	at = table_begin(&b, "XSDT", 1, "KVMIXSDT");
	put64(&b, base + fadt_at);
	put64(&b, base + madt_at);
	table_end(&b, at);
	fadt(&b, base + facs_at, base + dsdt_at, cfg->cmos_rtc);
	align(&b, 64);
	facs(&b);
	madt(&b, cfg);
	at = table_begin(&b, "DSDT", 2, "KVMIDSDT");
	put(&b, aml.p, aml.len);
	table_end(&b, at);
	if (b.overflow)
		return -ENOSPC;
	/* The precomputed offsets must be where the tables went. */
	if (memcmp(b.p + fadt_at, "FACP", 4) || memcmp(b.p + facs_at, "FACS", 4) ||
	    memcmp(b.p + madt_at, "APIC", 4) || memcmp(b.p + dsdt_at, "DSDT", 4))
		return -EINVAL;

	{
		uint32_t rsdt_addr = (uint32_t)(base + rsdt);
		uint64_t xsdt_addr = base + xsdt;

		memcpy(b.p + rsdp + 16, &rsdt_addr, 4);
		memcpy(b.p + rsdp + 24, &xsdt_addr, 8);
		b.p[rsdp + 8] = acpi_checksum(b.p + rsdp, 20);
		b.p[rsdp + 32] = acpi_checksum(b.p + rsdp, ACPI_RSDP_SIZE);
	}
	return (int)b.len;
}

int acpi_setup(struct guest_mem *m, const struct acpi_config *cfg, uint64_t *rsdp,
	       struct errbuf *err)
{
	const uint64_t len = ACPI_TABLES_END - ACPI_TABLES_START;
	uint8_t *p = guest_mem_ptr(m, ACPI_TABLES_START, len);
	int n;

	if (!p)
		return err_set(err, ENOMEM, "ACPI: [0x%llx, 0x%llx) is not guest RAM",
			       (unsigned long long)ACPI_TABLES_START,
			       (unsigned long long)ACPI_TABLES_END);
	n = acpi_build_tables(cfg, ACPI_TABLES_START, p, len);
	if (n < 0)
		return err_set(err, -n, "ACPI: cannot describe this VM (%u CPUs): %s", cfg->ncpus,
			       strerror(-n));
	*rsdp = ACPI_TABLES_START;
	return 0;
}
