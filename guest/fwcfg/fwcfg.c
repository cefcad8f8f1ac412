// SPDX-License-Identifier: MIT
/*
 * Reads QEMU's fw_cfg through its legacy ports (a 16-bit selector write,
 * then byte reads) and prints what it finds, one "fwcfg: KEY VALUE" line
 * each, so that a test can compare kvmini with QEMU and with the command
 * line. Options on the command line:
 *   testdev=1  also exercise pc-testdev: its data register at every width
 *              (plain and string I/O), a page flush, and an ISA line routed
 *              through the IOAPIC, edge- and level-triggered, to a handler;
 *   pcitest=1  run kvm-unit-tests' pci-testdev sequence on both BARs of
 *              the PCI test device (1b36:0005) and print each test's name
 *              and final count;
 *   midread=1  stop in the middle of reading the signature until a byte
 *              arrives on COM1 (a snapshot taken there must resume the read
 *              where it stood); with testdev=1, pc-testdev's data register
 *              is set before and printed after the wait.
 * Exits 0 when done; a failed check panics (120).
 */
#include "guest.h"
#include "pci.h"

#define FW_CFG_SEL  0x510
#define FW_CFG_DATA 0x511

#define TESTDEV_DATA  0xe0
#define TESTDEV_FLUSH 0xe4
#define TESTDEV_IRQ   0x2000
#define TEST_LINE     14 /* unused by both VMMs' devices here */

#define IOAPIC_BASE    0xfec00000ull
#define IOAPIC_REDTBL  0x10
#define IOAPIC_LEVEL   (1u << 15)
#define IOAPIC_MASKED  (1u << 16)
#define IRQ_TIMEOUT_MS 5000

static uint64_t fwcfg_read(uint16_t key, unsigned int n)
{
	uint64_t v = 0;

	outw(FW_CFG_SEL, key);
	for (unsigned int i = 0; i < n; i++)
		v |= (uint64_t)inb(FW_CFG_DATA) << (8 * i);
	return v;
}

static void fwcfg_report(void)
{
	char sig[5] = {0};
	unsigned int past = 0, uuid = 0;
	uint32_t files;

	outw(FW_CFG_SEL, 0x00);
	for (int i = 0; i < 4; i++)
		sig[i] = (char)inb(FW_CFG_DATA);
	for (int i = 0; i < 8; i++) /* past the end: zeros */
		past |= inb(FW_CFG_DATA);
	printf("fwcfg: signature %s\n", sig);
	printf("fwcfg: past-end %u\n", past);
	printf("fwcfg: id-traditional %u\n", (unsigned int)(fwcfg_read(0x01, 4) & 1));
	outw(FW_CFG_SEL, 0x02);
	for (int i = 0; i < 16; i++)
		uuid |= inb(FW_CFG_DATA);
	printf("fwcfg: uuid-zero %u\n", uuid == 0);
	printf("fwcfg: ram-size %llu\n", (unsigned long long)fwcfg_read(0x03, 8));
	printf("fwcfg: nb-cpus %u\n", (unsigned int)fwcfg_read(0x05, 2));
	printf("fwcfg: max-cpus %u\n", (unsigned int)fwcfg_read(0x0f, 2));
	/* A key no VMM has (QEMU's entries end well below). */
	printf("fwcfg: unknown-key %llu\n", (unsigned long long)fwcfg_read(0x3ffe, 8));
	files = (uint32_t)fwcfg_read(0x19, 4);
	files = (files >> 24) | ((files >> 8) & 0xff00) | ((files << 8) & 0xff0000) | (files << 24);
	printf("fwcfg: files %u\n", files);
}

/* With @testdev, pc-testdev's data register holds a value across the wait. */
static void midread(bool testdev)
{
	char a, b;

	outw(FW_CFG_SEL, 0x00);
	a = (char)inb(FW_CFG_DATA);
	b = (char)inb(FW_CFG_DATA);
	if (testdev)
		outl(TESTDEV_DATA, 0xc0ffee42);
	printf("fwcfg: mid-read %c%c\n", a, b);
	while (!(inb(COM1_PORT + 5) & 1)) /* LSR data ready */
		cpu_relax();
	(void)inb(COM1_PORT);
	a = (char)inb(FW_CFG_DATA);
	b = (char)inb(FW_CFG_DATA);
	printf("fwcfg: rest %c%c\n", a, b);
	if (testdev)
		printf("testdev: kept %x\n", inl(TESTDEV_DATA));
}

/* ---- pc-testdev ---- */

static void testdev_data(void)
{
	uint8_t buf[16];

	outl(TESTDEV_DATA, 0x12345678);
	ASSERT_EQ(inl(TESTDEV_DATA), 0x12345678u);
	ASSERT_EQ(inw(TESTDEV_DATA), 0x5678u);
	ASSERT_EQ(inb(TESTDEV_DATA), 0x78u);
	outb(TESTDEV_DATA, 0xab);
	ASSERT_EQ(inl(TESTDEV_DATA), 0x123456abu);
	outw(TESTDEV_DATA, 0x9999);
	ASSERT_EQ(inl(TESTDEV_DATA), 0x12349999u);
	/* The other byte lanes. */
	outb(TESTDEV_DATA + 3, 0xfe);
	outw(TESTDEV_DATA + 1, 0xcdef);
	ASSERT_EQ(inl(TESTDEV_DATA), 0xfecdef99u);
	ASSERT_EQ(inb(TESTDEV_DATA + 2), 0xcdu);
	/* String input, as kvm-unit-tests' emulator test does. */
	memset(buf, 0, sizeof(buf));
	insb(TESTDEV_DATA, buf, sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ASSERT_EQ(buf[i], 0x99);
	printf("testdev: data %x\n", inl(TESTDEV_DATA));
}

static uint8_t flush_page[4096] __attribute__((aligned(4096)));

static void testdev_flush(void)
{
	for (size_t i = 0; i < sizeof(flush_page); i++)
		flush_page[i] = (uint8_t)i;
	outl(TESTDEV_FLUSH, (uint32_t)(uintptr_t)flush_page);
	/* Outside RAM: ignored. */
	outl(TESTDEV_FLUSH, 0xfee00000u);
	/* The page comes back through the fault path with what it held. */
	for (size_t i = 0; i < sizeof(flush_page); i++)
		ASSERT_EQ(flush_page[i], (uint8_t)i);
	flush_page[0] = 0x77;
	ASSERT_EQ(flush_page[0], 0x77);
	printf("testdev: flush ok\n");
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

static void ioapic_route(unsigned int pin, unsigned int vector, uint32_t flags)
{
	ioapic_write(IOAPIC_REDTBL + 2 * pin + 1, lapic_id() << 24);
	ioapic_write(IOAPIC_REDTBL + 2 * pin, vector | flags);
}

static void set_line(unsigned int line, int level)
{
	outb((uint16_t)(TESTDEV_IRQ + line), (uint8_t)level);
}

/* A level-triggered line stays asserted until its source drops it: the
 * handler does, before the runtime's EOI, or the IOAPIC would deliver again. */
static void lower_line(void *arg)
{
	set_line(TEST_LINE, 0);
}

struct count_wait {
	unsigned int vector;
	uint64_t want;
};

static bool count_reached(void *arg)
{
	const struct count_wait *w = arg;

	return irq_count(w->vector) >= w->want;
}

static void testdev_irq(void)
{
	struct count_wait edge = {0}, level = {0};
	int v;

	irq_init();
	v = irq_alloc(NULL, NULL);
	ASSERT(v > 0);
	edge.vector = (unsigned int)v;
	ioapic_route(TEST_LINE, edge.vector, 0);
	/* Two rising edges, two interrupts. */
	for (edge.want = 1; edge.want <= 2; edge.want++) {
		set_line(TEST_LINE, 1);
		ASSERT(irq_wait(count_reached, &edge, tsc_ms(IRQ_TIMEOUT_MS)));
		set_line(TEST_LINE, 0);
	}
	/* Masked: a rising edge delivers nothing. */
	ioapic_route(TEST_LINE, edge.vector, IOAPIC_MASKED);
	set_line(TEST_LINE, 1);
	irq_poll();
	set_line(TEST_LINE, 0);
	ASSERT_EQ(irq_count(edge.vector), 2u);

	v = irq_alloc(lower_line, NULL);
	ASSERT(v > 0);
	level.vector = (unsigned int)v;
	level.want = 1;
	ioapic_route(TEST_LINE, level.vector, IOAPIC_LEVEL);
	set_line(TEST_LINE, 1);
	ASSERT(irq_wait(count_reached, &level, tsc_ms(IRQ_TIMEOUT_MS)));
	/* Dropped by the handler: delivered once. */
	irq_poll();
	irq_poll();
	ASSERT_EQ(irq_count(level.vector), 1u);
	ioapic_route(TEST_LINE, level.vector, IOAPIC_MASKED);
	printf("testdev: irq edge %llu level %llu\n", (unsigned long long)irq_count(edge.vector),
	       (unsigned long long)irq_count(level.vector));
}

/* ---- pci-testdev ---- */

/* One BAR access: @io picks port I/O at @base + @off, else MMIO. */
static uint32_t bar_read(bool io, uint64_t base, uint32_t off, unsigned int size)
{
	return io ? pio_read((uint16_t)(base + off), size) : mmio_read(base + off, size);
}

static void bar_write(bool io, uint64_t base, uint32_t off, unsigned int size, uint32_t v)
{
	if (io)
		pio_write((uint16_t)(base + off), size, v);
	else
		mmio_write(base + off, size, v);
}

/* kvm-unit-tests' loop: select test n, 16 writes of data at offset, read
 * the count; stop at the first test the device does not offer. */
static unsigned int pcitest_bar(bool io, uint64_t base)
{
	unsigned int n;

	for (n = 0;; n++) {
		uint32_t width, data, off, count;
		char name[40];
		size_t i;

		bar_write(io, base, 0, 1, n);
		if (bar_read(io, base, 12, 4) != 0)
			break;
		width = bar_read(io, base, 1, 1);
		if (width != 1 && width != 2 && width != 4)
			break;
		data = bar_read(io, base, 8, 4);
		off = bar_read(io, base, 4, 4);
		for (i = 0; i < 16; i++)
			bar_write(io, base, off, width, data);
		count = bar_read(io, base, 12, 4);
		if (count != 0 && count != 16)
			break;
		for (i = 0; i < sizeof(name) - 1; i++)
			if (!(name[i] = (char)bar_read(io, base, 16 + (uint32_t)i, 1)))
				break;
		name[i] = '\0';
		printf("pcitest: %s %s count %u\n", io ? "io" : "mem", name, count);
	}
	return n;
}

static void pcitest(void)
{
	struct pci_dev *d;
	unsigned int n;

	ASSERT(pci_init() > 0);
	d = pci_find(0x1b36, 0x0005, 0);
	ASSERT(d != NULL);
	ASSERT_EQ(pci_dev_enable(d), 0);
	ASSERT(!(d->bar[0].flags & PCI_BAR_IO) && d->bar[0].addr);
	ASSERT((d->bar[1].flags & PCI_BAR_IO) && d->bar[1].addr);
	n = pcitest_bar(false, d->bar[0].addr);
	n += pcitest_bar(true, d->bar[1].addr);
	printf("pcitest: %u tests\n", n);
}

int main(void)
{
	uint64_t testdev = 0, mid = 0, pci = 0;

	cmdline_get_u64("testdev", &testdev);
	cmdline_get_u64("midread", &mid);
	cmdline_get_u64("pcitest", &pci);
	fwcfg_report();
	if (mid)
		midread(testdev);
	if (testdev) {
		testdev_data();
		testdev_flush();
		testdev_irq();
	}
	if (pci)
		pcitest();
	printf("fwcfg: done\n");
	return 0;
}
