# SPDX-License-Identifier: MIT
"""Boot the guests in build/guest/ under QEMU (microvm, KVM) and check their
output and exit status. QEMU is the reference peer: the same ELFs boot under
kvmini. A guest status S ends QEMU with (S << 1) | 1 through isa-debug-exit.

Run with: /usr/bin/python3 -m pytest tests/system/test_guests_qemu.py
(after `make guests`).
"""
import os
import re
import select
import shutil
import subprocess
from pathlib import Path

import pytest

from qemuref import run_reference

ROOT = Path(__file__).resolve().parents[2]
GUEST_DIR = ROOT / "build" / "guest"
QEMU = shutil.which("qemu-system-x86_64")
TIMEOUT = 60  # seconds per boot; the guests need well under one

GUEST_PANIC = 120      # guest/lib: assertion failure, PANIC()
GUEST_EXCEPTION = 121  # guest/lib: unhandled exception


def kvm_usable():
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


pytestmark = [
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found "
                       "(Debian package qemu-system-x86)"),
    pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm missing or not "
                       "accessible: the guests are booted with -enable-kvm"),
]


def qemu_status(guest_status):
    return (guest_status << 1) | 1


def qemu_cmd(guest, append="", cpus=None):
    elf = GUEST_DIR / f"{guest}.elf"
    if not elf.exists():
        pytest.fail(f"{elf} is missing: run `make guests` first")
    cmd = [
        QEMU, "-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
        "-enable-kvm",
        # arch-capabilities off: this host's KVM refuses QEMU's write of
        # MSR 0x10a and QEMU 7.2 aborts with plain `-cpu host`.
        "-cpu", "host,-arch-capabilities",
        "-m", "32", "-nodefaults", "-no-user-config", "-nographic",
        "-serial", "stdio", "-no-reboot",
        "-kernel", str(elf), "-append", append,
        "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
    ]
    if cpus:
        cmd += ["-smp", f"{cpus},sockets=1,cores={cpus}"]
    return cmd


def run_qemu(guest, append="", cpus=None):
    """Boot build/guest/GUEST.elf; return (qemu exit status, console output)."""
    cmd = qemu_cmd(guest, append, cpus)
    p = run_reference(cmd, TIMEOUT, guest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return p.returncode, p.stdout.decode(errors="replace")


def test_hello():
    status, out = run_qemu("hello")
    assert "Hello from kvmini guest" in out, out
    assert status == qemu_status(0), out


@pytest.mark.parametrize("value", [0, 7, 42, 119, 0x7f])
def test_exit_status(value):
    status, out = run_qemu("exit", f"status={value}")
    assert f"exiting with status {value}" in out, out
    assert status == qemu_status(value), out


def test_exit_status_7_is_15():
    status, out = run_qemu("exit", "console=x status=7 other=1")
    assert status == 15, out


@pytest.mark.parametrize("append,why", [("", "no status=N"),
                                        ("status=abc", "bad status="),
                                        ("status=256", "bad status=")])
def test_exit_bad_status_panics(append, why):
    status, out = run_qemu("exit", append)
    assert why in out, out
    assert re.search(r"PANIC at guest/exit/exit\.c:\d+:", out), out
    assert status == qemu_status(GUEST_PANIC), out


@pytest.mark.parametrize("append,line", [("hang", "exit: halting forever"),
                                         ("hang=spin", "exit: spinning at CPL3 forever")])
def test_exit_hang_does_not_exit(append, line):
    p = subprocess.Popen(qemu_cmd("exit", append + " status=3"), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if not select.select([p.stdout], [], [], TIMEOUT)[0]:
            pytest.fail(f"no output from exit.elf {append} within {TIMEOUT} s")
        out = p.stdout.readline().decode(errors="replace")
        assert line in out, out
        # The guest printed its last line; it must not exit on its own.
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(timeout=1)
    finally:
        p.kill()
        p.wait()


def check_smp(out, n):
    ids = sorted(int(m) for m in re.findall(r"smp: cpu \d+: apic id (\d+), cpl3 ok", out))
    assert ids == list(range(n)), out
    assert f"smp: all {n} cpus checked in" in out, out


def test_smp_4_cpus():
    status, out = run_qemu("smp", cpus=4)
    check_smp(out, 4)
    assert status == qemu_status(0), out


def test_smp_cpus_override():
    status, out = run_qemu("smp", "cpus=2", cpus=4)
    check_smp(out, 2)
    assert status == qemu_status(0), out


def test_smp_missing_cpu_fails():
    # More CPUs claimed than exist: the guest must notice, not hang or pass.
    status, out = run_qemu("smp", "cpus=3", cpus=2)
    assert "smp: only 2 of 3 cpus checked in" in out, out
    assert status == qemu_status(1), out


FAULTS = [
    # kind, name, vector, CPL, error code, extra
    ("pf", "#PF", 14, 0, 0, "cr2=0x100000000"),
    ("de", "#DE", 0, 0, 0, None),
    ("ud", "#UD", 6, 0, 0, None),
    ("gp", "#GP", 13, 0, 0, None),
    ("user-pf", "#PF", 14, 3, 4, "cr2=0x100000000"),
]


@pytest.mark.parametrize("kind,name,vector,level,err,extra", FAULTS)
def test_fault(kind, name, vector, level, err, extra):
    status, out = run_qemu("fault", f"kind={kind}")
    assert re.search(rf"unhandled exception {re.escape(name)} \(vector {vector}\) on cpu 0 "
                     rf"at CPL{level}: rip=0x[0-9a-f]+ error code=0x{err:x}\b", out), out
    if extra:
        assert extra in out, out
    assert "no exception was taken" not in out, out
    assert status == qemu_status(GUEST_EXCEPTION), out


def test_fault_default_is_pf():
    status, out = run_qemu("fault")
    assert "unhandled exception #PF (vector 14)" in out, out
    assert status == qemu_status(GUEST_EXCEPTION), out


def test_triple_fault_shuts_down():
    # QEMU with -no-reboot exits 0 on a shutdown: an even status that
    # isa-debug-exit can never produce.
    status, out = run_qemu("triple")
    assert "loading an empty IDT" in out, out
    assert "still alive" not in out, out
    assert status == 0, out


def xorshift64(rounds):
    x, mask = 88172645463325252, (1 << 64) - 1
    for _ in range(rounds):
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
    return x


@pytest.mark.parametrize("rounds", [1000, 300000])
def test_cpl3(rounds):
    status, out = run_qemu("cpl3", f"rounds={rounds}")
    x = xorshift64(rounds)
    assert "cpl3: this line was written by CPL3 port I/O\n" in out, out
    m = re.search(r"#GP port-I/O emulations: (\d+)", out)
    assert m, out
    if os.path.exists("/sys/module/kvm_pvm"):
        # KVM on PVM faults CPL3 port I/O even with IOPL 3: the guest's #GP
        # handler performs at least the LSR read and the rep outsb.
        assert int(m.group(1)) >= 2, out
    else:
        # Hardware VMX/SVM (also nested, as in scripts/kvmbox) runs it.
        assert int(m.group(1)) == 0, out
    assert f"running at CPL3: {rounds} rounds" in out, out
    assert f"cpl3: result 0x{x:016x}" in out, out
    assert "cpl3: sse ok" in out, out
    assert "cpl3: back at CPL0" in out, out
    assert f"exiting with status {x % 100} from CPL3" in out, out
    assert status == qemu_status(x % 100), out


def test_demo():
    status, out = run_qemu("demo", "hello from make run", cpus=2)
    assert out.startswith("kvmini demo guest"), out
    assert "cpus: 2" in out, out
    assert re.search(r"0x000000100000-0x[0-9a-f]{12} ram", out), out
    assert 'command line: "hello from make run"' in out, out
    assert "demo: cpu 1 (apic id 1) is up" in out, out
    assert "demo: 2 of 2 cpus online" in out, out
    assert status == qemu_status(0), out


def test_bench_runs():
    # Timings are printed, never checked: only that every measurement ran.
    status, out = run_qemu("bench", "scale=1")
    assert len(re.findall(r"^bench: .* ops +\d+ ticks", out, re.M)) >= 10, out
    assert "CPL0/CPL3 loop ratio" in out, out
    assert status == qemu_status(0), out
