// SPDX-License-Identifier: MIT
/*
 * SCSI CDB decoding (devices/block/scsi_disk.c): scsi_disk_command on any
 * CDB against a LUN of any shape, and scsi_unmap_parse on the rest of the
 * input as an UNMAP parameter list.
 *
 * Input: a 16-byte header (flags, LUN number, capacity, data-in size, CDB
 * length), the CDB (exactly its length: ASan sees reads past it), then the
 * parameter list. Checked: data-in never exceeds the initiator's buffer,
 * READ/WRITE ranges and UNMAP descriptors lie on the disk, a read-only LUN
 * is never written, CHECK CONDITION always carries a sense key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/block/scsi.h"
#include "tests/fuzz/fuzz.h"

#define HDR 16

struct hdr {
	uint8_t flags; /* bit 0: LUN present, 1: read-only, 2: unmap, 3: unit attention */
	uint8_t cdb_len;
	uint16_t lun;
	uint32_t in_len;
	uint64_t nblocks;
};

_Static_assert(sizeof(struct hdr) == HDR, "header layout");

static void seed(const char *dir, const char *name, uint8_t flags, const uint8_t *cdb,
		 uint8_t cdb_len, const uint8_t *param, size_t plen)
{
	uint8_t buf[HDR + 32 + 64];
	struct hdr h = {flags, cdb_len, 0, 4096, 2048};

	memcpy(buf, &h, HDR);
	memcpy(buf + HDR, cdb, cdb_len);
	if (plen)
		memcpy(buf + HDR + cdb_len, param, plen);
	fuzz_write_seed(dir, name, buf, HDR + cdb_len + plen);
}

int fuzz_seeds(const char *dir)
{
	static const uint8_t inquiry[6] = {0x12, 0, 0, 0, 0xff, 0};
	static const uint8_t vpd83[6] = {0x12, 1, 0x83, 0, 0xff, 0};
	static const uint8_t vpdb0[6] = {0x12, 1, 0xb0, 0, 0xff, 0};
	static const uint8_t read10[10] = {0x28, 0, 0, 0, 0, 8, 0, 0, 4, 0};
	static const uint8_t write16[16] = {0x8a, 0x08, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 16};
	static const uint8_t cap16[16] = {0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32};
	static const uint8_t luns[12] = {0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
	static const uint8_t sense6[6] = {0x1a, 0, 0x3f, 0, 0xff, 0};
	static const uint8_t sense10[10] = {0x5a, 0, 0x08, 0, 0, 0, 0, 1, 0, 0};
	static const uint8_t unmap[10] = {0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0};
	static const uint8_t list[24] = {0, 22, 0, 16, 0, 0, 0, 0, 0, 0,
					 0, 0,	0, 0,  0, 8, 0, 0, 0, 4};
	static const uint8_t sync10[10] = {0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t rsense[6] = {0x03, 0, 0, 0, 18, 0};

	seed(dir, "inquiry", 1, inquiry, 6, NULL, 0);
	seed(dir, "vpd83", 1, vpd83, 6, NULL, 0);
	seed(dir, "vpdb0", 5, vpdb0, 6, NULL, 0);
	seed(dir, "read10", 1, read10, 10, NULL, 0);
	seed(dir, "write16", 1, write16, 16, NULL, 0);
	seed(dir, "cap16", 5, cap16, 16, NULL, 0);
	seed(dir, "luns", 0, luns, 12, NULL, 0);
	seed(dir, "sense6", 1, sense6, 6, NULL, 0);
	seed(dir, "sense10", 3, sense10, 10, NULL, 0);
	seed(dir, "unmap", 5, unmap, 10, list, sizeof(list));
	seed(dir, "sync10", 9, sync10, 10, NULL, 0);
	seed(dir, "rsense", 9, rsense, 6, NULL, 0);
	return 0;
}

static void check_cmd(const struct scsi_lun *lun, const struct hdr *h, const struct scsi_cmd *c)
{
	switch (c->op) {
	case SCSI_OP_DONE:
		if (c->data_len > h->in_len || c->data_len > SCSI_DATA_MAX)
			fuzz_fail("data_len %u > data-in %u", c->data_len, h->in_len);
		if (c->status == SCSI_STATUS_CHECK_CONDITION && c->sense.key == 0)
			fuzz_fail("CHECK CONDITION without a sense key");
		if (c->status != SCSI_STATUS_CHECK_CONDITION && c->status != SCSI_STATUS_GOOD)
			fuzz_fail("status %#x", c->status);
		return;
	case SCSI_OP_READ:
	case SCSI_OP_WRITE:
		if (!lun || c->nblocks > SCSI_MAX_XFER || c->lba > lun->nblocks ||
		    c->nblocks > lun->nblocks - c->lba)
			fuzz_fail("transfer lba %llu + %u past %llu blocks",
				  (unsigned long long)c->lba, c->nblocks,
				  lun ? (unsigned long long)lun->nblocks : 0ULL);
		if (c->op == SCSI_OP_WRITE && lun->readonly)
			fuzz_fail("write to a read-only LUN");
		return;
	case SCSI_OP_UNMAP:
		if (!lun || lun->readonly || !lun->unmap)
			fuzz_fail("UNMAP on a LUN that cannot unmap");
		return;
	case SCSI_OP_FLUSH:
		if (!lun)
			fuzz_fail("FLUSH without a LUN");
		return;
	}
	fuzz_fail("op %d", (int)c->op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t luns[] = {0, 1, 7, 255};
	static struct scsi_cmd cmd;
	struct scsi_unmap_desc descs[SCSI_MAX_UNMAP_DESC];
	struct scsi_lun lun = {0};
	struct scsi_sense sense;
	struct hdr h;
	uint8_t *cdb, *param;
	size_t plen;
	uint64_t total = 0;
	int n;

	if (size < HDR)
		return 0;
	memcpy(&h, data, HDR);
	h.cdb_len %= 33;
	if (size < HDR + h.cdb_len)
		return 0;
	lun.lun = h.lun % (SCSI_MAX_LUN + 1);
	lun.nblocks = h.nblocks;
	lun.readonly = h.flags & 2;
	lun.unmap = h.flags & 4;
	lun.ua = h.flags & 8 ? SCSI_UA_RESET : SCSI_UA_NONE;
	snprintf(lun.serial, sizeof(lun.serial), "%s", h.flags & 16 ? "" : "FUZZ-SERIAL-0123456");
	cdb = malloc(h.cdb_len ? h.cdb_len : 1);
	memcpy(cdb, data + HDR, h.cdb_len);
	scsi_disk_command(h.flags & 1 ? &lun : NULL, luns, h.flags & 32 ? 4 : 1, cdb, h.cdb_len,
			  h.in_len, &cmd);
	check_cmd(h.flags & 1 ? &lun : NULL, &h, &cmd);
	free(cdb);

	plen = size - HDR - h.cdb_len;
	param = malloc(plen ? plen : 1);
	memcpy(param, data + HDR + h.cdb_len, plen);
	n = scsi_unmap_parse(&lun, param, plen, descs, &sense);
	if (n < 0 && sense.key != SCSI_SENSE_ILLEGAL_REQUEST)
		fuzz_fail("UNMAP list refused with sense key %#x", sense.key);
	for (int i = 0; i < n; i++) {
		if (i >= (int)SCSI_MAX_UNMAP_DESC || descs[i].lba > lun.nblocks ||
		    descs[i].nblocks > lun.nblocks - descs[i].lba)
			fuzz_fail("UNMAP descriptor %d out of range", i);
		total += descs[i].nblocks;
	}
	if (total > SCSI_MAX_UNMAP)
		fuzz_fail("UNMAP of %llu blocks", (unsigned long long)total);
	free(param);
	return 0;
}
