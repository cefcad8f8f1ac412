# SPDX-License-Identifier: MIT
"""The virtio-scsi guests (scsicopy, scsievil, snap-scsi, scsibench) under
QEMU (virtio-scsi-pci + scsi-hd): guest/lib's virtio-scsi driver and the
guests' SCSI checks against an implementation no one here wrote, and the
reference for standard SCSI behaviour. QEMU microvm with pcie=on (see
test_blk_qemu.py). A guest status S ends QEMU with (S << 1) | 1.

Run with: /usr/bin/python3 -m pytest tests/system/test_scsi_qemu.py (after
`make guests`).
"""
import re
import subprocess

import pytest

from blkutil import (QEMU, SCSIEVIL_CASES, SCSIEVIL_QEMU_ALLOWED, ScsiDisk, check_scsicopy,
                     guest_elf, halves, kvm_usable, parse_bench, parse_scsievil, qemu_cmd,
                     qemu_status, random_image, scsicopy_checks, sha256)
from qemuref import run_reference

TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found "
                       "(Debian package qemu-system-x86)"),
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm missing or not accessible: "
                       "QEMU runs the guests with -enable-kvm"),
]


def run_qemu(guest, append, luns):
    if not guest_elf(guest).exists():
        pytest.fail(f"{guest_elf(guest)} is missing: run `make guests` first")
    cmd = qemu_cmd(guest, append, scsi=luns)
    p = run_reference(cmd, TIMEOUT, guest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors="replace")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "lun.img"
    random_image(path, 16 << 20)
    return path


@pytest.mark.parametrize("lun,opts", [(0, ""), (3, "cdb=10 irq"), (0, "cdb=16 noindirect"),
                                      (5, "segs=4 maxkb=64 noevent_idx")])
def test_scsicopy(image, lun, opts):
    orig, _ = halves(image)
    status, out = run_qemu("scsicopy", f"lun={lun} blocks=32768 serial=QSER{lun} {opts}",
                           [ScsiDisk(str(image), lun=lun, serial=f"QSER{lun}")])
    check_scsicopy(out, image, orig)
    checks = scsicopy_checks(out)
    for c in ("tur", "inquiry_data", "vpd_00_data", "vpd_80_data", "vpd_83_data",
              "vpd_b0_data", "vpd_b1_data", "vpd_b2_data", "capacity", "mode_sense_wp",
              "report_luns_data", "read_oob10", "read_oob16", "bad_opcode"):
        assert checks.get(c), (c, out)
    assert f'scsicopy: serial "QSER{lun}"' in out, out
    assert status == qemu_status(0), out


def test_scsicopy_wrong_size_fails(image):
    # The capacity check must be able to fail.
    status, out = run_qemu("scsicopy", "blocks=1000 checks_only", [ScsiDisk(str(image))])
    assert scsicopy_checks(out)["capacity"] is False, out
    assert status == qemu_status(4), out


def test_scsicopy_two_luns(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    random_image(a, 4 << 20)
    random_image(b, 8 << 20)
    ha = sha256(a)
    orig, _ = halves(b)
    luns = [ScsiDisk(str(a), lun=0), ScsiDisk(str(b), lun=2)]
    status, out = run_qemu("scsicopy", "lun=2 blocks=16384 nluns=2", luns)
    check_scsicopy(out, b, orig)
    assert "scsicopy: report luns: 0 2" in out, out
    assert status == qemu_status(0), out
    assert sha256(a) == ha, "LUN 0 was written"


def test_scsicopy_readonly(image):
    h = sha256(image)
    status, out = run_qemu("scsicopy", "readonly", [ScsiDisk(str(image), readonly=True)])
    checks = scsicopy_checks(out)
    assert checks.get("write_protect10") and checks.get("write_protect16"), out
    assert checks.get("write_protect_unchanged") and checks.get("mode_sense_wp"), out
    assert all(checks.values()), out
    assert status == qemu_status(0), out
    assert sha256(image) == h, "read-only image changed"


def test_scsicopy_readonly_expectation_fails(image):
    # `readonly` on a writable LUN: the writes succeed, the guest says so.
    status, out = run_qemu("scsicopy", "readonly", [ScsiDisk(str(image))])
    checks = scsicopy_checks(out)
    assert checks["write_protect10"] is False and checks["mode_sense_wp"] is False, out
    assert status == qemu_status(4), out


def test_scsicopy_copy_refused_on_readonly(image):
    h = sha256(image)
    status, out = run_qemu("scsicopy", "", [ScsiDisk(str(image), readonly=True)])
    assert re.search(r"scsicopy: write\(1[06]\) of \d+ sectors at \d+ failed: response 0 "
                     r"status 0x2 sense 7/27h", out), out
    assert status == qemu_status(2), out
    assert sha256(image) == h


@pytest.mark.parametrize("opts", ["", "irq"])
def test_scsievil(image, opts):
    allow = ",".join(SCSIEVIL_QEMU_ALLOWED)
    status, out = run_qemu("scsievil", f"allow={allow} {opts}", [ScsiDisk(str(image))])
    cases = parse_scsievil(out)
    assert sorted(cases) == sorted(SCSIEVIL_CASES), out
    for name, c in cases.items():
        assert c["recovered"], f"{name}\n{out}"
        want = "pass-allowed" if name in SCSIEVIL_QEMU_ALLOWED else "pass"
        assert c["result"] == want, f"{name}\n{out}"
    # what QEMU 7.2 does with the transport-level mistakes: virtio_error
    for name in ("short_header", "no_response", "short_response", "ctrl_short"):
        assert cases[name]["needs_reset"], f"{name}\n{out}"
    assert "scsievil: final ok" in out, out
    assert f"scsievil: {len(SCSIEVIL_CASES)} passed, 0 failed" in out, out
    assert status == qemu_status(0), out


def test_scsievil_strict_fails_under_qemu(image):
    # Without allow=, QEMU's any_layout answer is a failure: the check bites.
    status, out = run_qemu("scsievil", "cases=any_layout,lun300", [ScsiDisk(str(image))])
    cases = parse_scsievil(out)
    assert cases["any_layout"]["result"] == "FAIL", out
    assert cases["lun300"]["result"] == "pass", out
    assert status == qemu_status(1), out


def test_snap_scsi_runs(tmp_path):
    img = tmp_path / "s.img"
    with open(img, "wb") as f:
        f.truncate(4 << 20)
    status, out = run_qemu("snap-scsi", "ms=500", [ScsiDisk(str(img))])
    assert status == qemu_status(0), out
    assert "completed once each" in out and "snap-scsi: flush ok" in out, out
    m = re.search(r"snap-scsi: verified (\d+) blocks, gensum 0x([0-9a-f]+)", out)
    assert m, out
    from blkutil import check_image_pattern
    check_image_pattern(img, int(m.group(1)), int(m.group(2), 16), b"snapscsi")


def test_scsibench_smoke(image):
    status, out = run_qemu("scsibench", "mode=both sizes=4,64 depths=1,4 mb=1",
                           [ScsiDisk(str(image))])
    assert status == qemu_status(0), out
    points = parse_bench(out, "scsibench")
    want = {(m, bs, qd) for m in ("poll", "irq") for bs in (4096, 65536) for qd in (1, 4)}
    assert set(points) == want, out
    for (mode, bs, qd), p in points.items():
        assert p["bytes"] == p["reqs"] * bs and p["reqs"] == (1 << 20) // bs, out
        if mode == "poll":
            assert p["irq_waits"] == 0, out
    assert "scsibench: done" in out, out


def test_scsitmf(tmp_path):
    """Task management with writes in flight under QEMU: the guest's spec checks
    (aborted tasks returned before the TMF completes, each write once, the unit
    attention after resets) hold for QEMU's implementation too."""
    img = tmp_path / "t.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    status, out = run_qemu("scsitmf", "lun=0", [ScsiDisk(str(img), lun=0)])
    assert status == qemu_status(0), out
    assert out.count("result=pass") == 5 and "scsitmf: ok" in out, out
