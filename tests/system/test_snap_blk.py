"""Snapshots of a VM whose disk has requests in flight (the snap-blk guest), many
cycles of them, werror=stop on a real ENOSPC with a snapshot in the middle, and
snapshot files whose virtio-blk section is corrupted.

snap-blk keeps 64 requests in flight and checks every completion (each exactly
once, with the data it wrote); the host checks the image afterwards: every
sector holds a write the guest made, and the guest's own account of its last
write to each block (gensum) matches what is on the disk."""
import hashlib
import os
import random
import re
import select
import shutil
import struct
import subprocess
import time
import zlib

import pytest

from conftest import KVMINI, assert_one_line_error, guest, needs_kvm, run_kvmini
from qmpclient import QMP

pytestmark = needs_kvm

MEM = "32M"
BLOCK = 4096
SECTOR = 512


def make_image(path, size=4 << 20):
    with open(path, "wb") as f:
        f.truncate(size)
    return str(path)


def check_image(path, nblocks, gensum):
    """Every block holds one whole write of snap-blk (or zeroes, never
    written), and the sum over blocks of (b + 1) * generation is the guest's."""
    data = open(path, "rb").read()
    total = 0
    for b in range(nblocks):
        blk = data[b * BLOCK:(b + 1) * BLOCK]
        if blk == bytes(BLOCK):
            continue
        gen, = struct.unpack_from("<Q", blk, 16)
        for k in range(BLOCK // SECTOR):
            want = (b"snap-blk" + struct.pack("<QQQ", b, gen, b * 8 + k) +
                    bytes([(131 * b + 7 * gen + k) & 0xff]) * (SECTOR - 32))
            assert blk[k * SECTOR:(k + 1) * SECTOR] == want, f"block {b} sector {k}"
        total += (b + 1) * gen
    assert total == gensum, (hex(total), hex(gensum))


def final_gensum(out):
    m = re.search(r"snap-blk: verified (\d+) blocks, gensum 0x([0-9a-f]+)", out)
    assert m, out
    return int(m.group(1)), int(m.group(2), 16)


# Guest time to run for: far more than any test needs; tests end the guest
# with a 'q' on its console (kvmini's stdin) when they are done with it.
FOREVER = "ms=600000"


def restore_and_finish(snap, *args):
    """Restore @snap, tell the guest to finish, wait for it."""
    return run_kvmini("run", "--incoming", f"file:{snap}", *args, stdin=None, input="q",
                      timeout=120)


def assert_finished(out, code, err):
    assert code == 0, (code, out, err)
    assert "completed once each" in out and "snap-blk: flush ok" in out, out
    assert out.rstrip().endswith("snap-blk: done"), out


class VM:
    """A kvmini running snap-blk (or restoring it), with QMP."""

    def __init__(self, tmp_path, args, stdin=subprocess.DEVNULL, timeout=120):
        self.sock = str(tmp_path / f"q{random.random()}.sock")
        self.p = subprocess.Popen([KVMINI, "run", *args, "--qmp", self.sock, "--timeout",
                                   str(timeout)],
                                  stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.q = QMP(self.sock)
        self.out = b""

    def wait_output(self, text, timeout=30):
        """Read the guest's output until @text appears."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.out!r}"
            if select.select([self.p.stdout], [], [], left)[0]:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                assert chunk, f"kvmini ended before {text!r}: {self.out!r}"
                self.out += chunk

    def finish(self, timeout=120):
        """Wait for kvmini to exit; returns (all output, status, stderr)."""
        out, err = self.p.communicate(timeout=timeout)
        self.q.close()
        return (self.out + out).decode(), self.p.returncode, err.decode()

    def quit(self):
        self.q.cmd("quit")
        return self.finish(30)


def blk_section(data, index=4):
    """(offset, length, table entry offset) of section dev.<index>.virtio-blk."""
    nsec, = struct.unpack_from("<I", data, 16)
    table, = struct.unpack_from("<Q", data, 24)
    for i in range(nsec):
        name, _, _, off, length = struct.unpack_from("<24sIIQQ", data, table + 64 * i)
        if name.rstrip(b"\0") == f"dev.{index}.virtio-blk".encode():
            return off, length, table + 64 * i
    raise AssertionError("no virtio-blk section")


def in_flight(snap):
    """Requests the disk held when the snapshot was taken."""
    data = open(snap, "rb").read()
    off, _, _ = blk_section(data)
    return struct.unpack_from("<I", data, off + 4)[0]


# delay= (ms) for the disks of tests that need a snapshot to catch requests
# in flight: without it a loaded CI host once let 20 tries in a row miss.
# (test_soak snapshots an undelayed disk, io_uring reads included.)
BUSY_DELAY = 5


def snapshot_busy(vm, snap, need=1, tries=20):
    """migrate while at least @need requests are in flight. The device is
    often idle for a moment (the guest, checking data at CPL3, is slower than
    the page cache): then cont and try again."""
    for _ in range(tries):
        assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
        if in_flight(snap) >= need:
            return
        vm.q.cmd("cont")
        time.sleep(0.05)
    raise AssertionError("no snapshot caught a request in flight")


def test_snapshot_with_requests_in_flight(tmp_path):
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "vm.snap")
    disk = ["--disk", f"path={img},delay={BUSY_DELAY}", "--memory", MEM]
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, *disk])
    vm.wait_output("snap-blk: running")
    time.sleep(0.1)
    snapshot_busy(vm, snap)
    out1, code, err = vm.quit()
    assert code == 0, err
    assert "completed once each" not in out1
    p = restore_and_finish(snap, *disk)
    assert_finished(p.stdout, p.returncode, p.stderr)
    nblocks, gensum = final_gensum(p.stdout)
    check_image(img, nblocks, gensum)


def test_snapshot_then_source_continues(tmp_path):
    """The source VM resumed after a migrate returns what it held, once."""
    img = make_image(tmp_path / "d.img")
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, "--disk",
                       f"path={img},delay={BUSY_DELAY}", "--memory", MEM], stdin=subprocess.PIPE)
    vm.wait_output("snap-blk: running")
    for i in range(3):
        time.sleep(0.05)
        snapshot_busy(vm, str(tmp_path / f"s{i}"))
        assert vm.q.cmd("query-status")["return"]["status"] == "postmigrate"
        assert vm.q.cmd("cont") == {"return": {}}
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    out, code, err = vm.finish()
    assert_finished(out, code, err)
    check_image(img, *final_gensum(out))


def test_fifty_cycles(tmp_path):
    """50 snapshot/restore cycles of a running snap-blk, then it finishes ('q' on
    its console) and the disk is checked."""
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "cycle.snap")
    disk = ["--disk", f"path={img},delay={BUSY_DELAY}", "--memory", MEM]
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, *disk],
            stdin=subprocess.PIPE)
    vm.wait_output("snap-blk: running")
    out = ""
    busy = 0
    for i in range(50):
        time.sleep(0.03)
        if not busy:
            # Until one snapshot has caught a request in flight, retry (cont)
            # as snapshot_busy does: a loaded host may let many in a row miss.
            snapshot_busy(vm, snap)
            busy = 1
        else:
            r = vm.q.cmd("migrate", {"uri": f"file:{snap}"})
            assert r == {"return": {}}, (i, r)
            busy += in_flight(snap) > 0
        o, code, err = vm.quit()
        assert code == 0, (i, err)
        assert "completed once each" not in o, (i, o)
        out += o
        vm = VM(tmp_path, ["--incoming", f"file:{snap}", *disk], stdin=subprocess.PIPE)
        assert vm.q.cmd("query-status")["return"]["status"] == "running"
    assert busy > 0, "no snapshot of the 50 caught a request in flight"
    finish_cycles(vm, out, img)


def finish_cycles(vm, out, img):
    """End a guest that went through snapshot cycles ('q' on its console):
    with @out, the output of the earlier processes, it ran once and
    finished, and the image holds what it says it wrote."""
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    o, code, err = vm.finish()
    out += o
    assert_finished(out, code, err)
    assert out.count("snap-blk: running") == 1
    check_image(img, *final_gensum(out))


# ------------------------------------------------------------ werror=stop, ENOSPC

def wait_stop_on_error(vm, nospace=True):
    e = vm.q.wait_event("BLOCK_IO_ERROR")["data"]
    assert e == {"device": "virtio-blk0", "operation": "write", "action": "stop",
                 "nospace": nospace, "reason": "No space left on device"}, e
    vm.q.wait_event("STOP")
    assert vm.q.cmd("query-status")["return"] == {"status": "io-error", "running": False,
                                                  "singlestep": False}
    blk, = vm.q.cmd("query-block")["return"]
    assert blk["io-status"] == "nospace", blk


def test_werror_stop_enospc_with_snapshot(tmp_path, small_tmpfs):
    # 8 MiB sparse image, 12 MiB of filler: the guest's first round of
    # writes runs out of space half way.
    img = make_image(small_tmpfs / "d.img", 8 << 20)
    filler = small_tmpfs / "filler"
    with open(filler, "wb") as f:
        f.write(b"\xaa" * (12 << 20))
    snap = str(tmp_path / "vm.snap")  # not on the full file system
    disk = ["--disk", f"path={img},werror=enospc", "--memory", MEM]
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, *disk])
    wait_stop_on_error(vm)
    # cont without fixing anything: the held writes fail again.
    assert vm.q.cmd("cont") == {"return": {}}
    assert vm.q.cmd("query-block")["return"][0]["io-status"] in ("ok", "nospace")
    wait_stop_on_error(vm)
    # Snapshot the VM stopped on the error: the failed writes are in flight.
    assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    assert in_flight(snap) > 0
    out1, code, err = vm.quit()
    assert code == 0, err
    assert "VM paused" in err and "No space left on device" in err, err
    # Restore paused: the io-status comes back; then space is freed and cont
    # lets every held write complete, once.
    vm = VM(tmp_path, ["--incoming", f"file:{snap}", "--paused", *disk], stdin=subprocess.PIPE)
    assert vm.q.cmd("query-status")["return"]["status"] == "paused"
    assert vm.q.cmd("query-block")["return"][0]["io-status"] == "nospace"
    os.unlink(filler)
    assert vm.q.cmd("cont") == {"return": {}}
    assert vm.q.cmd("query-block")["return"][0]["io-status"] == "ok"
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    out2, code, err = vm.finish()
    out = out1 + out2
    assert_finished(out, code, err)
    assert "BLOCK_IO_ERROR" not in [e["event"] for e in vm.q.events]
    check_image(img, *final_gensum(out))


def test_werror_report_gives_the_guest_the_error(tmp_path, small_tmpfs):
    img = make_image(small_tmpfs / "d.img", 8 << 20)
    with open(small_tmpfs / "filler", "wb") as f:
        f.write(b"\xaa" * (12 << 20))
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, "--disk",
                       f"path={img},werror=report", "--memory", MEM])
    e = vm.q.wait_event("BLOCK_IO_ERROR")["data"]
    assert e["action"] == "report" and e["nospace"] is True, e
    out, code, err = vm.finish()
    assert code == 2 and "snap-blk: write failed" in out, (code, out, err)
    assert "STOP" not in [x["event"] for x in vm.q.events]  # never paused


# ------------------------------------------------------------ bad snapshot files

@pytest.fixture(scope="module")
def busy_snapshot(tmp_path_factory):
    """A snapshot of snap-blk with requests in flight, and its disk image."""
    tmp = tmp_path_factory.mktemp("busy")
    img = make_image(tmp / "d.img")
    snap = str(tmp / "vm.snap")
    # delay=: every request waits 20 ms in the host, so nearly every
    # migrate catches two (a loaded CI host once let 20 tries in a row miss).
    vm = VM(tmp, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, "--disk",
                  f"path={img},delay={BUSY_DELAY * 4}", "--memory", MEM])
    vm.wait_output("snap-blk: running")
    time.sleep(0.05)
    snapshot_busy(vm, snap, need=2)  # "head twice" needs two
    out, code, err = vm.quit()
    assert code == 0, err
    return open(snap, "rb").read(), img


def rewrite_section(data, mutate):
    """Apply @mutate(bytearray, section offset) to the virtio-blk section, then
    fix its CRC, the table's and the header's: only the field checks can
    catch it."""
    data = bytearray(data)
    off, length, entry = blk_section(data)
    mutate(data, off)
    struct.pack_into("<I", data, entry + 28, zlib.crc32(data[off:off + length]))
    nsec, = struct.unpack_from("<I", data, 16)
    table, = struct.unpack_from("<Q", data, 24)
    struct.pack_into("<I", data, 32, zlib.crc32(data[table:table + 64 * nsec]))
    struct.pack_into("<I", data, 36, 0)
    struct.pack_into("<I", data, 36, zlib.crc32(data[:64]))
    return bytes(data)


# Offsets in the section (docs/snapshot.md; devices/virtio): the blk header
# (24 bytes), the virtio-pci header (48 + 256 bytes of PCI config), 64 config
# bytes, 2 MSI-X entries, the PBA, then the queue.
VP, CONFIG, TABLE, PBA, VQ = 24, 24 + 304, 24 + 304 + 64, 24 + 304 + 64 + 32, 24 + 304 + 64 + 40


def put(fmt, where, value=None, xor=None):
    def m(d, off):
        v, = struct.unpack_from(fmt, d, off + where)
        struct.pack_into(fmt, d, off + where, value if xor is None else v ^ xor)
    return m


def dup_head(d, off):
    first, = struct.unpack_from("<H", d, off + VQ + 48)
    struct.pack_into("<H", d, off + VQ + 50, first)


BAD = [
    # version 2 keeps a record per held request after the transport's state:
    # none said, and the records are taken for transport state
    ("nrequests", put("<I", 4, 0), "bytes, expected"),
    ("capacity", put("<Q", 8, xor=8), "sectors"),
    ("readonly", put("<B", 16, 1), "readonly=on in the snapshot"),
    ("virtio version", put("<I", VP, 7), "virtio state version 7"),
    ("features", put("<Q", VP + 24, xor=1 << 5), "offered features"),
    ("status", put("<B", VP + 40, xor=0x10), "unknown bits"),
    ("pci vendor", put("<B", VP + 48, xor=1), "read-only config byte 0x00"),
    ("device config", put("<B", CONFIG + 8, xor=1), "configuration differs"),
    ("msix control", put("<I", TABLE + 12, xor=0x10), "reserved bits"),
    ("queue size", put("<H", VQ + 24, 3), "power of two"),
    ("queue vector", put("<H", VQ + 26, 5), "vector 5"),
    ("rings misaligned", put("<Q", VQ + 16, xor=2), "misaligned"),
    ("used_idx", put("<H", VQ + 32, xor=1), "last_avail_idx"),
    ("head range", put("<H", VQ + 48, 1000), "out of range"),
    ("head twice", dup_head, "twice"),
]


@pytest.mark.parametrize("what,mutate,needle", BAD, ids=[b[0] for b in BAD])
def test_bad_virtio_blk_section(tmp_path, busy_snapshot, what, mutate, needle):
    data, img = busy_snapshot
    work = str(tmp_path / "d.img")
    shutil.copyfile(img, work)
    before = hashlib.sha256(open(work, "rb").read()).hexdigest()
    f = tmp_path / "bad.snap"
    f.write_bytes(rewrite_section(data, mutate))
    p = run_kvmini("run", "--incoming", f"file:{f}", "--disk", f"path={work}", "--memory", MEM)
    assert_one_line_error(p, "virtio-blk0", needle)
    assert p.stdout == "", "the guest must not run"
    assert hashlib.sha256(open(work, "rb").read()).hexdigest() == before


def test_bad_virtio_blk_section_checksum_and_disks(tmp_path, busy_snapshot):
    data, img = busy_snapshot
    work = str(tmp_path / "d.img")
    shutil.copyfile(img, work)
    f = tmp_path / "flip.snap"
    d = bytearray(data)
    off, length, _ = blk_section(d)
    d[off + length // 2] ^= 1
    f.write_bytes(bytes(d))
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{f}", "--disk",
                                     f"path={work}", "--memory", MEM),
                          "dev.4.virtio-blk", "checksum")
    f.write_bytes(data)
    # The command line must give the disk, the same size and flags.
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{f}", "--memory", MEM),
                          "devices")
    small = make_image(tmp_path / "small.img", 1 << 20)
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{f}", "--disk",
                                     f"path={small}", "--memory", MEM), "sectors")
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{f}", "--disk",
                                     f"path={work},readonly=on", "--memory", MEM), "readonly")
    # And the good file restores and finishes.
    p = restore_and_finish(f, "--disk", f"path={work}", "--memory", MEM)
    assert_finished(p.stdout, p.returncode, p.stderr)
    check_image(work, *final_gensum(p.stdout))
