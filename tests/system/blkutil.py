# SPDX-License-Identifier: MIT
"""Helpers shared by the virtio-blk system tests (test_blk_qemu.py under QEMU,
test_blk.py under kvmini) and scripts/bench/blk.py: disk images, QEMU
command lines, and parsing of the guests' output lines.
"""
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = ROOT / "build" / "guest"
QEMU = shutil.which("qemu-system-x86_64")

# QEMU microvm with pcie=on has no configuration ports (0xcf8) and QEMU 7.2
# describes its ECAM in no MCFG table: the guests are told where it is
# (hw/i386/microvm.h: PCIE_ECAM_BASE). q35 has 0xcf8 and SeaBIOS (~2-3 s).
MICROVM = ("microvm,pcie=on,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on")
MICROVM_ECAM = "pci_ecam=0xe0000000"

# blkevil cases QEMU 7.2 accepts instead of setting NEEDS_RESET (see
# docs/guest-abi.md, "virtio-blk under QEMU"): an address range wrapping past
# 2^64 (it maps the part below 2^64 through a bounce buffer, then wraps to
# guest address 0), an indirect table longer than the queue (up to 1024
# entries), an indirect descriptor inside an indirect table (mapped as a
# plain buffer) and a descriptor with both INDIRECT and NEXT (NEXT ignored).
QEMU_EVIL_ACCEPTED = ("overflow", "indirect_over_qsize", "indirect_nested", "indirect_next")

# kvmini accepts indirect tables longer than the queue, up to 1024 entries,
# on purpose (docs/devices.md: Linux's virtio-blk sends such tables when
# seg_max exceeds the queue size); everything else sets NEEDS_RESET.
KVMINI_EVIL_ACCEPTED = ("indirect_over_qsize",)

def kvm_usable():
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def guest_elf(name):
    return GUEST_DIR / f"{name}.elf"


def random_image(path, size):
    """Write SIZE random bytes to PATH."""
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def halves(path):
    """(first half, second half) of the image, halves in 512-byte sectors
    as the guest computes them (capacity // 2 sectors)."""
    data = Path(path).read_bytes()
    half = (len(data) // 512) // 2 * 512
    return data[:half], data[half:2 * half]


@dataclass
class Disk:
    path: str
    readonly: bool = False
    serial: str = ""


def check_copy(out, path, orig_first):
    """blkcopy (8 MiB, the image's first half onto its second) succeeded, and
    the image on the host says so too."""
    assert re.search(r"blkcopy: copied 8388608 bytes in \d+ requests, max in flight \d+",
                     out), out
    assert "blkcopy: flush status 0" in out, out
    assert "blkcopy: verified 8388608 bytes: match" in out, out
    first, second = halves(path)
    assert first == orig_first, "the first half changed"
    assert second == first, "second half differs from the first on the host"


def qemu_disk_args(disks):
    args = []
    for i, d in enumerate(disks):
        drive = f"file={d.path},if=none,id=d{i},format=raw"
        if d.readonly:
            drive += ",readonly=on"
        dev = f"virtio-blk-pci,drive=d{i},disable-legacy=on"
        if d.serial:
            dev += f",serial={d.serial}"
        args += ["-drive", drive, "-device", dev]
    return args


@dataclass
class ScsiDisk:
    """A LUN of target 0 on one virtio-scsi controller (QEMU scsi-hd)."""
    path: str
    lun: int = 0
    readonly: bool = False
    serial: str = ""


def qemu_scsi_args(luns):
    if not luns:
        return []
    args = ["-device", "virtio-scsi-pci,id=scsi0,disable-legacy=on"]
    for i, d in enumerate(luns):
        drive = f"file={d.path},if=none,id=s{i},format=raw"
        if d.readonly:
            drive += ",readonly=on"
        dev = f"scsi-hd,drive=s{i},bus=scsi0.0,scsi-id=0,lun={d.lun}"
        if d.serial:
            dev += f",serial={d.serial}"
        args += ["-drive", drive, "-device", dev]
    return args


def qemu_cmd(guest, append="", disks=(), machine="microvm", memory=128, scsi=()):
    """QEMU command line booting build/guest/GUEST.elf with virtio-blk disks
    and a virtio-scsi controller holding the LUNs @scsi (ScsiDisk)."""
    if machine == "microvm":
        m, append = MICROVM, f"{MICROVM_ECAM} {append}".strip()
    else:
        m = machine
    return [
        QEMU, "-M", m, "-enable-kvm",
        # arch-capabilities off: this host refuses MSR 0x10a and QEMU 7.2
        # aborts with plain `-cpu host`.
        "-cpu", "host,-arch-capabilities", "-m", str(memory),
        "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
        "-kernel", str(guest_elf(guest)), "-append", append,
        "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    ] + qemu_disk_args(disks) + qemu_scsi_args(scsi)


def qemu_status(guest_status):
    return (guest_status << 1) | 1


BENCH_LINE = (r"^{}: mode=(\w+) bs=(\d+) qd=(\d+) reqs=(\d+) bytes=(\d+) ns=(\d+) "
              r"MBps=([\d.]+) iops=(\d+) kicks=(\d+) irq_waits=(\d+)$")


def parse_bench(out, guest="blkbench"):
    """blkbench (or scsibench, @guest) output ->
    {(mode, bs, qd): dict(reqs, bytes, ns, mbps, iops, kicks, irq_waits)}"""
    points = {}
    for m in re.finditer(BENCH_LINE.format(guest), out, re.M):
        mode, bs, qd, reqs, nbytes, ns, mbps, iops, kicks, waits = m.groups()
        points[(mode, int(bs), int(qd))] = dict(
            reqs=int(reqs), bytes=int(nbytes), ns=int(ns), mbps=float(mbps), iops=int(iops),
            kicks=int(kicks), irq_waits=int(waits))
    return points


EVIL_LINE = re.compile(
    r"^blkevil: case=(\w+) needs_reset=([01]) config_irq=(\d+) completed=([01]) "
    r"status=(\d+) recovered=([01]) result=([\w-]+)$", re.M)


def parse_evil(out):
    """blkevil output -> {case: dict(needs_reset, config_irq, completed, status, recovered, result)}"""
    cases = {}
    for m in EVIL_LINE.finditer(out):
        name, nr, irq, done, st, rec, res = m.groups()
        cases[name] = dict(needs_reset=nr == "1", config_irq=int(irq), completed=done == "1",
                           status=int(st), recovered=rec == "1", result=res)
    return cases


# What blkops checks on a writable disk (each prints "... ok" when it passes);
# the MSI-X masking checks run only in polling mode.
BLKOPS_CHECKS = ("get_id", "get_id_short", "read", "read_used_len", "write", "write_used_len",
                 "readback", "flush", "write_zeroes", "write_zeroes_unmap", "zeroes_readback",
                 "write_zeroes_bad_flags", "write_zeroes_past_end", "discard_unmap_flag",
                 "discard_past_end", "discard", "read_past_end", "read_across_end",
                 "read_len_100", "unknown_type", "reset_inflight")
BLKOPS_MSIX_CHECKS = ("msix_vector_mask", "msix_function_mask")


# QEMU 7.2 sometimes interrupts twice when a masked MSI-X vector with its
# pending bit set is unmasked (seen once in CI, on q35, in the box): the
# pending message and the queue's notifier both fire. kvmini must deliver
# exactly once; for QEMU that one extra interrupt is tolerated.
QEMU_BLKOPS_TOLERATED = {"msix_vector_mask": "FAIL delivered 2 times after unmasking, not once"}


def check_blkops(out, msix=True, tolerated=None):
    """Assert every blkops check passed (or failed only as @tolerated says:
    {check: its exact FAIL text}); returns blkops' expected exit status
    (1 if a tolerated failure happened)."""
    tolerated = tolerated or {}
    missing, excused = [], 0
    for c in BLKOPS_CHECKS + (BLKOPS_MSIX_CHECKS if msix else ()):
        if re.search(rf"^blkops: {c} status=\S+ expect=\S+ ok", out, re.M):
            continue
        if c in tolerated and re.search(
                rf"^blkops: {c} status=\S+ expect=\S+ {re.escape(tolerated[c])}$", out, re.M):
            excused += 1
            continue
        missing.append(c)
    assert not missing, f"checks not passed: {missing}\n{out}"
    assert f"blkops: {excused} failures" in out, out
    return 1 if excused else 0


EVIL_CASES = ("loop", "next_oob", "head_oob", "avail_jump", "oob_addr", "overflow", "toolong",
              "indirect_over_qsize", "indirect_len", "indirect_zero", "indirect_oob", "indirect_nested",
              "indirect_next", "write_before_read", "short_header")


# scsievil's cases (guest/scsievil/scsievil.c) and its per-case result lines.
SCSIEVIL_CASES = ("opcodes", "long_cdb", "huge_len10", "huge_len16", "lba_2_64", "read_short_buf",
                  "write_no_data", "write_data_in", "mixed_dirs", "any_layout", "short_header",
                  "no_response", "short_response", "lun_not1", "target5", "lun300", "tmf_abort",
                  "tmf_lu_reset", "tmf_bad_lun", "tmf_bad_subtype", "ctrl_unknown", "ctrl_short")

# QEMU 7.2 takes the first descriptor of a request as its whole header
# unless the legacy VIRTIO_F_ANY_LAYOUT was negotiated (hw/scsi/virtio-scsi.c,
# virtio_scsi_parse_req), so a header split over descriptors gets
# VIRTIO_SCSI_S_FAILURE: against virtio 1.x 2.6.4 (message framing).
SCSIEVIL_QEMU_ALLOWED = ("any_layout",)

SCSIEVIL_LINE = re.compile(
    r"^scsievil: case=(\w+) needs_reset=([01]) recovered=([01]) result=([\w-]+)$", re.M)


def parse_scsievil(out):
    """scsievil output -> {case: dict(needs_reset, recovered, result)}"""
    return {m.group(1): dict(needs_reset=m.group(2) == "1", recovered=m.group(3) == "1",
                             result=m.group(4)) for m in SCSIEVIL_LINE.finditer(out)}


def scsicopy_checks(out):
    """scsicopy's check lines -> {name: True (ok) / False (FAILED)}"""
    return {m.group(1): m.group(2) == "ok"
            for m in re.finditer(r"^scsicopy: check (\w+) (ok|FAILED)", out, re.M)}


def check_scsicopy(out, path, orig_first):
    """scsicopy passed every check and copied the first half of @path onto
    the second, which the host sees too."""
    checks = scsicopy_checks(out)
    assert checks and all(checks.values()), out
    half = Path(path).stat().st_size // 2
    assert re.search(rf"scsicopy: copied {half} bytes in \d+ requests, max in flight \d+", out)
    assert "scsicopy: flush status 0" in out, out
    assert f"scsicopy: verified {half} bytes: match" in out, out
    first, second = halves(path)
    assert first == orig_first, "the first half changed"
    assert second == first, "second half differs from the first on the host"


def check_image_pattern(path, nblocks, gensum, magic, block=4096, sector=512):
    """Every block of @path holds one whole write of a snapshot workload
    (guest/lib/blkpattern.h with @magic) or zeroes, and the sum over blocks
    of (b + 1) * generation is @gensum."""
    import struct
    data = Path(path).read_bytes()
    total = 0
    spb = block // sector
    for b in range(nblocks):
        blk = data[b * block:(b + 1) * block]
        if blk == bytes(block):
            continue
        gen, = struct.unpack_from("<Q", blk, 16)
        for k in range(spb):
            want = (magic + struct.pack("<QQQ", b, gen, b * spb + k) +
                    bytes([(131 * b + 7 * gen + k) & 0xff]) * (sector - 32))
            assert blk[k * sector:(k + 1) * sector] == want, f"block {b} sector {k}"
        total += (b + 1) * gen
    assert total == gensum, (hex(total), hex(gensum))
