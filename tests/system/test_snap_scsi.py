# SPDX-License-Identifier: MIT
"""Snapshots of a VM whose virtio-scsi LUN has requests in flight (the
snap-scsi guest), modelled on test_snap_blk.py: a snapshot taken mid-run and
restored, the source resumed after a migrate, many snapshot/restore cycles,
and werror=stop / werror=report on a real ENOSPC.

snap-scsi keeps 64 READ/WRITE requests in flight and checks every completion
(each exactly once, with the data it wrote); the host checks the image
afterwards (every block holds one whole write of the guest's, and the
guest's account of its last writes, gensum, matches the disk)."""
import os
import re
import subprocess
import time

import pytest

from blkutil import check_image_pattern
from conftest import needs_kvm
from test_snap_blk import VM, FOREVER, MEM, make_image, restore_and_finish

pytestmark = needs_kvm


def final_gensum(out):
    m = re.search(r"snap-scsi: verified (\d+) blocks, gensum 0x([0-9a-f]+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2), 16)


def check_image(img, out):
    check_image_pattern(img, *final_gensum(out), magic=b"snapscsi")


def assert_finished(out, code, err):
    assert code == 0, (code, out, err)
    assert "completed once each" in out and "snap-scsi: flush ok" in out, out
    assert out.rstrip().endswith("snap-scsi: done"), out


def scsi(img, extra=""):
    return ["--scsi-disk", f"path={img}{extra}", "--memory", MEM]


def guest():
    from conftest import guest as g
    return g("snap-scsi")


def test_snapshot_mid_run_and_restore(tmp_path):
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "vm.snap")
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", FOREVER, *scsi(img)])
    vm.wait_output("snap-scsi: running")
    time.sleep(0.1)
    assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    out1, code, err = vm.quit()
    assert code == 0, err
    assert "completed once each" not in out1
    p = restore_and_finish(snap, *scsi(img))
    assert_finished(p.stdout, p.returncode, p.stderr)
    check_image(img, p.stdout)


def test_snapshot_then_source_continues(tmp_path):
    img = make_image(tmp_path / "d.img")
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", FOREVER, *scsi(img)],
            stdin=subprocess.PIPE)
    vm.wait_output("snap-scsi: running")
    for i in range(3):
        time.sleep(0.05)
        assert vm.q.cmd("migrate", {"uri": f"file:{tmp_path / f's{i}'}"}) == {"return": {}}
        assert vm.q.cmd("query-status")["return"]["status"] == "postmigrate"
        assert vm.q.cmd("cont") == {"return": {}}
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    out, code, err = vm.finish()
    assert_finished(out, code, err)
    check_image(img, out)


def test_twenty_cycles_on_lun3(tmp_path):
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "cycle.snap")
    disk = scsi(img, ",lun=3")
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", f"{FOREVER} lun=3", *disk],
            stdin=subprocess.PIPE)
    vm.wait_output("snap-scsi: running")
    out = ""
    for i in range(20):
        time.sleep(0.03)
        assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}, i
        o, code, err = vm.quit()
        assert code == 0, (i, err)
        assert "completed once each" not in o, (i, o)
        out += o
        vm = VM(tmp_path, ["--incoming", f"file:{snap}", *disk], stdin=subprocess.PIPE)
        assert vm.q.cmd("query-status")["return"]["status"] == "running"
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    o, code, err = vm.finish()
    out += o
    assert_finished(out, code, err)
    assert out.count("snap-scsi: running") == 1
    check_image(img, out)


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MiB tmpfs (we mount it: root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for a real ENOSPC needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_werror_stop_enospc_with_snapshot(tmp_path, small_tmpfs):
    img = make_image(small_tmpfs / "d.img", 8 << 20)
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:
        f.write(b"\xaa" * (12 << 20))
    snap = str(tmp_path / "vm.snap")
    disk = scsi(img, ",werror=enospc")
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", FOREVER, *disk])
    e = vm.q.wait_event("BLOCK_IO_ERROR")["data"]
    assert e["operation"] == "write" and e["action"] == "stop" and e["nospace"], e
    vm.q.wait_event("STOP")
    assert vm.q.cmd("query-status")["return"]["status"] == "io-error"
    assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    out1, code, err = vm.quit()
    assert code == 0, err
    vm = VM(tmp_path, ["--incoming", f"file:{snap}", "--paused", *disk], stdin=subprocess.PIPE)
    assert vm.q.cmd("query-status")["return"]["status"] == "paused"
    os.unlink(filler)
    assert vm.q.cmd("cont") == {"return": {}}
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    out2, code, err = vm.finish()
    out = out1 + out2
    assert_finished(out, code, err)
    check_image(img, out)


def test_werror_report_gives_the_guest_the_error(tmp_path, small_tmpfs):
    img = make_image(small_tmpfs / "d.img", 8 << 20)
    with open(small_tmpfs / "filler", "wb") as f:
        f.write(b"\xaa" * (12 << 20))
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", FOREVER, *scsi(img, ",werror=report")])
    e = vm.q.wait_event("BLOCK_IO_ERROR")["data"]
    assert e["action"] == "report" and e["nospace"] is True, e
    out, code, err = vm.finish()
    # SPACE ALLOCATION FAILED WRITE PROTECT (devices/virtio/scsi.h)
    assert code == 2 and "snap-scsi: write failed" in out, (code, out, err)
    assert "sense 7/27h/07h" in out, out
    assert "STOP" not in [x["event"] for x in vm.q.events]
