/* SPDX-License-Identifier: MIT */
/*
 * SCSI disk emulation (scsi_disk.c): one logical unit, a raw image of
 * 512-byte blocks, as virtio-scsi presents it.
 *
 * Pure: no I/O, no threads, no allocation. scsi_disk_command() decodes a
 * CDB and either answers it completely (INQUIRY, MODE SENSE, READ CAPACITY,
 * REPORT LUNS, REQUEST SENSE, TEST UNIT READY, errors...) or tells the
 * caller which host operation to do (read, write, flush, unmap) on which
 * blocks, already checked against the disk. Every length and LBA in a CDB
 * is guest-controlled: the emulation never lets one reach past the disk or
 * the response buffer, and answers with CHECK CONDITION and the sense data
 * the SCSI standards (SBC-4, SPC-5) specify.
 *
 * Any thread; the caller serialises calls for one LUN (scsi_disk_command
 * may clear lun->ua).
 */
#ifndef KVMINI_SCSI_H
#define KVMINI_SCSI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SCSI_BLOCK	    512u      /* logical block size */
#define SCSI_SENSE_LEN	    18u	      /* fixed-format sense data (response code 0x70) */
#define SCSI_DATA_MAX	    4096u     /* largest emulated response (data[] below) */
#define SCSI_MAX_LUN	    255u      /* lun=0..SCSI_MAX_LUN */
#define SCSI_SERIAL_MAX	    20u	      /* VPD page 0x80 */
#define SCSI_MAX_XFER	    65536u    /* blocks per READ/WRITE (32 MiB); VPD 0xb0 says so */
#define SCSI_MAX_UNMAP	    0x3fffffu /* blocks per UNMAP descriptor; VPD 0xb0 says so */
#define SCSI_MAX_UNMAP_DESC 64u	      /* descriptors per UNMAP command; VPD 0xb0 says so */

/* SAM status codes. */
#define SCSI_STATUS_GOOD	    0x00
#define SCSI_STATUS_CHECK_CONDITION 0x02
#define SCSI_STATUS_BUSY	    0x08

/* Sense keys. */
#define SCSI_SENSE_NO_SENSE	   0x0
#define SCSI_SENSE_NOT_READY	   0x2
#define SCSI_SENSE_MEDIUM_ERROR	   0x3
#define SCSI_SENSE_HARDWARE_ERROR  0x4
#define SCSI_SENSE_ILLEGAL_REQUEST 0x5
#define SCSI_SENSE_UNIT_ATTENTION  0x6
#define SCSI_SENSE_DATA_PROTECT	   0x7
#define SCSI_SENSE_ABORTED_COMMAND 0xb

/* Pending unit attention conditions (struct scsi_lun.ua). */
#define SCSI_UA_NONE  0
#define SCSI_UA_RESET 1 /* POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h) */

struct scsi_sense {
	uint8_t key, asc, ascq;
};

/* One logical unit as the emulation sees it. Plain data: a snapshot may
 * save ua; the rest comes from the command line. */
struct scsi_lun {
	uint16_t lun;	  /* its number, 0..SCSI_MAX_LUN */
	uint64_t nblocks; /* capacity in SCSI_BLOCK blocks */
	bool readonly;	  /* writes and UNMAP get DATA PROTECT / WRITE PROTECTED */
	bool unmap;	  /* UNMAP offered (VPD 0xb0/0xb2, READ CAPACITY(16) LBPME) */
	char serial[SCSI_SERIAL_MAX + 1]; /* VPD 0x80 and 0x83; NUL-terminated, may be "" */
	uint8_t ua; /* SCSI_UA_*: reported by the next command that must report it */
};

/* What the caller must do with a command. */
enum scsi_op {
	SCSI_OP_DONE = 0, /* answered: status, sense, data[0..data_len) */
	SCSI_OP_READ,	  /* read nblocks at lba into the data-in buffer, then GOOD */
	SCSI_OP_WRITE,	  /* write nblocks at lba from the data-out buffer (fua: sync after) */
	SCSI_OP_FLUSH,	  /* SYNCHRONIZE CACHE: make everything written durable */
	SCSI_OP_UNMAP,	  /* UNMAP: param_len bytes of parameter list in data-out,
			   * decoded with scsi_unmap_parse */
};

struct scsi_cmd {
	enum scsi_op op;
	uint8_t status;		 /* SCSI_OP_DONE: GOOD or CHECK CONDITION */
	struct scsi_sense sense; /* with CHECK CONDITION */
	bool fua;		 /* SCSI_OP_WRITE: FUA bit set */
	uint64_t lba;		 /* SCSI_OP_READ / WRITE: first block (checked) */
	uint32_t nblocks;	 /* ... and how many (checked; may be 0: nothing to do) */
	uint32_t param_len;	 /* SCSI_OP_UNMAP: parameter list length from the CDB */
	uint32_t data_len;	 /* SCSI_OP_DONE: bytes of data[] for the data-in buffer */
	uint8_t data[SCSI_DATA_MAX];
};

/* One UNMAP block descriptor, checked against the disk. */
struct scsi_unmap_desc {
	uint64_t lba;
	uint32_t nblocks;
};

/*
 * Decode the command @cdb (@cdb_len bytes as the transport carried it,
 * 6..32 used) addressed to @lun, or to a LUN the target does not have
 * (@lun NULL). @luns (@nluns of them, ascending) are the target's LUNs for
 * REPORT LUNS. @in_len is the size of the data-in buffer the initiator
 * gave, which bounds data_len (the emulation also truncates to the CDB's
 * allocation length). Fills *@cmd completely. For a missing LUN, INQUIRY
 * answers peripheral qualifier 3 (device type 0x1f), REPORT LUNS and
 * REQUEST SENSE work, anything else is ILLEGAL REQUEST / LOGICAL UNIT NOT
 * SUPPORTED (25h/00h). A pending unit attention is reported (and cleared)
 * by any command but INQUIRY, REPORT LUNS and REQUEST SENSE.
 */
void scsi_disk_command(struct scsi_lun *lun, const uint16_t *luns, unsigned nluns,
		       const uint8_t *cdb, size_t cdb_len, uint64_t in_len, struct scsi_cmd *cmd);

/*
 * Decode an UNMAP parameter list (@param, @len bytes, as read from the
 * data-out buffer; @len may be less than the CDB's param_len when the
 * initiator gave less). Fills up to SCSI_MAX_UNMAP_DESC descriptors into
 * @descs and returns how many (0 is valid: nothing to unmap), or -1 with
 * *@sense set (ILLEGAL REQUEST with PARAMETER LIST LENGTH ERROR 1Ah/00h,
 * INVALID FIELD IN PARAMETER LIST 26h/00h, or LBA OUT OF RANGE 21h/00h).
 */
int scsi_unmap_parse(const struct scsi_lun *lun, const uint8_t *param, size_t len,
		     struct scsi_unmap_desc *descs, struct scsi_sense *sense);

/* Write @s as fixed-format sense data (SCSI_SENSE_LEN bytes) into @out. */
void scsi_sense_build(const struct scsi_sense *s, uint8_t out[SCSI_SENSE_LEN]);

/*
 * The sense a failed host operation maps to: @error is an errno, @is_read
 * tells reads from writes/flushes/unmaps. ENOSPC/EDQUOT: DATA PROTECT /
 * SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h); reads: MEDIUM ERROR /
 * UNRECOVERED READ ERROR (11h/00h); other writes: MEDIUM ERROR / WRITE
 * ERROR (0Ch/00h).
 */
struct scsi_sense scsi_sense_from_errno(int error, bool is_read);

#endif
