# SPDX-License-Identifier: MIT
"""kvmini's virtio-blk (`--disk`) driven by the guest/lib drivers: blkcopy
with a host-side check, two disks, read-only disks, GET_ID serials, the
malformed chains of blkevil (kvmini stays up, the device recovers), and a
blkbench smoke run. The same guests run under QEMU in test_blk_qemu.py.

Run with: /usr/bin/python3 -m pytest tests/system/test_blk.py (after `make`).
"""
import os
import re
import subprocess

import pytest

from blkutil import (EVIL_CASES, KVMINI_EVIL_ACCEPTED, check_blkops, check_copy, guest_elf, halves,
                     kvm_usable, parse_bench, parse_evil, random_image, sha256)
from conftest import KVMINI as BUILT_KVMINI

# KVMINI_BIN: test another kvmini binary (e.g. a branch not merged yet)
KVMINI = os.environ.get("KVMINI_BIN") or BUILT_KVMINI

TIMEOUT = 120


def kvmini_has_disks():
    try:
        p = subprocess.run([KVMINI, "--help"], capture_output=True, text=True, timeout=10)
    except OSError:
        return False
    return "--disk" in p.stdout + p.stderr


pytestmark = [
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible"),
    pytest.mark.skipif(not os.access(KVMINI, os.X_OK), reason=f"{KVMINI} not built (run make)"),
    pytest.mark.skipif(not kvmini_has_disks(),
                       reason="this kvmini has no --disk option (virtio-blk not built in)"),
]


def run_kvmini(guest, cmdline="", disks=(), memory="128M"):
    """Boot GUEST with `--disk SPEC` for each of DISKS; (status, stdout, stderr)."""
    elf = guest_elf(guest)
    if not elf.exists():
        pytest.fail(f"{elf} is missing: run `make guests` first")
    cmd = [KVMINI, "run", "--kernel", str(elf), "--memory", memory,
           "--timeout", str(TIMEOUT)]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    for spec in disks:
        cmd += ["--disk", spec]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT + 30)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"kvmini did not finish: {e}")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk0.img"
    random_image(path, 16 << 20)
    return path


@pytest.mark.parametrize("opts", ["", "irq", "noindirect qsize=16", "segs=4 maxkb=64",
                                  "noevent_idx irq depth=8"])
def test_blkcopy(image, opts):
    orig, _ = halves(image)
    status, out, err = run_kvmini("blkcopy", opts, [f"path={image}"])
    check_copy(out, image, orig)
    if not opts:
        assert "max in flight 64" in out, out
    assert status == 0, out + err


def test_two_disks(tmp_path):
    d0, d1 = tmp_path / "a.img", tmp_path / "b.img"
    random_image(d0, 4 << 20)
    random_image(d1, 16 << 20)
    h0 = sha256(d0)
    orig, _ = halves(d1)
    status, out, err = run_kvmini("pcilist", "bars", [f"path={d0}", f"path={d1}"])
    assert status == 0, out + err
    assert "pcilist: method cf8, 3 functions on bus 0" in out, out
    assert len(re.findall(r"pci: 00:0[12]\.0 1af4:1042 class 010000", out)) == 2, out
    # kvmini assigned every BAR (32-bit, in its hole); the guest kept them
    bars = re.findall(r"bar \d: mem32 (0x[0-9a-f]+) size", out)
    assert len(bars) == 4 and len(set(bars)) == 4, out
    assert all(0xc0000000 <= int(a, 16) < 0xfec00000 for a in bars), out
    assert "assigned by the guest" not in out, out
    status, out, err = run_kvmini("blkcopy", "disk=1", [f"path={d0}", f"path={d1}"])
    check_copy(out, d1, orig)
    assert "capacity 32768 sectors" in out, out
    assert status == 0, out + err
    assert sha256(d0) == h0, "disk 0 was written"


def test_serials_of_two_disks(tmp_path):
    d0, d1 = tmp_path / "a.img", tmp_path / "b.img"
    random_image(d0, 1 << 20)
    random_image(d1, 1 << 20)
    disks = [f"path={d0},serial=FIRST-DISK", f"path={d1},serial=ABCDEFGHIJKLMNOPQRST"]
    for n, want in ((0, "FIRST-DISK"), (1, "ABCDEFGHIJKLMNOPQRST")):
        status, out, err = run_kvmini("blkops", f"disk={n}", disks)
        assert f'blkops: id "{want}"' in out, out
        assert "blkops: 0 failures" in out, out
        assert status == 0, out + err


def test_get_id_default_is_empty(image):
    status, out, err = run_kvmini("blkops", "", [f"path={image}"])
    assert 'blkops: id ""' in out, out
    assert "blkops: 0 failures" in out, out
    assert status == 0, out + err


@pytest.mark.parametrize("opts", ["", "irq"])
def test_blkops(image, opts):
    status, out, err = run_kvmini("blkops", opts, [f"path={image},serial=KVMINI-1"])
    check_blkops(out, msix=opts != "irq")  # masking is checked in polling mode
    assert status == 0, out + err


def test_relocated_bars(tmp_path):
    # The guest moves disk 1's BARs (doorbell and MSI-X table included);
    # kvmini must decode them at the new addresses. Both disks copy fine.
    d0, d1 = tmp_path / "a.img", tmp_path / "b.img"
    random_image(d0, 4 << 20)
    random_image(d1, 16 << 20)
    orig, _ = halves(d1)
    disks = [f"path={d0}", f"path={d1}"]
    status, out, err = run_kvmini("blkops", "disk=1 relocate", disks)
    moved = re.findall(r"bar (\d): mem32 (0x[0-9a-f]+) size .*\(assigned by the guest\)", out)
    assert len(moved) == 2, out
    # kvmini placed disk 1 at 0xc0008000/0xc000c000 (docs/devices.md); the
    # guest's allocator puts them above every BAR in use
    assert all(int(a, 16) >= 0xc0010000 for _, a in moved), out
    check_blkops(out)
    assert status == 0, out + err
    status, out, err = run_kvmini("blkcopy", "disk=1 relocate irq", disks)
    check_copy(out, d1, orig)
    assert status == 0, out + err


def test_readonly_disk(image):
    h = sha256(image)
    status, out, err = run_kvmini("blkops", "ro", [f"path={image},readonly=on"])
    assert " ro " in out, out  # VIRTIO_BLK_F_RO offered
    assert "blkops: write status=IOERR expect=IOERR ok" in out, out
    # kvmini offers neither WRITE_ZEROES nor DISCARD on read-only disks
    # (docs/devices.md) and must refuse them anyway
    assert re.search(r"blkops: write_zeroes status=(IOERR|UNSUPP) .* ok", out), out
    assert re.search(r"blkops: discard status=(IOERR|UNSUPP) .* ok", out), out
    assert "blkops: ro_readback status=OK expect=OK ok unchanged" in out, out
    assert "blkops: 0 failures" in out, out
    assert status == 0, out + err
    assert sha256(image) == h, "read-only image changed"


def test_readonly_disk_refuses_blkcopy(image):
    h = sha256(image)
    status, out, err = run_kvmini("blkcopy", "", [f"path={image},readonly=on"])
    assert re.search(r"blkcopy: write of \d+ sectors at \d+ failed: status 1", out), out
    assert status == 2, out + err
    assert sha256(image) == h, "read-only image changed"


@pytest.mark.parametrize("opts", ["", "irq"])
def test_blkevil(image, opts):
    allow = ",".join(KVMINI_EVIL_ACCEPTED)
    status, out, err = run_kvmini("blkevil", f"need_irq allow={allow} {opts}",
                                  [f"path={image}"])
    cases = parse_evil(out)
    assert sorted(cases) == sorted(EVIL_CASES), out
    for name, c in cases.items():
        assert c["recovered"], f"{name}: device did not recover\n{out}\n{err}"
        if name in KVMINI_EVIL_ACCEPTED:
            assert c["completed"] and c["status"] == 0, f"{name}\n{out}"
        else:
            assert c["result"] == "pass", f"{name}\n{out}\n{err}"
            assert c["needs_reset"] and c["config_irq"] >= 1, f"{name}\n{out}"
    assert f"blkevil: {len(EVIL_CASES)} passed, 0 failed" in out, out
    # kvmini said why, on stderr, and kept running to the guest's exit
    assert "the device needs a reset" in err, err
    assert status == 0, out + err


def test_blkevil_other_disk_keeps_working(tmp_path):
    # While disk 1 is in NEEDS_RESET, disk 0 (another device, another
    # iothread) must keep serving reads.
    d0, d1 = tmp_path / "a.img", tmp_path / "b.img"
    random_image(d0, 4 << 20)
    random_image(d1, 4 << 20)
    status, out, err = run_kvmini("blkevil", "disk=1 other=0 cases=loop,oob_addr,short_header",
                                  [f"path={d0}", f"path={d1}"])
    assert out.count("blkevil:   other disk: read ok") == 3, out
    assert "blkevil: 3 passed, 0 failed" in out, out + err
    assert status == 0, out + err


def test_blkbench_smoke(image):
    status, out, err = run_kvmini("blkbench", "mode=both sizes=4,64 depths=1,4 mb=1",
                                  [f"path={image}"])
    assert status == 0, out + err
    points = parse_bench(out)
    want = {(m, bs, qd) for m in ("poll", "irq") for bs in (4096, 65536) for qd in (1, 4)}
    assert set(points) == want, out
    for (mode, bs, qd), p in points.items():
        assert p["bytes"] == p["reqs"] * bs and p["reqs"] == (1 << 20) // bs, out
        if mode == "poll":
            assert p["irq_waits"] == 0, out
    assert "blkbench: done" in out, out
