# SPDX-License-Identifier: MIT
"""Snapshots of a VM whose virtio-scsi LUN has requests in flight (the
snap-scsi guest), modelled on test_snap_blk.py: a snapshot taken mid-run and
restored, the source resumed after a migrate, many snapshot/restore cycles,
and werror=stop / werror=report on a real ENOSPC.

snap-scsi keeps 64 READ/WRITE requests in flight and checks every completion
(each exactly once, with the data it wrote); the host checks the image
afterwards (every block holds one whole write of the guest's, and the
guest's account of its last writes, gensum, matches the disk)."""
import hashlib
import os
import re
import shutil
import struct
import subprocess
import time
import zlib

import pytest

from blkutil import check_image_pattern
from conftest import assert_one_line_error, needs_kvm, run_kvmini
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


# The virtio-scsi section (docs/snapshot.md, devices/virtio/virtio_scsi.c):
# header (version, nluns, nrequests, cdb_size, sense_size, reserved), 16 bytes
# per LUN, 88 bytes per held request, then the virtio-pci state.
HDR, LUN, REQ = 24, 16, 88


def scsi_section(data):
    """(offset, length, table entry offset) of section dev.N.virtio-scsi."""
    nsec, = struct.unpack_from("<I", data, 16)
    table, = struct.unpack_from("<Q", data, 24)
    for i in range(nsec):
        name, _, _, off, length = struct.unpack_from("<24sIIQQ", data, table + 64 * i)
        if name.rstrip(b"\0").endswith(b".virtio-scsi"):
            return off, length, table + 64 * i
    raise AssertionError("no virtio-scsi section")


def held(data):
    """[(queue, head, state, tmf, tag)] of the requests the controller held."""
    off, _, _ = scsi_section(data)
    nluns, nreq = struct.unpack_from("<II", data, off + 4)
    base = off + HDR + LUN * nluns
    return [struct.unpack_from("<HHBB", data, base + REQ * i) +
            struct.unpack_from("<Q", data, base + REQ * i + 80) for i in range(nreq)]


def snapshot_busy(vm, snap, need=1, tries=30):
    """migrate while at least @need SCSI requests are in flight (else cont, retry)."""
    for _ in range(tries):
        assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
        if len(held(open(snap, "rb").read())) >= need:
            return
        vm.q.cmd("cont")
        time.sleep(0.03)
    raise AssertionError("no snapshot caught a request in flight")


def test_snapshot_mid_run_and_restore(tmp_path):
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "vm.snap")
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", FOREVER, *scsi(img, ",delay=5")])
    vm.wait_output("snap-scsi: running")
    time.sleep(0.1)
    snapshot_busy(vm, snap)
    reqs = held(open(snap, "rb").read())
    # Command requests on queue 2, each once; states held-done (1) or not started (2).
    assert all(q == 2 and t == 0 and st in (1, 2) for q, _, st, t, _ in reqs), reqs
    assert len({h for _, h, _, _, _ in reqs}) == len(reqs)
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
    disk = scsi(img, ",lun=3,delay=5")  # delay=: so that snapshots catch requests
    vm = VM(tmp_path, ["--kernel", guest(), "--cmdline", f"{FOREVER} lun=3", *disk],
            stdin=subprocess.PIPE)
    vm.wait_output("snap-scsi: running")
    out = ""
    busy = 0
    for i in range(20):
        time.sleep(0.03)
        if not busy:
            # Until one snapshot has caught a request in flight, retry (cont)
            # as snapshot_busy does: a loaded host may let 20 in a row miss.
            snapshot_busy(vm, snap)
            busy = 1
        else:
            assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}, i
            busy += len(held(open(snap, "rb").read())) > 0
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
    assert busy > 0, "no snapshot of the 20 caught a request in flight"
    check_image(img, out)


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


# ------------------------------------------------------------ bad snapshot files

@pytest.fixture(scope="module")
def busy_snapshot(tmp_path_factory):
    """A snapshot of snap-scsi with at least two requests in flight, and its image."""
    tmp = tmp_path_factory.mktemp("busy")
    img = make_image(tmp / "d.img")
    snap = str(tmp / "vm.snap")
    # delay=: requests wait 20 ms in the host, so a migrate catches two.
    vm = VM(tmp, ["--kernel", guest(), "--cmdline", FOREVER, *scsi(img, ",delay=20")])
    vm.wait_output("snap-scsi: running")
    time.sleep(0.05)
    snapshot_busy(vm, snap, need=2)
    out, code, err = vm.quit()
    assert code == 0, err
    return open(snap, "rb").read(), img


def rewrite_section(data, mutate):
    """Apply @mutate(bytearray, section offset) to the virtio-scsi section and
    fix every checksum: only the device's own checks can catch it."""
    data = bytearray(data)
    off, length, entry = scsi_section(data)
    mutate(data, off)
    struct.pack_into("<I", data, entry + 28, zlib.crc32(data[off:off + length]))
    nsec, = struct.unpack_from("<I", data, 16)
    table, = struct.unpack_from("<Q", data, 24)
    struct.pack_into("<I", data, 32, zlib.crc32(data[table:table + 64 * nsec]))
    struct.pack_into("<I", data, 36, 0)
    struct.pack_into("<I", data, 36, zlib.crc32(data[:64]))
    return bytes(data)


def put(fmt, where, value=None, xor=None):
    def m(d, off):
        v, = struct.unpack_from(fmt, d, off + where)
        struct.pack_into(fmt, d, off + where, value if xor is None else v ^ xor)
    return m


R0, R1 = HDR + LUN, HDR + LUN + REQ  # the first two saved requests


def dup_request(d, off):
    d[off + R1:off + R1 + 4] = d[off + R0:off + R0 + 4]


BAD = [
    ("version", put("<I", 0, 9), "state version 9"),
    ("nluns", put("<I", 4, 2), "2 LUNs"),
    # One more request than saved: the transport's header (version 1) is read as
    # a request on queue 1.
    ("nrequests", lambda d, off: struct.pack_into(
        "<I", d, off + 8, struct.unpack_from("<I", d, off + 8)[0] + 1), "queue 1"),
    ("cdb_size", put("<I", 12, 4096), "out of range"),
    ("reserved", put("<I", 20, 1), "reserved"),
    ("lun blocks", put("<Q", HDR, xor=8), "blocks"),
    ("lun number", put("<H", HDR + 8, 5), "LUN 5"),
    ("lun readonly", put("<B", HDR + 10, 1), "readonly=on in the snapshot"),
    ("unit attention", put("<B", HDR + 11, 7), "bad state"),
    ("request queue", put("<H", R0, 1), "queue 1"),
    ("request state", put("<B", R0 + 4, 9), "state 9"),
    ("request tmf", put("<B", R0 + 5, 1), "task management flag"),
    ("request reserved", put("<B", R0 + 9, 1), "reserved"),
    ("request head", put("<H", R0 + 2, 300), "has no saved request"),
    ("request twice", dup_request, "twice"),
    ("request cdb", put("<B", R0 + 48, xor=0x40), "CDB or tag"),
    ("request tag", put("<Q", R0 + 80, xor=1), "CDB or tag"),
]


@pytest.mark.parametrize("what,mutate,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_virtio_scsi_section(tmp_path, busy_snapshot, what, mutate, needle):
    """Every corrupted field is refused with one line naming the device; the
    guest does not run and the image is untouched."""
    data, img = busy_snapshot
    work = str(tmp_path / "d.img")
    shutil.copyfile(img, work)
    before = hashlib.sha256(open(work, "rb").read()).hexdigest()
    f = tmp_path / "bad.snap"
    f.write_bytes(rewrite_section(data, mutate))
    p = run_kvmini("run", "--incoming", f"file:{f}", *scsi(work))
    assert_one_line_error(p, "virtio-scsi0", needle)
    assert p.stdout == "", "the guest must not run"
    assert hashlib.sha256(open(work, "rb").read()).hexdigest() == before
    # The good file still restores and finishes.
    if what == "version":
        f.write_bytes(data)
        p = restore_and_finish(f, *scsi(work))
        assert_finished(p.stdout, p.returncode, p.stderr)
        check_image(work, p.stdout)
