# SPDX-License-Identifier: MIT
"""ivshmem: kvmini's ivshmem-server with kvmini and QEMU VMs running the ivshmem-ping /
ivshmem-pong guests (doorbell interrupts or polling, N verified round trips each), kvmini
and QEMU sharing one ivshmem-plain file, the server killed mid-run, servers that never
answer, close or speak another protocol version, bad options, and snapshots of VMs with
ivshmem devices (a doorbell device restored mid ping-pong gets a new ID; a role=master
snapshot carries the shared memory)."""
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import KVMINI, assert_one_line_error, guest, needs_kvm, run_kvmini
from qmpclient import QMP

QEMU = shutil.which("qemu-system-x86_64")
needs_qemu = pytest.mark.skipif(QEMU is None,
                                reason="qemu-system-x86_64 not found (Debian package "
                                "qemu-system-x86): the QEMU peer cannot run")
VM_TIMEOUT = 90  # kvmini --timeout for every VM: a hang fails, never blocks the run


class Server:
    """A `kvmini ivshmem-server` on a fresh POSIX shm object."""

    def __init__(self, tmp_path, vectors=2, size="1M"):
        self.sock = str(tmp_path / f"ivs{random.randrange(1 << 30)}.sock")
        self.shm = f"kvmini-test-{os.getpid()}-{random.randrange(1 << 30)}"
        self.p = subprocess.Popen([KVMINI, "ivshmem-server", "--socket", self.sock, "--shm",
                                   self.shm, "--size", size, "--vectors", str(vectors)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()
        assert line.startswith("ivshmem-server: listening on " + self.sock), \
            (line, self.p.stderr.read() if self.p.poll() is not None else "")

    def wait_joins(self, n):
        """Read the server's log until @n peers have joined."""
        joined = 0
        while joined < n:
            line = self.p.stderr.readline()
            assert line, "server exited"
            joined += "joined" in line

    def seq(self, field):
        """ping_seq (0) or pong_seq (1) as the guests left them (pingpong.h)."""
        with open("/dev/shm/" + self.shm, "rb") as f:
            return struct.unpack("<6I", f.read(24))[4 + field]

    def stop(self, sig=signal.SIGTERM):
        """Stop it; returns (exit status, stderr)."""
        if self.p.poll() is None:
            self.p.send_signal(sig)
        _, err = self.p.communicate(timeout=30)
        return self.p.returncode, err

    def cleanup(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.communicate()
        try:
            os.unlink("/dev/shm/" + self.shm)
        except FileNotFoundError:
            pass


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path)
    yield s
    s.cleanup()


def kvmini_vm(elf, args, *ivshmem, extra=()):
    cmd = [KVMINI, "run", "--kernel", guest(elf), "--cmdline", args, "--timeout",
           str(VM_TIMEOUT), *extra]
    for spec in ivshmem:
        cmd += ["--ivshmem", spec]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def qemu_vm(elf, args, *device):
    """QEMU on q35 (PCI with config ports; SeaBIOS adds ~2 s) with the same guest ELF."""
    cmd = [QEMU, "-M", "q35", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "64",
           "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
           "-kernel", guest(elf), "-append", args,
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4", *device]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")


def finish(p, timeout=VM_TIMEOUT + 30):
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        pytest.fail(f"VM did not finish: {out}\n{err}")
    return p.returncode, out, err or ""


def pp_args(rounds, mode="irq", **kw):
    nonce = random.randrange(1, 1 << 31)
    extra = "".join(f" {k}={v}" for k, v in kw.items())
    return f"rounds={rounds} mode={mode} nonce={nonce}{extra}"


def check_pair(ping, pong, rounds, ping_status=0, pong_status=0):
    """Both guests exit with their statuses after `rounds` verified round trips."""
    rc1, out1, err1 = finish(ping)
    rc2, out2, err2 = finish(pong)
    assert rc1 == ping_status, (rc1, out1, err1)
    assert rc2 == pong_status, (rc2, out2, err2)
    assert f"ivshmem-ping: {rounds} round trips verified" in out1, out1
    assert f"ivshmem-pong: {rounds} messages verified" in out2, out2
    return out1, out2, err1, err2


def interrupts(out, who):
    line = [l for l in out.splitlines() if "doorbell interrupts" in l and who in l][-1]
    return int(line.split("doorbell interrupts ")[1].split(",")[0])


@needs_kvm
@pytest.mark.parametrize("mode", ["irq", "poll"])
def test_two_kvmini_vms(server, mode):
    args = pp_args(300, mode)
    pong = kvmini_vm("ivshmem-pong", args, f"server={server.sock},vectors=2")
    ping = kvmini_vm("ivshmem-ping", args, f"server={server.sock},vectors=2")
    out1, out2, _, _ = check_pair(ping, pong, 300)
    assert "ivshmem-doorbell" in out1 and "ivshmem-doorbell" in out2
    if mode == "irq":
        # Every round waits for a doorbell unless the answer was already there.
        assert interrupts(out1, "ping") > 0 and interrupts(out2, "pong") > 0
    rc, err = server.stop()
    assert rc == 0, err
    assert err.count("joined") == 2 and err.count("left") == 2, err
    assert not os.path.exists(server.sock)


@needs_kvm
def test_ids_and_several_devices(server, tmp_path):
    """Two devices in one VM (a plain one first, so the doorbell is dev=1), IDs from 0."""
    plain = str(tmp_path / "plain.mem")
    args = pp_args(50)
    pong = kvmini_vm("ivshmem-pong", args + " dev=1", f"mem={plain},size=64K",
                     f"server={server.sock},vectors=2")
    server.wait_joins(1)  # pong first: ID 0
    ping = kvmini_vm("ivshmem-ping", args, f"server={server.sock}")
    out1, out2, _, _ = check_pair(ping, pong, 50)
    assert "ivshmem-pong: ivshmem-doorbell at 00:02.0, ID 0," in out2, out2
    assert "ivshmem-ping: ivshmem-doorbell at 00:01.0, ID 1," in out1, out1
    assert os.path.getsize(plain) == 64 << 10


@needs_kvm
@needs_qemu
def test_qemu_and_kvmini_on_kvmini_server(server):
    """QEMU's ivshmem-doorbell joins kvmini's server: interrupts both ways."""
    args = pp_args(100)
    pong = qemu_vm("ivshmem-pong", args, "-chardev", f"socket,path={server.sock},id=s",
                   "-device", "ivshmem-doorbell,chardev=s,vectors=2")
    ping = kvmini_vm("ivshmem-ping", args, f"server={server.sock},vectors=2")
    rc1, out1, err1 = finish(ping)
    rc2, out2, _ = finish(pong)
    assert rc1 == 0, (out1, err1)
    assert rc2 == 1, out2  # QEMU: (0 << 1) | 1
    assert "ivshmem-ping: 100 round trips verified" in out1
    assert "ivshmem-pong: 100 messages verified" in out2
    assert interrupts(out1, "ping") > 0 and interrupts(out2, "pong") > 0


@needs_kvm
@needs_qemu
def test_plain_file_shared_with_qemu(tmp_path):
    """kvmini and QEMU map one ivshmem-plain file and ping-pong through it (polling)."""
    mem = str(tmp_path / "shared.mem")
    with open(mem, "wb") as f:
        f.truncate(1 << 20)
    args = pp_args(100, "poll")
    ping = qemu_vm("ivshmem-ping", args, "-object",
                   f"memory-backend-file,id=m,size=1M,share=on,mem-path={mem}",
                   "-device", "ivshmem-plain,memdev=m")
    pong = kvmini_vm("ivshmem-pong", args, f"mem={mem}")
    rc2, out2, err2 = finish(pong)
    rc1, out1, _ = finish(ping)
    assert rc2 == 0, (out2, err2)
    assert rc1 == 1, out1
    assert "ivshmem-pong: ivshmem-plain" in out2
    assert "ivshmem-ping: 100 round trips verified" in out1
    # The file holds what the guests wrote: both magics (pingpong.h's layout).
    with open(mem, "rb") as f:
        ping_magic, _, pong_magic, _ = struct.unpack("<4I", f.read(16))
    assert ping_magic == pong_magic != 0


@needs_kvm
def test_server_killed_mid_run(server):
    """Clients keep their peers when the server dies; new VMs cannot join."""
    args = pp_args(3000)
    pong = kvmini_vm("ivshmem-pong", args, f"server={server.sock},vectors=2")
    ping = kvmini_vm("ivshmem-ping", args, f"server={server.sock},vectors=2")
    server.wait_joins(2)  # both set up: from now on they only need each other
    server.p.kill()  # no cleanup at all: SIGKILL
    server.p.wait()
    _, _, err1, err2 = check_pair(ping, pong, 3000)
    for err in (err1, err2):
        assert "closed the connection: known peers stay reachable" in err, err
        assert len(err.strip().splitlines()) == 1, err
    # The stale socket file is left by a killed server: connecting fails.
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem", f"server={server.sock}")
    assert_one_line_error(p, "ivshmem0: cannot connect to ivshmem server", server.sock)


def fake_server(path, script, hold=True):
    """A UNIX socket that accepts one client, sends raw 8-byte messages, then holds the
    connection open (or closes it). Returns (thread, stop event)."""
    ls = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ls.bind(path)
    ls.listen(4)
    stop = threading.Event()

    def run():
        c, _ = ls.accept()
        for msg, fd in script:
            data = struct.pack("<q", msg)
            if fd is None:
                c.sendall(data)
            else:
                c.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                    struct.pack("i", fd))])
        if hold:
            stop.wait(60)
        c.close()
        ls.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, stop


@needs_kvm
@pytest.mark.parametrize("case", ["silent", "version", "closes", "no-vectors"])
def test_bad_servers(tmp_path, case):
    path = str(tmp_path / "fake.sock")
    shm = os.open(str(tmp_path / "m"), os.O_CREAT | os.O_RDWR)
    os.ftruncate(shm, 4096)
    script, hold, needles = {
        "silent": ([], True, ["did not complete the setup within 1 s (got nothing)"]),
        "version": ([(1, None)], True, ["speaks protocol version 1, kvmini speaks version 0"]),
        "closes": ([(0, None), (0, None)], False, ["closed the connection during setup",
                                                   "(got no shared memory)"]),
        "no-vectors": ([(0, None), (3, None), (-1, shm)], True,
                       ["did not complete the setup within 1 s (got no interrupt eventfds)"]),
    }[case]
    t, stop = fake_server(path, script, hold)
    start = time.monotonic()
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem",
                   f"server={path},timeout=1", timeout=60)
    elapsed = time.monotonic() - start
    stop.set()
    t.join(10)
    os.close(shm)
    assert_one_line_error(p, "ivshmem0: ivshmem server", path, *needles)
    assert "Hello" not in p.stdout  # the guest never ran
    print(f"{case}: kvmini gave up after {elapsed:.2f} s")


@pytest.mark.parametrize(
    "spec,needles",
    [
        ("", ["give exactly one of mem=PATH, shm=NAME"]),
        ("shm=a,size=3M", ["must be a power of two"]),
        ("server=s,vectors=0", ["vectors '0' must be a number from 1 to 64"]),
        ("server=s,size=1M", ["size= is for mem=/shm="]),
        ("mem=f,timeout=3", ["vectors= and timeout= need server=SOCKET"]),
        ("shm=a,role=boss", ["role must be master or peer"]),
        ("shm=a,colour=red", ["unknown option 'colour'"]),
        ("server=s,timeout=0", ["timeout '0' must be whole seconds"]),
    ],
)
def test_bad_ivshmem_options(spec, needles):
    p = run_kvmini("run", "--kernel", "k.elf", "--ivshmem", spec)
    assert_one_line_error(p, "--ivshmem", *needles)


@needs_kvm
def test_plain_object_errors(tmp_path):
    odd = tmp_path / "odd.mem"
    with open(odd, "wb") as f:
        f.truncate(12288)
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem", f"mem={odd}")
    assert_one_line_error(p, "ivshmem0", "12288 bytes: a BAR needs a power of two")
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem", f"mem={odd},size=16K")
    assert_one_line_error(p, "ivshmem0", "is 12288 bytes, not size=16384")
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem",
                   f"mem={tmp_path}/new.mem")
    assert_one_line_error(p, "is empty and no size= was given")
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem", f"mem={tmp_path}/x/y,size=4K")
    assert_one_line_error(p, "cannot open file")
    # Created with the size asked, then opened as it is.
    p = run_kvmini("run", "--kernel", guest("hello"), "--ivshmem", f"mem={tmp_path}/new.mem,size=8K")
    assert p.returncode == 0, p.stderr
    assert os.path.getsize(tmp_path / "new.mem") == 8192


@pytest.mark.parametrize(
    "args,needles",
    [
        (["--socket", "s", "--size", "1M"], ["exactly one of --shm NAME or --path FILE"]),
        (["--socket", "s", "--shm", "x", "--size", "1000"], ["must be a power of two"]),
        (["--shm", "x", "--size", "1M"], ["no --socket given"]),
        (["--socket", "s", "--shm", "x", "--size", "1M", "--vectors", "65"],
         ["--vectors '65' must be a number from 1 to 64"]),
    ],
)
def test_bad_server_options(args, needles):
    p = run_kvmini("ivshmem-server", *args)
    assert_one_line_error(p, "ivshmem-server", *needles)


def test_server_socket_in_use(server, tmp_path):
    p = run_kvmini("ivshmem-server", "--socket", server.sock, "--path",
                   str(tmp_path / "m2"), "--size", "4K", timeout=30)
    assert_one_line_error(p, "is in use by a running server")


def test_server_survives_garbage_and_dead_clients(server):
    """A client that sends bytes is dropped; one that dies mid-setup too; the server
    goes on serving."""
    junk = socket.socket(socket.AF_UNIX)
    junk.connect(server.sock)
    junk.recv(8)
    junk.sendall(b"garbage!" * 100)
    dead = socket.socket(socket.AF_UNIX)
    dead.connect(server.sock)
    dead.close()
    good = socket.socket(socket.AF_UNIX)
    good.connect(server.sock)
    good.settimeout(10)
    msgs = []
    while len(msgs) < 3:
        data, anc, _, _ = good.recvmsg(8, socket.CMSG_SPACE(4))
        for lvl, typ, fdata in anc:
            os.close(struct.unpack("i", fdata[:4])[0])
        msgs.append(struct.unpack("<q", data)[0])
    assert msgs[0] == 0 and msgs[2] == -1, msgs
    good.close()
    junk.close()
    rc, err = server.stop()
    assert rc == 0, err
    assert "sent data: disconnected" in err, err
    assert not os.path.exists(server.sock)


@needs_kvm
def test_snapshot_restore_doorbell_mid_pingpong(server, tmp_path):
    """Pong is snapshotted mid-run and restored: it rejoins the server with a new ID
    (IVPOSITION changes; the guest republishes it), interrupts flow again, and both
    guests finish all rounds."""
    args = pp_args(3000)
    qmp = str(tmp_path / "qmp.sock")
    snap = str(tmp_path / "pong.snap")
    pong = kvmini_vm("ivshmem-pong", args, f"server={server.sock},vectors=2",
                     extra=["--qmp", qmp])
    ping = kvmini_vm("ivshmem-ping", args, f"server={server.sock},vectors=2")
    q = QMP(qmp)
    deadline = time.monotonic() + 60
    while server.seq(1) < 50 and time.monotonic() < deadline:  # well under way
        time.sleep(0.001)
    assert q.cmd("stop") == {"return": {}}
    assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    q.cmd("quit")
    rc, out_a, err = finish(pong)
    assert rc == 0, err
    assert "messages verified" not in out_a, "snapshot taken too late to test anything"
    pong = subprocess.Popen([KVMINI, "run", "--incoming", f"file:{snap}", "--ivshmem",
                             f"server={server.sock},vectors=2", "--timeout",
                             str(VM_TIMEOUT)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc2, out_b, err2 = finish(pong)
    rc1, out1, err1 = finish(ping)
    assert rc2 == 0, (out_b, err2)
    assert rc1 == 0, (out1, err1)
    assert "ivshmem-pong: 3000 messages verified" in out_b
    assert "ivshmem-ping: 3000 round trips verified" in out1
    changed = [l for l in out_b.splitlines() if "IVPOSITION changed" in l]
    assert len(changed) == 1, out_b
    before = int(changed[0].split(", ")[1].split()[0])
    assert interrupts(out_b, "pong: 3000") > before  # MSI-X works after the restore


@needs_kvm
@pytest.mark.parametrize("role", ["master", "peer"])
def test_snapshot_plain_role(tmp_path, role):
    """role=master: the snapshot carries the shared memory and restoring writes it
    back; role=peer: the shared memory is left as the host has it."""
    mem = str(tmp_path / "plain.mem")
    qmp = str(tmp_path / "qmp.sock")
    snap = str(tmp_path / "vm.snap")
    args = pp_args(20, "poll")
    spec = f"mem={mem},size=64K,role={role}"
    pong = kvmini_vm("ivshmem-pong", args, spec, extra=["--qmp", qmp])
    q = QMP(qmp)
    # Pong publishes its magic, then polls for ping's.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with open(mem, "rb") as f:
            if struct.unpack("<4I", f.read(16))[2]:
                break
        time.sleep(0.02)
    assert q.cmd("stop") == {"return": {}}
    assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    q.cmd("quit")
    finish(pong)
    with open(mem, "r+b") as f:  # the host wipes the shared memory
        f.write(bytes(64 << 10))
    insp = run_kvmini("snapshot", "inspect", snap)
    assert ("mem.ivshmem0" in insp.stdout) == (role == "master"), insp.stdout
    qmp2 = str(tmp_path / "qmp2.sock")
    restored = subprocess.Popen([KVMINI, "run", "--incoming", f"file:{snap}", "--ivshmem",
                                 spec, "--paused", "--qmp", qmp2, "--timeout",
                                 str(VM_TIMEOUT)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    q2 = QMP(qmp2)
    with open(mem, "rb") as f:
        magic = struct.unpack("<4I", f.read(16))[2]
    assert (magic != 0) == (role == "master")
    if role == "master":
        q2.cmd("cont")
        ping = kvmini_vm("ivshmem-ping", args, spec.replace(",role=master", ""))
        rc1, out1, err1 = finish(ping)
        rc2, out2, err2 = finish(restored)
        assert rc1 == 0 and rc2 == 0, (out1, err1, out2, err2)
        assert "ivshmem-pong: 20 messages verified" in out2
    else:
        q2.cmd("quit")
        finish(restored)


@needs_kvm
def test_restore_needs_the_same_devices(tmp_path, server):
    """A snapshot of a VM with ivshmem restores only with the same --ivshmem devices."""
    qmp = str(tmp_path / "qmp.sock")
    snap = str(tmp_path / "vm.snap")
    vm = kvmini_vm("exit", "hang", f"server={server.sock},vectors=2", extra=["--qmp", qmp])
    q = QMP(qmp)
    assert q.cmd("stop") == {"return": {}}
    assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
    q.cmd("quit")
    finish(vm)
    p = run_kvmini("run", "--incoming", f"file:{snap}", "--ivshmem",
                   f"server={server.sock},vectors=1", timeout=60)
    assert_one_line_error(p, "ivshmem0")
    p = run_kvmini("run", "--incoming", f"file:{snap}", timeout=60)
    assert_one_line_error(p, "snapshot")
