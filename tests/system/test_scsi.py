# SPDX-License-Identifier: MIT
"""kvmini's virtio-scsi (`--scsi-disk path=FILE[,lun=N][,readonly=on][,serial=S]`:
one controller, target 0, one LUN per option) driven by guest/lib's
virtio-scsi driver: scsicopy on LUN 0 and LUN 3 with a host-side check of
the image, two LUNs at once, a read-only LUN (DATA PROTECT), scsievil (kvmini
stays up, the device keeps working), and smoke runs of scsibench. The same
guests run under QEMU in test_scsi_qemu.py.

Run with: /usr/bin/python3 -m pytest tests/system/test_scsi.py (after `make`).
"""
import os
import re
import subprocess

import pytest

from blkutil import (SCSIEVIL_CASES, check_scsicopy, guest_elf, halves, kvm_usable,
                     parse_bench, parse_scsievil, random_image, scsicopy_checks, sha256)
from conftest import KVMINI as BUILT_KVMINI

# KVMINI_BIN: test another kvmini binary (e.g. a branch not merged yet)
KVMINI = os.environ.get("KVMINI_BIN") or BUILT_KVMINI

TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible"),
    pytest.mark.skipif(not os.access(KVMINI, os.X_OK), reason=f"{KVMINI} not built (run make)"),
]


def run_kvmini(guest, cmdline="", luns=(), memory="128M"):
    """Boot GUEST with `--scsi-disk SPEC` for each of LUNS; (status, stdout, stderr)."""
    elf = guest_elf(guest)
    if not elf.exists():
        pytest.fail(f"{elf} is missing: run `make guests` first")
    cmd = [KVMINI, "run", "--kernel", str(elf), "--memory", memory, "--timeout", str(TIMEOUT)]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    for spec in luns:
        cmd += ["--scsi-disk", spec]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=TIMEOUT + 30)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"kvmini did not finish: {e}")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "lun.img"
    random_image(path, 16 << 20)
    return path


def test_controller_config(image):
    # The configuration the device promises (docs: num_queues 1, seg_max
    # 254, max_sectors 65536, cmd_per_lun 256, max_target 0, max_lun 255).
    status, out, err = run_kvmini("scsicopy", "checks_only", [f"path={image}"])
    assert ("virtio-scsi num_queues 1 seg_max 254 max_sectors 65536 cmd_per_lun 256 "
            "max_target 0 max_lun 255 queue 256 indirect event_idx") in out, out + err
    assert status == 0, out + err


@pytest.mark.parametrize("lun,opts", [(0, ""), (0, "irq cdb=16"), (3, "cdb=10"),
                                      (0, "noindirect qsize=16 segs=4 maxkb=64")])
def test_scsicopy(image, lun, opts):
    orig, _ = halves(image)
    spec = f"path={image},serial=KV-SER-{lun}" + (f",lun={lun}" if lun else "")
    status, out, err = run_kvmini("scsicopy",
                                  f"lun={lun} blocks=32768 nluns=1 serial=KV-SER-{lun} {opts}",
                                  [spec])
    check_scsicopy(out, image, orig)
    assert f"scsicopy: report luns: {lun}\n" in out, out
    assert status == 0, out + err


def test_two_luns(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    random_image(a, 4 << 20)
    random_image(b, 8 << 20)
    # default LUN numbers: 0, 1, ... in order
    for lun, path, blocks in ((0, a, 8192), (1, b, 16384)):
        h = {p: sha256(p) for p in (a, b)}
        orig, _ = halves(path)
        status, out, err = run_kvmini("scsicopy", f"lun={lun} blocks={blocks} nluns=2",
                                      [f"path={a}", f"path={b}"])
        check_scsicopy(out, path, orig)
        assert "scsicopy: report luns: 0 1\n" in out, out
        assert status == 0, out + err
        other = b if path == a else a
        assert sha256(other) == h[other], "the other LUN was written"


def test_lun3_and_lun7(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    random_image(a, 4 << 20)
    random_image(b, 4 << 20)
    orig, _ = halves(b)
    status, out, err = run_kvmini("scsicopy", "lun=7 blocks=8192 nluns=2",
                                  [f"path={a},lun=3", f"path={b},lun=7"])
    check_scsicopy(out, b, orig)
    assert "scsicopy: report luns: 3 7\n" in out, out
    assert status == 0, out + err


def test_readonly_lun(image):
    h = sha256(image)
    status, out, err = run_kvmini("scsicopy", "readonly", [f"path={image},readonly=on"])
    checks = scsicopy_checks(out)
    for c in ("write_protect10", "write_protect16", "write_protect_unchanged", "mode_sense_wp"):
        assert checks.get(c), (c, out)
    assert all(checks.values()), out
    assert status == 0, out + err
    assert sha256(image) == h, "read-only image changed"


def test_readonly_lun_refuses_copy(image):
    h = sha256(image)
    status, out, err = run_kvmini("scsicopy", "", [f"path={image},readonly=on"])
    assert re.search(r"scsicopy: write\(1[06]\) of \d+ sectors at \d+ failed: response 0 "
                     r"status 0x2 sense 7/27h", out), out
    assert status == 2, out + err
    assert sha256(image) == h


@pytest.mark.parametrize("opts", ["", "irq"])
def test_scsievil(image, opts):
    status, out, err = run_kvmini("scsievil", opts, [f"path={image}"])
    cases = parse_scsievil(out)
    assert sorted(cases) == sorted(SCSIEVIL_CASES), out
    for name, c in cases.items():
        assert c["recovered"] and c["result"] == "pass", f"{name}\n{out}\n{err}"
    assert "scsievil: final ok" in out, out
    assert f"scsievil: {len(SCSIEVIL_CASES)} passed, 0 failed" in out, out
    assert status == 0, out + err  # kvmini kept running to the guest's exit


def test_scsievil_on_lun3_beside_lun0(tmp_path):
    a, b = tmp_path / "a.img", tmp_path / "b.img"
    random_image(a, 4 << 20)
    random_image(b, 4 << 20)
    status, out, err = run_kvmini("scsievil", "lun=3", [f"path={a}", f"path={b},lun=3"])
    assert "scsievil: final ok" in out, out + err
    assert status == 0, out + err


def test_scsibench_smoke(image):
    status, out, err = run_kvmini("scsibench", "mode=both sizes=4,64 depths=1,4 mb=1",
                                  [f"path={image}"])
    assert status == 0, out + err
    points = parse_bench(out, "scsibench")
    want = {(m, bs, qd) for m in ("poll", "irq") for bs in (4096, 65536) for qd in (1, 4)}
    assert set(points) == want, out
    for (mode, bs, qd), p in points.items():
        assert p["bytes"] == p["reqs"] * bs and p["reqs"] == (1 << 20) // bs, out
    assert "scsibench: done" in out, out


@pytest.mark.parametrize("lun,opts", [(0, ""), (4, "irq writes=32 kb=2048")])
def test_scsitmf(tmp_path, lun, opts):
    """Task management with writes really in flight: each round's TMF completes
    only after the writes it cancelled were returned (ABORTED for the abort TMFs,
    RESET for the resets), every write comes back once, resets leave a unit
    attention, and the LUN works afterwards. Over the rounds the device must
    have cancelled at least one write (writes queue behind 16 pool workers)."""
    img = tmp_path / "t.img"
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    status, out, err = run_kvmini("scsitmf", f"lun={lun} {opts}", [f"path={img},lun={lun}"])
    assert status == 0, (out, err)
    assert out.count("result=pass") == 5 and "scsitmf: ok" in out, out
    m = re.search(r"scsitmf: aborted (\d+) of (\d+) writes", out)
    assert m and int(m.group(1)) > 0, out
