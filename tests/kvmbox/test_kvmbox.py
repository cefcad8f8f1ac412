"""scripts/kvmbox, the test VM that runs the VM tests where /dev/kvm is missing.

These run on the host (they need QEMU's TCG, not KVM) before the system tests:
exit status, streams, working directory, environment, shares, the runner's
own statuses (124 timeout, 125 box errors), a frozen box and a dead QEMU.
Each boots a real box (about 8 s here).
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KVMBOX = ROOT / "scripts" / "kvmbox"
QEMU = shutil.which("qemu-system-x86_64")
BOX_READY = (ROOT / "build" / "kvmbox" / "initrd.gz").exists()

pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found (make deps installs it)"),
    pytest.mark.skipif(not BOX_READY, reason="build/kvmbox not prepared (make deps prepares it)"),
]


def kvmbox(*args, timeout=300, env=None, cwd=None):
    return subprocess.run([sys.executable, str(KVMBOX), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


def fake_qemu(tmp_path, body):
    """A --qemu wrapper: a shell script that gets QEMU's arguments."""
    p = tmp_path / "qemu-wrapper"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)
    return str(p)


def test_status_streams_cwd_env_and_shares(tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    env = dict(os.environ, KVMBOX_TEST_VAR="a b 'c' $d")
    script = ('test -c /dev/kvm || exit 99; '
              'echo "out: $(cat in.txt)"; echo "err: $KVMBOX_TEST_VAR" >&2; '
              '[ -t 1 ] && echo "stdout is a tty"; '
              'echo written > out.txt; touch /usr/kvmbox-ro-test 2>/dev/null && echo "/ writable"; '
              'd=$(mktemp -d); mkfifo $d/f && echo fifo-ok; '
              'python3 -c "import os; os.memfd_create(\'x\'); print(\'memfd-ok\')"; '
              'dd if=/dev/zero of=/tmp/sparse bs=1 count=1 seek=100G 2>/dev/null && '
              'du -k /tmp/sparse | cut -f1; '
              'ls /dev/fd/0 >/dev/null && echo devfd-ok; exit 7')
    p = kvmbox("--share", str(tmp_path), "--", "sh", "-c", script, env=env, cwd=tmp_path)
    assert p.returncode == 7, (p.stdout, p.stderr)
    assert p.stdout.splitlines() == ["out: from the host", "fifo-ok", "memfd-ok", "4", "devfd-ok"], p.stdout
    assert "err: a b 'c' $d" in p.stderr.splitlines(), p.stderr
    assert (tmp_path / "out.txt").read_text() == "written\n"


def test_project_dir_is_shared_read_write():
    marker = ROOT / "build" / "kvmbox-test-marker"
    marker.unlink(missing_ok=True)
    p = kvmbox("--", "sh", "-c", f"echo inside > {marker}", cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert marker.read_text() == "inside\n"
    marker.unlink()


def test_command_not_found_status():
    p = kvmbox("--", "/nonexistent/command")
    assert p.returncode == 127, (p.stdout, p.stderr)


def test_timeout_gives_124():
    p = kvmbox("--timeout", "20", "--", "sleep", "600")
    assert p.returncode == 124, (p.stdout, p.stderr)
    assert "timed out after 20 s" in p.stderr


def test_frozen_box_is_killed(tmp_path):
    # -S: QEMU never starts the CPUs, so no heartbeat and no output arrive.
    q = fake_qemu(tmp_path, f'exec {QEMU} -S "$@"')
    p = kvmbox("--qemu", q, "--stall", "5", "--", "true")
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert p.stderr.startswith("kvmbox: the box froze: no heartbeat and no output for 5 s"), p.stderr


def test_dead_qemu_is_reported_not_a_test_result(tmp_path):
    # What the outer QEMU printed when TCG aborted once under load.
    q = fake_qemu(tmp_path, f'{QEMU} "$@" & sleep 12; kill -9 $!; '
                  'echo "tcg_handle_interrupt: assertion failed: (qemu_mutex_iothread_locked())" >&2; '
                  'exit 134')
    p = kvmbox("--qemu", q, "--", "sleep", "600")
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert "the box died before the command finished: tcg_handle_interrupt: assertion failed" \
        in p.stderr, p.stderr


def test_no_svm_no_kvm_amd(tmp_path):
    # Without SVM kvm-amd does not load: say so, with the kernel log's tail.
    q = fake_qemu(tmp_path, 'for a; do shift; [ "$a" = max ] && a=qemu64,-svm; set -- "$@" "$a"; done; '
                  f'exec {QEMU} "$@"')
    p = kvmbox("--qemu", q, "--", "true")
    assert p.returncode == 125, (p.stdout, p.stderr)
    assert p.stderr.startswith("kvmbox: insmod kvm-amd.ko failed"), p.stderr
    assert "kvmbox:   | " in p.stderr  # the kernel log's tail


def test_missing_qemu_and_missing_box(tmp_path):
    p = kvmbox("--qemu", "/nonexistent/qemu", "--", "true")
    assert p.returncode == 125
    assert p.stderr == "kvmbox: /nonexistent/qemu not found (run make deps: it installs qemu-system-x86)\n"
    p = kvmbox("--build", str(tmp_path), "--", "true")
    assert p.returncode == 125
    assert p.stderr.startswith(f"kvmbox: {tmp_path}/kvmbox/vmlinuz is missing (run make deps"), p.stderr


def test_usage_errors():
    p = kvmbox()
    assert p.returncode == 2 and "no command given" in p.stderr
    p = kvmbox("--memory", "lots", "true")
    assert p.returncode == 2 and "--memory" in p.stderr
    p = kvmbox("--auto", "--", "true", env=dict(os.environ, KVMBOX="maybe"))
    assert p.returncode == 125
    assert p.stderr.startswith("kvmbox: KVMBOX=maybe: want 1"), p.stderr


def test_auto_native_when_forbidden_box():
    # KVMBOX=0: never the box, the command runs here (marked by the variable
    # the box sets inside).
    p = kvmbox("--auto", "--", "sh", "-c", 'echo "inside=${KVMBOX_INSIDE:-no}"',
               env=dict(os.environ, KVMBOX="0"))
    assert p.returncode == 0 and p.stdout == "inside=no\n", (p.stdout, p.stderr)
    p = kvmbox("--auto", "--", "sh", "-c", 'echo "inside=${KVMBOX_INSIDE:-no}"',
               env=dict(os.environ, KVMBOX="1"))
    assert p.returncode == 0 and p.stdout == "inside=1\n", (p.stdout, p.stderr)
    assert "running nested in an emulated machine" in p.stderr


def test_terminal_gets_a_tty_and_all_its_output():
    """stdin a terminal: the command gets a tty (COM2), input goes through,
    and what it printed last is not lost when it exits."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:
        os.execv(sys.executable, [sys.executable, str(KVMBOX), "--", "sh", "-c",
                                  "tty; read x; echo got=$x; exit 3"])
    buf, sent, t0 = b"", False, time.monotonic()
    while time.monotonic() - t0 < 240:
        if not select.select([fd], [], [], 1)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        buf += data
        if b"/dev/ttyS1" in buf and not sent:
            os.write(fd, b"hello\r")
            sent = True
    _, st = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(st) == 3, buf
    assert b"/dev/ttyS1\r\n" in buf and b"got=hello\r\n" in buf, buf
