// SPDX-License-Identifier: MIT
/*
 * SCSI disk emulation: the command set of one direct-access logical unit
 * (SBC-4, SPC-5) decoded into either a complete answer or one checked host
 * operation. The contract is in scsi.h; the choices it leaves open:
 *
 * - Check order: missing LUN, then a pending unit attention (both before
 *   the opcode is looked at, as SAM-5 orders them), then the opcode
 *   (unknown: INVALID COMMAND OPERATION CODE), then the CDB length (shorter
 *   than the opcode's group length: INVALID FIELD IN CDB, as QEMU does),
 *   then the CONTROL byte's NACA bit (unsupported: INVALID FIELD IN CDB),
 *   then "medium not present" for a 0-block disk, then the command's own
 *   fields, then the LBA range, then write protection (UNMAP: not offered,
 *   ANCHOR, write protection, then the parameter list length).
 * - An empty CDB (cdb_len 0) has no opcode: INVALID COMMAND OPERATION CODE
 *   (after the missing-LUN and unit attention checks).
 * - A LUN of 0 blocks is treated as having no medium: commands that access
 *   it (TEST UNIT READY, READ CAPACITY, READ, WRITE, VERIFY, SYNCHRONIZE
 *   CACHE, UNMAP) get NOT READY / MEDIUM NOT PRESENT (3Ah/00h).
 * - A range is out of range when lba + n exceeds the capacity (SBC wording),
 *   so n = 0 at lba = capacity is GOOD; the check never overflows.
 * - READ/WRITE/VERIFY of 0 blocks (10/16 forms) and UNMAP with a parameter
 *   list length of 0 are answered here (SCSI_OP_DONE, GOOD): the caller
 *   never gets a READ/WRITE of 0 blocks nor an UNMAP with param_len < 8.
 *   UNMAP's param_len 1..7 is PARAMETER LIST LENGTH ERROR here already.
 * - RDPROTECT/WRPROTECT/VRPROTECT != 0 (no protection information):
 *   INVALID FIELD IN CDB. REQUEST SENSE with DESC=1: INVALID FIELD IN CDB
 *   (fixed format only).
 * - VPD page 0x80 exists only when the LUN has a serial (an empty serial
 *   is "no serial", as in QEMU): then it is not listed in page 0x00 and
 *   asking for it is INVALID FIELD IN CDB.
 * - MODE SENSE: pages 0x08, 0x0a and 0x3f with subpage 0 or 0xff (all
 *   subpages: we have none); the changeable values are all zero, block
 *   descriptor included (MODE SELECT is not offered); LLBAA in MODE
 *   SENSE(10) gives the 16-byte long descriptor.
 * - UNMAP limits are on the total of a command's descriptors (SBC-4: "the
 *   total number of logical blocks ... exceeds MAXIMUM UNMAP LBA COUNT");
 *   a block descriptor data length that is not a multiple of 16 ignores
 *   the incomplete last descriptor (SBC-4), descriptors of 0 blocks are
 *   skipped (range-checked all the same). scsi_unmap_parse takes any len
 *   below 8, 0 included, as PARAMETER LIST LENGTH ERROR (the command
 *   already answered param_len 0), and checks the header's two lengths
 *   against len only.
 * - REPORT LUNS: LUNs above 255 in flat space addressing; a list longer
 *   than SCSI_DATA_MAX holds (511 LUNs) is cut, its LUN LIST LENGTH too.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "devices/block/scsi.h"

/* Opcodes. */
#define OP_TEST_UNIT_READY   0x00
#define OP_REQUEST_SENSE     0x03
#define OP_READ_6	     0x08
#define OP_WRITE_6	     0x0a
#define OP_INQUIRY	     0x12
#define OP_MODE_SENSE_6	     0x1a
#define OP_START_STOP_UNIT   0x1b
#define OP_PREVENT_ALLOW     0x1e
#define OP_READ_CAPACITY_10  0x25
#define OP_READ_10	     0x28
#define OP_WRITE_10	     0x2a
#define OP_VERIFY_10	     0x2f
#define OP_SYNC_CACHE_10     0x35
#define OP_UNMAP	     0x42
#define OP_MODE_SENSE_10     0x5a
#define OP_READ_16	     0x88
#define OP_WRITE_16	     0x8a
#define OP_VERIFY_16	     0x8f
#define OP_SYNC_CACHE_16     0x91
#define OP_SERVICE_ACTION_IN 0x9e
#define OP_REPORT_LUNS	     0xa0

#define SAI_READ_CAPACITY_16 0x10

/* Additional sense codes (ASC << 8 | ASCQ). */
#define ASC_PARAM_LIST_LEN_ERROR 0x1a00
#define ASC_INVALID_OPCODE	 0x2000
#define ASC_LBA_OUT_OF_RANGE	 0x2100
#define ASC_INVALID_FIELD_CDB	 0x2400
#define ASC_LUN_NOT_SUPPORTED	 0x2500
#define ASC_INVALID_FIELD_PARAM	 0x2600
#define ASC_WRITE_PROTECTED	 0x2700
#define ASC_SPACE_ALLOC_FAILED	 0x2707
#define ASC_POWER_ON_RESET	 0x2900
#define ASC_SAVING_NOT_SUPPORTED 0x3900
#define ASC_MEDIUM_NOT_PRESENT	 0x3a00
#define ASC_WRITE_ERROR		 0x0c00
#define ASC_UNRECOVERED_READ	 0x1100

#define VENDOR	 "KVMINI  "
#define PRODUCT	 "KVMINI DISK     "
#define REVISION "1.0 "

#define INQUIRY_STD_LEN 36u
#define TYPE_DISK	0x00
#define TYPE_NO_LUN	0x7f /* peripheral qualifier 3, device type 1Fh */

/* Mode pages. */
#define MODE_PAGE_CACHING     0x08
#define MODE_PAGE_CONTROL     0x0a
#define MODE_PAGE_ALL	      0x3f
#define MODE_CACHING_LEN      20u
#define MODE_CONTROL_LEN      12u
#define MODE_PC_CHANGEABLE    1
#define MODE_PC_SAVED	      3
#define MODE_DEVSPEC_WP	      0x80
#define MODE_DEVSPEC_DPOFUA   0x10
#define MODE_SUBPAGE_ALL      0xff
#define VPD_BLOCK_LIMITS_LEN  0x3c
#define VPD_BDC_LEN	      0x3c
#define VPD_LBP_LEN	      0x04
#define UNMAP_HEADER_LEN      8u
#define UNMAP_DESC_LEN	      16u
#define REPORT_LUNS_MIN_ALLOC 16u

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t get_be64(const uint8_t *p)
{
	return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

static inline void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

/* One command being decoded. */
struct req {
	struct scsi_lun *lun; /* NULL: the LUN does not exist */
	const uint16_t *luns;
	unsigned nluns;
	const uint8_t *cdb; /* at least the opcode's group length */
	uint64_t in_len;
	struct scsi_cmd *cmd;
};

static void fail(struct req *r, uint8_t key, uint16_t asc)
{
	r->cmd->op = SCSI_OP_DONE;
	r->cmd->status = SCSI_STATUS_CHECK_CONDITION;
	r->cmd->sense.key = key;
	r->cmd->sense.asc = (uint8_t)(asc >> 8);
	r->cmd->sense.ascq = (uint8_t)asc;
	r->cmd->data_len = 0;
}

static void invalid_field(struct req *r)
{
	fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_FIELD_CDB);
}

/* Zero the first @len bytes of the response, to be filled in. */
static uint8_t *resp_begin(struct req *r, uint32_t len)
{
	memset(r->cmd->data, 0, len);
	return r->cmd->data;
}

/* Answer GOOD with @len bytes built, truncated to the allocation length
 * and the initiator's data-in buffer. */
static void resp_end(struct req *r, uint32_t len, uint64_t alloc_len)
{
	uint64_t n = len;

	if (n > alloc_len)
		n = alloc_len;
	if (n > r->in_len)
		n = r->in_len;
	r->cmd->data_len = (uint32_t)n;
}

/* Does [lba, lba + n) exceed a disk of @nblocks? Overflow-safe. */
static bool out_of_range(uint64_t nblocks, uint64_t lba, uint64_t n)
{
	return lba > nblocks || n > nblocks - lba;
}

/* ---- commands every LUN (and a missing one) answers ---- */

static void cmd_good(struct req *r)
{
}

static void cmd_request_sense(struct req *r)
{
	struct scsi_sense s = {SCSI_SENSE_NO_SENSE, 0, 0};

	if (r->cdb[1] & 0x01) { /* DESC: descriptor format not offered */
		invalid_field(r);
		return;
	}
	if (!r->lun) {
		/* SPC-5: GOOD, with the sense data saying why (25h/00h). */
		s.key = SCSI_SENSE_ILLEGAL_REQUEST;
		s.asc = ASC_LUN_NOT_SUPPORTED >> 8;
	} else if (r->lun->ua != SCSI_UA_NONE) { /* SCSI_UA_RESET: the only one */
		s.key = SCSI_SENSE_UNIT_ATTENTION;
		s.asc = ASC_POWER_ON_RESET >> 8;
		r->lun->ua = SCSI_UA_NONE;
	}
	scsi_sense_build(&s, resp_begin(r, SCSI_SENSE_LEN));
	resp_end(r, SCSI_SENSE_LEN, r->cdb[4]);
}

/* Deterministic 64-bit hash of serial and LUN number (FNV-1a) for the
 * NAA designator: the same disk gets the same WWN across runs. */
static uint64_t lun_hash(const struct scsi_lun *lun, size_t serial_len)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < serial_len; i++)
		h = (h ^ (uint8_t)lun->serial[i]) * 0x100000001b3ull;
	h = (h ^ (lun->lun & 0xff)) * 0x100000001b3ull;
	h = (h ^ (lun->lun >> 8)) * 0x100000001b3ull;
	return h;
}

/* VPD 0x83: a T10 vendor ID designator (vendor + serial, or the LUN
 * number when there is no serial) and an NAA locally assigned one. */
static uint32_t vpd_device_id(const struct scsi_lun *lun, size_t serial_len, uint8_t *p)
{
	uint32_t n = 4;
	uint8_t *d = p + n;
	uint32_t idlen;

	d[0] = 0x02; /* code set ASCII */
	d[1] = 0x01; /* association: LU, type T10 vendor ID */
	memcpy(d + 4, VENDOR, 8);
	if (serial_len) {
		memcpy(d + 12, lun->serial, serial_len);
		idlen = 8 + (uint32_t)serial_len;
	} else {
		/* "LUN" and up to 5 decimal digits */
		char num[8] = "LUN";
		unsigned v = lun->lun, digits = 1;

		for (unsigned t = v; t >= 10; t /= 10)
			digits++;
		for (unsigned i = digits; i > 0; i--, v /= 10)
			num[3 + i - 1] = (char)('0' + v % 10);
		memcpy(d + 12, num, 3 + digits);
		idlen = 8 + 3 + digits;
	}
	d[3] = (uint8_t)idlen;
	n += 4 + idlen;

	d = p + n;
	d[0] = 0x01; /* code set binary */
	d[1] = 0x03; /* association: LU, type NAA */
	d[3] = 8;
	/* NAA 3h: locally assigned, 60 bits of our choosing */
	put_be64(d + 4, 3ull << 60 | (lun_hash(lun, serial_len) & ((1ull << 60) - 1)));
	n += 4 + 8;
	return n;
}

/* Build VPD page @page into @p; returns its length, 0 if not offered. */
static uint32_t vpd_page(const struct scsi_lun *lun, uint8_t page, uint8_t *p)
{
	size_t serial_len = lun ? strnlen(lun->serial, SCSI_SERIAL_MAX) : 0;
	uint32_t n = 4;

	p[0] = lun ? TYPE_DISK : TYPE_NO_LUN;
	p[1] = page;
	if (!lun && page != 0x00)
		return 0;
	switch (page) {
	case 0x00:
		p[n++] = 0x00;
		if (!lun)
			break;
		if (serial_len)
			p[n++] = 0x80;
		p[n++] = 0x83;
		p[n++] = 0xb0;
		p[n++] = 0xb1;
		p[n++] = 0xb2;
		break;
	case 0x80:
		if (!serial_len)
			return 0;
		memcpy(p + 4, lun->serial, serial_len);
		n += (uint32_t)serial_len;
		break;
	case 0x83:
		n = vpd_device_id(lun, serial_len, p);
		break;
	case 0xb0:
		n += VPD_BLOCK_LIMITS_LEN;
		put_be32(p + 8, SCSI_MAX_XFER); /* MAXIMUM TRANSFER LENGTH */
		if (lun->unmap) {
			put_be32(p + 20, SCSI_MAX_UNMAP);      /* MAXIMUM UNMAP LBA COUNT */
			put_be32(p + 24, SCSI_MAX_UNMAP_DESC); /* ... BLOCK DESCRIPTOR COUNT */
		}
		break;
	case 0xb1:
		n += VPD_BDC_LEN;
		put_be16(p + 4, 1); /* MEDIUM ROTATION RATE: non-rotating */
		break;
	case 0xb2:
		n += VPD_LBP_LEN;
		if (lun->unmap) {
			p[5] = 0x80; /* LBPU; LBPRZ 0: unmapped blocks read back undefined */
			p[6] = 0x02; /* PROVISIONING TYPE: thin */
		}
		break;
	default:
		return 0;
	}
	put_be16(p + 2, (uint16_t)(n - 4));
	return n;
}

static void cmd_inquiry(struct req *r)
{
	const uint8_t *c = r->cdb;
	uint16_t alloc = get_be16(c + 3);
	uint8_t *p;
	uint32_t n;

	if (c[1] & 0x02) { /* CMDDT (obsolete) */
		invalid_field(r);
		return;
	}
	if (c[1] & 0x01) { /* EVPD */
		n = vpd_page(r->lun, c[2], resp_begin(r, 4 + VPD_BLOCK_LIMITS_LEN));
		if (!n) {
			invalid_field(r);
			return;
		}
		resp_end(r, n, alloc);
		return;
	}
	if (c[2]) { /* a page code without EVPD */
		invalid_field(r);
		return;
	}
	p = resp_begin(r, INQUIRY_STD_LEN);
	p[0] = r->lun ? TYPE_DISK : TYPE_NO_LUN;
	p[2] = 0x06; /* VERSION: SPC-4 */
	p[3] = 0x02; /* RESPONSE DATA FORMAT */
	p[4] = INQUIRY_STD_LEN - 5;
	p[7] = 0x02; /* CMDQUE */
	memcpy(p + 8, VENDOR, 8);
	memcpy(p + 16, PRODUCT, 16);
	memcpy(p + 32, REVISION, 4);
	resp_end(r, INQUIRY_STD_LEN, alloc);
}

/* LUN @l in the 8-byte SAM LUN format: peripheral device addressing below
 * 256, flat space addressing above. */
static void put_lun(uint8_t *p, uint16_t l)
{
	if (l < 256) {
		p[1] = (uint8_t)l;
	} else {
		p[0] = (uint8_t)(0x40 | ((l >> 8) & 0x3f));
		p[1] = (uint8_t)l;
	}
}

static void cmd_report_luns(struct req *r)
{
	const uint8_t *c = r->cdb;
	uint32_t alloc = get_be32(c + 6);
	unsigned count = r->nluns;
	uint8_t *p;
	uint32_t n;

	if (alloc < REPORT_LUNS_MIN_ALLOC) {
		invalid_field(r);
		return;
	}
	switch (c[2]) {
	case 0x00: /* all LUNs but well-known ones (we have none) */
	case 0x02: /* all */
		break;
	case 0x01: /* only well-known LUNs: none */
		count = 0;
		break;
	default:
		invalid_field(r);
		return;
	}
	if (count > (SCSI_DATA_MAX - 8) / 8)
		count = (SCSI_DATA_MAX - 8) / 8;
	n = 8 + 8 * count;
	p = resp_begin(r, n);
	put_be32(p, 8 * count);
	for (unsigned i = 0; i < count; i++)
		put_lun(p + 8 + 8 * i, r->luns[i]);
	resp_end(r, n, alloc);
}

/* ---- commands of an existing LUN ---- */

static void cmd_read_capacity_10(struct req *r)
{
	uint64_t last = r->lun->nblocks - 1;
	uint8_t *p = resp_begin(r, 8);

	put_be32(p, last > 0xffffffffull ? 0xffffffffu : (uint32_t)last);
	put_be32(p + 4, SCSI_BLOCK);
	resp_end(r, 8, 8);
}

static void cmd_service_action_in(struct req *r)
{
	const uint8_t *c = r->cdb;
	uint8_t *p;

	if ((c[1] & 0x1f) != SAI_READ_CAPACITY_16) {
		invalid_field(r);
		return;
	}
	p = resp_begin(r, 32);
	put_be64(p, r->lun->nblocks - 1);
	put_be32(p + 8, SCSI_BLOCK);
	if (r->lun->unmap)
		p[14] = 0x80; /* LBPME */
	resp_end(r, 32, get_be32(c + 10));
}

/* Decoded LBA and block count of a READ/WRITE/VERIFY/SYNCHRONIZE CACHE
 * CDB; @protect is the RDPROTECT/WRPROTECT/VRPROTECT field. */
struct rw {
	uint64_t lba;
	uint32_t n;
	uint8_t protect;
	bool fua;
};

static struct rw rw_decode(const uint8_t *c)
{
	struct rw rw = {0};

	switch (c[0] >> 5) {
	case 0: /* 6-byte: 21-bit LBA, 0 blocks means 256 */
		rw.lba = (uint64_t)(c[1] & 0x1f) << 16 | get_be16(c + 2);
		rw.n = c[4] ? c[4] : 256;
		return rw;
	case 1: /* 10-byte */
		rw.lba = get_be32(c + 2);
		rw.n = get_be16(c + 7);
		break;
	default: /* 16-byte */
		rw.lba = get_be64(c + 2);
		rw.n = get_be32(c + 10);
		break;
	}
	rw.protect = c[1] >> 5;
	rw.fua = c[1] & 0x08;
	return rw;
}

static void cmd_read_write(struct req *r)
{
	bool write =
	    r->cdb[0] == OP_WRITE_6 || r->cdb[0] == OP_WRITE_10 || r->cdb[0] == OP_WRITE_16;
	struct rw rw = rw_decode(r->cdb);

	if (rw.protect || rw.n > SCSI_MAX_XFER) {
		invalid_field(r);
		return;
	}
	if (out_of_range(r->lun->nblocks, rw.lba, rw.n)) {
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (write && r->lun->readonly) {
		fail(r, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return;
	}
	if (!rw.n)
		return; /* nothing to transfer: GOOD */
	r->cmd->op = write ? SCSI_OP_WRITE : SCSI_OP_READ;
	r->cmd->lba = rw.lba;
	r->cmd->nblocks = rw.n;
	r->cmd->fua = write && rw.fua;
}

static void cmd_verify(struct req *r)
{
	struct rw rw = rw_decode(r->cdb);

	/* BYTCHK (bits 2:1): comparing with data-out is not offered */
	if (rw.protect || (r->cdb[1] & 0x06)) {
		invalid_field(r);
		return;
	}
	if (out_of_range(r->lun->nblocks, rw.lba, rw.n))
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
}

static void cmd_sync_cache(struct req *r)
{
	struct rw rw = rw_decode(r->cdb);

	/* Same LBA/count fields as READ; 0 blocks means "to the end", which
	 * out_of_range() accepts for any LBA up to the capacity. */
	if (out_of_range(r->lun->nblocks, rw.lba, rw.n)) {
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE);
		return;
	}
	if (!r->lun->readonly)
		r->cmd->op = SCSI_OP_FLUSH;
}

static void cmd_unmap(struct req *r)
{
	uint16_t len = get_be16(r->cdb + 7);

	if (!r->lun->unmap) {
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (r->cdb[1] & 0x01) { /* ANCHOR */
		invalid_field(r);
		return;
	}
	if (r->lun->readonly) {
		fail(r, SCSI_SENSE_DATA_PROTECT, ASC_WRITE_PROTECTED);
		return;
	}
	if (!len)
		return; /* no parameter list: not an error (SBC-4) */
	if (len < UNMAP_HEADER_LEN) {
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_PARAM_LIST_LEN_ERROR);
		return;
	}
	r->cmd->op = SCSI_OP_UNMAP;
	r->cmd->param_len = len;
}

/* Append mode page @page (current/default values, or the changeable mask
 * when @changeable) at @p; returns its length. */
static uint32_t mode_page(uint8_t page, bool changeable, uint8_t *p)
{
	switch (page) {
	case MODE_PAGE_CACHING:
		p[0] = MODE_PAGE_CACHING;
		p[1] = MODE_CACHING_LEN - 2;
		if (!changeable)
			p[2] = 0x04; /* WCE: writes land in the host page cache */
		return MODE_CACHING_LEN;
	case MODE_PAGE_CONTROL:
		p[0] = MODE_PAGE_CONTROL;
		p[1] = MODE_CONTROL_LEN - 2;
		if (!changeable)
			p[3] = 0x10; /* QUEUE ALGORITHM MODIFIER 1: unrestricted */
		return MODE_CONTROL_LEN;
	}
	return 0;
}

static void cmd_mode_sense(struct req *r)
{
	const uint8_t *c = r->cdb;
	bool ten = c[0] == OP_MODE_SENSE_10;
	bool dbd = c[1] & 0x08, llbaa = ten && (c[1] & 0x10);
	uint8_t pc = c[2] >> 6, page = c[2] & 0x3f, subpage = c[3];
	uint32_t hdr = ten ? 8 : 4, bdlen = dbd ? 0 : llbaa ? 16 : 8;
	uint64_t nb = r->lun->nblocks;
	bool changeable = pc == MODE_PC_CHANGEABLE;
	uint8_t *p;
	uint32_t n;

	if (pc == MODE_PC_SAVED) {
		fail(r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_SAVING_NOT_SUPPORTED);
		return;
	}
	if ((page != MODE_PAGE_CACHING && page != MODE_PAGE_CONTROL && page != MODE_PAGE_ALL) ||
	    (subpage != 0 && subpage != MODE_SUBPAGE_ALL)) {
		invalid_field(r);
		return;
	}
	p = resp_begin(r, hdr + 16 + MODE_CACHING_LEN + MODE_CONTROL_LEN);
	n = hdr;
	if (bdlen && !changeable) {
		if (llbaa) {
			put_be64(p + n, nb);
			put_be32(p + n + 12, SCSI_BLOCK);
		} else {
			put_be32(p + n, nb > 0xffffffffull ? 0xffffffffu : (uint32_t)nb);
			put_be32(p + n + 4, SCSI_BLOCK); /* byte 4 reserved, 5..7 length */
		}
	}
	n += bdlen;
	if (page == MODE_PAGE_ALL) {
		n += mode_page(MODE_PAGE_CACHING, changeable, p + n);
		n += mode_page(MODE_PAGE_CONTROL, changeable, p + n);
	} else {
		n += mode_page(page, changeable, p + n);
	}
	if (ten) {
		put_be16(p, (uint16_t)(n - 2));
		p[3] = (uint8_t)((r->lun->readonly ? MODE_DEVSPEC_WP : 0) | MODE_DEVSPEC_DPOFUA);
		p[4] = llbaa && bdlen ? 0x01 : 0; /* LONGLBA */
		put_be16(p + 6, (uint16_t)bdlen);
		resp_end(r, n, get_be16(c + 7));
	} else {
		p[0] = (uint8_t)(n - 1);
		p[2] = (uint8_t)((r->lun->readonly ? MODE_DEVSPEC_WP : 0) | MODE_DEVSPEC_DPOFUA);
		p[3] = (uint8_t)bdlen;
		resp_end(r, n, c[4]);
	}
}

/* ---- dispatch ---- */

#define ANY_LUN	     0x01 /* also for a missing LUN, and never reports a UA */
#define NEEDS_MEDIUM 0x02 /* NOT READY / MEDIUM NOT PRESENT on a 0-block LUN */

struct opdesc {
	uint8_t len; /* CDB length; 0: opcode not supported */
	uint8_t flags;
	void (*fn)(struct req *r);
};

static const struct opdesc ops[256] = {
    [OP_TEST_UNIT_READY] = {6, NEEDS_MEDIUM, cmd_good},
    [OP_REQUEST_SENSE] = {6, ANY_LUN, cmd_request_sense},
    [OP_READ_6] = {6, NEEDS_MEDIUM, cmd_read_write},
    [OP_WRITE_6] = {6, NEEDS_MEDIUM, cmd_read_write},
    [OP_INQUIRY] = {6, ANY_LUN, cmd_inquiry},
    [OP_MODE_SENSE_6] = {6, 0, cmd_mode_sense},
    [OP_START_STOP_UNIT] = {6, 0, cmd_good},
    [OP_PREVENT_ALLOW] = {6, 0, cmd_good},
    [OP_READ_CAPACITY_10] = {10, NEEDS_MEDIUM, cmd_read_capacity_10},
    [OP_READ_10] = {10, NEEDS_MEDIUM, cmd_read_write},
    [OP_WRITE_10] = {10, NEEDS_MEDIUM, cmd_read_write},
    [OP_VERIFY_10] = {10, NEEDS_MEDIUM, cmd_verify},
    [OP_SYNC_CACHE_10] = {10, NEEDS_MEDIUM, cmd_sync_cache},
    [OP_UNMAP] = {10, NEEDS_MEDIUM, cmd_unmap},
    [OP_MODE_SENSE_10] = {10, 0, cmd_mode_sense},
    [OP_READ_16] = {16, NEEDS_MEDIUM, cmd_read_write},
    [OP_WRITE_16] = {16, NEEDS_MEDIUM, cmd_read_write},
    [OP_VERIFY_16] = {16, NEEDS_MEDIUM, cmd_verify},
    [OP_SYNC_CACHE_16] = {16, NEEDS_MEDIUM, cmd_sync_cache},
    [OP_SERVICE_ACTION_IN] = {16, NEEDS_MEDIUM, cmd_service_action_in},
    [OP_REPORT_LUNS] = {12, ANY_LUN, cmd_report_luns},
};

void scsi_disk_command(struct scsi_lun *lun, const uint16_t *luns, unsigned nluns,
		       const uint8_t *cdb, size_t cdb_len, uint64_t in_len, struct scsi_cmd *cmd)
{
	struct req r = {lun, luns, nluns, cdb, in_len, cmd};
	const struct opdesc *d = cdb_len ? &ops[cdb[0]] : NULL;

	memset(cmd, 0, offsetof(struct scsi_cmd, data));
	cmd->op = SCSI_OP_DONE;
	cmd->status = SCSI_STATUS_GOOD;
	if (!lun && !(d && (d->flags & ANY_LUN))) {
		fail(&r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_LUN_NOT_SUPPORTED);
		return;
	}
	if (lun && lun->ua != SCSI_UA_NONE && !(d && (d->flags & ANY_LUN))) {
		/* SCSI_UA_RESET is the only condition there is */
		lun->ua = SCSI_UA_NONE;
		fail(&r, SCSI_SENSE_UNIT_ATTENTION, ASC_POWER_ON_RESET);
		return;
	}
	if (!d || !d->len) {
		fail(&r, SCSI_SENSE_ILLEGAL_REQUEST, ASC_INVALID_OPCODE);
		return;
	}
	if (cdb_len < d->len || (cdb[d->len - 1] & 0x04)) { /* short CDB; NACA */
		invalid_field(&r);
		return;
	}
	if ((d->flags & NEEDS_MEDIUM) && !lun->nblocks) {
		fail(&r, SCSI_SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT);
		return;
	}
	d->fn(&r);
}

int scsi_unmap_parse(const struct scsi_lun *lun, const uint8_t *param, size_t len,
		     struct scsi_unmap_desc *descs, struct scsi_sense *sense)
{
	uint32_t data_len, desc_len, ndesc;
	uint64_t total = 0;
	int n = 0;

	*sense = (struct scsi_sense){SCSI_SENSE_ILLEGAL_REQUEST, 0, 0};
	if (len < UNMAP_HEADER_LEN)
		goto param_len_error;
	data_len = get_be16(param);
	desc_len = get_be16(param + 2);
	/* The header promises more than the initiator sent. */
	if (data_len + 2 > len || desc_len + UNMAP_HEADER_LEN > len)
		goto param_len_error;
	ndesc = desc_len / UNMAP_DESC_LEN; /* an incomplete last one is ignored */
	if (ndesc > SCSI_MAX_UNMAP_DESC)
		goto invalid_param;
	for (uint32_t i = 0; i < ndesc; i++) {
		const uint8_t *p = param + UNMAP_HEADER_LEN + i * UNMAP_DESC_LEN;
		uint64_t lba = get_be64(p);
		uint32_t nb = get_be32(p + 8);

		if (out_of_range(lun->nblocks, lba, nb)) {
			sense->asc = ASC_LBA_OUT_OF_RANGE >> 8;
			return -1;
		}
		total += nb;
		if (nb) {
			descs[n].lba = lba;
			descs[n].nblocks = nb;
			n++;
		}
	}
	if (total > SCSI_MAX_UNMAP)
		goto invalid_param;
	*sense = (struct scsi_sense){SCSI_SENSE_NO_SENSE, 0, 0};
	return n;

param_len_error:
	sense->asc = ASC_PARAM_LIST_LEN_ERROR >> 8;
	return -1;
invalid_param:
	sense->asc = ASC_INVALID_FIELD_PARAM >> 8;
	return -1;
}

void scsi_sense_build(const struct scsi_sense *s, uint8_t out[SCSI_SENSE_LEN])
{
	memset(out, 0, SCSI_SENSE_LEN);
	out[0] = 0x70; /* current error, fixed format */
	out[2] = s->key & 0x0f;
	out[7] = SCSI_SENSE_LEN - 8; /* ADDITIONAL SENSE LENGTH */
	out[12] = s->asc;
	out[13] = s->ascq;
}

struct scsi_sense scsi_sense_from_errno(int error, bool is_read)
{
	uint16_t asc;
	uint8_t key = SCSI_SENSE_MEDIUM_ERROR;

	if (error < 0)
		error = -error;
	if (error == ENOSPC || error == EDQUOT) {
		key = SCSI_SENSE_DATA_PROTECT;
		asc = ASC_SPACE_ALLOC_FAILED;
	} else {
		asc = is_read ? ASC_UNRECOVERED_READ : ASC_WRITE_ERROR;
	}
	return (struct scsi_sense){key, (uint8_t)(asc >> 8), (uint8_t)asc};
}
