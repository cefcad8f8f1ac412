#!/usr/bin/env python3
"""virtio-scsi sequential READ (16)s (build/guest/scsibench.elf): kvmini
beside QEMU, one image, one run: blk.py's method (interleaved runs, one VMM
process per point, host CPU time per request with a boot-only baseline
subtracted) with kvmini's `--scsi-disk` and QEMU's virtio-scsi-pci + scsi-hd
(microvm pcie=on, an iothread like kvmini's unless BLK_QEMU_IOTHREAD=0,
BLK_QEMU_AIO=io_uring|native for another aio backend).

Usage: scsi.py [--runs N] [--modes poll,irq] [--sizes 4,64,1024]
               [--depths 1,16] [--image-mb 256] [--mb 256] [--reqs 16384]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import blk  # noqa: E402
from blk import KVMINI, TIMEOUT, guest_elf, qemu_cmd  # noqa: E402
from blkutil import ScsiDisk  # noqa: E402

GUEST = "scsibench"


def kvmini_cmd(append, image):
    return [KVMINI, "run", "--kernel", str(guest_elf(GUEST)), "--memory", "128M",
            "--timeout", str(TIMEOUT), "--cmdline", append, "--scsi-disk", f"path={image}"]


def qemu_scsi_cmd(append, image):
    cmd = qemu_cmd(GUEST, append, scsi=[ScsiDisk(str(image))])
    aio = os.environ.get("BLK_QEMU_AIO")
    iothread = os.environ.get("BLK_QEMU_IOTHREAD", "1") != "0"
    for i, a in enumerate(cmd):
        if a.startswith("file=") and aio:
            cmd[i] = a + f",aio={aio}" + (",cache.direct=on" if aio == "native" else "")
        if a.startswith("virtio-scsi-pci") and iothread:
            cmd[i] = a + ",iothread=io0"
    if iothread:
        cmd[1:1] = ["-object", "iothread,id=io0"]
    return cmd


if __name__ == "__main__":
    blk.main(guest=GUEST, kvmini_cmd=kvmini_cmd, qemu_cmd=qemu_scsi_cmd,
             title="virtio-scsi sequential READ (16)s", qemu_dev="virtio-scsi-pci + scsi-hd",
             kvmini_option="--scsi-disk")
