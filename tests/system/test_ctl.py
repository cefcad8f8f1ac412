# SPDX-License-Identifier: MIT
"""kvmini ctl, the built-in QMP client, against three servers:

- a scripted fake QMP server (no KVM needed): exact bytes both ways, odd
  replies, and what ctl sends to an old and a new QEMU for `snapshot`;
- kvmini itself (--qmp): every command, a snapshot restored with --incoming;
- QEMU (microvm, -qmp unix:SOCK,server=on,wait=off), the same commands.
"""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import KVMINI, guest, kvm_usable

QEMU = shutil.which("qemu-system-x86_64")
needs_kvm = pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible")


def ctl(sock, *args, timeout=120, **kw):
    return subprocess.run([KVMINI, "ctl", str(sock), *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


def assert_ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert p.stderr == "", p.stderr
    return p.stdout


def assert_ctl_error(p, status, *needles):
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmini ctl: "), p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


# ------------------------------------------------------------ a fake server

QEMU72_GREETING = {"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7},
                                       "package": "Debian 1:7.2+dfsg-7"},
                           "capabilities": ["oob"]}}


class FakeQMP:
    """One-connection-at-a-time QMP server that answers from a dict of
    command name -> list of raw reply lines, and records what it got."""

    def __init__(self, path, replies, greeting=QEMU72_GREETING, raw_greeting=None):
        self.path = str(path)
        self.replies = replies
        self.greeting = raw_greeting or json.dumps(greeting)
        self.received = []
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                f = conn.makefile("rw", newline="")
                f.write(self.greeting + "\r\n")
                f.flush()
                for line in f:
                    msg = json.loads(line)
                    self.received.append(msg)
                    name = msg["execute"]
                    if name == "qmp_capabilities":
                        out = self.replies.get(name, ['{"return": {}}'])
                    else:
                        out = self.replies.get(name, [json.dumps(
                            {"error": {"class": "CommandNotFound",
                                       "desc": f"The command {name} has not been found"}})])
                    if out == ["CLOSE"]:
                        break
                    for o in out:
                        f.write(o + "\r\n")
                    f.flush()
                f.close()  # the socket closes only with its file
                conn.shutdown(socket.SHUT_RDWR)

    def close(self):
        self.sock.close()


@pytest.fixture
def fake(tmp_path):
    servers = []

    def make(replies, **kw):
        s = FakeQMP(tmp_path / f"fake{len(servers)}.sock", replies, **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


EVENT = '{"event": "STOP", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}'


def test_fake_status_skips_events(fake):
    s = fake({"query-status": [EVENT, '{"return": {"status": "paused", "running": false}}']})
    assert assert_ok(ctl(s.path, "status")) == "paused\n"
    assert [m["execute"] for m in s.received] == ["qmp_capabilities", "query-status"]


def test_fake_blocks_table(fake):
    blocks = [{"device": "d0", "io-status": "nospace", "locked": False,
               "inserted": {"file": "/tmp/a \"b\" \u00e9.img", "ro": True}},
              {"device": "", "qdev": "/machine/peripheral/cd", "locked": False},
              {"device": "virtio-blk1", "inserted": {"file": "/x", "ro": False}}]
    s = fake({"query-block": [json.dumps({"return": blocks})]})
    out = assert_ok(ctl(s.path, "blocks")).splitlines()
    assert out[0].split() == ["DEVICE", "IO-STATUS", "RO", "FILE"]
    assert out[1].split(None, 3) == ["d0", "nospace", "yes", "/tmp/a \"b\" \u00e9.img"]
    assert out[2].split(None, 3) == ["/machine/peripheral/cd", "-", "-", "(no medium)"]
    assert out[3].split(None, 3) == ["virtio-blk1", "-", "no", "/x"]
    # columns line up
    assert len({line.index("RO") for line in out[:1]} | {out[1].index("yes")}) == 1


def test_fake_vm_error_is_exit_1(fake):
    s = fake({"stop": ['{"error": {"class": "GenericError", "desc": "not \\"now\\"\\n"}}']})
    assert_ctl_error(ctl(s.path, "stop"), 1, 'not "now"')
    assert_ctl_error(ctl(s.path, "cont"), 1, "The command cont has not been found")


def test_fake_raw_prints_reply(fake):
    reply = '{"return": {"status": "completed"}, "id": 7}'
    s = fake({"query-migrate": [EVENT, reply]})
    p = ctl(s.path, "raw", '{"execute": "query-migrate",\n "id": 7}')
    assert assert_ok(p) == reply + "\n"
    assert s.received[-1] == {"execute": "query-migrate", "id": 7}
    p = ctl(s.path, "raw", '{"execute": "nope"}')
    assert p.returncode == 1 and json.loads(p.stdout)["error"]["class"] == "CommandNotFound"


@pytest.mark.parametrize("version,uri", [((7, 2), "exec:cat > '{}'"), ((8, 2), "file:{}")])
def test_fake_snapshot_uri_and_polling(fake, tmp_path, monkeypatch, version, uri):
    greeting = json.loads(json.dumps(QEMU72_GREETING))
    greeting["QMP"]["version"]["qemu"].update(major=version[0], minor=version[1])
    s = fake({"migrate": ['{"return": {}}'],
              "query-migrate": ['{"return": {"status": "active"}}']}, greeting=greeting)
    done = '{"return": {"status": "completed", "total-time": 42, "ram": {"transferred": 3000}}}'

    def complete_later():  # QEMU's migrate returns at once; ctl polls
        time.sleep(0.3)
        s.replies["query-migrate"] = [done]

    threading.Thread(target=complete_later, daemon=True).start()
    monkeypatch.chdir(tmp_path)
    out = assert_ok(ctl(s.path, "snapshot", "vm.snap"))
    path = str(tmp_path / "vm.snap")
    assert out == f"{path}: 2.9 KiB (3000 bytes) in 42 ms\n"  # no file here: the VM's count
    migrate = [m for m in s.received if m["execute"] == "migrate"]
    assert migrate == [{"execute": "migrate", "arguments": {"uri": uri.format(path)}}]


def test_fake_snapshot_failed(fake):
    s = fake({"migrate": ['{"return": {}}'],
              "query-migrate": ['{"return": {"status": "failed", "error-desc": "disk full"}}']})
    assert_ctl_error(ctl(s.path, "snapshot", "/x/y"), 1, "failed", "disk full")


def test_fake_events_count_and_end(fake):
    events = [EVENT.replace("STOP", n) for n in ("STOP", "RESUME", "SHUTDOWN")]
    s = fake({"qmp_capabilities": ['{"return": {}}'] + events})
    out = assert_ok(ctl(s.path, "events", "2")).splitlines()
    assert [json.loads(line)["event"] for line in out] == ["STOP", "RESUME"]


def test_fake_quit_closed_is_success(fake):
    s = fake({"quit": ["CLOSE"]})
    assert_ok(ctl(s.path, "quit"))


def test_fake_not_qmp(fake, tmp_path):
    s = fake({}, raw_greeting="SSH-2.0-OpenSSH")
    assert_ctl_error(ctl(s.path, "status"), 125, "not QMP")
    s = fake({}, raw_greeting='{"error": {"class": "GenericError", "desc": "too many QMP clients"}}')
    assert_ctl_error(ctl(s.path, "status"), 125, "too many QMP clients")
    s = fake({"query-status": ["CLOSE"]})
    assert_ctl_error(ctl(s.path, "status"), 125, "closed the connection")


def test_no_socket_and_wait(tmp_path):
    sock = tmp_path / "late.sock"
    assert_ctl_error(ctl(sock, "status"), 125, "no such socket", "--qmp")
    (tmp_path / "file").write_text("")
    assert_ctl_error(ctl(tmp_path / "file", "status"), 125, "connection refused")
    # --wait: the socket appears after ctl started
    p = subprocess.Popen([KVMINI, "ctl", "--wait", "60", str(sock), "status"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.3)
    s = FakeQMP(sock, {"query-status": ['{"return": {"status": "running"}}']})
    out, err = p.communicate(timeout=60)
    s.close()
    assert (p.returncode, out, err) == (0, "running\n", "")


def test_usage_errors():
    for args, needle in [((), "usage"), (("s",), "usage"), (("s", "fly"), "unknown command"),
                         (("s", "snapshot"), "missing argument"),
                         (("s", "raw", "[1]"), "not one JSON object"),
                         (("--wait", "-1", "s", "status"), "--wait"),
                         (("-x", "s", "status"), "unknown option")]:
        p = subprocess.run([KVMINI, "ctl", *args], capture_output=True, text=True, timeout=30)
        assert_ctl_error(p, 125, needle)
    p = subprocess.run([KVMINI, "ctl", "--help"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "snapshot FILE" in p.stdout


# ------------------------------------------------------------------- kvmini

ROUNDS = 100000  # long enough never to end by itself here


def counts(text):
    """How many "count N" lines, checked to be 1, 2, 3, ...; a last line
    without its newline (a VM saved mid-line) is not counted."""
    lines = text.split("\n")[:-1]
    got = [int(line.split()[1]) for line in lines if line.startswith("count ")]
    assert got == list(range(1, len(got) + 1)), got[:3] + got[-3:]
    return len(got)


def wait_for(pred, what, timeout=120):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def stop_cont_until_events(sock, events):
    """Pause and resume until `ctl events 2` (already started) has seen two
    events; it may have connected between any two commands."""
    while events.poll() is None:
        assert_ok(ctl(sock, "stop"))
        assert assert_ok(ctl(sock, "status")) == "paused\n"
        assert_ok(ctl(sock, "cont"))
    out, err = events.communicate()
    assert events.returncode == 0, err
    names = [json.loads(line)["event"] for line in out.splitlines()]
    assert names in (["STOP", "RESUME"], ["RESUME", "STOP"]), names


def start(cmd):
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(vm):
    if vm.poll() is None:
        vm.kill()
    vm.communicate()


@needs_kvm
def test_kvmini(tmp_path):
    sock, snap, img = tmp_path / "vm.sock", tmp_path / "vm.snap", tmp_path / "d.img"
    log1, log2 = tmp_path / "1.log", tmp_path / "2.log"
    img.write_bytes(b"\0" * 65536)
    vm = start([KVMINI, "run", "--kernel", guest("snap-counter"), "--cmdline",
                f"rounds={ROUNDS}", "--qmp", str(sock), "--serial", f"file={log1}",
                "--disk", f"path={img},readonly=on", "--timeout", "600"])
    try:
        assert assert_ok(ctl("--wait", "60", sock, "status", timeout=90)) == "running\n"
        stop_cont_until_events(sock, start([KVMINI, "ctl", str(sock), "events", "2"]))

        rows = assert_ok(ctl(sock, "blocks")).splitlines()
        assert rows[0].split() == ["DEVICE", "IO-STATUS", "RO", "FILE"]
        assert rows[1].split() == ["virtio-blk0", "ok", "yes", str(img)]

        p = ctl(sock, "raw", '{"execute": "no-such"}')
        assert p.returncode == 1 and "CommandNotFound" in p.stdout, p
        assert_ctl_error(ctl(sock, "snapshot", str(tmp_path / "no" / "dir" / "x")), 1, "no")

        out = assert_ok(ctl(sock, "snapshot", str(snap)))
        size = os.path.getsize(snap)
        assert out.startswith(f"{snap}: ") and f"({size} bytes) in " in out, out
        assert assert_ok(ctl(sock, "status")) == "postmigrate\n"
        assert_ok(ctl(sock, "quit"))
        vm.communicate(timeout=60)
        assert vm.returncode == 0
        assert not sock.exists()  # quit returned once the VM had ended
    finally:
        finish(vm)
    before = log1.read_text()
    n = counts(before)

    # Restored: paused until cont, then it counts on from where it was saved.
    vm = start([KVMINI, "run", "--incoming", f"file:{snap}", "--qmp", str(sock),
                "--serial", f"file={log2}", "--disk", f"path={img},readonly=on", "--paused"])
    try:
        assert assert_ok(ctl("--wait", "60", sock, "status", timeout=90)) == "paused\n"
        assert_ok(ctl(sock, "cont"))
        wait_for(lambda: log2.read_text().count("\n") >= 3, "the restored VM's output")
        assert_ok(ctl(sock, "quit"))
        vm.communicate(timeout=60)
        assert vm.returncode == 0
    finally:
        finish(vm)
    assert counts(before + log2.read_text()) >= n + 2


class Lines:
    """Reads a process's stdout on a thread, so that it never blocks on a
    full pipe, and lets the test wait for a line."""

    def __init__(self, proc):
        self.lines, self.cond = [], threading.Condition()
        self.thread = threading.Thread(target=self.read, args=(proc.stdout,), daemon=True)
        self.thread.start()

    def read(self, f):
        for line in f:
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_count(self, text, n, timeout=120):
        with self.cond:
            ok = self.cond.wait_for(lambda: sum(text in x for x in self.lines) >= n, timeout)
        assert ok, f"gave up waiting for {n} lines with {text!r}"


@needs_kvm
def test_kvmini_reset(tmp_path):
    sock = tmp_path / "vm.sock"
    vm = start([KVMINI, "run", "--kernel", guest("snap-counter"), "--cmdline",
                f"rounds={ROUNDS}", "--qmp", str(sock), "--timeout", "600"])
    out = Lines(vm)
    try:
        assert assert_ok(ctl("--wait", "60", sock, "status", timeout=90)) == "running\n"
        out.wait_count("snap-counter: counting", 1)
        assert_ok(ctl(sock, "reset"))
        out.wait_count("snap-counter: counting", 2)  # it booted again
        assert_ok(ctl(sock, "quit"))
        vm.wait(timeout=60)
        assert vm.returncode == 0
    finally:
        if vm.poll() is None:
            vm.kill()
            vm.wait()


# --------------------------------------------------------------------- QEMU

@needs_kvm
@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found (Debian qemu-system-x86)")
def test_qemu(tmp_path):
    sock, snap, img = tmp_path / "q.sock", tmp_path / "q.snap", tmp_path / "d.img"
    evsock = tmp_path / "ev.sock"
    img.write_bytes(b"\0" * 65536)
    cmd = [QEMU, "-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
           "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "32", "-nodefaults",
           "-no-user-config", "-nographic", "-serial", f"file:{tmp_path / 'q.log'}",
           "-kernel", guest("snap-counter"), "-append", f"rounds={ROUNDS}",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
           "-drive", f"file={img},if=none,id=d0,format=raw,readonly=on",
           "-qmp", f"unix:{sock},server=on,wait=off",
           # QEMU serves one client per QMP socket: events get their own
           "-qmp", f"unix:{evsock},server=on,wait=off"]
    vm = start(cmd)
    try:
        assert assert_ok(ctl("--wait", "60", sock, "status", timeout=90)) == "running\n"
        stop_cont_until_events(sock, start([KVMINI, "ctl", str(evsock), "events", "2"]))
        assert assert_ok(ctl(sock, "status")) == "running\n"
        rows = assert_ok(ctl(sock, "blocks")).splitlines()
        assert rows[0].split() == ["DEVICE", "IO-STATUS", "RO", "FILE"]
        assert rows[1].split()[0] == "d0" and rows[1].split()[2:] == ["yes", str(img)], rows
        assert assert_ok(ctl(sock, "raw", '{"execute": "query-name"}')) == '{"return": {}}\n'
        p = ctl(sock, "raw", '{"execute": "no-such"}')
        assert p.returncode == 1 and "CommandNotFound" in p.stdout, p
        assert_ctl_error(ctl(sock, "snapshot", str(tmp_path / "no" / "dir" / "x")), 1)
        assert_ok(ctl(sock, "cont"))  # a failed migration may leave it either way
        out = assert_ok(ctl(sock, "snapshot", str(snap)))
        size = os.path.getsize(snap)
        assert size > 0 and out.startswith(f"{snap}: ") and f"({size} bytes) in " in out, out
        assert assert_ok(ctl(sock, "status")) == "postmigrate\n"
        assert_ok(ctl(sock, "reset"))
        assert_ok(ctl(sock, "quit"))
        vm.communicate(timeout=60)
        assert vm.returncode == 0
    finally:
        finish(vm)
