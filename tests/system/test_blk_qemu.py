# SPDX-License-Identifier: MIT
"""The virtio-blk guests (blkcopy, blkops, blkevil, blkbench, pcilist) under
QEMU: guest/lib's PCI, MSI-X, virtio-pci and virtio-blk drivers checked
against an implementation no one here wrote.

Two machines: microvm with pcie=on (ECAM at a fixed address, no firmware:
the guest assigns the BARs itself; starts in ~0.1 s) for most tests, and
q35 (configuration mechanism #1 on ports 0xcf8/0xcfc, SeaBIOS assigns BARs;
~3 s) for the paths kvmini uses. A guest status S ends QEMU with (S << 1) | 1.

Run with: /usr/bin/python3 -m pytest tests/system/test_blk_qemu.py (after
`make guests`).
"""
import re
import subprocess

import pytest

from blkutil import (EVIL_CASES, QEMU, QEMU_BLKOPS_TOLERATED, QEMU_EVIL_ACCEPTED, Disk, check_blkops, guest_elf,
                     halves, kvm_usable, parse_bench, parse_evil, qemu_cmd, qemu_status,
                     random_image, sha256)
from qemuref import run_reference

TIMEOUT = 120  # seconds per boot; the guests need a few at most

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found "
                       "(Debian package qemu-system-x86)"),
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm missing or not accessible: "
                       "QEMU runs the guests with -enable-kvm"),
]

MACHINES = ["microvm", "q35"]


def run_qemu(guest, append="", disks=(), machine="microvm"):
    if not guest_elf(guest).exists():
        pytest.fail(f"{guest_elf(guest)} is missing: run `make guests` first")
    cmd = qemu_cmd(guest, append, disks, machine)
    p = run_reference(cmd, TIMEOUT, guest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors="replace")


@pytest.fixture
def image(tmp_path):
    """A 16 MiB image of random bytes."""
    path = tmp_path / "disk0.img"
    random_image(path, 16 << 20)
    return path


@pytest.mark.parametrize("machine", MACHINES)
def test_pcilist(machine, image):
    status, out = run_qemu("pcilist", "bars", [Disk(str(image))], machine)
    assert status == qemu_status(0), out
    method = "ecam" if machine == "microvm" else "cf8"
    assert f"pcilist: method {method}," in out, out
    m = re.search(r"pci: 00:(\w\w)\.0 1af4:1042 class 010000", out)
    assert m, out
    # virtio-pci modern: MSI-X (0x11) and vendor capabilities (0x09)
    assert "cap 0x11" in out and "cap 0x09" in out, out
    bars = re.findall(r"bar \d: mem(?:32|64) (0x[0-9a-f]+) size (0x[0-9a-f]+)", out)
    assert bars, out
    guest_assigned = re.findall(r"bar \d: mem.*\(assigned by the guest\)", out)
    if machine == "microvm":
        # nothing assigned them before the guest: its allocator starts at 0xc0000000
        assert all(0xc0000000 <= int(a, 16) < 0xe0000000 for a, _ in bars), out
        assert len(guest_assigned) == len(bars), out
    else:
        # SeaBIOS assigned them; the guest kept them. q35's ICH9 at 00:1f is
        # multifunction: functions 2 (SATA) and 3 (SMBus) must be found too.
        assert not guest_assigned, out
        assert "pci: 00:1f.0 8086:2918" in out, out
        assert "pci: 00:1f.2 8086:2922" in out and "pci: 00:1f.3 8086:2930" in out, out


def check_copy(out, image, orig_first_half):
    assert re.search(r"blkcopy: copied 8388608 bytes in \d+ requests, max in flight \d+", out), out
    assert "blkcopy: flush status 0" in out, out
    assert "blkcopy: verified 8388608 bytes: match" in out, out
    first, second = halves(image)
    assert first == orig_first_half, "the first half changed"
    assert second == first, "second half differs from the first on the host"


@pytest.mark.parametrize("machine", MACHINES)
def test_blkcopy(machine, image):
    orig, _ = halves(image)
    status, out = run_qemu("blkcopy", "", [Disk(str(image))], machine)
    check_copy(out, image, orig)
    assert "max in flight 64" in out, out
    assert status == qemu_status(0), out


@pytest.mark.parametrize("opts", ["irq", "noindirect", "noindirect qsize=16", "noevent_idx irq",
                                  "segs=4 maxkb=64", "depth=1 seed=7",
                                  "qsize=8 noindirect irq"])
def test_blkcopy_driver_options(opts, image):
    orig, _ = halves(image)
    status, out = run_qemu("blkcopy", opts, [Disk(str(image))])
    check_copy(out, image, orig)
    assert status == qemu_status(0), out
    if "irq" in opts.split():
        assert "completion irq" in out, out


def test_blkcopy_second_disk(tmp_path):
    d0, d1 = tmp_path / "d0.img", tmp_path / "d1.img"
    random_image(d0, 4 << 20)
    random_image(d1, 16 << 20)
    h0 = sha256(d0)
    orig, _ = halves(d1)
    status, out = run_qemu("blkcopy", "disk=1", [Disk(str(d0)), Disk(str(d1))])
    check_copy(out, d1, orig)
    assert "capacity 32768 sectors" in out, out  # disk 1 is the 16 MiB one
    assert status == qemu_status(0), out
    assert sha256(d0) == h0, "disk 0 was written"


def test_blkcopy_detects_mismatch(tmp_path):
    # The guest's own check must be able to fail: halves equal but for one
    # sector, compared without copying.
    img = tmp_path / "d.img"
    random_image(img, 4 << 20)
    data = bytearray(img.read_bytes())
    half = len(data) // 2
    data[half:] = data[:half]
    bad = half // 512 + 1234
    data[bad * 512 + 17] ^= 0x40
    img.write_bytes(bytes(data))
    status, out = run_qemu("blkcopy", "verify_only", [Disk(str(img))])
    assert f"blkcopy: verified {half} bytes: MISMATCH at sector {bad}" in out, out
    assert status == qemu_status(1), out


def test_blkcopy_readonly_disk(tmp_path):
    # A read-only disk refuses the writes: IOERR, exit 2, image unchanged.
    img = tmp_path / "ro.img"
    random_image(img, 4 << 20)
    h = sha256(img)
    status, out = run_qemu("blkcopy", "", [Disk(str(img), readonly=True)])
    assert "blkcopy: the device says it is read-only" in out, out
    assert re.search(r"blkcopy: write of \d+ sectors at \d+ failed: status 1", out), out
    assert status == qemu_status(2), out
    assert sha256(img) == h


@pytest.mark.parametrize("machine", MACHINES)
def test_blkops(machine, image):
    status, out = run_qemu("blkops", "", [Disk(str(image), serial="QEMUSERIAL42")], machine)
    assert 'blkops: id "QEMUSERIAL42"' in out, out
    want = check_blkops(out, tolerated=QEMU_BLKOPS_TOLERATED)
    assert status == qemu_status(want), out


@pytest.mark.parametrize("machine,high", [("q35", 0x8000000000), ("microvm", 0)])
def test_blkops_relocated_bars(machine, high, image):
    # The guest moves the BARs (on q35 the 64-bit one to 512 GiB, which it
    # must add to its page tables) and the device must follow.
    arg = "relocate" + (f" relocate_high={high:#x}" if high else "")
    status, out = run_qemu("blkops", arg, [Disk(str(image))], machine)
    moved = re.findall(r"bar \d: mem(?:32|64) (0x[0-9a-f]+) size 0x[0-9a-f]+.*"
                       r"\(assigned by the guest\)", out)
    # What went wrong first: a CI log may show only the message's start.
    brief = "\n".join(l for l in out.splitlines() if "bar" in l or "fail" in l.lower()
                      or "MISMATCH" in l)[-1500:] + f"\nstatus {status}\n" + out
    assert len(moved) == 2, brief
    if high:
        assert f"bar 4: mem64 {high:#x}" in out, brief
    # check_blkops names the checks that failed first itself.
    want = check_blkops(out, tolerated=QEMU_BLKOPS_TOLERATED)
    assert status == qemu_status(want), brief


def test_blkops_irq(image):
    status, out = run_qemu("blkops", "irq", [Disk(str(image))])
    assert "completion irq" in out, out
    m = re.search(r"blkops: irq waits (\d+), queue interrupts (\d+)", out)
    assert m, out
    # every sleep that ended did so through an interrupt (queue or timer)
    assert "blkops: 0 failures" in out, out
    assert status == qemu_status(0), out


def test_blkops_readonly(image):
    h = sha256(image)
    status, out = run_qemu("blkops", "ro", [Disk(str(image), readonly=True)])
    assert "completion poll" in out and " ro " in out, out
    assert "blkops: write status=IOERR expect=IOERR ok" in out, out
    assert "blkops: write_zeroes status=IOERR" in out, out
    # QEMU 7.2 answers OK to DISCARD on a read-only disk (and changes nothing)
    assert re.search(r"blkops: discard status=(OK|IOERR) ", out), out
    assert "blkops: ro_readback status=OK expect=OK ok unchanged" in out, out
    assert "blkops: 0 failures" in out, out
    assert status == qemu_status(0), out
    assert sha256(image) == h, "read-only image changed"


def test_blkops_wrong_expectation_fails(image):
    # `ro` on a writable disk: the guest must notice (no F_RO, writes succeed)
    status, out = run_qemu("blkops", "ro", [Disk(str(image))])
    assert "blkops: write status=OK expect=IOERR FAIL" in out, out
    assert status == qemu_status(1), out


@pytest.mark.parametrize("machine", MACHINES)
def test_blkevil(machine, image):
    allow = ",".join(QEMU_EVIL_ACCEPTED)
    status, out = run_qemu("blkevil", f"allow={allow} need_irq", [Disk(str(image))], machine)
    cases = parse_evil(out)
    assert sorted(cases) == sorted(EVIL_CASES), out
    for name, c in cases.items():
        assert c["recovered"], f"{name}: device did not recover\n{out}"
        if name in QEMU_EVIL_ACCEPTED:
            # what QEMU 7.2 does (documented): completes the request
            assert c["result"] == "pass-allowed" and c["completed"], f"{name}\n{out}"
        else:
            assert c["result"] == "pass", f"{name}\n{out}"
            assert c["needs_reset"] and c["config_irq"] >= 1, f"{name}\n{out}"
    assert "blkevil: 15 passed, 0 failed" in out, out
    assert status == qemu_status(0), out


def test_blkevil_strict_fails_under_qemu(image):
    # Without the allow list the QEMU differences are failures: the check bites.
    status, out = run_qemu("blkevil", "cases=loop,indirect_next", [Disk(str(image))])
    cases = parse_evil(out)
    assert cases["loop"]["result"] == "pass", out
    assert cases["indirect_next"]["result"] == "FAIL", out
    assert status == qemu_status(1), out


def test_blkbench_smoke(image):
    status, out = run_qemu("blkbench", "mode=both sizes=4,64 depths=1,4 mb=1",
                           [Disk(str(image))])
    assert status == qemu_status(0), out
    points = parse_bench(out)
    want = {(m, bs, qd) for m in ("poll", "irq") for bs in (4096, 65536) for qd in (1, 4)}
    assert set(points) == want, out
    for (mode, bs, qd), p in points.items():
        assert p["bytes"] == p["reqs"] * bs and p["reqs"] == (1 << 20) // bs, out
        assert p["ns"] > 0 and p["iops"] > 0, out
        if mode == "poll":
            assert p["irq_waits"] == 0, out
    assert "blkbench: done" in out, out
