# SPDX-License-Identifier: MIT
"""ACPI S3 (suspend to RAM) woken by the CMOS RTC's alarm, with --testdev:
guest/s3 does what kvm-unit-tests' s3 test does (waking vector, RTC alarm,
PM1 RTC_EN, SLP_TYP 1) and exits 0 from its real-mode resume code, under
kvmini and under QEMU. Without --testdev there is no RTC (the FADT says so)
and no \\_S3: the sleep write is ignored and the guest goes on.
"""
import random
import shutil
import subprocess

import pytest

from conftest import KVMINI, guest, needs_kvm, run_guest
from qemuref import run_reference
from qmpclient import QMP

pytestmark = needs_kvm

QEMU = shutil.which("qemu-system-x86_64")


def test_s3_resume_at_waking_vector():
    p = run_guest("s3", "--testdev", "--timeout", "30")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "s3: sleeping" in p.stdout and "rtc 1" in p.stdout, p.stdout
    assert "returned" not in p.stdout, p.stdout


def test_s3_without_wake_source_sleeps_until_timeout():
    p = run_guest("s3", "--testdev", "--timeout", "3", "--cmdline", "noalarm=1")
    assert p.returncode == 124, (p.returncode, p.stdout, p.stderr)
    assert "s3: sleeping" in p.stdout and "returned" not in p.stdout, p.stdout


def test_s3_sleeping_vcpu_pauses_and_quits(tmp_path):
    """A pause parks the sleeping vCPU (stop returns), cont puts it back to
    sleep, quit ends the VM."""
    sock = str(tmp_path / f"qmp{random.random()}.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("s3"), "--cmdline", "noalarm=1",
                          "--qmp", sock, "--timeout", "120", "--testdev"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        q = QMP(sock)
        for line in p.stdout:
            if line.startswith("s3: sleeping"):
                break
        assert q.cmd("stop") == {"return": {}}
        assert q.cmd("query-status")["return"]["status"] == "paused"
        assert q.cmd("cont") == {"return": {}}
        q.cmd("quit")
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "returned" not in out, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_s3_ignored_without_testdev():
    p = run_guest("s3", "--timeout", "30")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "rtc 0" in p.stdout and "s3: the sleep write returned" in p.stdout, p.stdout


def test_s3_refused_with_two_vcpus():
    p = run_guest("s3", "--testdev", "--cpus", "2", "--timeout", "30")
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    assert "ACPI S3 with 2 vCPUs is not supported" in p.stderr, p.stderr


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found "
                    "(Debian package qemu-system-x86)")
def test_s3_same_as_qemu():
    q = run_reference(
        [QEMU, "-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "128",
         "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
         "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
         "-kernel", guest("s3")],
        120, "s3 under pc", capture_output=True, text=True, errors="replace")
    assert q.returncode == (0 << 1) | 1, (q.returncode, q.stdout, q.stderr)
    assert "s3: sleeping" in q.stdout and "returned" not in q.stdout, q.stdout
