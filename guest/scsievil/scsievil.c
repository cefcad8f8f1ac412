// SPDX-License-Identifier: MIT
/*
 * Hands a virtio-scsi controller malformed requests, one case at a time,
 * and checks that it answers sensibly and keeps working: the blkevil idea
 * at the SCSI and virtio-scsi level.
 *
 * Cases (the device must complete the request, never hang, and not need a
 * reset, unless said otherwise):
 *   opcodes        every opcode 00h..FFh with a garbage CDB and a 4 KiB
 *                  data-in buffer: each completes
 *   long_cdb       a variable-length CDB (7Fh) claiming 200 more bytes than
 *                  the 32 there are: not GOOD
 *   huge_len10     READ (10) of 65535 blocks into 4 KiB: not GOOD
 *   huge_len16     READ (16) of 2^32 - 1 blocks into 4 KiB: not GOOD
 *   lba_2_64       READ (16) at LBA 2^64 - 1, and of 2 blocks at 2^64 - 1
 *                  (wrapping): ILLEGAL REQUEST, LBA OUT OF RANGE (21h)
 *   read_short_buf READ (10) of 8 blocks into 512 bytes: not GOOD, nothing
 *                  written past the buffer
 *   write_no_data  WRITE (10) of 1 block without a data-out buffer: not GOOD
 *   write_data_in  WRITE (10) with a data-in buffer instead: not GOOD
 *   mixed_dirs     READ (10) with both data-out and data-in buffers (no
 *                  VIRTIO_SCSI_F_INOUT): not GOOD
 *   any_layout     a good INQUIRY whose header and response are split over
 *                  several descriptors (virtio 1.x: any framing): GOOD
 *   short_header   a header of 25 bytes (< 51): NEEDS_RESET, or a
 *                  completion that is not GOOD
 *   no_response    header only, no device-writable buffer: NEEDS_RESET, or
 *                  a completion that wrote nothing
 *   short_response a 10-byte response buffer (< 108): NEEDS_RESET, or a
 *                  completion that wrote at most 10 bytes
 *   lun_not1       lun[0] = 2: response BAD_TARGET
 *   target5        target 5: response BAD_TARGET
 *   lun300         LUN 300: INQUIRY GOOD with peripheral qualifier 3 (7Fh),
 *                  TEST UNIT READY ILLEGAL REQUEST, LOGICAL UNIT NOT
 *                  SUPPORTED (25h)
 *   tmf_abort      ABORT TASK and QUERY TASK of a tag not in flight:
 *                  FUNCTION COMPLETE (0)
 *   tmf_lu_reset   LOGICAL UNIT RESET: FUNCTION COMPLETE; the next command
 *                  gets UNIT ATTENTION 29h, the one after GOOD
 *   tmf_bad_lun    LOGICAL UNIT RESET on target 5, lun[0] = 2 and LUN 300:
 *                  BAD_TARGET or INCORRECT_LUN
 *   tmf_bad_subtype a TMF of subtype 99: completes, not FUNCTION COMPLETE
 *   ctrl_unknown   control request type 1234h: completes or NEEDS_RESET
 *   ctrl_short     a TMF request of 4 bytes: completes or NEEDS_RESET
 * After a case that left the device in NEEDS_RESET, the driver resets it
 * and brings it up again (vscsi_restart), which must work. At the end: TEST
 * UNIT READY (after a unit attention; START UNIT if the unit is stopped),
 * INQUIRY, then WRITE and READ back of the LUN's last block.
 *
 * Command line: ctrl=N, lun=N (default 0), cases=a,b,... (default all),
 * allow=a,b,... (cases whose failure passes as `pass-allowed` as long as
 * the device keeps working: known differences of a device, e.g. QEMU 7.2
 * answers any_layout with VIRTIO_SCSI_S_FAILURE because it still takes the
 * first descriptor as the whole header unless the legacy ANY_LAYOUT feature
 * was negotiated), wait_ms=N (per request, default 2000), and the
 * driver options.
 *
 * Output: detail lines `scsievil:   ...`, then per case
 * `scsievil: case=NAME needs_reset=0|1 recovered=0|1 result=pass|pass-allowed|FAIL`
 * per case, `scsievil: final ok|FAILED`, `scsievil: N passed, M failed`.
 * Exit 0 if all passed and the final check worked, 1 otherwise, 3 if the
 * controller could not be set up.
 */
#include "guest.h"
#include "virtio_scsi.h"

#define BLOCK	 512
#define DATA_LEN 4096
#define GUARD	 64

static struct vscsi ctl;
static uint16_t lun;
static uint64_t wait_ms = 2000, last_lba;
static uint8_t *data, *out_data;
static uint64_t rng = 0x243f6a8885a308d3ull;
static struct virtio_scsi_cmd_req hdr;
static struct virtio_scsi_cmd_resp resp;
static bool needs_reset; /* the current case left NEEDS_RESET */

struct outcome {
	bool completed, needs_reset, timeout;
	uint32_t written;
};

static uint64_t rand64(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void put_be(uint8_t *p, uint64_t v, unsigned int bytes)
{
	for (unsigned int i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

/* A header for @cdb (@n bytes) to target 0 / @l. */
static void make_hdr(const uint8_t *cdb, unsigned int n, uint16_t l)
{
	static uint64_t tag = 1u << 20;

	hdr = (struct virtio_scsi_cmd_req){.tag = tag++};
	vscsi_lun_bytes(hdr.lun, 0, l);
	memcpy(hdr.cdb, cdb, n);
	memset(&resp, 0, sizeof(resp));
	resp.response = VSCSI_S_PENDING;
}

/* Send the chain @b (@nout readable, @nin writable) on the request queue
 * and wait for it: completed, or NEEDS_RESET, or nothing. */
static struct outcome send(const struct virtq_buf *b, unsigned int nout, unsigned int nin)
{
	struct outcome o = {0};
	uint64_t waits = 0;
	int e = virtq_add(&ctl.vq, b, nout, nin, &hdr);

	if (e) {
		printf("scsievil:   virtq_add: %d\n", e);
		return o;
	}
	virtq_kick(&ctl.vq);
	e = virtio_wait_used(&ctl.vd, &ctl.vq, false, tsc_ms(wait_ms), &waits);
	o.completed = !e && virtq_get(&ctl.vq, &o.written) == &hdr;
	o.needs_reset = virtio_status(&ctl.vd) & VIRTIO_STATUS_NEEDS_RESET;
	o.timeout = e == -ETIMEDOUT;
	needs_reset |= o.needs_reset;
	return o;
}

/* The usual chain: header, data-out, response, data-in (empty ones left out). */
static struct outcome send_cmd(const void *out, uint32_t out_len, void *in, uint32_t in_len)
{
	struct virtq_buf b[4];
	unsigned int nout = 0, nin = 0;

	b[nout++] = (struct virtq_buf){&hdr, sizeof(hdr)};
	if (out_len)
		b[nout++] = (struct virtq_buf){out, out_len};
	b[nout + nin++] = (struct virtq_buf){&resp, sizeof(resp)};
	if (in_len)
		b[nout + nin++] = (struct virtq_buf){in, in_len};
	return send(b, nout, nin);
}

static void say(const char *name, const struct outcome *o)
{
	printf("scsievil:   %s: completed=%d needs_reset=%d timeout=%d written=%u response=%u "
	       "status=0x%x sense=%x/%02xh/%02xh\n",
	       name, o->completed, o->needs_reset, o->timeout, o->written, resp.response,
	       resp.status, resp.sense[2] & 0xf, resp.sense[12], resp.sense[13]);
}

/* Completed, without a reset, and not GOOD. */
static bool refused(const char *name, const struct outcome *o)
{
	say(name, o);
	return o->completed && !o->needs_reset &&
	       !(resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_GOOD);
}

static bool sense_is(uint8_t key, uint8_t asc)
{
	return resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_CHECK_CONDITION &&
	       resp.sense_len >= 14 && (resp.sense[2] & 0xf) == key && resp.sense[12] == asc;
}

static bool c_opcodes(void)
{
	unsigned int done = 0, good = 0, check = 0, other = 0;

	for (unsigned int op = 0; op < 256; op++) {
		uint8_t cdb[VIRTIO_SCSI_CDB_SIZE];
		for (unsigned int i = 0; i < sizeof(cdb); i++)
			cdb[i] = (uint8_t)rand64();
		cdb[0] = op;
		make_hdr(cdb, sizeof(cdb), lun);
		struct outcome o = send_cmd(NULL, 0, data, DATA_LEN);
		if (!o.completed || o.needs_reset) {
			char name[16];
			snprintf(name, sizeof(name), "opcode %02x", op);
			say(name, &o);
			return false;
		}
		done++;
		if (resp.response != VIRTIO_SCSI_S_OK)
			other++;
		else if (resp.status == SCSI_GOOD)
			good++;
		else
			check++;
	}
	printf("scsievil:   opcodes: %u completed: %u GOOD, %u not GOOD, %u other responses\n",
	       done, good, check, other);
	return done == 256;
}

static bool c_long_cdb(void)
{
	uint8_t cdb[VIRTIO_SCSI_CDB_SIZE] = {0x7f, 0, 0, 0, 0, 0, 0, 200, 0, 0x09};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, data, DATA_LEN);
	return refused("long_cdb", &o);
}

static bool c_huge_len10(void)
{
	uint8_t cdb[10] = {SCSI_READ10, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, data, DATA_LEN);
	return refused("huge_len10", &o);
}

static bool c_huge_len16(void)
{
	uint8_t cdb[16] = {SCSI_READ16};

	put_be(cdb + 10, 0xffffffff, 4);
	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, data, DATA_LEN);
	return refused("huge_len16", &o);
}

static bool c_lba_2_64(void)
{
	bool ok = true;

	for (uint32_t n = 1; n <= 2; n++) {
		uint8_t cdb[16] = {SCSI_READ16};
		put_be(cdb + 2, UINT64_MAX, 8);
		put_be(cdb + 10, n, 4);
		make_hdr(cdb, sizeof(cdb), lun);
		struct outcome o = send_cmd(NULL, 0, data, n * BLOCK);
		say(n == 1 ? "lba 2^64-1" : "2 blocks at 2^64-1", &o);
		ok = ok && o.completed && sense_is(SCSI_SENSE_ILLEGAL_REQUEST, 0x21);
	}
	return ok;
}

static bool c_read_short_buf(void)
{
	uint8_t cdb[10] = {SCSI_READ10, 0, 0, 0, 0, 0, 0, 0, 8};
	bool guard_ok = true;

	memset(data, 0xa5, BLOCK + GUARD);
	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, data, BLOCK);
	for (unsigned int i = BLOCK; i < BLOCK + GUARD; i++)
		guard_ok = guard_ok && data[i] == 0xa5;
	if (!guard_ok)
		printf("scsievil:   read_short_buf: the device wrote past the buffer\n");
	return refused("read_short_buf", &o) && guard_ok;
}

static bool c_write_no_data(void)
{
	uint8_t cdb[10] = {SCSI_WRITE10, 0, 0, 0, 0, 0, 0, 0, 1};

	put_be(cdb + 2, last_lba, 4);
	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, NULL, 0);
	return refused("write_no_data", &o);
}

static bool c_write_data_in(void)
{
	uint8_t cdb[10] = {SCSI_WRITE10, 0, 0, 0, 0, 0, 0, 0, 1};

	put_be(cdb + 2, last_lba, 4);
	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, data, BLOCK);
	return refused("write_data_in", &o);
}

static bool c_mixed_dirs(void)
{
	uint8_t cdb[10] = {SCSI_READ10, 0, 0, 0, 0, 0, 0, 0, 1};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(out_data, BLOCK, data, BLOCK);
	return refused("mixed_dirs", &o);
}

static bool c_any_layout(void)
{
	uint8_t cdb[6] = {SCSI_INQUIRY, 0, 0, 0, 96};
	const uint8_t *h = (const uint8_t *)&hdr, *r = (const uint8_t *)&resp;
	struct virtq_buf b[] = {{h, 7},	    {h + 7, 13},    {h + 20, sizeof(hdr) - 20},
				{r, 5},	    {r + 5, 20},    {r + 25, sizeof(resp) - 25},
				{data, 40}, {data + 40, 56}};

	make_hdr(cdb, sizeof(cdb), lun);
	memset(data, 0xee, 96);
	struct outcome o = send(b, 3, 5);
	say("any_layout", &o);
	return o.completed && resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_GOOD &&
	       data[0] == 0x00 && data[4] >= 31;
}

/* A transport-level mistake: NEEDS_RESET, or a completion @ok accepts. */
static bool reset_or(const char *name, const struct outcome *o, bool ok)
{
	say(name, o);
	return o->needs_reset || (o->completed && ok);
}

static bool c_short_header(void)
{
	uint8_t cdb[6] = {SCSI_INQUIRY, 0, 0, 0, 96};
	struct virtq_buf b[] = {{&hdr, 25}, {&resp, sizeof(resp)}, {data, 96}};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send(b, 1, 2);
	return reset_or("short_header", &o,
			!(resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_GOOD));
}

static bool c_no_response(void)
{
	uint8_t cdb[6] = {SCSI_TEST_UNIT_READY};
	struct virtq_buf b[] = {{&hdr, sizeof(hdr)}};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send(b, 1, 0);
	return reset_or("no_response", &o, o.written == 0);
}

static bool c_short_response(void)
{
	uint8_t cdb[6] = {SCSI_TEST_UNIT_READY};
	struct virtq_buf b[] = {{&hdr, sizeof(hdr)}, {&resp, 10}};

	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send(b, 1, 1);
	return reset_or("short_response", &o, o.written <= 10);
}

static bool c_lun_not1(void)
{
	uint8_t cdb[6] = {SCSI_TEST_UNIT_READY};

	make_hdr(cdb, sizeof(cdb), lun);
	hdr.lun[0] = 2;
	struct outcome o = send_cmd(NULL, 0, NULL, 0);
	say("lun_not1", &o);
	return o.completed && !o.needs_reset && resp.response == VIRTIO_SCSI_S_BAD_TARGET;
}

static bool c_target5(void)
{
	uint8_t cdb[6] = {SCSI_INQUIRY, 0, 0, 0, 96};

	make_hdr(cdb, sizeof(cdb), lun);
	hdr.lun[1] = 5;
	struct outcome o = send_cmd(NULL, 0, data, 96);
	say("target5", &o);
	return o.completed && !o.needs_reset && resp.response == VIRTIO_SCSI_S_BAD_TARGET;
}

static bool c_lun300(void)
{
	uint8_t inq[6] = {SCSI_INQUIRY, 0, 0, 0, 96}, tur[6] = {SCSI_TEST_UNIT_READY};
	bool ok;

	/* QEMU 7.2 answers a command for a missing LUN with the unit attention
	 * LUN 0 holds (after a reset): clear ours first. */
	scsi_test_unit_ready(&ctl, lun);
	make_hdr(inq, sizeof(inq), 300);
	memset(data, 0, 96);
	struct outcome o = send_cmd(NULL, 0, data, 96);
	say("lun300 inquiry", &o);
	printf("scsievil:   lun300: inquiry byte 0 = 0x%02x\n", data[0]);
	ok = o.completed && resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_GOOD &&
	     data[0] == 0x7f;
	make_hdr(tur, sizeof(tur), 300);
	o = send_cmd(NULL, 0, NULL, 0);
	say("lun300 test unit ready", &o);
	return ok && o.completed && sense_is(SCSI_SENSE_ILLEGAL_REQUEST, 0x25);
}

static bool tmf(const char *name, uint32_t subtype, const uint8_t lunb[8], uint64_t tag,
		uint8_t *response)
{
	struct virtio_scsi_ctrl_tmf_req req = {
	    .type = VIRTIO_SCSI_T_TMF, .subtype = subtype, .tag = tag};
	struct virtio_scsi_ctrl_tmf_resp r = {VSCSI_S_PENDING};
	uint32_t written;

	memcpy(req.lun, lunb, 8);
	int e = vscsi_ctrl_raw(&ctl, &req, sizeof(req), &r, sizeof(r), &written);
	*response = r.response;
	printf("scsievil:   %s: %d response %u written %u\n", name, e, r.response, written);
	needs_reset |= e == -EIO;
	return e == 0;
}

static bool c_tmf_abort(void)
{
	uint8_t l[8], r1, r2;

	vscsi_lun_bytes(l, 0, lun);
	bool ok = tmf("abort task", VIRTIO_SCSI_T_TMF_ABORT_TASK, l, 0xdead, &r1) && r1 == 0;
	return tmf("query task", VIRTIO_SCSI_T_TMF_QUERY_TASK, l, 0xdead, &r2) && r2 == 0 && ok;
}

static bool c_tmf_lu_reset(void)
{
	uint8_t l[8], r, cdb[6] = {SCSI_TEST_UNIT_READY};
	bool ok;

	vscsi_lun_bytes(l, 0, lun);
	if (!tmf("logical unit reset", VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, l, 0, &r) || r != 0)
		return false;
	make_hdr(cdb, sizeof(cdb), lun);
	struct outcome o = send_cmd(NULL, 0, NULL, 0);
	say("first command after the reset", &o);
	ok = o.completed && sense_is(SCSI_SENSE_UNIT_ATTENTION, 0x29);
	make_hdr(cdb, sizeof(cdb), lun);
	o = send_cmd(NULL, 0, NULL, 0);
	say("second command", &o);
	return ok && o.completed && resp.response == VIRTIO_SCSI_S_OK && resp.status == SCSI_GOOD;
}

static bool c_tmf_bad_lun(void)
{
	uint8_t l[3][8], r;
	bool ok = true;

	vscsi_lun_bytes(l[0], 5, lun);
	vscsi_lun_bytes(l[1], 0, lun);
	l[1][0] = 2;
	vscsi_lun_bytes(l[2], 0, 300);
	for (int i = 0; i < 3; i++)
		ok = tmf(i == 0	  ? "reset target 5"
			 : i == 1 ? "reset lun[0]=2"
				  : "reset lun 300",
			 VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, l[i], 0, &r) &&
		     (r == VIRTIO_SCSI_S_BAD_TARGET || r == VIRTIO_SCSI_S_INCORRECT_LUN) && ok;
	return ok;
}

static bool c_tmf_bad_subtype(void)
{
	uint8_t l[8], r;

	vscsi_lun_bytes(l, 0, lun);
	return tmf("tmf subtype 99", 99, l, 0, &r) && r != 0 && r != VSCSI_S_PENDING;
}

static bool c_ctrl_unknown(void)
{
	uint32_t req[6] = {0x1234};
	uint8_t r[8] = {VSCSI_S_PENDING};
	uint32_t written;
	int e = vscsi_ctrl_raw(&ctl, req, sizeof(req), r, sizeof(r), &written);

	printf("scsievil:   ctrl type 0x1234: %d response %u written %u\n", e, r[0], written);
	needs_reset |= e == -EIO;
	return e == 0 || e == -EIO;
}

static bool c_ctrl_short(void)
{
	uint32_t req = VIRTIO_SCSI_T_TMF;
	uint8_t r = VSCSI_S_PENDING;
	uint32_t written;
	int e = vscsi_ctrl_raw(&ctl, &req, sizeof(req), &r, 1, &written);

	printf("scsievil:   4-byte tmf: %d response %u written %u\n", e, r, written);
	needs_reset |= e == -EIO;
	return e == 0 || e == -EIO;
}

struct evil_case {
	const char *name;
	bool (*run)(void);
};

static const struct evil_case cases[] = {
    {"opcodes", c_opcodes},
    {"long_cdb", c_long_cdb},
    {"huge_len10", c_huge_len10},
    {"huge_len16", c_huge_len16},
    {"lba_2_64", c_lba_2_64},
    {"read_short_buf", c_read_short_buf},
    {"write_no_data", c_write_no_data},
    {"write_data_in", c_write_data_in},
    {"mixed_dirs", c_mixed_dirs},
    {"any_layout", c_any_layout},
    {"short_header", c_short_header},
    {"no_response", c_no_response},
    {"short_response", c_short_response},
    {"lun_not1", c_lun_not1},
    {"target5", c_target5},
    {"lun300", c_lun300},
    {"tmf_abort", c_tmf_abort},
    {"tmf_lu_reset", c_tmf_lu_reset},
    {"tmf_bad_lun", c_tmf_bad_lun},
    {"tmf_bad_subtype", c_tmf_bad_subtype},
    {"ctrl_unknown", c_ctrl_unknown},
    {"ctrl_short", c_ctrl_short},
};

/* After NEEDS_RESET: reset, bring up, INQUIRY works. */
static bool recover(void)
{
	int e = vscsi_restart(&ctl);

	if (e) {
		printf("scsievil:   restart failed: %d (status 0x%x)\n", e, virtio_status(&ctl.vd));
		return false;
	}
	e = scsi_inquiry(&ctl, lun, false, 0, data, 96);
	if (e) {
		printf("scsievil:   inquiry after the reset: %d\n", e);
		return false;
	}
	return true;
}

/* The device still works: TUR, INQUIRY, WRITE + READ of the last block. */
static bool final_check(void)
{
	int e = scsi_test_unit_ready(&ctl, lun);
	struct vscsi_sense sn;

	if (e > 0 && vscsi_sense(&ctl.sync, &sn) && sn.key == SCSI_SENSE_NOT_READY) {
		/* A garbage START STOP UNIT may have stopped it: start it. */
		static const uint8_t start[6] = {0x1b, 0, 0, 0, 1};
		ctl.sync = (struct vscsi_req){.lun = lun};
		memcpy(ctl.sync.cdb, start, sizeof(start));
		printf("scsievil: unit not ready: START UNIT: %d\n", vscsi_do(&ctl, &ctl.sync));
		e = scsi_test_unit_ready(&ctl, lun);
	}
	if (e) {
		printf("scsievil: final test unit ready: %d\n", e);
		return false;
	}
	e = scsi_inquiry(&ctl, lun, false, 0, data, 96);
	if (e || data[0] != 0) {
		printf("scsievil: final inquiry: %d\n", e);
		return false;
	}
	for (unsigned int i = 0; i < BLOCK; i++)
		out_data[i] = (uint8_t)rand64();
	e = scsi_write10(&ctl, lun, last_lba, 1, out_data, BLOCK);
	if (!e)
		e = scsi_read16(&ctl, lun, last_lba, 1, data, BLOCK);
	if (e || memcmp(data, out_data, BLOCK)) {
		printf("scsievil: final write and read back: %d\n", e);
		return false;
	}
	return true;
}

static long run(void *arg)
{
	unsigned int passed = 0, failed = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct evil_case *c = &cases[i];
		if (!cmdline_listed("cases", c->name, true))
			continue;
		needs_reset = false;
		bool ok = c->run();
		bool recovered = !needs_reset || recover();
		const char *result = ok && recovered ? "pass"
				     : recovered && cmdline_listed("allow", c->name, false)
					 ? "pass-allowed"
					 : "FAIL";
		printf("scsievil: case=%s needs_reset=%d recovered=%d result=%s\n", c->name,
		       needs_reset, recovered, result);
		if (result[0] == 'p')
			passed++;
		else
			failed++;
		if (!recovered)
			break;
	}
	bool fin = final_check();
	printf("scsievil: final %s\n", fin ? "ok" : "FAILED");
	printf("scsievil: %u passed, %u failed\n", passed, failed);
	return failed || !fin ? 1 : 0;
}

int main(void)
{
	uint64_t v = 0;
	uint32_t bl;

	cmdline_get_u64("ctrl", &v);
	if (vscsi_open(&ctl, v, "scsievil"))
		return 3;
	if (!cmdline_get_u64("lun", &v))
		lun = v;
	cmdline_get_u64("wait_ms", &wait_ms);
	data = mem_alloc(DATA_LEN + GUARD, 4096);
	out_data = mem_alloc(DATA_LEN, 4096);
	if (!data || !out_data) {
		printf("scsievil: out of memory\n");
		return 3;
	}
	if (scsi_test_unit_ready(&ctl, lun) ||
	    scsi_read_capacity16(&ctl, lun, &last_lba, &bl, NULL, 0) || bl != BLOCK) {
		printf("scsievil: lun %u: not ready or no 512-byte blocks\n", lun);
		return 3;
	}
	return user_call(run, NULL);
}
