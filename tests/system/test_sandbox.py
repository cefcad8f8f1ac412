# SPDX-License-Identifier: MIT
"""The sandbox (docs/security.md): every kvmini thread runs under the
seccomp filter of its kind; a forbidden syscall ends kvmini with 125 and one
line naming the syscall and the thread; `--sandbox off` turns it all off.

The forbidden syscall comes from the test hook KVMINI_SANDBOX_SELFTEST=KIND:
the first thread of KIND does an ioctl no list allows (TIOCSTI) right after
entering its sandbox. Every other system test runs with the sandbox on, so
they are what shows the lists allow everything kvmini really does.
"""
import os
import random
import re
import subprocess
import time

import pytest

from blkutil import random_image
from conftest import KVMINI, assert_one_line_error, guest, kvm_usable, run_kvmini
from qmpclient import QMP

pytestmark = pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible")

# One guest that has every kind of thread: vCPUs, the disk's iothread, and
# pool workers (aio=threads makes every request go through the pool).
KINDS = ["main", "vcpu", "iothread", "worker"]


def run_blkcopy(tmp_path, *extra, env=None):
    img = tmp_path / "disk.img"
    random_image(img, 1 << 20)
    return run_kvmini("run", "--kernel", guest("blkcopy"), "--disk", f"path={img},aio=threads",
                      "--timeout", "120", *extra, timeout=180,
                      env={**os.environ, **(env or {})})


@pytest.mark.parametrize("kind", KINDS)
def test_forbidden_syscall_is_named(tmp_path, kind):
    p = run_blkcopy(tmp_path, env={"KVMINI_SANDBOX_SELFTEST": kind})
    assert p.returncode == 125, p.stdout + p.stderr
    lines = [l for l in p.stderr.splitlines() if "sandbox" in l]
    assert len(lines) == 1, p.stderr
    m = re.fullmatch(r"kvmini: sandbox: forbidden syscall 16 \(ioctl\) in thread (\S+) "
                     rf"\({kind} filter\): a kvmini bug; --sandbox off runs without the filters",
                     lines[0])
    assert m, lines[0]
    expected_thread = {"main": "kvmini", "vcpu": "vcpu0", "worker": "aio-worker"}
    if kind in expected_thread:
        assert m.group(1) == expected_thread[kind], lines[0]


def test_terminal_restored_after_the_death(tmp_path):
    # stdin a terminal: serial.c makes it raw; the SIGSYS handler, on the
    # vCPU thread, must put it back as a normal exit would.
    import pty
    import termios
    master, tty = pty.openpty()
    try:
        before = termios.tcgetattr(tty)
        p = run_kvmini("run", "--kernel", guest("echo"), "--timeout", "60", stdin=tty,
                       timeout=120, env={**os.environ, "KVMINI_SANDBOX_SELFTEST": "vcpu"})
        assert p.returncode == 125, p.stdout + p.stderr
        assert "(vcpu filter)" in p.stderr, p.stderr
        assert termios.tcgetattr(tty) == before
    finally:
        os.close(master)
        os.close(tty)


def test_off_means_no_filter(tmp_path):
    # The hook's ioctl only fails (EBADF) when nothing filters it.
    p = run_blkcopy(tmp_path, "--sandbox", "off", env={"KVMINI_SANDBOX_SELFTEST": "worker"})
    assert p.returncode == 0, p.stdout + p.stderr
    assert "blkcopy: verified" in p.stdout, p.stdout
    assert "sandbox" not in p.stderr, p.stderr


def test_on_by_default(tmp_path):
    p = run_blkcopy(tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "blkcopy: verified" in p.stdout, p.stdout
    p = run_blkcopy(tmp_path, "--sandbox", "on")
    assert p.returncode == 0, p.stdout + p.stderr


def test_bad_option():
    p = run_kvmini("run", "--kernel", guest("hello"), "--sandbox", "maybe")
    assert_one_line_error(p, "--sandbox 'maybe'", "on or off")


def task_status(pid):
    """{tid: (comm, Seccomp, NoNewPrivs)} of every thread of PID."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                st = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        except FileNotFoundError:
            continue  # a thread that just ended
        out[tid] = (comm, st["Seccomp"].strip(), st["NoNewPrivs"].strip())
    return out


@pytest.mark.parametrize("mode", ["on", "off"])
def test_every_thread_is_filtered(tmp_path, mode):
    img = tmp_path / "disk.img"
    random_image(img, 1 << 20)
    sock = str(tmp_path / f"qmp{random.random()}.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("snap-counter"), "--cpus", "2",
                          "--disk", f"path={img}", "--qmp", sock, "--paused",
                          "--timeout", "120", "--sandbox", mode],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        q = QMP(sock)
        want = ("2", "1") if mode == "on" else ("0", "0")
        # The vCPU threads enter their sandbox as they start, which the
        # QMP greeting does not wait for: wait for it (no timing asserted).
        deadline = time.monotonic() + 60
        while True:
            st = task_status(p.pid)
            if all(v[1:] == want for v in st.values()) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        comms = sorted(v[0] for v in st.values())
        assert {"kvmini", "vcpu0", "vcpu1"} <= set(comms), comms
        assert len(comms) >= 4, comms  # and the disk's iothread
        for tid, (comm, seccomp, nnp) in st.items():
            assert (seccomp, nnp) == want, f"thread {tid} {comm}: {st}"
        q.cmd("quit")
        p.wait(timeout=60)
        assert p.returncode == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
