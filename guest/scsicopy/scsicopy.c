// SPDX-License-Identifier: MIT
/*
 * blkcopy over virtio-scsi: checks what a disk LUN answers (SPC/SBC), then
 * copies the first half of the LUN onto its second half with READ/WRITE
 * (10) and (16) (the workload of guest/lib/diskcopy.c over disk_drv.h's
 * disk_scsi_ops: mixed sizes and segmentation, up to depth=N in flight),
 * SYNCHRONIZE CACHE, and compares the halves.
 *
 * Checks, one line each (`scsicopy: check NAME ok` or `... FAILED: why`):
 *   tur            TEST UNIT READY is GOOD (after at most one UNIT ATTENTION)
 *   inquiry        standard data: direct-access device, version >= SPC-3
 *                  (5), response format 2, additional length >= 31, ASCII
 *                  vendor/product/revision
 *   vpd_00         supported pages: ascending, with 00, 83, b0, b1, b2 (and
 *                  80 if the device has a serial or serial= is given)
 *   vpd_XX         each listed page: header (device type, page code),
 *                  length within what was read; 80: ASCII (equal to serial=
 *                  if given); 83: designation descriptors that fit, at least
 *                  one for the logical unit; b0, b1: length 3Ch; b2: >= 4
 *   capacity10/16  READ CAPACITY (10) and (16): 512-byte blocks, the same
 *                  last LBA, equal to blocks=N - 1 if given
 *   mode_sense     MODE SENSE (6): GOOD, WP bit set iff `readonly`
 *   report_luns    REPORT LUNS (to LUN 0, which SPC-4 requires to take it,
 *                  present or not): a whole list holding this LUN (and
 *                  nluns=N entries if given)
 *   read_last      READ (10) and (16) of the last block: GOOD
 *   read_oob10/16  READ of the block after the last, and of two blocks from
 *                  the last: CHECK CONDITION, ILLEGAL REQUEST, LBA OUT OF
 *                  RANGE (21h/00h)
 *   bad_opcode     opcode E7h (vendor specific, which neither QEMU nor
 *                  kvmini implements): ILLEGAL REQUEST, INVALID COMMAND
 *                  OPERATION CODE (20h/00h)
 * With `readonly` the copy is replaced by:
 *   write_protect  WRITE (10) and (16) of block 0: CHECK CONDITION, DATA
 *                  PROTECT, WRITE PROTECTED (27h); block 0 unchanged
 *
 * Command line: ctrl=N (virtio-scsi controller, default 0), lun=N (default
 * 0), cdb=10|16|mix (CDB size of the copy's requests, default mix),
 * blocks=N, serial=S, nluns=N (expectations), readonly, checks_only (no
 * copy), and diskcopy's depth=, maxkb=, seed=, verify_only, and the
 * driver options (irq, qsize=, segs=, noindirect, noevent_idx).
 *
 * Output: the check lines, `scsicopy: N checks passed, M failed`, then
 * diskcopy's lines (`scsicopy: copied ...`, `flush status 0`, `verified
 * ... match`). Exit: 0 all passed, 1 copy mismatch, 2 I/O error, 3 setup
 * failure, 4 a check failed (the copy still runs).
 */
#include "diskcopy.h"
#include "guest.h"
#include "virtio_scsi.h"

#define BLOCK	       512
#define UNSUPPORTED    0xe7
#define INQ_LEN	       96
#define VPD_LEN	       252
#define RLUNS_LEN      (8 + 8 * 256)
#define MODE_SENSE_LEN 192

static struct disk disk; /* the copy's requests go through disk_scsi_ops */
static struct vscsi *ctl = &disk.u.scsi.ctl;
static uint16_t lun;
static uint64_t last_lba;
static bool readonly;
static unsigned int passed, failed;
static uint8_t *buf, *buf2; /* check buffers */

static bool check(const char *name, bool ok, const char *why)
{
	if (ok) {
		printf("scsicopy: check %s ok\n", name);
		passed++;
	} else {
		printf("scsicopy: check %s FAILED: %s\n", name, why);
		failed++;
	}
	return ok;
}

/* Describe the outcome of s->sync as "result R (sense K/ASC/ASCQ)". */
static const char *outcome(int e)
{
	static char why[96];
	struct vscsi_sense sn;

	if (e < 0)
		snprintf(why, sizeof(why), "transport error %d", e);
	else if (vscsi_sense(&ctl->sync, &sn))
		snprintf(why, sizeof(why), "response %d status 0x%x sense %x/%02xh/%02xh",
			 VSCSI_RESPONSE(e), VSCSI_STATUS(e), sn.key, sn.asc, sn.ascq);
	else
		snprintf(why, sizeof(why), "response %d status 0x%x, no sense", VSCSI_RESPONSE(e),
			 VSCSI_STATUS(e));
	return why;
}

static bool ascii(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

static uint32_t be16(const uint8_t *p)
{
	return p[0] << 8 | p[1];
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
}

static void check_inquiry(void)
{
	int e = scsi_inquiry(ctl, lun, false, 0, buf, INQ_LEN);

	if (!check("inquiry", e == 0, outcome(e)))
		return;
	printf("scsicopy: inquiry: type 0x%02x version %u \"%.8s\" \"%.16s\" \"%.4s\"\n", buf[0],
	       buf[2], (char *)buf + 8, (char *)buf + 16, (char *)buf + 32);
	check("inquiry_data",
	      buf[0] == 0x00 && buf[2] >= 5 && (buf[3] & 0xf) == 2 && buf[4] >= 31 &&
		  ascii(buf + 8, 28),
	      "not a direct-access device answering SPC-3+ standard data");
}

/* Page 80h: the unit serial number. */
static bool vpd_80(const uint8_t *p, uint32_t n)
{
	const char *want;
	size_t wlen;

	if (!ascii(p + 4, n))
		return false;
	while (n && p[3 + n] == ' ') /* trailing spaces pad the field */
		n--;
	printf("scsicopy: serial \"%.*s\"\n", (int)n, (const char *)p + 4);
	if (cmdline_get("serial", &want, &wlen))
		return true;
	return n == wlen && !memcmp(p + 4, want, n);
}

/* Page 83h: designation descriptors that fit; one is for the logical unit. */
static bool vpd_83(const uint8_t *p, uint32_t n)
{
	bool lu = false;
	uint32_t off = 4;

	while (off < 4 + n) {
		if (off + 4 > 4 + n || off + 4 + p[off + 3] > 4 + n)
			return false;
		if (((p[off + 1] >> 4) & 3) == 0) /* association: the logical unit */
			lu = true;
		off += 4 + p[off + 3];
	}
	return lu;
}

static void check_vpd_page(uint8_t page)
{
	char name[16];
	bool ok;
	int e;

	snprintf(name, sizeof(name), "vpd_%02x", page);
	memset(buf, 0xcc, VPD_LEN);
	e = scsi_inquiry(ctl, lun, true, page, buf, VPD_LEN);
	if (!check(name, e == 0, outcome(e)))
		return;
	uint32_t n = be16(buf + 2);
	if (buf[0] != 0 || buf[1] != page || 4 + n > VPD_LEN) {
		check(name, false, "bad header");
		return;
	}
	switch (page) {
	case 0x80:
		ok = vpd_80(buf, n);
		break;
	case 0x83:
		ok = vpd_83(buf, n);
		break;
	case 0xb0:
		ok = n == 0x3c;
		if (ok)
			printf("scsicopy: block limits: max transfer %u blocks, optimal %u\n",
			       be32(buf + 8), be32(buf + 12));
		break;
	case 0xb1:
		ok = n == 0x3c;
		break;
	case 0xb2:
		ok = n >= 4;
		break;
	default:
		ok = true;
	}
	snprintf(name, sizeof(name), "vpd_%02x_data", page);
	check(name, ok, "malformed page");
}

static void check_vpd(void)
{
	static const uint8_t need[] = {0x00, 0x83, 0xb0, 0xb1, 0xb2};
	uint8_t pages[VPD_LEN];
	bool ok = true, has80 = false;
	int e = scsi_inquiry(ctl, lun, true, 0x00, buf, VPD_LEN);
	uint32_t n;

	if (!check("vpd_00", e == 0, outcome(e)))
		return;
	n = be16(buf + 2);
	if (buf[1] != 0 || 4 + n > VPD_LEN) {
		check("vpd_00_data", false, "bad header");
		return;
	}
	memcpy(pages, buf + 4, n);
	printf("scsicopy: vpd pages:");
	for (uint32_t i = 0; i < n; i++) {
		printf(" %02x", pages[i]);
		if (i && pages[i] <= pages[i - 1])
			ok = false;
		has80 |= pages[i] == 0x80;
	}
	printf("\n");
	for (size_t k = 0; k < sizeof(need); k++) {
		bool listed = false;
		for (uint32_t i = 0; i < n; i++)
			listed |= pages[i] == need[k];
		ok = ok && listed;
	}
	if (cmdline_has("serial") && !has80)
		ok = false;
	check("vpd_00_data", ok, "pages missing or out of order");
	for (uint32_t i = 0; i < n; i++)
		if (pages[i])
			check_vpd_page(pages[i]);
}

static void check_capacity(void)
{
	uint32_t last10, bl10, bl16;
	uint64_t want;
	int e = scsi_read_capacity10(ctl, lun, &last10, &bl10);

	if (!check("capacity10", e == 0, outcome(e)))
		return;
	e = scsi_read_capacity16(ctl, lun, &last_lba, &bl16, NULL, 0);
	if (!check("capacity16", e == 0, outcome(e)))
		return;
	printf("scsicopy: capacity: last lba %lu, block %u bytes\n", last_lba, bl16);
	bool ok = bl10 == BLOCK && bl16 == BLOCK &&
		  (last_lba >= 0xffffffff ? last10 == 0xffffffff : last10 == last_lba);
	if (!cmdline_get_u64("blocks", &want))
		ok = ok && last_lba + 1 == want;
	check("capacity", ok, "READ CAPACITY (10) and (16) disagree, or not the expected size");
}

static void check_mode_sense(void)
{
	uint8_t cdb[6] = {SCSI_MODE_SENSE6, 0, 0x3f, 0, MODE_SENSE_LEN};
	struct vscsi_req *r = &ctl->sync;
	int e;

	*r = (struct vscsi_req){.lun = lun, .in = buf, .in_len = MODE_SENSE_LEN};
	memcpy(r->cdb, cdb, sizeof(cdb));
	e = vscsi_do(ctl, r);
	if (!check("mode_sense", e == 0, outcome(e)))
		return;
	/* header: mode data length, medium type, device-specific (WP = bit 7) */
	check("mode_sense_wp", buf[0] >= 3 && !!(buf[2] & 0x80) == readonly,
	      readonly ? "WP not set on a read-only LUN" : "WP set on a writable LUN");
}

static void check_report_luns(void)
{
	uint64_t want = 0;
	/* To LUN 0: SPC-4 requires REPORT LUNS there (or at the well-known
	 * LUN), not on every LUN; QEMU 7.2 refuses it on others (25h). */
	int e = scsi_report_luns(ctl, 0, buf, RLUNS_LEN);
	bool found = false;

	if (!check("report_luns", e == 0, outcome(e)))
		return;
	uint32_t len = be32(buf), n = len / 8;
	printf("scsicopy: report luns:");
	for (uint32_t i = 0; i < n && 8 + 8 * i + 8 <= RLUNS_LEN; i++) {
		const uint8_t *p = buf + 8 + 8 * i;
		/* peripheral (00b, bus 0) or flat space (01b) addressing */
		unsigned int method = p[0] >> 6, l = (p[0] & 0x3f) << 8 | p[1];
		if (method == 0 && (p[0] & 0x3f))
			continue;
		if (method == 0 || method == 1) {
			printf(" %u", method == 0 ? p[1] : l);
			found |= (method == 0 ? p[1] : l) == lun;
		}
	}
	printf("\n");
	bool ok = len % 8 == 0 && found;
	if (!cmdline_get_u64("nluns", &want))
		ok = ok && n == want;
	check("report_luns_data", ok, "this LUN missing, or a list of the wrong length");
}

static void check_reads(void)
{
	int e;

	e = scsi_read10(ctl, lun, last_lba, 1, buf, BLOCK);
	check("read_last10", e == 0, outcome(e));
	e = scsi_read16(ctl, lun, last_lba, 1, buf2, BLOCK);
	check("read_last16", e == 0 && !memcmp(buf, buf2, BLOCK), outcome(e));
	e = scsi_read10(ctl, lun, last_lba + 1, 1, buf, BLOCK);
	check("read_oob10", vscsi_check(&ctl->sync, e, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0),
	      outcome(e));
	e = scsi_read16(ctl, lun, last_lba, 2, buf, 2 * BLOCK);
	check("read_oob16", vscsi_check(&ctl->sync, e, SCSI_SENSE_ILLEGAL_REQUEST, 0x21, 0),
	      outcome(e));
	ctl->sync = (struct vscsi_req){.lun = lun, .in = buf, .in_len = BLOCK};
	ctl->sync.cdb[0] = UNSUPPORTED;
	e = vscsi_do(ctl, &ctl->sync);
	check("bad_opcode", vscsi_check(&ctl->sync, e, SCSI_SENSE_ILLEGAL_REQUEST, 0x20, 0),
	      outcome(e));
}

static void check_write_protect(void)
{
	int e;

	e = scsi_read10(ctl, lun, 0, 1, buf, BLOCK);
	if (!check("read_block0", e == 0, outcome(e)))
		return;
	for (unsigned int cdb = 10; cdb <= 16; cdb += 6) {
		memcpy(buf2, buf, BLOCK);
		buf2[0] ^= 0xff;
		e = scsi_rw(ctl, lun, true, cdb, 0, 1, buf2, BLOCK);
		check(cdb == 10 ? "write_protect10" : "write_protect16",
		      vscsi_check(&ctl->sync, e, SCSI_SENSE_DATA_PROTECT, 0x27, -1), outcome(e));
	}
	e = scsi_read10(ctl, lun, 0, 1, buf2, BLOCK);
	check("write_protect_unchanged", e == 0 && !memcmp(buf, buf2, BLOCK), "block 0 changed");
}

static void checks(void)
{
	int e = scsi_test_unit_ready(ctl, lun);

	check("tur", e == 0, outcome(e));
	check_inquiry();
	check_vpd();
	check_capacity();
	check_mode_sense();
	check_report_luns();
	if (last_lba)
		check_reads();
	if (readonly)
		check_write_protect();
	printf("scsicopy: %u checks passed, %u failed\n", passed, failed);
}

static struct diskcopy copy = {.disk = &disk};

static long run(void *arg)
{
	long r;

	checks();
	if (readonly || cmdline_has("checks_only"))
		return failed ? 4 : 0;
	disk.sectors = last_lba + 1;
	copy.half = disk.sectors / 2;
	if (copy.half == 0) {
		printf("scsicopy: LUN too small (%lu blocks)\n", last_lba + 1);
		return 3;
	}
	printf("scsicopy: copying %lu sectors, depth %u, requests up to %u sectors, cdb %s\n",
	       copy.half, copy.depth, copy.max_sectors,
	       disk.u.scsi.cdb == 10   ? "10"
	       : disk.u.scsi.cdb == 16 ? "16"
				       : "mix");
	r = diskcopy_run(&copy, cmdline_has("verify_only"));
	return r ? r : failed ? 4 : 0;
}

int main(void)
{
	if (disk_scsi_attach(&disk, "scsicopy"))
		return 3;
	lun = disk.u.scsi.lun;
	readonly = cmdline_has("readonly");
	buf = mem_alloc(RLUNS_LEN, 4096);
	buf2 = mem_alloc(BLOCK, 4096);
	if (!buf || !buf2 || diskcopy_setup(&copy))
		return 3;
	printf("scsicopy: lun %u%s\n", lun, readonly ? " (read-only expected)" : "");
	return user_call(run, NULL);
}
