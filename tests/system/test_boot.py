"""Boot the bundled guests under kvmini: output, exit statuses, crash reports."""
import os
import signal
import subprocess
import time

import pytest

from conftest import (EXIT_CRASH, EXIT_TIMEOUT, KVMINI, guest, needs_kvm, run_guest,
                      run_kvmini)

pytestmark = needs_kvm


def test_hello():
    p = run_guest("hello")
    assert p.returncode == 0, p.stderr
    assert "Hello" in p.stdout
    assert p.stderr == ""


@pytest.mark.parametrize("status", [0, 1, 7, 42, 123])
def test_exit_status(status):
    p = run_guest("exit", "--cmdline", f"status={status}")
    assert p.returncode == status, (p.stdout, p.stderr)


def test_exit_status_out_of_range_is_a_crash():
    p = run_guest("exit", "--cmdline", "status=200")
    assert p.returncode == EXIT_CRASH, (p.stdout, p.stderr)
    assert "exit status 200" in p.stderr


def test_demo_banner():
    p = run_guest("demo", "--cpus", "2", "--memory", "64M", "--cmdline", "hello from test")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "kvmini demo guest" in out
    assert "hello from test" in out
    assert "2" in out  # CPU count appears in the banner


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_smp_all_cpus_check_in(cpus):
    p = run_guest("smp", "--cpus", str(cpus), timeout=120)
    assert p.returncode == 0, (p.stdout, p.stderr)


def test_memory_sizes():
    for mem in ("16M", "256M", "3G", "4100M"):
        p = run_guest("demo", "--memory", mem)
        assert p.returncode == 0, (mem, p.stdout, p.stderr)


def test_fault_reports_exception():
    p = run_guest("fault")
    assert p.returncode == 121, (p.stdout, p.stderr)


def test_triple_fault_crash_report():
    p = run_guest("triple")
    assert p.returncode == EXIT_CRASH, (p.stdout, p.stderr)
    err = p.stderr
    assert "triple fault" in err
    assert "rip=" in err and "cr3=" in err
    assert "=> " in err  # the instruction at RIP, disassembled


def test_serial_file(tmp_path):
    out = tmp_path / "console.txt"
    p = run_guest("hello", "--serial", f"file={out}")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert "Hello" in out.read_text()


def test_serial_none():
    p = run_guest("hello", "--serial", "none")
    assert p.returncode == 0
    assert p.stdout == ""


def test_serial_file_unwritable(tmp_path):
    p = run_guest("hello", "--serial", f"file={tmp_path}/no/such/dir/x")
    assert p.returncode == 125
    assert "--serial file=" in p.stderr


def test_sigterm_stops_cleanly():
    proc = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "SIGTERM" in err or "Terminated" in err
