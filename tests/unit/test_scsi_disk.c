// SPDX-License-Identifier: MIT
/*
 * The SCSI disk emulation (devices/virtio/scsi_disk.c) on its own: every
 * command and VPD/mode page it answers, truncation by allocation length
 * and by the data-in buffer, every error with its exact sense, LBA range
 * edges (last block, lba + n wrapping, UINT64_MAX), unit attentions, a
 * missing LUN, UNMAP parameter lists, and a fuzz loop over random CDBs and
 * parameter lists checking that every answer stays consistent (and that
 * every byte of a response is written, by running each command over two
 * differently poisoned buffers).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "devices/block/scsi.h"

#define NB 1000u /* blocks of the default test disk */

static const uint16_t test_luns[] = {0, 1, 5};
#define NLUNS 3u

static struct scsi_cmd cmd;

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const uint8_t *p)
{
	return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static void wbe16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wbe32(uint8_t *p, uint32_t v)
{
	wbe16(p, (uint16_t)(v >> 16));
	wbe16(p + 2, (uint16_t)v);
}

static void wbe64(uint8_t *p, uint64_t v)
{
	wbe32(p, (uint32_t)(v >> 32));
	wbe32(p + 4, (uint32_t)v);
}

static struct scsi_lun mklun(uint64_t nblocks, bool readonly, bool unmap, const char *serial)
{
	struct scsi_lun l = {.lun = 0, .nblocks = nblocks, .readonly = readonly, .unmap = unmap};

	snprintf(l.serial, sizeof(l.serial), "%s", serial);
	return l;
}

/* Run @c (@len bytes) on @lun with a data-in buffer of @in_len bytes. */
static void run_in(struct scsi_lun *lun, const uint8_t *c, size_t len, uint64_t in_len)
{
	memset(&cmd, 0xa5, sizeof(cmd));
	scsi_disk_command(lun, test_luns, NLUNS, c, len, in_len, &cmd);
}

static void run(struct scsi_lun *lun, const uint8_t *c, size_t len)
{
	run_in(lun, c, len, SCSI_DATA_MAX);
}

#define assert_done_good()                                                                         \
	do {                                                                                       \
		assert_int_equal(cmd.op, SCSI_OP_DONE);                                            \
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);                                    \
		assert_int_equal(cmd.sense.key, 0);                                                \
		assert_int_equal(cmd.sense.asc, 0);                                                \
		assert_int_equal(cmd.sense.ascq, 0);                                               \
	} while (0)

#define assert_check(k, a, q)                                                                      \
	do {                                                                                       \
		assert_int_equal(cmd.op, SCSI_OP_DONE);                                            \
		assert_int_equal(cmd.status, SCSI_STATUS_CHECK_CONDITION);                         \
		assert_int_equal(cmd.sense.key, (k));                                              \
		assert_int_equal(cmd.sense.asc, (a));                                              \
		assert_int_equal(cmd.sense.ascq, (q));                                             \
		assert_int_equal(cmd.data_len, 0);                                                 \
	} while (0)

#define assert_invalid_field()	 assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0)
#define assert_invalid_opcode()	 assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0)
#define assert_lba_range()	 assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0)
#define assert_write_protected() assert_check(SCSI_SENSE_DATA_PROTECT, 0x27, 0)

/* READ/WRITE/VERIFY/SYNCHRONIZE CACHE CDB of opcode @op's group. */
static size_t cdb_rw(uint8_t *c, uint8_t op, uint64_t lba, uint32_t n)
{
	memset(c, 0, 16);
	c[0] = op;
	switch (op >> 5) {
	case 0:
		c[1] = (uint8_t)(lba >> 16 & 0x1f);
		wbe16(c + 2, (uint16_t)lba);
		c[4] = (uint8_t)n;
		return 6;
	case 1:
		wbe32(c + 2, (uint32_t)lba);
		wbe16(c + 7, (uint16_t)n);
		return 10;
	default:
		wbe64(c + 2, lba);
		wbe32(c + 10, n);
		return 16;
	}
}

/* Build and run a READ/WRITE/VERIFY/SYNCHRONIZE CACHE CDB, with @flags
 * or'ed into byte 1 (FUA, DPO, BYTCHK, *PROTECT, IMMED). */
static void run_rw_flags(struct scsi_lun *l, uint8_t op, uint8_t flags, uint64_t lba, uint32_t n)
{
	uint8_t c[16];
	size_t len = cdb_rw(c, op, lba, n);

	c[1] |= flags;
	run(l, c, len);
}

static void run_rw(struct scsi_lun *l, uint8_t op, uint64_t lba, uint32_t n)
{
	run_rw_flags(l, op, 0, lba, n);
}

static void inquiry(struct scsi_lun *lun, bool evpd, uint8_t page, uint16_t alloc)
{
	uint8_t c[6] = {0x12, evpd ? 1 : 0, page, 0, 0, 0};

	wbe16(c + 3, alloc);
	run(lun, c, sizeof(c));
}

/* ---- simple commands ---- */

static void test_test_unit_ready(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun empty = mklun(0, false, false, "");
	const uint8_t tur[6] = {0};

	run(&l, tur, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, 0);
	run(&empty, tur, 6);
	assert_check(SCSI_SENSE_NOT_READY, 0x3a, 0);
	/* START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL are accepted */
	run(&l, (const uint8_t[6]){0x1b, 0, 0, 0, 0x01, 0}, 6);
	assert_done_good();
	run(&l, (const uint8_t[6]){0x1e, 0, 0, 0, 0x01, 0}, 6);
	assert_done_good();
	/* the transport usually carries 32 bytes: longer CDBs are fine */
	uint8_t c32[32] = {0};
	run(&l, c32, 32);
	assert_done_good();
}

static void test_request_sense(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	uint8_t c[6] = {0x03, 0, 0, 0, 252, 0};

	run(&l, c, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, SCSI_SENSE_LEN);
	assert_int_equal(cmd.data[0], 0x70);
	assert_int_equal(cmd.data[2], SCSI_SENSE_NO_SENSE);
	assert_int_equal(cmd.data[7], 10);
	assert_int_equal(cmd.data[12], 0);

	/* the pending unit attention, once */
	l.ua = SCSI_UA_RESET;
	run(&l, c, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, SCSI_SENSE_LEN);
	assert_int_equal(cmd.data[2], SCSI_SENSE_UNIT_ATTENTION);
	assert_int_equal(cmd.data[12], 0x29);
	assert_int_equal(cmd.data[13], 0x00);
	assert_int_equal(l.ua, SCSI_UA_NONE);
	run(&l, c, 6);
	assert_int_equal(cmd.data[2], SCSI_SENSE_NO_SENSE);

	/* truncation: allocation length, then data-in buffer */
	c[4] = 8;
	run(&l, c, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8);
	c[4] = 252;
	run_in(&l, c, 6, 5);
	assert_int_equal(cmd.data_len, 5);
	c[4] = 0;
	l.ua = SCSI_UA_RESET;
	run(&l, c, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, 0);
	assert_int_equal(l.ua, SCSI_UA_NONE);

	/* descriptor format is not offered; the UA stays pending */
	c[1] = 0x01;
	c[4] = 252;
	l.ua = SCSI_UA_RESET;
	run(&l, c, 6);
	assert_invalid_field();
	assert_int_equal(l.ua, SCSI_UA_RESET);

	/* a missing LUN: GOOD with LOGICAL UNIT NOT SUPPORTED sense data */
	c[1] = 0;
	run(NULL, c, 6);
	assert_done_good();
	assert_int_equal(cmd.data_len, SCSI_SENSE_LEN);
	assert_int_equal(cmd.data[2], SCSI_SENSE_ILLEGAL_REQUEST);
	assert_int_equal(cmd.data[12], 0x25);
	assert_int_equal(cmd.data[13], 0);
}

/* ---- INQUIRY ---- */

static void test_inquiry_standard(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "SER1");

	l.ua = SCSI_UA_RESET;
	inquiry(&l, false, 0, 96);
	assert_done_good();
	assert_int_equal(l.ua, SCSI_UA_RESET); /* INQUIRY does not report it */
	assert_int_equal(cmd.data_len, 36);
	assert_int_equal(cmd.data[0], 0x00);
	assert_int_equal(cmd.data[1], 0x00); /* not removable */
	assert_true(cmd.data[2] == 0x06 || cmd.data[2] == 0x07);
	assert_int_equal(cmd.data[3] & 0x0f, 2);
	assert_int_equal(cmd.data[4], 36 - 5);
	assert_int_equal(cmd.data[7] & 0x02, 0x02); /* CMDQUE */
	assert_memory_equal(cmd.data + 8, "KVMINI  ", 8);
	assert_memory_equal(cmd.data + 16, "KVMINI DISK     ", 16);
	assert_memory_equal(cmd.data + 32, "1.0 ", 4);

	inquiry(&l, false, 0, 5);
	assert_done_good();
	assert_int_equal(cmd.data_len, 5);
	assert_int_equal(cmd.data[4], 31);
	inquiry(&l, false, 0, 0);
	assert_done_good();
	assert_int_equal(cmd.data_len, 0);
	{
		uint8_t c[6] = {0x12, 0, 0, 0, 36, 0};

		run_in(&l, c, 6, 3);
		assert_done_good();
		assert_int_equal(cmd.data_len, 3);
		run_in(&l, c, 6, 0);
		assert_int_equal(cmd.data_len, 0);
		c[1] = 0x02; /* CMDDT */
		run(&l, c, 6);
		assert_invalid_field();
		c[1] = 0x03;
		run(&l, c, 6);
		assert_invalid_field();
	}
	inquiry(&l, false, 0x80, 96); /* a page code without EVPD */
	assert_invalid_field();

	/* a missing LUN: peripheral qualifier 3, device type 1Fh */
	inquiry(NULL, false, 0, 96);
	assert_done_good();
	assert_int_equal(cmd.data_len, 36);
	assert_int_equal(cmd.data[0], 0x7f);
}

static void test_inquiry_vpd_supported(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "SER1");
	struct scsi_lun noser = mklun(NB, false, false, "");
	static const uint8_t with[] = {0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2};
	static const uint8_t without[] = {0x00, 0x83, 0xb0, 0xb1, 0xb2};

	inquiry(&l, true, 0x00, 255);
	assert_done_good();
	assert_int_equal(cmd.data[0], 0);
	assert_int_equal(cmd.data[1], 0x00);
	assert_int_equal(be16(cmd.data + 2), sizeof(with));
	assert_int_equal(cmd.data_len, 4 + sizeof(with));
	assert_memory_equal(cmd.data + 4, with, sizeof(with));

	inquiry(&noser, true, 0x00, 255);
	assert_int_equal(be16(cmd.data + 2), sizeof(without));
	assert_int_equal(cmd.data_len, 4 + sizeof(without));
	assert_memory_equal(cmd.data + 4, without, sizeof(without));

	/* every listed page is answered, and truncation keeps the page length */
	for (size_t i = 0; i < sizeof(with); i++) {
		inquiry(&l, true, with[i], 255);
		assert_done_good();
		assert_int_equal(cmd.data[1], with[i]);
		assert_int_equal(cmd.data_len, 4u + be16(cmd.data + 2));
		uint16_t plen = be16(cmd.data + 2);
		inquiry(&l, true, with[i], 4);
		assert_int_equal(cmd.data_len, 4);
		assert_int_equal(be16(cmd.data + 2), plen);
		inquiry(&l, true, with[i], 3);
		assert_int_equal(cmd.data_len, 3);
		{
			uint8_t c[6] = {0x12, 1, with[i], 0, 255, 0};

			run_in(&l, c, 6, 2);
			assert_done_good();
			assert_int_equal(cmd.data_len, 2);
		}
	}
	/* every unlisted page is refused */
	for (unsigned p = 0; p < 256; p++) {
		if (memchr(with, (int)p, sizeof(with)))
			continue;
		inquiry(&l, true, (uint8_t)p, 255);
		assert_invalid_field();
	}
	inquiry(&noser, true, 0x80, 255);
	assert_invalid_field();

	/* a missing LUN lists only page 0 */
	inquiry(NULL, true, 0x00, 255);
	assert_done_good();
	assert_int_equal(cmd.data[0], 0x7f);
	assert_int_equal(be16(cmd.data + 2), 1);
	assert_int_equal(cmd.data[4], 0x00);
	assert_int_equal(cmd.data_len, 5);
	inquiry(NULL, true, 0x83, 255);
	assert_invalid_field();
	inquiry(NULL, true, 0x80, 255);
	assert_invalid_field();
}

static void test_inquiry_vpd_serial(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "ABCDEFGHIJKLMNOPQRST");

	inquiry(&l, true, 0x80, 255);
	assert_done_good();
	assert_int_equal(be16(cmd.data + 2), 20);
	assert_int_equal(cmd.data_len, 24);
	assert_memory_equal(cmd.data + 4, "ABCDEFGHIJKLMNOPQRST", 20);
	/* a serial that fills the array without a NUL (e.g. from a snapshot) */
	memset(l.serial, 'Z', sizeof(l.serial));
	inquiry(&l, true, 0x80, 255);
	assert_int_equal(be16(cmd.data + 2), SCSI_SERIAL_MAX);
	inquiry(&l, true, 0x83, 255);
	assert_done_good();
}

/* Find designator @type in VPD 0x83 data; returns its header or NULL. */
static const uint8_t *find_designator(const uint8_t *page, unsigned type)
{
	unsigned len = 4u + be16(page + 2);

	for (unsigned off = 4; off + 4 <= len; off += 4u + page[off + 3]) {
		assert_true(off + 4u + page[off + 3] <= len);
		if ((page[off + 1] & 0x0f) == type)
			return page + off;
	}
	return NULL;
}

static uint64_t naa_of(struct scsi_lun *l)
{
	const uint8_t *d;

	inquiry(l, true, 0x83, 255);
	assert_done_good();
	d = find_designator(cmd.data, 3);
	assert_non_null(d);
	assert_int_equal(d[0] & 0x0f, 1); /* binary */
	assert_int_equal(d[1] & 0x30, 0); /* association: LU */
	assert_int_equal(d[3], 8);
	return be64(d + 4);
}

static void test_inquiry_vpd_device_id(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "disk-42");
	struct scsi_lun l1 = l, other = mklun(NB, false, false, "disk-43");
	struct scsi_lun noser = mklun(NB, false, false, "");
	const uint8_t *d;
	uint64_t naa;

	inquiry(&l, true, 0x83, 255);
	assert_done_good();
	assert_int_equal(cmd.data_len, 4u + be16(cmd.data + 2));
	d = find_designator(cmd.data, 1);
	assert_non_null(d);
	assert_int_equal(d[0] & 0x0f, 2); /* ASCII */
	assert_int_equal(d[1] & 0x30, 0);
	assert_int_equal(d[3], 8 + 7);
	assert_memory_equal(d + 4, "KVMINI  disk-42", 15);

	naa = naa_of(&l);
	assert_int_equal(naa >> 60, 3);
	assert_true(naa_of(&l) == naa); /* deterministic */
	l1.lun = 1;
	assert_true(naa_of(&l1) != naa);
	assert_true(naa_of(&other) != naa);

	/* without a serial the T10 designator names the LUN */
	noser.lun = 17;
	inquiry(&noser, true, 0x83, 255);
	d = find_designator(cmd.data, 1);
	assert_non_null(d);
	assert_int_equal(d[3], 8 + 5);
	assert_memory_equal(d + 4, "KVMINI  LUN17", 13);
	noser.lun = 0;
	inquiry(&noser, true, 0x83, 255);
	d = find_designator(cmd.data, 1);
	assert_memory_equal(d + 4, "KVMINI  LUN0", 12);
	assert_int_equal(d[3], 8 + 4);
	noser.lun = 65535;
	inquiry(&noser, true, 0x83, 255);
	d = find_designator(cmd.data, 1);
	assert_int_equal(d[3], 8 + 8);
	assert_memory_equal(d + 4, "KVMINI  LUN65535", 16);
}

static void test_inquiry_vpd_limits(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun u = mklun(NB, false, true, "");

	inquiry(&l, true, 0xb0, 255);
	assert_done_good();
	assert_int_equal(be16(cmd.data + 2), 0x3c);
	assert_int_equal(cmd.data_len, 64);
	assert_int_equal(be32(cmd.data + 8), SCSI_MAX_XFER);
	assert_int_equal(be32(cmd.data + 20), 0);
	assert_int_equal(be32(cmd.data + 24), 0);
	inquiry(&u, true, 0xb0, 255);
	assert_int_equal(be32(cmd.data + 8), SCSI_MAX_XFER);
	assert_int_equal(be32(cmd.data + 20), SCSI_MAX_UNMAP);
	assert_int_equal(be32(cmd.data + 24), SCSI_MAX_UNMAP_DESC);

	inquiry(&l, true, 0xb1, 255);
	assert_done_good();
	assert_int_equal(be16(cmd.data + 2), 0x3c);
	assert_int_equal(be16(cmd.data + 4), 1); /* non-rotating */

	inquiry(&l, true, 0xb2, 255);
	assert_done_good();
	assert_int_equal(be16(cmd.data + 2), 4);
	assert_int_equal(cmd.data_len, 8);
	assert_int_equal(cmd.data[5] & 0x80, 0);
	assert_int_equal(cmd.data[6] & 0x07, 0);
	inquiry(&u, true, 0xb2, 255);
	assert_int_equal(cmd.data[5] & 0x80, 0x80); /* LBPU */
	assert_int_equal(cmd.data[5] & 0x1c, 0);    /* LBPRZ 0 */
	assert_int_equal(cmd.data[6] & 0x07, 2);    /* thin */
}

/* ---- READ CAPACITY ---- */

static void read_capacity_16(struct scsi_lun *l, uint32_t alloc, uint8_t sa)
{
	uint8_t c[16] = {0x9e, sa};

	wbe32(c + 10, alloc);
	run(l, c, 16);
}

static void test_read_capacity(void **state)
{
	static const struct {
		uint64_t nblocks;
		uint32_t rc10;
	} cases[] = {
	    {1, 0},
	    {NB, NB - 1},
	    {0xffffffffull, 0xfffffffe},
	    {0x100000000ull, 0xffffffff},
	    {0x100000001ull, 0xffffffff},
	    {UINT64_MAX, 0xffffffff},
	};
	const uint8_t rc10[10] = {0x25};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct scsi_lun l = mklun(cases[i].nblocks, false, false, "");

		run(&l, rc10, 10);
		assert_done_good();
		assert_int_equal(cmd.data_len, 8);
		assert_int_equal(be32(cmd.data), cases[i].rc10);
		assert_int_equal(be32(cmd.data + 4), SCSI_BLOCK);

		read_capacity_16(&l, 32, 0x10);
		assert_done_good();
		assert_int_equal(cmd.data_len, 32);
		assert_true(be64(cmd.data) == cases[i].nblocks - 1);
		assert_int_equal(be32(cmd.data + 8), SCSI_BLOCK);
		assert_int_equal(cmd.data[14] & 0x80, 0);
	}
	{
		struct scsi_lun l = mklun(NB, false, true, "");

		read_capacity_16(&l, 32, 0x10);
		assert_int_equal(cmd.data[14] & 0x80, 0x80); /* LBPME */
		assert_int_equal(cmd.data[14] & 0x40, 0);    /* LBPRZ */
		read_capacity_16(&l, 12, 0x10);
		assert_done_good();
		assert_int_equal(cmd.data_len, 12);
		read_capacity_16(&l, 0, 0x10);
		assert_done_good();
		assert_int_equal(cmd.data_len, 0);
		read_capacity_16(&l, 0xffffffff, 0x10);
		assert_int_equal(cmd.data_len, 32);
		{
			uint8_t c[16] = {0x9e, 0x10};

			wbe32(c + 10, 32);
			run_in(&l, c, 16, 9);
			assert_int_equal(cmd.data_len, 9);
		}
		run_in(&l, rc10, 10, 4);
		assert_done_good();
		assert_int_equal(cmd.data_len, 4);
		/* other service actions (e.g. GET LBA STATUS 12h) */
		for (unsigned sa = 0; sa < 32; sa++) {
			if (sa == 0x10)
				continue;
			read_capacity_16(&l, 32, (uint8_t)sa);
			assert_invalid_field();
		}
		/* the upper bits of byte 1 are not part of the service action */
		read_capacity_16(&l, 32, 0xf0);
		assert_done_good();
	}
	{
		struct scsi_lun empty = mklun(0, false, false, "");

		run(&empty, rc10, 10);
		assert_check(SCSI_SENSE_NOT_READY, 0x3a, 0);
		read_capacity_16(&empty, 32, 0x10);
		assert_check(SCSI_SENSE_NOT_READY, 0x3a, 0);
	}
}

/* ---- READ / WRITE ---- */

static const uint8_t rw_ops[] = {0x08, 0x28, 0x88, 0x0a, 0x2a, 0x8a};

static bool is_write(uint8_t op)
{
	return op == 0x0a || op == 0x2a || op == 0x8a;
}

static void test_read_write_decode(void **state)
{
	struct scsi_lun l = mklun(1ull << 40, false, false, "");
	for (size_t i = 0; i < sizeof(rw_ops); i++) {
		uint8_t op = rw_ops[i];
		uint64_t lba = (op >> 5) == 0	? 0x1abcde
			       : (op >> 5) == 1 ? 0xfedcba98
						: 0x12345678ab;

		run_rw(&l, op, lba, 7);
		assert_int_equal(cmd.op, is_write(op) ? SCSI_OP_WRITE : SCSI_OP_READ);
		assert_true(cmd.lba == lba);
		assert_int_equal(cmd.nblocks, 7);
		assert_false(cmd.fua);
		assert_int_equal(cmd.data_len, 0);
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);

		/* FUA is reported for the writes that have it */
		if ((op >> 5) != 0) {
			run_rw_flags(&l, op, 0x08, lba, 7);
			assert_int_equal(cmd.fua, is_write(op));
			run_rw_flags(&l, op, 0x18, lba, 7); /* DPO: accepted */
			assert_int_equal(cmd.nblocks, 7);
			for (unsigned prot = 1; prot < 8; prot++) {
				run_rw_flags(&l, op, (uint8_t)(prot << 5), lba, 7);
				assert_invalid_field();
			}
		}
	}
	/* READ(6)/WRITE(6): 0 blocks means 256; the top 3 bits of byte 1 are LBA-free */
	run_rw(&l, 0x08, 5, 0);
	assert_int_equal(cmd.op, SCSI_OP_READ);
	assert_int_equal(cmd.nblocks, 256);
	run_rw(&l, 0x0a, 0x1fffff, 255);
	assert_int_equal(cmd.op, SCSI_OP_WRITE);
	assert_true(cmd.lba == 0x1fffff);
	assert_int_equal(cmd.nblocks, 255);
	assert_false(cmd.fua);
	/* 0 blocks in (10)/(16): GOOD, nothing for the caller to do */
	for (size_t i = 0; i < sizeof(rw_ops); i++) {
		if ((rw_ops[i] >> 5) == 0)
			continue;
		run_rw(&l, rw_ops[i], 3, 0);
		assert_done_good();
		assert_int_equal(cmd.data_len, 0);
	}
	/* the largest transfer, and one more */
	run_rw(&l, 0x88, 0, SCSI_MAX_XFER);
	assert_int_equal(cmd.op, SCSI_OP_READ);
	assert_int_equal(cmd.nblocks, SCSI_MAX_XFER);
	run_rw(&l, 0x8a, 0, SCSI_MAX_XFER + 1);
	assert_invalid_field();
	run_rw(&l, 0x88, 0, 0xffffffff);
	assert_invalid_field();
	/* READ(10)'s 16-bit count cannot exceed the limit */
	run_rw(&l, 0x28, 0, 0xffff);
	assert_int_equal(cmd.nblocks, 0xffff);
}

static void test_read_write_range(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun big = mklun(UINT64_MAX, false, false, "");

	for (size_t i = 0; i < sizeof(rw_ops); i++) {
		uint8_t op = rw_ops[i];
		bool six = (op >> 5) == 0;

		/* the last block exactly, and everything */
		run_rw(&l, op, NB - 1, 1);
		assert_int_not_equal(cmd.op, SCSI_OP_DONE);
		assert_true(cmd.lba == NB - 1);
		run_rw(&l, op, NB - 2, 2);
		assert_int_equal(cmd.nblocks, 2);
		if (!six) {
			run_rw(&l, op, 0, NB);
			assert_int_equal(cmd.nblocks, NB);
			run_rw(&l, op, 0, NB + 1);
			assert_lba_range();
		}
		/* one past */
		run_rw(&l, op, NB - 1, 2);
		assert_lba_range();
		run_rw(&l, op, NB, 1);
		assert_lba_range();
		if (six) {
			run_rw(&l, op, NB - 255, 0); /* 256 blocks */
			assert_lba_range();
			run_rw(&l, op, NB - 256, 0);
			assert_int_equal(cmd.nblocks, 256);
			continue;
		}
		/* 0 blocks: at the capacity fine, beyond not */
		run_rw(&l, op, NB, 0);
		assert_done_good();
		run_rw(&l, op, NB + 1, 0);
		assert_lba_range();
		if ((op >> 5) == 1) {
			run_rw(&l, op, 0xffffffff, 1);
			assert_lba_range();
			continue;
		}
		/* 64-bit LBAs: wrapping sums */
		run_rw(&l, op, UINT64_MAX, 1);
		assert_lba_range();
		run_rw(&l, op, UINT64_MAX, 0);
		assert_lba_range();
		run_rw(&l, op, UINT64_MAX - 1, 2);
		assert_lba_range();
		run_rw(&big, op, UINT64_MAX - 0xfff, 0x2000);
		assert_lba_range();
		run_rw(&big, op, UINT64_MAX - 1, 1); /* the last block of a 2^64-1 disk */
		assert_int_not_equal(cmd.op, SCSI_OP_DONE);
		assert_true(cmd.lba == UINT64_MAX - 1);
		run_rw(&big, op, UINT64_MAX - 1, 2);
		assert_lba_range();
	}
}

static void test_read_write_readonly(void **state)
{
	struct scsi_lun ro = mklun(NB, true, false, "");

	for (size_t i = 0; i < sizeof(rw_ops); i++) {
		uint8_t op = rw_ops[i];

		run_rw(&ro, op, 10, 4);
		if (is_write(op)) {
			assert_write_protected();
		} else {
			assert_int_equal(cmd.op, SCSI_OP_READ);
		}
		/* a range error is reported before write protection */
		run_rw(&ro, op, NB, 1);
		assert_lba_range();
		if ((op >> 5) == 0)
			continue;
		/* even 0 blocks may not be written */
		run_rw(&ro, op, 10, 0);
		if (is_write(op)) {
			assert_write_protected();
		} else {
			assert_done_good();
		}
	}
}

/* ---- SYNCHRONIZE CACHE, VERIFY ---- */

static void test_sync_cache(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun ro = mklun(NB, true, false, "");
	struct scsi_lun empty = mklun(0, false, false, "");

	for (uint8_t op = 0x35;; op = 0x91) {
		run_rw(&l, op, 0, 0); /* everything */
		assert_int_equal(cmd.op, SCSI_OP_FLUSH);
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
		run_rw_flags(&l, op, 0x02, 0, 0); /* IMMED: accepted */
		assert_int_equal(cmd.op, SCSI_OP_FLUSH);
		run_rw(&l, op, NB - 1, 1);
		assert_int_equal(cmd.op, SCSI_OP_FLUSH);
		run_rw(&l, op, NB, 0);
		assert_int_equal(cmd.op, SCSI_OP_FLUSH);
		run_rw(&l, op, NB - 1, 2);
		assert_lba_range();
		run_rw(&l, op, NB + 1, 0);
		assert_lba_range();
		run_rw(&ro, op, 0, 0);
		assert_done_good();
		run_rw(&empty, op, 0, 0);
		assert_check(SCSI_SENSE_NOT_READY, 0x3a, 0);
		if (op == 0x91)
			break;
	}
	run_rw(&l, 0x91, UINT64_MAX, 1);
	assert_lba_range();
	run_rw(&l, 0x91, 1, 0xffffffff);
	assert_lba_range();
}

static void test_verify(void **state)
{
	struct scsi_lun l = mklun(NB, true, false, "");

	for (uint8_t op = 0x2f;; op = 0x8f) {
		run_rw(&l, op, 0, NB);
		assert_done_good();
		assert_int_equal(cmd.data_len, 0);
		run_rw(&l, op, NB, 0);
		assert_done_good();
		run_rw(&l, op, NB - 1, 2);
		assert_lba_range();
		for (unsigned bytchk = 1; bytchk < 4; bytchk++) {
			run_rw_flags(&l, op, (uint8_t)(bytchk << 1), 0, 1);
			assert_invalid_field();
		}
		run_rw_flags(&l, op, 0x20, 0, 1); /* VRPROTECT */
		assert_invalid_field();
		if (op == 0x8f)
			break;
	}
	run_rw(&l, 0x8f, UINT64_MAX, 1);
	assert_lba_range();
}

/* ---- MODE SENSE ---- */

static void mode_sense6(struct scsi_lun *l, uint8_t flags, uint8_t pcpage, uint8_t sub,
			uint8_t alloc)
{
	uint8_t c[6] = {0x1a, flags, pcpage, sub, alloc, 0};

	run(l, c, 6);
}

static void mode_sense10(struct scsi_lun *l, uint8_t flags, uint8_t pcpage, uint8_t sub,
			 uint16_t alloc)
{
	uint8_t c[10] = {0x5a, flags, pcpage, sub};

	wbe16(c + 7, alloc);
	run(l, c, 10);
}

/* Check mode page @page at @p (current values unless @changeable). */
static unsigned check_page(const uint8_t *p, uint8_t page, bool changeable)
{
	assert_int_equal(p[0] & 0x3f, page);
	assert_int_equal(p[0] & 0x80, 0); /* PS: not saveable */
	if (page == 0x08) {
		assert_int_equal(p[1], 0x12);
		assert_int_equal(p[2] & 0x04, changeable ? 0 : 0x04); /* WCE */
		assert_int_equal(p[2] & 0x01, 0);		      /* RCD */
	} else {
		assert_int_equal(p[1], 0x0a);
		assert_int_equal(p[2] & 0x04, 0); /* D_SENSE: fixed format */
	}
	if (changeable) {
		for (unsigned i = 2; i < 2u + p[1]; i++)
			assert_int_equal(p[i], 0);
	}
	return 2u + p[1];
}

/* Pages 0x08 and 0x0a from @off to the end of the response. */
static void check_all_pages(unsigned off, bool changeable)
{
	off += check_page(cmd.data + off, 0x08, changeable);
	off += check_page(cmd.data + off, 0x0a, changeable);
	assert_int_equal(off, cmd.data_len);
}

static void test_mode_sense_6(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun ro = mklun(NB, true, false, "");
	struct scsi_lun big = mklun(1ull << 33, false, false, "");

	l.ua = SCSI_UA_RESET;
	mode_sense6(&l, 0, 0x3f, 0, 255);
	assert_check(SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	for (unsigned pc = 0; pc < 3; pc++) {
		bool ch = pc == 1;

		mode_sense6(&l, 0, (uint8_t)(pc << 6 | 0x3f), 0, 255);
		assert_done_good();
		assert_int_equal(cmd.data_len, 4 + 8 + 20 + 12);
		assert_int_equal(cmd.data[0], cmd.data_len - 1);
		assert_int_equal(cmd.data[1], 0);
		assert_int_equal(cmd.data[2], 0x10); /* DPOFUA, not WP */
		assert_int_equal(cmd.data[3], 8);
		assert_int_equal(be32(cmd.data + 4), ch ? 0 : NB);
		assert_int_equal(be32(cmd.data + 8) & 0xffffff, ch ? 0 : SCSI_BLOCK);
		check_all_pages(12, ch);
	}
	/* DBD; single pages; all subpages */
	mode_sense6(&l, 0x08, 0x08, 0, 255);
	assert_done_good();
	assert_int_equal(cmd.data_len, 4 + 20);
	assert_int_equal(cmd.data[0], 23);
	assert_int_equal(cmd.data[3], 0);
	check_page(cmd.data + 4, 0x08, false);
	mode_sense6(&l, 0, 0x0a, 0, 255);
	assert_int_equal(cmd.data_len, 4 + 8 + 12);
	check_page(cmd.data + 12, 0x0a, false);
	mode_sense6(&l, 0x08, 0x3f, 0xff, 255);
	assert_done_good();
	assert_int_equal(cmd.data_len, 4 + 20 + 12);
	mode_sense6(&l, 0x08, 0x08, 0xff, 255);
	assert_int_equal(cmd.data_len, 4 + 20);

	/* write protect */
	mode_sense6(&ro, 0, 0x3f, 0, 255);
	assert_done_good();
	assert_int_equal(cmd.data[2], 0x90);

	/* more blocks than the short descriptor holds */
	mode_sense6(&big, 0, 0x08, 0, 255);
	assert_int_equal(be32(cmd.data + 4), 0xffffffff);

	/* truncation keeps the mode data length */
	mode_sense6(&l, 0, 0x3f, 0, 4);
	assert_done_good();
	assert_int_equal(cmd.data_len, 4);
	assert_int_equal(cmd.data[0], 4 + 8 + 20 + 12 - 1);
	mode_sense6(&l, 0, 0x3f, 0, 0);
	assert_int_equal(cmd.data_len, 0);
	{
		uint8_t c[6] = {0x1a, 0, 0x3f, 0, 255, 0};

		run_in(&l, c, 6, 7);
		assert_done_good();
		assert_int_equal(cmd.data_len, 7);
	}

	/* errors */
	mode_sense6(&l, 0, 0xc0 | 0x3f, 0, 255);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0);
	mode_sense6(&l, 0, 0xc0 | 0x08, 0, 255);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0);
	for (unsigned p = 0; p < 0x3f; p++) {
		if (p == 0x08 || p == 0x0a)
			continue;
		mode_sense6(&l, 0, (uint8_t)p, 0, 255);
		assert_invalid_field();
	}
	mode_sense6(&l, 0, 0x08, 0x01, 255);
	assert_invalid_field();
	mode_sense6(&l, 0, 0x3f, 0xfe, 255);
	assert_invalid_field();
}

static void test_mode_sense_10(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	struct scsi_lun ro = mklun(1ull << 40, true, false, "");

	mode_sense10(&l, 0, 0x3f, 0, 1024);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8 + 8 + 20 + 12);
	assert_int_equal(be16(cmd.data), cmd.data_len - 2);
	assert_int_equal(cmd.data[3], 0x10);
	assert_int_equal(cmd.data[4] & 1, 0);
	assert_int_equal(be16(cmd.data + 6), 8);
	assert_int_equal(be32(cmd.data + 8), NB);
	assert_int_equal(be32(cmd.data + 12) & 0xffffff, SCSI_BLOCK);
	check_all_pages(16, false);

	/* LLBAA: the long block descriptor */
	mode_sense10(&ro, 0x10, 0x3f, 0, 1024);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8 + 16 + 20 + 12);
	assert_int_equal(be16(cmd.data), cmd.data_len - 2);
	assert_int_equal(cmd.data[3], 0x90);
	assert_int_equal(cmd.data[4] & 1, 1);
	assert_int_equal(be16(cmd.data + 6), 16);
	assert_true(be64(cmd.data + 8) == 1ull << 40);
	assert_int_equal(be32(cmd.data + 20), SCSI_BLOCK);
	check_all_pages(24, false);
	/* LLBAA with DBD: no descriptor, no LONGLBA */
	mode_sense10(&ro, 0x18, 0x08, 0, 1024);
	assert_int_equal(cmd.data_len, 8 + 20);
	assert_int_equal(cmd.data[4] & 1, 0);
	assert_int_equal(be16(cmd.data + 6), 0);
	/* LLBAA is not a MODE SENSE(6) bit */
	mode_sense6(&l, 0x10, 0x08, 0, 255);
	assert_int_equal(cmd.data[3], 8);

	/* changeable */
	mode_sense10(&l, 0, 0x40 | 0x3f, 0, 1024);
	assert_done_good();
	check_all_pages(16, true);

	mode_sense10(&l, 0, 0x3f, 0, 9);
	assert_int_equal(cmd.data_len, 9);
	assert_int_equal(be16(cmd.data), 8 + 8 + 20 + 12 - 2);
	mode_sense10(&l, 0, 0xc0 | 0x0a, 0, 1024);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x39, 0);
	mode_sense10(&l, 0, 0x01, 0, 1024);
	assert_invalid_field();
}

/* ---- REPORT LUNS ---- */

static void report_luns(struct scsi_lun *l, const uint16_t *luns, unsigned n, uint8_t sel,
			uint32_t alloc, uint64_t in_len)
{
	uint8_t c[12] = {0xa0, 0, sel};

	wbe32(c + 6, alloc);
	memset(&cmd, 0xa5, sizeof(cmd));
	scsi_disk_command(l, luns, n, c, 12, in_len, &cmd);
}

static void test_report_luns(void **state)
{
	struct scsi_lun l = mklun(NB, false, false, "");
	static uint16_t many[600];

	l.ua = SCSI_UA_RESET;
	for (unsigned sel = 0; sel < 3; sel += 2) {
		report_luns(&l, test_luns, NLUNS, (uint8_t)sel, 4096, 4096);
		assert_done_good();
		assert_int_equal(cmd.data_len, 8 + 8 * NLUNS);
		assert_int_equal(be32(cmd.data), 8 * NLUNS);
		assert_int_equal(be32(cmd.data + 4), 0);
		for (unsigned i = 0; i < NLUNS; i++) {
			assert_int_equal(cmd.data[8 + 8 * i], 0);
			assert_int_equal(cmd.data[9 + 8 * i], test_luns[i]);
			assert_true(be32(cmd.data + 10 + 8 * i) == 0);
			assert_int_equal(be16(cmd.data + 14 + 8 * i), 0);
		}
	}
	assert_int_equal(l.ua, SCSI_UA_RESET); /* not reported by REPORT LUNS */

	/* well-known LUNs only: none */
	report_luns(&l, test_luns, NLUNS, 1, 4096, 4096);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8);
	assert_int_equal(be32(cmd.data), 0);
	for (unsigned sel = 3; sel < 256; sel++) {
		report_luns(&l, test_luns, NLUNS, (uint8_t)sel, 4096, 4096);
		assert_invalid_field();
	}

	/* allocation length: at least 16, and truncating */
	report_luns(&l, test_luns, NLUNS, 0, 15, 4096);
	assert_invalid_field();
	report_luns(&l, test_luns, NLUNS, 0, 0, 4096);
	assert_invalid_field();
	report_luns(&l, test_luns, NLUNS, 0, 16, 4096);
	assert_done_good();
	assert_int_equal(cmd.data_len, 16);
	assert_int_equal(be32(cmd.data), 8 * NLUNS);
	report_luns(&l, test_luns, NLUNS, 0, 4096, 10);
	assert_int_equal(cmd.data_len, 10);

	/* from a missing LUN too; and an empty target */
	report_luns(NULL, test_luns, NLUNS, 0, 4096, 4096);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8 + 8 * NLUNS);
	report_luns(NULL, NULL, 0, 0, 4096, 4096);
	assert_done_good();
	assert_int_equal(cmd.data_len, 8);
	assert_int_equal(be32(cmd.data), 0);

	/* LUNs above 255 use flat space addressing; more than fit are cut */
	for (unsigned i = 0; i < 600; i++)
		many[i] = (uint16_t)i;
	report_luns(&l, many, 600, 0, 0xffffffff, UINT64_MAX);
	assert_done_good();
	assert_true(cmd.data_len <= SCSI_DATA_MAX);
	assert_int_equal(be32(cmd.data), cmd.data_len - 8);
	assert_int_equal(cmd.data[8 + 8 * 255], 0x00);
	assert_int_equal(cmd.data[9 + 8 * 255], 255);
	assert_int_equal(cmd.data[8 + 8 * 256], 0x41);
	assert_int_equal(cmd.data[9 + 8 * 256], 0x00);
	assert_int_equal(cmd.data[8 + 8 * 300], 0x41);
	assert_int_equal(cmd.data[9 + 8 * 300], 300 - 256);
}

/* ---- UNMAP ---- */

static void unmap_cmd(struct scsi_lun *l, uint8_t flags, uint16_t len)
{
	uint8_t c[10] = {0x42, flags};

	wbe16(c + 7, len);
	run(l, c, 10);
}

static void test_unmap_command(void **state)
{
	struct scsi_lun l = mklun(NB, false, true, "");
	struct scsi_lun nou = mklun(NB, false, false, "");
	struct scsi_lun ro = mklun(NB, true, true, "");

	unmap_cmd(&l, 0, 24);
	assert_int_equal(cmd.op, SCSI_OP_UNMAP);
	assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
	assert_int_equal(cmd.param_len, 24);
	assert_int_equal(cmd.data_len, 0);
	unmap_cmd(&l, 0, 0xffff);
	assert_int_equal(cmd.op, SCSI_OP_UNMAP);
	assert_int_equal(cmd.param_len, 0xffff);
	unmap_cmd(&l, 0, 8);
	assert_int_equal(cmd.param_len, 8);
	unmap_cmd(&l, 0, 0);
	assert_done_good();
	unmap_cmd(&l, 0, 7);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x1a, 0);
	unmap_cmd(&l, 0, 1);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x1a, 0);
	unmap_cmd(&l, 0x01, 24);
	assert_invalid_field();
	unmap_cmd(&nou, 0, 24);
	assert_invalid_opcode();
	unmap_cmd(&ro, 0, 24);
	assert_write_protected();
}

/* UNMAP parameter list with @n descriptors (lba, count pairs). */
static size_t unmap_list(uint8_t *p, unsigned n, const uint64_t *lba, const uint32_t *cnt)
{
	memset(p, 0, 8 + 16 * n);
	wbe16(p, (uint16_t)(6 + 16 * n));
	wbe16(p + 2, (uint16_t)(16 * n));
	for (unsigned i = 0; i < n; i++) {
		wbe64(p + 8 + 16 * i, lba[i]);
		wbe32(p + 16 + 16 * i, cnt[i]);
	}
	return 8 + 16 * n;
}

static struct scsi_unmap_desc descs[SCSI_MAX_UNMAP_DESC];
static struct scsi_sense usense;

static int parse(const struct scsi_lun *l, const uint8_t *p, size_t len)
{
	memset(descs, 0xa5, sizeof(descs));
	memset(&usense, 0xa5, sizeof(usense));
	return scsi_unmap_parse(l, p, len, descs, &usense);
}

#define assert_parse_err(asc_)                                                                     \
	do {                                                                                       \
		assert_int_equal(usense.key, SCSI_SENSE_ILLEGAL_REQUEST);                          \
		assert_int_equal(usense.asc, (asc_));                                              \
		assert_int_equal(usense.ascq, 0);                                                  \
	} while (0)

static void test_unmap_parse(void **state)
{
	struct scsi_lun l = mklun(NB, false, true, "");
	struct scsi_lun big = mklun(UINT64_MAX, false, true, "");
	uint8_t p[8 + 16 * 80];
	uint64_t lba[80];
	uint32_t cnt[80];
	size_t len;

	lba[0] = 0, cnt[0] = 8;
	lba[1] = NB - 1, cnt[1] = 1;
	lba[2] = 500, cnt[2] = 0;
	lba[3] = 100, cnt[3] = 400;
	len = unmap_list(p, 4, lba, cnt);
	assert_int_equal(parse(&l, p, len), 3); /* the 0-block one is skipped */
	assert_true(descs[0].lba == 0 && descs[0].nblocks == 8);
	assert_true(descs[1].lba == NB - 1 && descs[1].nblocks == 1);
	assert_true(descs[2].lba == 100 && descs[2].nblocks == 400);
	assert_int_equal(usense.key, 0);
	/* more data-out than the header describes is fine */
	assert_int_equal(parse(&l, p, sizeof(p)), 3);

	/* nothing to unmap */
	len = unmap_list(p, 0, lba, cnt);
	assert_int_equal(parse(&l, p, len), 0);
	lba[0] = NB, cnt[0] = 0; /* at the capacity, 0 blocks: fine */
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&l, p, len), 0);

	/* too short, or the header claiming more than was sent */
	for (size_t s = 0; s < 8; s++) {
		assert_int_equal(parse(&l, p, s), -1);
		assert_parse_err(0x1a);
	}
	lba[0] = 0, cnt[0] = 1;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&l, p, len - 1), -1);
	assert_parse_err(0x1a);
	wbe16(p, 0xffff);
	assert_int_equal(parse(&l, p, len), -1);
	assert_parse_err(0x1a);
	len = unmap_list(p, 1, lba, cnt);
	wbe16(p + 2, 32);
	wbe16(p, 6);
	assert_int_equal(parse(&l, p, len), -1);
	assert_parse_err(0x1a);

	/* an incomplete last descriptor is ignored */
	len = unmap_list(p, 2, lba, cnt);
	wbe16(p + 2, 16 + 15);
	assert_int_equal(parse(&l, p, len), 1);
	wbe16(p + 2, 15);
	assert_int_equal(parse(&l, p, len), 0);

	/* descriptor count */
	for (unsigned i = 0; i < 80; i++)
		lba[i] = i, cnt[i] = 1;
	len = unmap_list(p, SCSI_MAX_UNMAP_DESC, lba, cnt);
	assert_int_equal(parse(&l, p, len), SCSI_MAX_UNMAP_DESC);
	for (unsigned i = 0; i < SCSI_MAX_UNMAP_DESC; i++)
		assert_true(descs[i].lba == i && descs[i].nblocks == 1);
	len = unmap_list(p, SCSI_MAX_UNMAP_DESC + 1, lba, cnt);
	assert_int_equal(parse(&l, p, len), -1);
	assert_parse_err(0x26);

	/* block count: per command, in total */
	lba[0] = 0, cnt[0] = SCSI_MAX_UNMAP;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&big, p, len), 1);
	assert_int_equal(descs[0].nblocks, SCSI_MAX_UNMAP);
	cnt[0] = SCSI_MAX_UNMAP + 1;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&big, p, len), -1);
	assert_parse_err(0x26);
	cnt[0] = 0xffffffff;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&big, p, len), -1);
	assert_parse_err(0x26);
	lba[0] = 0, cnt[0] = SCSI_MAX_UNMAP;
	lba[1] = SCSI_MAX_UNMAP, cnt[1] = 1;
	len = unmap_list(p, 2, lba, cnt);
	assert_int_equal(parse(&big, p, len), -1);
	assert_parse_err(0x26);
	for (unsigned i = 0; i < SCSI_MAX_UNMAP_DESC; i++)
		cnt[i] = 0xffffffff; /* a sum that overflows 32 bits */
	len = unmap_list(p, SCSI_MAX_UNMAP_DESC, lba, cnt);
	assert_int_equal(parse(&big, p, len), -1);
	assert_parse_err(0x26);

	/* LBA range, overflow-safe */
	static const struct {
		uint64_t lba;
		uint32_t n;
		bool ok;
	} r[] = {
	    {NB - 1, 1, true},	    {NB - 10, 10, true},	 {NB - 1, 2, false},
	    {NB, 1, false},	    {NB + 1, 0, false},		 {UINT64_MAX, 1, false},
	    {UINT64_MAX, 0, false}, {UINT64_MAX - 5, 10, false},
	};
	for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
		lba[0] = 0, cnt[0] = 1;
		lba[1] = r[i].lba, cnt[1] = r[i].n;
		len = unmap_list(p, 2, lba, cnt);
		if (r[i].ok) {
			assert_int_equal(parse(&l, p, len), 2);
			assert_true(descs[1].lba == r[i].lba);
		} else {
			assert_int_equal(parse(&l, p, len), -1);
			assert_parse_err(0x21);
		}
	}
	lba[0] = UINT64_MAX - 1, cnt[0] = 1;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&big, p, len), 1);
	lba[0] = UINT64_MAX - 1, cnt[0] = 2;
	len = unmap_list(p, 1, lba, cnt);
	assert_int_equal(parse(&big, p, len), -1);
	assert_parse_err(0x21);
}

/* ---- dispatch: opcodes, CDB length, NACA, UA, missing LUN ---- */

static const struct {
	uint8_t op, len;
} supported[] = {
    {0x00, 6},	{0x03, 6},  {0x08, 6},	{0x0a, 6},  {0x12, 6},	{0x1a, 6},  {0x1b, 6},
    {0x1e, 6},	{0x25, 10}, {0x28, 10}, {0x2a, 10}, {0x2f, 10}, {0x35, 10}, {0x42, 10},
    {0x5a, 10}, {0x88, 16}, {0x8a, 16}, {0x8f, 16}, {0x91, 16}, {0x9e, 16}, {0xa0, 12},
};
#define NSUPPORTED (sizeof(supported) / sizeof(supported[0]))

static int supported_len(uint8_t op)
{
	for (size_t i = 0; i < NSUPPORTED; i++)
		if (supported[i].op == op)
			return supported[i].len;
	return 0;
}

/* A CDB of opcode @op that succeeds on an unmap-capable LUN of NB blocks. */
static void good_cdb(uint8_t *c, uint8_t op)
{
	memset(c, 0, 32);
	c[0] = op;
	switch (op) {
	case 0x08:
	case 0x0a:
	case 0x28:
	case 0x2a:
	case 0x88:
	case 0x8a:
		cdb_rw(c, op, 1, 1);
		break;
	case 0x03:
	case 0x12:
	case 0x1a:
		c[4] = 0xff;
		break;
	case 0x5a:
		c[8] = 0xff;
		c[2] = 0x3f;
		break;
	case 0x9e:
		c[1] = 0x10;
		c[13] = 32;
		break;
	case 0xa0:
		c[9] = 0xff;
		break;
	case 0x42:
		c[8] = 24;
		break;
	}
	if (op == 0x1a)
		c[2] = 0x3f;
}

static void test_opcodes(void **state)
{
	struct scsi_lun l = mklun(NB, false, true, "");
	uint8_t c[32];

	for (unsigned op = 0; op < 256; op++) {
		int len = supported_len((uint8_t)op);

		good_cdb(c, (uint8_t)op);
		run(&l, c, 32);
		if (!len) {
			assert_invalid_opcode();
			/* a short CDB of an unknown opcode: still the opcode */
			run(&l, c, 1);
			assert_invalid_opcode();
			continue;
		}
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
		run(&l, c, (size_t)len); /* the exact length is enough */
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
		/* one byte short */
		run(&l, c, (size_t)len - 1);
		assert_invalid_field();
		run(&l, c, 1);
		assert_invalid_field();
		/* NACA in the CONTROL byte */
		c[len - 1] |= 0x04;
		run(&l, c, 32);
		assert_invalid_field();
		/* other CONTROL bits (vendor specific, obsolete) are ignored */
		c[len - 1] = 0xc3;
		run(&l, c, 32);
		assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
	}
	run(&l, c, 0);
	assert_invalid_opcode();
}

static void test_unit_attention(void **state)
{
	struct scsi_lun l = mklun(NB, false, true, "");
	uint8_t c[32];

	/* reported once by any command but INQUIRY, REPORT LUNS, REQUEST SENSE */
	for (unsigned op = 0; op < 256; op++) {
		bool exempt = op == 0x12 || op == 0xa0 || op == 0x03;

		good_cdb(c, (uint8_t)op);
		l.ua = SCSI_UA_RESET;
		run(&l, c, 32);
		if (exempt) {
			assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
			assert_int_equal(l.ua, op == 0x03 ? SCSI_UA_NONE : SCSI_UA_RESET);
			continue;
		}
		assert_check(SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
		assert_int_equal(l.ua, SCSI_UA_NONE);
		run(&l, c, 32);
		assert_int_not_equal(cmd.sense.key, SCSI_SENSE_UNIT_ATTENTION);
	}
	/* before the CDB is looked at: an empty one too */
	l.ua = SCSI_UA_RESET;
	run(&l, c, 0);
	assert_check(SCSI_SENSE_UNIT_ATTENTION, 0x29, 0);
	run(&l, c, 0);
	assert_invalid_opcode();
}

static void test_missing_lun(void **state)
{
	uint8_t c[32];

	for (unsigned op = 0; op < 256; op++) {
		good_cdb(c, (uint8_t)op);
		run(NULL, c, 32);
		if (op == 0x12 || op == 0xa0 || op == 0x03) {
			assert_done_good();
			assert_true(cmd.data_len > 0);
		} else {
			assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x25, 0);
		}
	}
	run(NULL, c, 0);
	assert_check(SCSI_SENSE_ILLEGAL_REQUEST, 0x25, 0);
}

static void test_zero_block_lun(void **state)
{
	struct scsi_lun l = mklun(0, false, true, "");
	uint8_t c[32];

	for (size_t i = 0; i < NSUPPORTED; i++) {
		uint8_t op = supported[i].op;
		bool medium = op != 0x03 && op != 0x12 && op != 0x1a && op != 0x5a && op != 0x1b &&
			      op != 0x1e && op != 0xa0;

		good_cdb(c, op);
		run(&l, c, 32);
		if (medium) {
			assert_check(SCSI_SENSE_NOT_READY, 0x3a, 0);
		} else {
			assert_int_equal(cmd.status, SCSI_STATUS_GOOD);
		}
	}
	mode_sense6(&l, 0, 0x08, 0, 255);
	assert_int_equal(be32(cmd.data + 4), 0);
}

/* ---- sense helpers ---- */

static void test_sense(void **state)
{
	struct scsi_sense s = {SCSI_SENSE_ILLEGAL_REQUEST, 0x24, 0x01};
	uint8_t out[SCSI_SENSE_LEN + 1];
	struct scsi_sense e;

	memset(out, 0xa5, sizeof(out));
	scsi_sense_build(&s, out);
	assert_int_equal(out[0], 0x70);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0x05);
	for (unsigned i = 3; i < 7; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[7], 10);
	for (unsigned i = 8; i < 12; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[12], 0x24);
	assert_int_equal(out[13], 0x01);
	for (unsigned i = 14; i < SCSI_SENSE_LEN; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(out[SCSI_SENSE_LEN], 0xa5);

	e = scsi_sense_from_errno(ENOSPC, false);
	assert_true(e.key == SCSI_SENSE_DATA_PROTECT && e.asc == 0x27 && e.ascq == 0x07);
	e = scsi_sense_from_errno(EDQUOT, false);
	assert_true(e.key == SCSI_SENSE_DATA_PROTECT && e.asc == 0x27 && e.ascq == 0x07);
	e = scsi_sense_from_errno(-ENOSPC, false);
	assert_true(e.key == SCSI_SENSE_DATA_PROTECT && e.asc == 0x27 && e.ascq == 0x07);
	e = scsi_sense_from_errno(EIO, true);
	assert_true(e.key == SCSI_SENSE_MEDIUM_ERROR && e.asc == 0x11 && e.ascq == 0);
	e = scsi_sense_from_errno(EIO, false);
	assert_true(e.key == SCSI_SENSE_MEDIUM_ERROR && e.asc == 0x0c && e.ascq == 0);
	e = scsi_sense_from_errno(EFBIG, false);
	assert_true(e.key == SCSI_SENSE_MEDIUM_ERROR && e.asc == 0x0c && e.ascq == 0);
	e = scsi_sense_from_errno(-EINVAL, true);
	assert_true(e.key == SCSI_SENSE_MEDIUM_ERROR && e.asc == 0x11 && e.ascq == 0);
}

/* ---- fuzz ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t pick_u64(void)
{
	static const uint64_t edge[] = {0,
					1,
					2,
					NB - 1,
					NB,
					NB + 1,
					0xff,
					0x100,
					0xffff,
					0x10000,
					0x10001,
					0x1fffff,
					0x3fffff,
					0x400000,
					0xffffffff,
					0x100000000ull,
					UINT64_MAX - 1,
					UINT64_MAX};

	switch (rnd() % 3) {
	case 0:
		return edge[rnd() % (sizeof(edge) / sizeof(edge[0]))];
	case 1:
		return rnd() % 4096;
	default:
		return rnd();
	}
}

static struct scsi_cmd fz_a, fz_b;

static void fuzz_check(const struct scsi_lun *l, const uint8_t *c, size_t len, uint64_t in_len,
		       const struct scsi_cmd *r, uint8_t ua_before)
{
	uint64_t bound = in_len < SCSI_DATA_MAX ? in_len : SCSI_DATA_MAX;

	assert_true(r->op <= SCSI_OP_UNMAP);
	switch (r->op) {
	case SCSI_OP_DONE:
		assert_true(r->status == SCSI_STATUS_GOOD ||
			    r->status == SCSI_STATUS_CHECK_CONDITION);
		assert_true(r->data_len <= bound);
		if (r->status == SCSI_STATUS_CHECK_CONDITION) {
			assert_int_equal(r->data_len, 0);
			assert_int_not_equal(r->sense.key, 0);
			assert_int_not_equal(r->sense.asc, 0);
		} else {
			assert_int_equal(r->sense.key, 0);
		}
		break;
	case SCSI_OP_READ:
	case SCSI_OP_WRITE:
		assert_non_null(l);
		assert_int_equal(r->status, SCSI_STATUS_GOOD);
		assert_true(r->nblocks > 0 && r->nblocks <= SCSI_MAX_XFER);
		assert_true(r->lba < l->nblocks && r->nblocks <= l->nblocks - r->lba);
		if (r->op == SCSI_OP_WRITE)
			assert_false(l->readonly);
		else
			assert_false(r->fua);
		assert_int_equal(r->data_len, 0);
		break;
	case SCSI_OP_FLUSH:
		assert_non_null(l);
		assert_false(l->readonly);
		assert_int_equal(r->status, SCSI_STATUS_GOOD);
		break;
	case SCSI_OP_UNMAP:
		assert_non_null(l);
		assert_true(l->unmap && !l->readonly);
		assert_true(r->param_len >= 8 && r->param_len <= 0xffff);
		break;
	}
	if (!l) {
		assert_true(r->op == SCSI_OP_DONE);
	} else if (ua_before && len && c[0] != 0x12 && c[0] != 0xa0 && c[0] != 0x03) {
		assert_int_equal(r->status, SCSI_STATUS_CHECK_CONDITION);
		assert_int_equal(r->sense.key, SCSI_SENSE_UNIT_ATTENTION);
	} else if (len && !supported_len(c[0])) {
		assert_int_equal(r->sense.asc, 0x20);
	}
}

static void test_fuzz_commands(void **state)
{
	static const uint64_t sizes[] = {0,	    1, 7, NB, 0x200000, 0xffffffff, 0x100000001ull,
					 UINT64_MAX};
	static uint16_t luns[300];
	const char *env = getenv("SCSI_FUZZ_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 0) : 0x5c51d15cull;
	unsigned iters = 200000;
	unsigned seen[SCSI_OP_UNMAP + 1] = {0}, good = 0, check = 0, ua = 0, nolun = 0;
	uint8_t c[40];

	rng_state = seed ? seed : 1;
	print_message("fuzz seed 0x%llx (SCSI_FUZZ_SEED)\n", (unsigned long long)seed);
	for (unsigned i = 0; i < 300; i++)
		luns[i] = (uint16_t)(i * 7);
	for (unsigned it = 0; it < iters; it++) {
		struct scsi_lun l =
		    mklun(sizes[rnd() % 8], rnd() & 1, rnd() & 1, (rnd() & 1) ? "fuzz-serial" : "");
		struct scsi_lun l2;
		bool missing = rnd() % 16 == 0;
		size_t len;
		uint64_t in_len = rnd() % 4 ? pick_u64() : rnd() % 64;
		unsigned nluns = (unsigned)(rnd() % 301);

		l.lun = (uint16_t)rnd();
		l.ua = rnd() % 8 == 0 ? SCSI_UA_RESET : SCSI_UA_NONE;
		for (size_t i = 0; i < sizeof(c); i++)
			c[i] = rnd() % 4 ? 0 : (uint8_t)rnd();
		/* mostly opcodes we know, with plausible fields */
		if (rnd() % 8)
			c[0] = supported[rnd() % NSUPPORTED].op;
		else
			c[0] = (uint8_t)rnd();
		if (rnd() % 2) {
			uint64_t lba = pick_u64();
			uint32_t n = (uint32_t)pick_u64();

			cdb_rw(c, c[0], lba, n);
		}
		if (rnd() % 4 == 0)
			c[1] = (uint8_t)rnd();
		len = rnd() % 3 ? (size_t)supported_len(c[0]) : rnd() % 33;
		if (!len)
			len = rnd() % 33;

		l2 = l;
		memset(&fz_a, 0x00, sizeof(fz_a));
		scsi_disk_command(missing ? NULL : &l, luns, nluns, c, len, in_len, &fz_a);
		fuzz_check(missing ? NULL : &l, c, len, in_len, &fz_a, l2.ua);
		seen[fz_a.op]++;
		good += fz_a.status == SCSI_STATUS_GOOD && fz_a.data_len > 0;
		check += fz_a.status == SCSI_STATUS_CHECK_CONDITION;
		ua += fz_a.sense.key == SCSI_SENSE_UNIT_ATTENTION;
		nolun += fz_a.sense.asc == 0x25;
		if (!missing && l2.ua && fz_a.sense.key == SCSI_SENSE_UNIT_ATTENTION)
			assert_int_equal(l.ua, SCSI_UA_NONE);

		/* same answer over a differently poisoned buffer: nothing stale */
		memset(&fz_b, 0xff, sizeof(fz_b));
		scsi_disk_command(missing ? NULL : &l2, luns, nluns, c, len, in_len, &fz_b);
		assert_memory_equal(&fz_a, &fz_b, offsetof(struct scsi_cmd, data));
		assert_memory_equal(fz_a.data, fz_b.data, fz_a.data_len);
		assert_int_equal(l.ua, l2.ua);
	}
	/* the fuzz reached every outcome, not just the first checks */
	print_message("fuzz: done %u read %u write %u flush %u unmap %u (data %u, check %u, "
		      "ua %u, no lun %u)\n",
		      seen[0], seen[1], seen[2], seen[3], seen[4], good, check, ua, nolun);
	for (unsigned i = 0; i <= SCSI_OP_UNMAP; i++)
		assert_true(seen[i] > 100);
	assert_true(good > 1000 && check > 1000 && ua > 100 && nolun > 100);
}

static void test_fuzz_unmap_parse(void **state)
{
	static const uint64_t sizes[] = {0, 1, NB, 0x400000, UINT64_MAX};
	uint8_t p[8 + 16 * 70 + 16];
	struct scsi_unmap_desc d[SCSI_MAX_UNMAP_DESC];
	struct scsi_sense s;
	unsigned some = 0, plle = 0, invp = 0, range = 0;

	rng_state = 0x0123456789abcdefull;
	for (unsigned it = 0; it < 100000; it++) {
		struct scsi_lun l = mklun(sizes[rnd() % 5], false, true, "");
		unsigned nd = (unsigned)(rnd() % 70);
		size_t len;
		int n;

		memset(p, 0, sizeof(p));
		for (unsigned i = 0; i < nd; i++) {
			wbe64(p + 8 + 16 * i, rnd() % 2 ? pick_u64() : rnd() % (NB + 2));
			wbe32(p + 16 + 16 * i,
			      rnd() % 2 ? (uint32_t)pick_u64() : (uint32_t)(rnd() % 16));
		}
		wbe16(p, (uint16_t)(rnd() % 4 ? 6 + 16 * nd : rnd()));
		wbe16(p + 2, (uint16_t)(rnd() % 4 ? 16 * nd : rnd()));
		len = rnd() % 4 ? 8 + 16 * nd : rnd() % sizeof(p);
		if (rnd() % 8 == 0) { /* random junk */
			for (size_t i = 0; i < sizeof(p); i++)
				p[i] = (uint8_t)rnd();
		}
		memset(&s, 0xa5, sizeof(s));
		n = scsi_unmap_parse(&l, p, len, d, &s);
		if (n < 0) {
			assert_int_equal(n, -1);
			assert_int_equal(s.key, SCSI_SENSE_ILLEGAL_REQUEST);
			assert_true(s.asc == 0x1a || s.asc == 0x26 || s.asc == 0x21);
			assert_int_equal(s.ascq, 0);
			plle += s.asc == 0x1a;
			invp += s.asc == 0x26;
			range += s.asc == 0x21;
			continue;
		}
		uint64_t total = 0;

		assert_true(n <= (int)SCSI_MAX_UNMAP_DESC);
		assert_true(len >= 8);
		for (int i = 0; i < n; i++) {
			assert_true(d[i].nblocks > 0);
			assert_true(d[i].lba < l.nblocks && d[i].nblocks <= l.nblocks - d[i].lba);
			total += d[i].nblocks;
		}
		assert_true(total <= SCSI_MAX_UNMAP);
		some += n > 0;
	}
	print_message("unmap fuzz: %u with descriptors, errors 1Ah %u 26h %u 21h %u\n", some, plle,
		      invp, range);
	assert_true(some > 100 && plle > 100 && invp > 100 && range > 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_test_unit_ready),
	    cmocka_unit_test(test_request_sense),
	    cmocka_unit_test(test_inquiry_standard),
	    cmocka_unit_test(test_inquiry_vpd_supported),
	    cmocka_unit_test(test_inquiry_vpd_serial),
	    cmocka_unit_test(test_inquiry_vpd_device_id),
	    cmocka_unit_test(test_inquiry_vpd_limits),
	    cmocka_unit_test(test_read_capacity),
	    cmocka_unit_test(test_read_write_decode),
	    cmocka_unit_test(test_read_write_range),
	    cmocka_unit_test(test_read_write_readonly),
	    cmocka_unit_test(test_sync_cache),
	    cmocka_unit_test(test_verify),
	    cmocka_unit_test(test_mode_sense_6),
	    cmocka_unit_test(test_mode_sense_10),
	    cmocka_unit_test(test_report_luns),
	    cmocka_unit_test(test_unmap_command),
	    cmocka_unit_test(test_unmap_parse),
	    cmocka_unit_test(test_opcodes),
	    cmocka_unit_test(test_unit_attention),
	    cmocka_unit_test(test_missing_lun),
	    cmocka_unit_test(test_zero_block_lun),
	    cmocka_unit_test(test_sense),
	    cmocka_unit_test(test_fuzz_commands),
	    cmocka_unit_test(test_fuzz_unmap_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
