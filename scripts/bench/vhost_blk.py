#!/usr/bin/env python3
"""vhost-user-blk sequential reads (build/guest/blkbench.elf): kvmini's
`--vhost-user-blk` beside QEMU's vhost-user-blk-pci, both on
qemu-storage-daemon with the same export configuration, plus kvmini's own
virtio-blk (`--disk`) on the same image: blk.py's method (interleaved runs,
one VMM process per point, host CPU time per request with a boot-only
baseline subtracted).

Each run starts its own qemu-storage-daemon (vhost_wrap.py); the host CPU
time of a vhost-user run is the VMM's plus the daemon's, since the daemon
does the I/O the VMM does itself with --disk. The ratio column is kvmini
over QEMU, both over vhost-user.

Modes: irq by default (see below for poll under QEMU 7.2).

Usage: vhost_blk.py [--runs N] [--modes irq] [--sizes 4,64,1024]
                    [--depths 1,16] [--image-mb 256] [--mb 256] [--reqs 16384]
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import blk  # noqa: E402
from blk import KVMINI, TIMEOUT, guest_elf, qemu_cmd  # noqa: E402

WRAP = [sys.executable, os.path.join(HERE, "vhost_wrap.py")]


def kvmini_vu_cmd(append, image):
    return WRAP + [str(image), "--", KVMINI, "run", "--kernel", str(guest_elf("blkbench")),
                   "--memory", "128M", "--timeout", str(TIMEOUT), "--cmdline", append,
                   "--vhost-user-blk", "socket=@SOCK@"]


def qemu_vu_cmd(append, image):
    return WRAP + [str(image), "--"] + qemu_cmd("blkbench", append, memory=128) + [
        "-object", "memory-backend-memfd,id=mem,size=128M,share=on",
        "-machine", "memory-backend=mem",
        "-chardev", "socket,id=vu,path=@SOCK@",
        "-device", "vhost-user-blk-pci,chardev=vu,num-queues=1,disable-legacy=on"]


if __name__ == "__main__":
    # The QEMU side has no virtio-blk iothread to speak of (the daemon does
    # the I/O): keep blk.py's title from claiming one.
    os.environ["BLK_QEMU_IOTHREAD"] = "0"
    # Interrupt-driven only by default: with a polling driver (no queue
    # vector) QEMU 7.2's vhost-user-blk-pci gives qemu-storage-daemon no
    # usable call fd, and the export breaks at the first completion
    # ("vu_panic: Error writing eventfd: Bad file descriptor"); kvmini
    # passes an eventfd nobody reads there.
    os.environ.setdefault("BLK_MODES", "irq")
    if not shutil.which("qemu-storage-daemon"):
        sys.exit("qemu-storage-daemon missing (Debian qemu-system-common)")
    blk.main(title="vhost-user-blk sequential reads (qemu-storage-daemon)",
             qemu_dev="vhost-user-blk-pci", kvmini_option="--vhost-user-blk",
             sides=[("kvmini-vu", kvmini_vu_cmd), ("qemu-vu", qemu_vu_cmd),
                    ("kvmini-blk", blk.kvmini_cmd)],
             ratio=("kvmini-vu", "qemu-vu"))
