// SPDX-License-Identifier: MIT
/*
 * Task management with requests really in flight (virtio 1.x 5.6.6.1):
 * each round queues `writes` large WRITE (16)s (one shared data-out
 * buffer, all to the same blocks), then sends one TMF on the control queue
 * while they run, and checks what the spec promises:
 *   abort_task   ABORT TASK of the last write queued: FUNCTION COMPLETE, and
 *                by then that write has been returned, ABORTED or OK (if it
 *                finished first)
 *   query        QUERY TASK of a tag never used: FUNCTION COMPLETE;
 *                QUERY TASK SET while writes run: SUCCEEDED or COMPLETE
 *   abort_set    ABORT TASK SET: FUNCTION COMPLETE, and every write of the
 *                round has been returned (ABORTED or OK) by then
 *   lu_reset     LOGICAL UNIT RESET: as abort_set, but the cancelled writes
 *                return RESET (the spec: cancelled by a reset, "including a
 *                task management function"); then the next command gets
 *                UNIT ATTENTION 29h and the one after GOOD
 *   nexus_reset  I_T NEXUS RESET: as lu_reset
 * In every round each write comes back exactly once (by tag), none with
 * anything but OK or the round's cancel response; a final WRITE + READ of block 0 must work.
 *
 * Command line: ctrl=N, lun=N, writes=N (default 24, at most 64), kb=N
 * (per write, default 4096), and the driver options.
 * Output: `scsitmf: round NAME tmf=R returned_before_tmf=N/M ok=A aborted=B
 * result=pass|FAIL`, then `scsitmf: aborted T of W writes in all` and
 * `scsitmf: ok` or `scsitmf: FAILED`. Exit 0 if all passed, 1 if not, 3 if
 * the controller could not be set up.
 */
#include "guest.h"
#include "virtio_scsi.h"

#define BLOCK	   512
#define MAX_WRITES 64

static struct vscsi ctl;
static uint16_t lun;
static uint64_t nwrites = 24, kb = 4096;
static uint8_t *data, *block;
static struct vscsi_req reqs[MAX_WRITES];
static unsigned int returned[MAX_WRITES];
static uint64_t total_aborted, total_writes;

/* Queue the round's writes and kick. False if the queue refused one. */
static bool queue_writes(void)
{
	uint32_t nblocks = (uint32_t)(kb * 1024 / BLOCK);

	for (unsigned int i = 0; i < nwrites; i++) {
		vscsi_prep_rw(&reqs[i], lun, true, 16, 0, nblocks, data, (uint32_t)(kb * 1024));
		reqs[i].user = &returned[i];
		returned[i] = 0;
		if (vscsi_submit(&ctl, &reqs[i])) {
			printf("scsitmf: submit %u failed\n", i);
			return false;
		}
	}
	vscsi_kick(&ctl);
	return true;
}

/* Collect every write of the round; each once, OK or @cancelled. */
static bool collect(uint8_t cancelled, unsigned int *ok, unsigned int *aborted)
{
	*ok = *aborted = 0;
	while (vscsi_inflight(&ctl)) {
		struct vscsi_req *r = vscsi_wait(&ctl, tsc_ms(VSCSI_TIMEOUT_MS));

		if (!r) {
			printf("scsitmf: a write never came back (%d)\n", ctl.error);
			return false;
		}
		(*(unsigned int *)r->user)++;
	}
	for (unsigned int i = 0; i < nwrites; i++) {
		int e = vscsi_result(&reqs[i]);

		if (returned[i] != 1) {
			printf("scsitmf: write %u returned %u times\n", i, returned[i]);
			return false;
		}
		if (e == 0)
			(*ok)++;
		else if (VSCSI_RESPONSE(e) == cancelled)
			(*aborted)++;
		else {
			printf("scsitmf: write %u: response %d status 0x%x\n", i, VSCSI_RESPONSE(e),
			       VSCSI_STATUS(e));
			return false;
		}
	}
	return true;
}

/* How many of writes [from, nwrites) have their response written now. */
static unsigned int answered(unsigned int from)
{
	unsigned int n = 0;

	for (unsigned int i = from; i < nwrites; i++)
		n += __atomic_load_n(&reqs[i].resp.response, __ATOMIC_ACQUIRE) != VSCSI_S_PENDING;
	return n;
}

/* After a reset: the first command reports the unit attention, the next is GOOD. */
static bool unit_attention_then_good(void)
{
	struct vscsi_req *r = &ctl.sync;
	int e;

	memset(r, 0, sizeof(*r));
	r->lun = lun;
	r->cdb[0] = SCSI_TEST_UNIT_READY;
	e = vscsi_do(&ctl, r);
	if (!vscsi_check(r, e, SCSI_SENSE_UNIT_ATTENTION, 0x29, -1)) {
		printf("scsitmf: no unit attention after the reset (result 0x%x)\n", e);
		return false;
	}
	memset(r, 0, sizeof(*r));
	r->lun = lun;
	r->cdb[0] = SCSI_TEST_UNIT_READY;
	e = vscsi_do(&ctl, r);
	if (e) {
		printf("scsitmf: TEST UNIT READY after the unit attention: 0x%x\n", e);
		return false;
	}
	return true;
}

static bool round(const char *name, uint32_t subtype, bool whole_set, bool ua)
{
	unsigned int ok = 0, aborted = 0, before, want;
	uint8_t resp = 0xff;
	bool pass = true;
	int e;

	if (!queue_writes())
		return false;
	e = vscsi_tmf(&ctl, subtype, 0, lun, reqs[nwrites - 1].tag, &resp);
	/* The spec: aborted tasks complete before the TMF does. */
	before = answered(whole_set ? 0 : (unsigned int)nwrites - 1);
	want = whole_set ? (unsigned int)nwrites : 1;
	if (e || resp != 0 || before != want)
		pass = false;
	if (!collect(ua ? VIRTIO_SCSI_S_RESET : VIRTIO_SCSI_S_ABORTED, &ok, &aborted))
		pass = false;
	/* Even after a failure: the next round must not meet the attention. */
	if (ua && !unit_attention_then_good())
		pass = false;
	total_aborted += aborted;
	total_writes += nwrites;
	printf("scsitmf: round %s tmf=%d/%u returned_before_tmf=%u/%u ok=%u aborted=%u result=%s\n",
	       name, e, resp, before, want, ok, aborted, pass ? "pass" : "FAIL");
	return pass;
}

static bool round_query(void)
{
	uint8_t r1 = 0xff, r2 = 0xff;
	unsigned int ok, aborted;
	bool pass;
	int e1, e2;

	if (!queue_writes())
		return false;
	e1 = vscsi_tmf(&ctl, VIRTIO_SCSI_T_TMF_QUERY_TASK, 0, lun, 0xdead0000beefull, &r1);
	e2 = vscsi_tmf(&ctl, VIRTIO_SCSI_T_TMF_QUERY_TASK_SET, 0, lun, 0, &r2);
	pass = !e1 && r1 == 0 && !e2 && (r2 == 0 || r2 == VIRTIO_SCSI_S_FUNCTION_SUCCEEDED);
	if (!collect(VIRTIO_SCSI_S_ABORTED, &ok, &aborted) || aborted)
		pass = false;
	total_writes += nwrites;
	printf("scsitmf: round query tmf=%d/%u,%d/%u ok=%u aborted=%u result=%s\n", e1, r1, e2, r2,
	       ok, aborted, pass ? "pass" : "FAIL");
	return pass;
}

static long run(void *arg)
{
	unsigned int failed = 0;
	int e;

	(void)arg;
	/* Clear the unit attention a device reset may have left. */
	scsi_test_unit_ready(&ctl, lun);
	failed += !round("abort_task", VIRTIO_SCSI_T_TMF_ABORT_TASK, false, false);
	failed += !round_query();
	failed += !round("abort_set", VIRTIO_SCSI_T_TMF_ABORT_TASK_SET, true, false);
	failed += !round("lu_reset", VIRTIO_SCSI_T_TMF_LOGICAL_UNIT_RESET, true, true);
	failed += !round("nexus_reset", VIRTIO_SCSI_T_TMF_I_T_NEXUS_RESET, true, true);
	memset(block, 0x5a, BLOCK);
	e = scsi_write16(&ctl, lun, 0, 1, block, BLOCK);
	memset(block, 0, BLOCK);
	if (e || scsi_read16(&ctl, lun, 0, 1, block, BLOCK) || block[0] != 0x5a ||
	    block[BLOCK - 1] != 0x5a) {
		printf("scsitmf: final write/read of block 0 failed (0x%x)\n", e);
		failed++;
	}
	printf("scsitmf: aborted %lu of %lu writes in all\n", total_aborted, total_writes);
	printf("scsitmf: %s\n", failed ? "FAILED" : "ok");
	return failed ? 1 : 0;
}

int main(void)
{
	uint64_t v = 0;

	cmdline_get_u64("ctrl", &v);
	if (vscsi_open(&ctl, v, "scsitmf"))
		return 3;
	if (!cmdline_get_u64("lun", &v))
		lun = (uint16_t)v;
	if (!cmdline_get_u64("writes", &v) && v >= 2 && v <= MAX_WRITES)
		nwrites = v;
	if (!cmdline_get_u64("kb", &v) && v >= 1 && v <= 16384)
		kb = v;
	if (nwrites > ctl.vq.size) {
		printf("scsitmf: queue of %u entries < writes=%lu\n", ctl.vq.size, nwrites);
		return 3;
	}
	data = mem_alloc(kb * 1024, 4096);
	block = mem_alloc(BLOCK, 4096);
	if (!data || !block)
		return 3;
	memset(data, 0xa5, kb * 1024);
	printf("scsitmf: lun %u, %lu writes of %lu KiB per round\n", lun, nwrites, kb);
	return user_call(run, NULL);
}
