"""Snapshot and restore through QMP migrate / --incoming, and bad snapshot files."""
import os
import random
import struct
import subprocess
import time

import pytest

from conftest import KVMINI, guest, needs_kvm, run_kvmini
from qmpclient import QMP

pytestmark = needs_kvm

ROUNDS = 150


def expected_counter_output(rounds=ROUNDS):
    return (f"snap-counter: counting to {rounds}\n" +
            "".join(f"count {i}\n" for i in range(1, rounds + 1)) + "snap-counter: done\n")


def start_counter(tmp_path, *extra, rounds=ROUNDS):
    sock = str(tmp_path / f"qmp{random.random()}.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("snap-counter"), "--cmdline",
                          f"rounds={rounds}", "--qmp", sock, "--timeout", "120", *extra],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    return p, QMP(sock)


def snapshot_running(tmp_path, *extra, delay=0.05):
    """Run snap-counter, snapshot it mid-run, quit; return (output so far, file)."""
    snap = str(tmp_path / "vm.snap")
    p, q = start_counter(tmp_path, *extra)
    time.sleep(delay)
    assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    assert q.cmd("query-status")["return"]["status"] == "postmigrate"
    assert q.cmd("query-migrate")["return"]["status"] == "completed"
    q.cmd("quit")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    return out.decode(), snap


def test_counter_continues_exactly(tmp_path):
    out1, snap = snapshot_running(tmp_path)
    assert "snap-counter: done" not in out1, "snapshot taken too late to test anything"
    p = run_kvmini("run", "--incoming", f"file:{snap}", timeout=120)
    assert p.returncode == 0, p.stderr
    assert out1 + p.stdout == expected_counter_output()


def test_counter_smp_snapshot(tmp_path):
    out1, snap = snapshot_running(tmp_path, "--cpus", "2", "--memory", "64M")
    p = run_kvmini("run", "--incoming", f"file:{snap}", "--cpus", "2", "--memory", "64M",
                   timeout=120)
    assert p.returncode == 0, p.stderr
    assert out1 + p.stdout == expected_counter_output()


def test_source_continues_after_migrate(tmp_path):
    snap = str(tmp_path / "s")
    p, q = start_counter(tmp_path)
    time.sleep(0.05)
    q.cmd("migrate", {"uri": f"file:{snap}"})
    assert q.cmd("cont") == {"return": {}}
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out.decode() == expected_counter_output()


def test_restore_paused_then_cont(tmp_path):
    out1, snap = snapshot_running(tmp_path)
    sock = str(tmp_path / "r.sock")
    p = subprocess.Popen([KVMINI, "run", "--incoming", f"file:{snap}", "--paused",
                          "--qmp", sock], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    q = QMP(sock)
    assert q.cmd("query-status")["return"]["status"] == "paused"
    time.sleep(0.2)
    assert q.cmd("query-status")["return"]["status"] == "paused"
    q.cmd("cont")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out1 + out.decode() == expected_counter_output()


def test_repeated_cycles(tmp_path):
    """Snapshot, restore, snapshot the restored VM again, ... 8 times."""
    out = ""
    p, q = start_counter(tmp_path, rounds=400)
    snap = str(tmp_path / "cycle.snap")
    for i in range(8):
        time.sleep(0.02)
        r = q.cmd("migrate", {"uri": f"file:{snap}"})
        assert r == {"return": {}}, r
        q.cmd("quit")
        o, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        out += o.decode()
        sock = str(tmp_path / f"c{i}.sock")
        p = subprocess.Popen([KVMINI, "run", "--incoming", f"file:{snap}", "--qmp", sock,
                              "--timeout", "120"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        q = QMP(sock)
    o, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert out + o.decode() == expected_counter_output(400)


def test_inspect(tmp_path):
    _, snap = snapshot_running(tmp_path)
    p = subprocess.run([KVMINI, "snapshot", "inspect", "--verify", snap], capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    for name in ("machine", "vcpu.0", "irqchip", "pit", "clock", "dev.0.serial", "ram"):
        assert name in p.stdout
    assert "MISMATCH" not in p.stdout and "RAM data checksum: ok" in p.stdout


# ---------------------------------------------------------------- bad files

def assert_rejected(snap, *needles, extra=()):
    p = run_kvmini("run", "--incoming", f"file:{snap}", *extra, timeout=60)
    assert p.returncode == 125, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == "", "the guest must not run"
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmini: "), p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snap")
    _, snap = snapshot_running(tmp)
    return open(snap, "rb").read()


def sections(data):
    nsec, = struct.unpack_from("<I", data, 16)
    table, = struct.unpack_from("<Q", data, 24)
    out = {}
    for i in range(nsec):
        name, ver, crc, off, length = struct.unpack_from("<24sIIQQ", data, table + 64 * i)
        out[name.rstrip(b"\0").decode()] = (off, length, table + 64 * i)
    return out


def test_bad_missing_and_foreign(tmp_path):
    assert_rejected(tmp_path / "none", "No such file")
    assert_rejected("/bin/true", "not a kvmini snapshot")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert_rejected(empty, "truncated")
    assert_rejected(tmp_path, "not a regular file")


def test_bad_truncated(tmp_path, good_snapshot):
    sec = sections(good_snapshot)
    cuts = [10, 64, sec["vcpu.0"][0] + 100, sec["ram"][0] + 10, len(good_snapshot) - 4096]
    for cut in cuts:
        f = tmp_path / f"cut{cut}"
        f.write_bytes(good_snapshot[:cut])
        assert_rejected(f)


def test_bad_corrupted_sections(tmp_path, good_snapshot):
    for name, (off, length, _) in sections(good_snapshot).items():
        data = bytearray(good_snapshot)
        data[off + length // 2] ^= 0x40
        f = tmp_path / f"flip-{name}"
        f.write_bytes(bytes(data))
        assert_rejected(f, name, "checksum")


def test_bad_header_and_table(tmp_path, good_snapshot):
    data = bytearray(good_snapshot)
    data[20] ^= 1  # reserved header field: the header CRC catches it
    f = tmp_path / "hdr"
    f.write_bytes(bytes(data))
    assert_rejected(f, "header is corrupted")
    data = bytearray(good_snapshot)
    table, = struct.unpack_from("<Q", data, 24)
    data[table + 3] ^= 1
    f.write_bytes(bytes(data))
    assert_rejected(f, "section table is corrupted")


def test_bad_format_version(tmp_path, good_snapshot):
    data = bytearray(good_snapshot)
    struct.pack_into("<I", data, 8, 99)
    f = tmp_path / "v99"
    f.write_bytes(bytes(data))
    assert_rejected(f, "format version 99")


def test_mismatched_command_line(tmp_path, good_snapshot):
    f = tmp_path / "good"
    f.write_bytes(good_snapshot)
    assert_rejected(f, "--memory", extra=("--memory", "64M"))
    assert_rejected(f, "--cpus", extra=("--cpus", "2"))


def test_inspect_verify_catches_ram_corruption(tmp_path, good_snapshot):
    data = bytearray(good_snapshot)
    # A byte of the guest image (loaded at 1 MiB) inside region 0's RAM data.
    ram_sec = sections(good_snapshot)["ram"][0]
    gpa, size, ram_off = struct.unpack_from("<QQQ", good_snapshot, ram_sec + 8)
    assert gpa == 0
    data[ram_off + 0x100000 + 0x40] ^= 1
    f = tmp_path / "ram"
    f.write_bytes(bytes(data))
    p = subprocess.run([KVMINI, "snapshot", "inspect", "--verify", str(f)],
                       capture_output=True, text=True)
    assert p.returncode == 125
    assert "RAM data checksum: MISMATCH" in p.stdout


def test_armed_tsc_deadline_fires_after_restore(tmp_path):
    # The guest arms the LAPIC timer in TSC-deadline mode and halts. A
    # restore must give the deadline back after the LAPIC (KVM drops one
    # written while the timer is in another mode): else the guest halts for
    # good. Linux lost every sleep after a restore this way.
    sock, snap = str(tmp_path / "q.sock"), str(tmp_path / "t.snap")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("tscdl"), "--cmdline",
                          "ticks=15000000000", "--qmp", sock, "--timeout", "120"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    q = QMP(sock)
    line = p.stdout.readline().decode()
    assert line == "tscdl: armed\n", (line, p.stderr.read())
    assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    q.cmd("quit")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert b"fired" not in out, "the timer fired before the snapshot: nothing tested"
    r = run_kvmini("run", "--incoming", f"file:{snap}", "--timeout", "90", timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
    assert "tscdl: fired after" in r.stdout, r.stdout
