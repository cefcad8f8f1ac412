# SPDX-License-Identifier: MIT
"""kvmini's vhost-user-blk (`--vhost-user-blk socket=PATH`) against the real
peer, qemu-storage-daemon's vhost-user-blk export, with the guest/lib blk
guests (blkcopy, blkops, blkbench), several disks and several queues; and
against a scripted fake backend (vhostfake.py) that records the message
order and answers late, to show that no kick reaches the backend before
its ring's SET_VRING_ENABLE was acknowledged. The same ordering test runs
under QEMU's vhost-user-blk-pci for comparison.

Run with: /usr/bin/python3 -m pytest tests/system/test_vhost_user_blk.py
(after `make`; inside scripts/kvmbox on hosts without /dev/kvm).
"""
import contextlib
import os
import re
import shutil
import subprocess
import time

import pytest

from blkutil import (check_blkops, check_copy, guest_elf, halves, kvm_usable, parse_bench,
                     qemu_cmd, qemu_status, random_image, sha256)
from conftest import KVMINI, assert_one_line_error, guest
from conftest import run_kvmini as run_raw
from qmpclient import QMP
from test_snap_blk import (FOREVER, VM, check_image, final_gensum, make_image,
                           restore_and_finish)
from vhostfake import FakeBackend

QSD = shutil.which("qemu-storage-daemon")
QEMU = shutil.which("qemu-system-x86_64")
TIMEOUT = 120

pytestmark = [
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible"),
    pytest.mark.skipif(not os.access(KVMINI, os.X_OK), reason=f"{KVMINI} not built (run make)"),
]
needs_qsd = pytest.mark.skipif(
    QSD is None, reason="qemu-storage-daemon missing (Debian qemu-system-common)")


def wait_for_socket(path, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what} exited with {proc.returncode}: {err}")
        time.sleep(0.05)
    pytest.fail(f"{what} did not create {path}")


class Qsd:
    """qemu-storage-daemon exporting IMG as vhost-user-blk at SOCK."""

    def __init__(self, img, sock, num_queues=1, writable=True):
        self.sock = str(sock)
        cmd = [QSD, "--blockdev", f"driver=file,node-name=f,filename={img}",
               "--export", f"type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
               f"addr.path={sock},writable={'on' if writable else 'off'},"
               f"num-queues={num_queues}"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        wait_for_socket(self.sock, self.proc, "qemu-storage-daemon")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.communicate()


@pytest.fixture
def qsd_factory(tmp_path):
    daemons = []

    def make(img, name="vu", **kw):
        d = Qsd(img, tmp_path / f"{name}.sock", **kw)
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        d.stop()


def kvmini_cmd(guest_name, cmdline="", vhost=(), disks=(), qmp=None, paused=False):
    elf = guest_elf(guest_name)
    if not elf.exists():
        pytest.fail(f"{elf} is missing: run `make` first")
    cmd = [KVMINI, "run", "--kernel", str(elf), "--memory", "128M", "--timeout", str(TIMEOUT)]
    if cmdline:
        cmd += ["--cmdline", cmdline]
    for spec in disks:
        cmd += ["--disk", spec]
    for spec in vhost:
        cmd += ["--vhost-user-blk", spec]
    if qmp:
        cmd += ["--qmp", qmp]
    if paused:
        cmd += ["--paused"]
    return cmd


class Running:
    """kvmini started in the background; `with` ends it if the test failed."""

    def __init__(self, *args, **kw):
        self.p = subprocess.Popen(kvmini_cmd(*args, **kw), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def finish(self):
        """(status, stdout, stderr) once kvmini ended by itself."""
        try:
            out, err = self.p.communicate(timeout=TIMEOUT + 30)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"kvmini did not finish: {e}")
        return self.p.returncode, out, err


def wait_event(q, r, name):
    """QMP event @name; if kvmini ended instead, fail with what it said."""
    try:
        return q.wait_event(name, timeout=60)
    except (EOFError, OSError):
        status, out, err = r.finish()
        pytest.fail(f"kvmini ended ({status}) before {name}: {out} {err}")


def run_kvmini(guest_name, cmdline="", vhost=(), disks=()):
    with Running(guest_name, cmdline, vhost, disks) as r:
        return r.finish()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk0.img"
    random_image(path, 16 << 20)
    return path


# ---------------------------------------------------------------- the real peer

@needs_qsd
@pytest.mark.parametrize("opts", ["", "irq", "noindirect qsize=16", "noevent_idx irq depth=8"])
def test_blkcopy(image, qsd_factory, opts):
    orig, _ = halves(image)
    d = qsd_factory(image)
    status, out, err = run_kvmini("blkcopy", opts, [f"socket={d.sock}"])
    check_copy(out, image, orig)
    assert status == 0, out + err


@needs_qsd
def test_stop_cont_during_copy(image, qsd_factory, tmp_path):
    # QMP stop parks the vCPUs and waits until the backend has finished
    # what it has (the rings stay with it: docs/devices.md). The copy is
    # still exact across many stop/cont.
    orig, _ = halves(image)
    d = qsd_factory(image)
    qmp = str(tmp_path / "qmp")
    stops = 0
    with Running("blkcopy", "irq", [f"socket={d.sock}"], qmp=qmp) as r:
        q = QMP(qmp)
        while r.p.poll() is None and stops < 20:
            try:
                if "error" in q.cmd("stop"):
                    break
                assert q.cmd("query-status")["return"]["status"] == "paused"
                time.sleep(0.05)
                q.cmd("cont")
                stops += 1
                time.sleep(0.1)
            except (EOFError, OSError):
                break  # the guest finished meanwhile
        status, out, err = r.finish()
    assert stops > 0, out + err
    check_copy(out, image, orig)
    assert status == 0, out + err


@needs_qsd
def test_multiqueue(image, qsd_factory):
    orig, _ = halves(image)
    d = qsd_factory(image, num_queues=4)
    status, out, err = run_kvmini("blkcopy", "irq", [f"socket={d.sock},num-queues=4"])
    check_copy(out, image, orig)
    assert status == 0, out + err
    # more queues than the backend serves: one clear line before the guest runs
    status, out, err = run_kvmini("blkcopy", "", [f"socket={d.sock},num-queues=8"])
    assert status == 125, out + err
    assert "num-queues=8, but the backend serves 4" in err, err


@needs_qsd
def test_several_disks(tmp_path, qsd_factory):
    a, b, c = tmp_path / "a.img", tmp_path / "b.img", tmp_path / "c.img"
    random_image(a, 4 << 20)
    random_image(b, 4 << 20)
    random_image(c, 16 << 20)
    ha, hb = sha256(a), sha256(b)
    orig, _ = halves(c)
    db, dc = qsd_factory(b, "b"), qsd_factory(c, "c", num_queues=2)
    vhost = [f"socket={db.sock}", f"socket={dc.sock},num-queues=2"]
    status, out, err = run_kvmini("pcilist", "", vhost=vhost, disks=[f"path={a}"])
    assert status == 0, out + err
    assert len(re.findall(r"pci: 00:0[123]\.0 1af4:1042 class 010000", out)) == 3, out
    # the third virtio-blk function: the second vhost-user disk
    status, out, err = run_kvmini("blkcopy", "disk=2 irq", vhost=vhost, disks=[f"path={a}"])
    check_copy(out, c, orig)
    assert "capacity 32768 sectors" in out, out
    assert status == 0, out + err
    assert sha256(a) == ha and sha256(b) == hb, "another disk was written"


@needs_qsd
@pytest.mark.parametrize("opts", ["", "irq"])
def test_blkops(image, qsd_factory, opts):
    d = qsd_factory(image)
    status, out, err = run_kvmini("blkops", opts, [f"socket={d.sock}"])
    check_blkops(out, msix=opts != "irq")
    assert status == 0, out + err


@needs_qsd
def test_blkbench_smoke(image, qsd_factory):
    # interrupts come from the backend straight through the MSI-X irqfd
    d = qsd_factory(image)
    status, out, err = run_kvmini("blkbench", "mode=irq sizes=4,64 depths=1,4 mb=1",
                                  [f"socket={d.sock}"])
    assert status == 0, out + err
    points = parse_bench(out)
    assert set(points) == {("irq", bs, qd) for bs in (4096, 65536) for qd in (1, 4)}, out
    for (_, bs, _), p in points.items():
        assert p["bytes"] == p["reqs"] * bs == 1 << 20, out
    # The guest waits only when a completion is not there yet: a point of a
    # few requests may never wait (in a one-CPU test VM the backend often
    # finishes while the vCPU is descheduled), the run as a whole does.
    assert sum(p["irq_waits"] for p in points.values()) > 0, out


@needs_qsd
def test_blkevil_breaks_backend_not_kvmini(image, qsd_factory):
    # A malformed chain goes to the backend, not to kvmini's virtqueue code:
    # what happens is qemu-storage-daemon's choice (7.2: vu_panic, the
    # export drops the connection). kvmini must stay up, say so, and the
    # guest must end by itself.
    d = qsd_factory(image)
    status, out, err = run_kvmini("blkevil", "cases=loop wait_ms=2000", [f"socket={d.sock}"])
    assert status not in (124, 125, 126), (status, out, err)
    assert "blkevil:" in out, out
    if "the backend closed the connection" not in err:
        # a backend that survives the chain lets the case recover
        assert "blkevil: 1 passed, 0 failed" in out, out + err


def snap_args(sock):
    return ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, "--memory", "32M",
            "--vhost-user-blk", f"socket={sock}"]


def saved_mid_io(tmp_path, qsd_factory):
    """snap-blk over qemu-storage-daemon, saved to a file while it has
    requests in flight; the source then quits. Returns (image, snapshot)."""
    img = make_image(tmp_path / "d.img")
    d = qsd_factory(img)
    snap = str(tmp_path / "vm.snap")
    vm = VM(tmp_path, snap_args(d.sock))
    vm.wait_output("snap-blk: running")
    time.sleep(0.3)
    assert vm.q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    out, code, err = vm.quit()
    assert code == 0, err
    assert "completed once each" not in out
    return img, snap


@needs_qsd
def test_snapshot_restore_new_backend(tmp_path, qsd_factory):
    # snap-blk keeps 64 requests in flight over qemu-storage-daemon; a
    # migrate to a file takes the rings back once the daemon finished what
    # it had (nothing in flight is saved: docs/devices.md). The snapshot is
    # restored into a new kvmini with a new daemon on a copy of the image:
    # the guest finishes, every request completed exactly once (its checks)
    # and the copy holds what it wrote.
    img, snap = saved_mid_io(tmp_path, qsd_factory)
    copy = str(tmp_path / "copy.img")
    shutil.copyfile(img, copy)
    d2 = qsd_factory(copy, "vu2")
    p = restore_and_finish(snap, "--vhost-user-blk", f"socket={d2.sock}", "--memory", "32M")
    assert_snap_finished(p.stdout, p.returncode, p.stderr, copy)


@needs_qsd
def test_snapshot_then_source_continues(tmp_path, qsd_factory):
    # After each migrate the source goes on (cont): the rings go back to
    # the same daemon where they stopped, and the guest finishes.
    img = make_image(tmp_path / "d.img")
    d = qsd_factory(img)
    vm = VM(tmp_path, snap_args(d.sock), stdin=subprocess.PIPE)
    vm.wait_output("snap-blk: running")
    for i in range(3):
        time.sleep(0.2)
        assert vm.q.cmd("migrate", {"uri": f"file:{tmp_path}/s{i}"}) == {"return": {}}
        assert vm.q.cmd("query-status")["return"]["status"] == "postmigrate"
        assert vm.q.cmd("cont") == {"return": {}}
    vm.p.stdin.write(b"q")
    vm.p.stdin.flush()
    out, code, err = vm.finish()
    assert_snap_finished(out, code, err, img)


@needs_qsd
def test_restore_without_backend(tmp_path, qsd_factory):
    # No backend at the socket the restore names: one line, exit 125.
    _, snap = saved_mid_io(tmp_path, qsd_factory)
    p = run_raw("run", "--incoming", f"file:{snap}", "--memory", "32M", "--vhost-user-blk",
                f"socket={tmp_path}/none.sock")
    assert_one_line_error(p, "cannot connect to the vhost-user backend", "none.sock")


@contextlib.contextmanager
def snap_blk_fake(tmp_path, fake_factory, cmdline, opts, **kw):
    """snap-blk (@cmdline) on the scripted backend (FakeBackend options @kw),
    --vhost-user-blk options @opts; yields (image, backend, Running, QMP)."""
    img = make_image(tmp_path / "d.img")
    fake = fake_factory(img, delay=0, **kw)
    qmp = str(tmp_path / "qmp")
    with Running("snap-blk", cmdline, [f"socket={fake.path},{opts}"], qmp=qmp) as r:
        yield img, fake, r, QMP(qmp)


def test_snapshot_refused_when_not_drained(tmp_path, fake_factory):
    # A backend that sits on requests: the save waits timeout=1 s for the
    # rings to drain, fails with one line saying so, and leaves the rings
    # with the backend (nothing was stopped): the VM goes on.
    with snap_blk_fake(tmp_path, fake_factory, "ms=600000 depth=16", "timeout=1",
                       hold_after=20) as (_, fake, r, q):
        deadline = time.monotonic() + 60
        while not fake.of_kind("taken"):
            assert time.monotonic() < deadline and r.p.poll() is None, fake.events()
            time.sleep(0.05)
        m = q.cmd("migrate", {"uri": f"file:{tmp_path}/snap"})
        if "return" in m:
            m = q.cmd("query-migrate")["return"]
            assert m["status"] == "failed", m
            desc = m.get("error-desc", "")
        else:
            desc = m["error"]["desc"]
        assert "vhost-user-blk cannot be saved" in desc, m
        assert not os.path.exists(tmp_path / "snap")
        assert q.cmd("cont") == {"return": {}}
        assert q.cmd("query-status")["return"]["status"] == "running"
        assert ("msg", "GET_VRING_BASE", 0) not in fake.events()
        q.cmd("quit")
        status, out, err = r.finish()
    assert status == 0, (status, out, err)
    assert "requests still in flight in the backend after 1 s (saving the device)" in err, err
    # The stop that began the save waited as long, said so, and went on.
    assert ("requests still in flight in the backend after 1 s (stopping the VM: it may "
            "still write the disk)") in err, err


def test_stop_waits_for_the_backend(tmp_path, fake_factory):
    # QMP stop answers once the backend has served everything the driver
    # made available (a slow disk: 30 ms a request, 16 in flight), so a
    # stopped VM's disk stays as it is; cont goes on from there and the
    # guest finishes with its checks.
    with snap_blk_fake(tmp_path, fake_factory, "ms=15000 depth=16", "timeout=10",
                       req_delay=0.03) as (img, fake, r, q):
        for _ in range(3):
            deadline = time.monotonic() + 60
            start = fake.completed
            while fake.completed < start + 20:
                assert time.monotonic() < deadline and r.p.poll() is None, fake.events()
                time.sleep(0.05)
            assert q.cmd("stop") == {"return": {}}
            assert fake.pending(0) == 0
            done = fake.completed
            time.sleep(0.5)
            assert fake.completed == done
            assert q.cmd("cont") == {"return": {}}
        status, out, err = r.finish()
    assert not fake.errors, fake.errors
    assert_snap_finished(out, status, err, img)
    assert "stopping the VM" not in err, err


def test_cli_errors(tmp_path):
    for spec, needle in [("", "no socket=PATH"), ("socket=", "empty socket"), ("num-queues=2", "no socket=PATH"),
                         (f"socket={tmp_path}/s,num-queues=0", "num-queues '0'"),
                         (f"socket={tmp_path}/s,timeout=0", "timeout '0'"),
                         (f"socket={tmp_path}/s,reconnect=0", "reconnect '0'"),
                         (f"socket={tmp_path}/s,reconnect=3601", "reconnect '3601'"),
                         (f"socket={tmp_path}/s,color=red", "unknown option 'color'"),
                         (f"socket={tmp_path}/s,socket=x", "socket given twice")]:
        p = subprocess.run([KVMINI, "run", "--kernel", guest("hello"), "--vhost-user-blk", spec],
                           capture_output=True, text=True, timeout=30)
        assert_one_line_error(p, needle)
    # no backend listening: one line naming the socket, before the guest runs
    p = subprocess.run([KVMINI, "run", "--kernel", guest("hello"), "--vhost-user-blk",
                        f"socket={tmp_path}/none.sock"], capture_output=True, text=True,
                       timeout=30)
    assert_one_line_error(p, "cannot connect to the vhost-user backend", "none.sock")


# ------------------------------------------------- ordering: the fake backend

@pytest.fixture
def fake_factory(tmp_path):
    fakes = []

    def make(img, name="fake", **kw):
        f = FakeBackend(tmp_path / f"{name}.sock", img, **kw)
        fakes.append(f)
        return f

    yield make
    for f in fakes:
        f.close()


def first(events, pred):
    for i, e in enumerate(events):
        if pred(e):
            return i
    return None


def check_order(events, rings=(0,)):
    """Every ring's enable was answered (its acknowledgement, or the
    GET_FEATURES reply behind it) before any kick of it was seen."""
    for q in rings:
        enable = first(events, lambda e: e == ("msg", "SET_VRING_ENABLE", q))
        assert enable is not None, events
        later = events[enable + 1:]
        ack = first(later, lambda e: e in (("reply", "SET_VRING_ENABLE", q),
                                           ("reply", "GET_FEATURES", None)))
        kick = first(events, lambda e: e[0] == "kick" and e[1] == q)
        assert ack is not None and kick is not None, events
        assert enable + 1 + ack < kick, (q, events)


@pytest.mark.parametrize("reply_ack", [True, False], ids=["reply_ack", "get_features"])
def test_no_kick_before_enable_ack(tmp_path, fake_factory, reply_ack):
    # The backend answers every message 100 ms late; the guest enables its
    # queue, sets DRIVER_OK and kicks at once. kvmini's DRIVER_OK write
    # waits for the enable's acknowledgement (REPLY_ACK) or, without
    # REPLY_ACK, for a GET_FEATURES reply behind it.
    img = tmp_path / "d.img"
    random_image(img, 1 << 20)
    orig, _ = halves(img)
    fake = fake_factory(img, delay=0.1, reply_ack=reply_ack)
    status, out, err = run_kvmini("blkcopy", "irq", [f"socket={fake.path}"])
    events = fake.events()
    assert not fake.errors, fake.errors
    assert re.search(r"blkcopy: copied 524288 bytes", out), out + err
    assert "blkcopy: verified 524288 bytes: match" in out, out
    assert status == 0, out + err
    assert fake.violations() == [], events
    check_order(events)
    first_half, second = halves(img)
    assert first_half == orig and second == orig


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 missing")
def test_qemu_enable_order_for_comparison(tmp_path, fake_factory):
    # The same guest and backend under QEMU's vhost-user-blk-pci. What QEMU
    # does is recorded (printed; docs/devices.md has what 7.2 did), not
    # judged: the run must only work.
    img = tmp_path / "d.img"
    random_image(img, 1 << 20)
    orig, _ = halves(img)
    fake = fake_factory(img, delay=0.1)
    cmd = qemu_cmd("blkcopy", "irq", memory=128) + [
        "-object", "memory-backend-memfd,id=mem,size=128M,share=on",
        "-machine", "memory-backend=mem",
        "-chardev", f"socket,id=vu,path={fake.path}",
        "-device", "vhost-user-blk-pci,chardev=vu,num-queues=1,disable-legacy=on"]
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"QEMU did not finish; backend saw {fake.events()}")
    events = fake.events()
    assert "blkcopy: verified 524288 bytes: match" in p.stdout, p.stdout + p.stderr
    assert p.returncode == qemu_status(0), p.stdout + p.stderr
    enables = [i for i, e in enumerate(events) if e[:2] == ("msg", "SET_VRING_ENABLE")]
    print(f"QEMU: {len(fake.violations())} kicks before the enable was answered "
          f"({fake.violations()}); SET_VRING_ENABLE messages at {enables}; "
          f"order: {[e for e in events if e[0] != 'kick'][:40]}")


# ---------------------------------------------------------- a failing backend

def test_enable_never_answered(tmp_path, fake_factory):
    # The backend hangs on SET_VRING_ENABLE: the guest's DRIVER_OK write
    # returns after timeout=1 s with the device in NEEDS_RESET; QMP gets an
    # event; the guest sees the broken device and ends by itself.
    img = tmp_path / "d.img"
    random_image(img, 1 << 20)
    fake = fake_factory(img, delay=0, stall={18})
    qmp = str(tmp_path / "qmp")
    with Running("blkcopy", "irq", [f"socket={fake.path},timeout=1"], qmp=qmp,
                 paused=True) as r:
        q = QMP(qmp)
        q.cmd("cont")
        ev = q.wait_event("VHOST_USER_BLK_ERROR", timeout=60)
        assert ev["data"]["device"] == "vhost-user-blk0", ev
        assert "did not answer within 1 s" in ev["data"]["reason"], ev
        status, out, err = r.finish()
    assert status not in (124, 125, 126), (status, out, err)
    assert "the backend did not answer within 1 s; the device needs a reset" in err, err
    assert ("msg", "SET_VRING_ENABLE", 0) in fake.events()


@needs_qsd
def test_backend_dies(image, qsd_factory, tmp_path):
    # qemu-storage-daemon is killed while the guest does I/O: kvmini keeps
    # running, says so on stderr and on QMP, the device needs a reset, and
    # the guest (which sees NEEDS_RESET) ends by itself.
    d = qsd_factory(image)
    qmp = str(tmp_path / "qmp")
    with Running("blkbench", "mode=irq sizes=4 depths=1 mb=64", [f"socket={d.sock}"],
                 qmp=qmp) as r:
        q = QMP(qmp)
        first_line = r.p.stdout.readline()  # the guest found the disk
        assert first_line.startswith("blkbench"), first_line
        d.proc.kill()
        ev = wait_event(q, r, "VHOST_USER_BLK_ERROR")
        assert "the backend closed the connection" in ev["data"]["reason"], ev
        status, out, err = r.finish()
    assert status not in (124, 125, 126), (status, out, err)
    # noticed by the socket watch, or by the guest's next reset, whichever came first
    assert "kvmini: vhost-user-blk0: the backend closed the connection" in err, err
    assert "vhost-user-blk0: " in err and "the device needs a reset" in err, err
    assert "vhost-user-blk0: vhost-user-blk0" not in err, err


def test_huge_reply_refused(tmp_path, fake_factory):
    # A reply claiming 1 MiB of payload is refused with one clear line.
    img = tmp_path / "d.img"
    random_image(img, 1 << 20)
    fake = fake_factory(img, delay=0, huge_reply={24})
    p = subprocess.run([KVMINI, "run", "--kernel", guest("hello"), "--vhost-user-blk",
                        f"socket={fake.path}"], capture_output=True, text=True, timeout=60)
    assert_one_line_error(p, "reply to GET_CONFIG has 1048576 bytes")


# ------------------------------------------------------------- reconnect=S

def assert_snap_finished(out, status, err, img):
    """snap-blk's own checks (each request completed exactly once, data read
    back) and the host's check of the image."""
    assert status == 0, (status, out, err)
    assert "completed once each" in out and "snap-blk: flush ok" in out, out + err
    assert out.rstrip().endswith("snap-blk: done"), out + err
    check_image(img, *final_gensum(out))


def test_reconnect_resubmits_inflight(tmp_path, fake_factory):
    # The fake backend takes requests, then dies with them in flight (marked
    # in the INFLIGHT_SHMFD region, none served). A new one on the same
    # socket gets the same region from kvmini (reconnect=1) and serves
    # exactly those again first; snap-blk, which fails on a request lost
    # (it times out) or completed twice, finishes with its checks passing.
    with snap_blk_fake(tmp_path, fake_factory, "ms=3000 depth=16", "reconnect=1",
                       crash_after=40) as (img, fake, r, q):
        ev = q.wait_event("VHOST_USER_BLK_ERROR", timeout=120)
        assert "the backend closed the connection" in ev["data"]["reason"], ev
        assert fake.of_kind("crash"), fake.events()
        again = fake_factory(img, delay=0)
        ev = q.wait_event("VHOST_USER_BLK_RECONNECTED", timeout=60)
        assert ev["data"] == {"device": "vhost-user-blk0"}, ev
        status, out, err = r.finish()
    taken = [e[2] for e in fake.of_kind("taken")]
    resubmitted = again.of_kind("resubmit")
    assert not fake.errors and not again.errors, (fake.errors, again.errors)
    assert taken, fake.events()
    assert resubmitted and sorted(resubmitted[0][2]) == sorted(taken), (taken, resubmitted)
    assert_snap_finished(out, status, err, img)
    assert "the backend closed the connection; reconnecting every 1 s" in err, err
    assert "vhost-user-blk0: reconnected to the backend" in err, err
    assert "needs a reset" not in err, err


def test_reconnect_incompatible_backend(tmp_path, fake_factory):
    # The restarted backend serves a disk of another size: kvmini says so,
    # the device needs a reset (the driver cannot go on with it), and the
    # guest ends by itself.
    small = make_image(tmp_path / "small.img", 1 << 20)
    with snap_blk_fake(tmp_path, fake_factory, "ms=3000 depth=16", "reconnect=1",
                       crash_after=10) as (_, _, r, q):
        q.wait_event("VHOST_USER_BLK_ERROR", timeout=120)
        fake_factory(small, delay=0)
        ev = q.wait_event("VHOST_USER_BLK_ERROR", timeout=60)
        assert "disk has 2048 sectors, not 8192" in ev["data"]["reason"], ev
        status, out, err = r.finish()
    assert status not in (0, 124, 125, 126), (status, out, err)
    assert "disk has 2048 sectors, not 8192; the device needs a reset" in err, err
    assert "reconnected" not in err, err


def test_reconnect_without_region_busy(tmp_path, fake_factory):
    # A backend without INFLIGHT_SHMFD (qemu-storage-daemon offers none)
    # dies with requests taken: which ones, and whether it finished some out
    # of order, is unknown, so kvmini does not guess. After reconnecting it
    # puts the device into NEEDS_RESET, says why, and the guest ends.
    with snap_blk_fake(tmp_path, fake_factory, "ms=3000 depth=16", "reconnect=1",
                       crash_after=40, inflight=False) as (img, fake, r, q):
        wait_event(q, r, "VHOST_USER_BLK_ERROR")
        again = fake_factory(img, delay=0, inflight=False)
        ev = wait_event(q, r, "VHOST_USER_BLK_ERROR")
        assert "died with requests in flight and kept no inflight region" in \
            ev["data"]["reason"], ev
        status, out, err = r.finish()
    assert fake.of_kind("taken"), fake.events()
    assert not again.of_kind("resubmit"), again.events()
    assert status not in (0, 124, 125, 126), (status, out, err)
    assert "they cannot be resubmitted; the device needs a reset" in err, err


@needs_qsd
def test_reconnect_qsd_restarted(tmp_path, qsd_factory):
    # qemu-storage-daemon keeps no inflight region, so a restart is exact
    # only when nothing was in flight: the VM is stopped with its rings
    # drained (QMP stop and a snapshot, QMP migrate, both wait until the
    # daemon has finished everything the guest made available), the daemon
    # is shut down (SIGTERM) and restarted on the same socket and image,
    # then the VM goes on. Three times while snap-blk runs, after a stop, a
    # snapshot, a stop again: the device never needs a reset, every request
    # completes exactly once (snap-blk's checks) and the image holds what
    # the guest wrote.
    img = make_image(tmp_path / "d.img")
    d = qsd_factory(img)
    qmp = str(tmp_path / "qmp")
    with Running("snap-blk", "ms=6000", [f"socket={d.sock},reconnect=1"], qmp=qmp) as r:
        q = QMP(qmp)
        line = r.p.stdout.readline()
        assert "snap-blk" in line, line
        for i in range(3):
            time.sleep(0.3)
            if i == 1:
                snap = str(tmp_path / f"s{i}")
                assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
                assert q.cmd("query-status")["return"]["status"] == "postmigrate"
            else:
                assert q.cmd("stop") == {"return": {}}
                assert q.cmd("query-status")["return"]["status"] == "paused"
            d.stop()
            ev = wait_event(q, r, "VHOST_USER_BLK_ERROR")
            assert "the backend closed the connection" in ev["data"]["reason"], ev
            d = qsd_factory(img)
            wait_event(q, r, "VHOST_USER_BLK_RECONNECTED")
            assert q.cmd("cont") == {"return": {}}
        status, out, err = r.finish()
    assert_snap_finished(line + out, status, err, img)
    assert err.count("reconnected to the backend") == 3, err
    assert "needs a reset" not in err, err
