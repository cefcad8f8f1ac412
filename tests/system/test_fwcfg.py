# SPDX-License-Identifier: MIT
"""fw_cfg, pc-testdev and pci-testdev (--testdev), the devices kvm-unit-tests
expects from QEMU: guest/fwcfg reads fw_cfg and drives the test devices under
kvmini and under QEMU (-M pc -device pc-testdev -device pci-testdev), and the
two must agree. RAM_SIZE and
NB_CPUS follow --memory and --cpus; a snapshot taken in the middle of an
fw_cfg read resumes the read where it stood.
"""
import random
import re
import shutil
import subprocess

import pytest

from conftest import KVMINI, guest, needs_kvm, run_guest, run_kvmini
from qemuref import run_reference
from qmpclient import QMP

pytestmark = needs_kvm

QEMU = shutil.which("qemu-system-x86_64")
GUEST_PANIC = 120

# What both VMMs must report alike (FILE_DIR differs: QEMU has files).
COMPARED = ["signature", "past-end", "id-traditional", "uuid-zero", "ram-size", "nb-cpus",
            "max-cpus", "unknown-key"]
TESTDEV_LINES = ["testdev: data fecdef99", "testdev: flush ok", "testdev: irq edge 2 level 1"]
# kvm-unit-tests' pci-testdev loop: writes through kvmini count, an
# ioeventfd takes them (count 0).
PCITEST_LINES = [f"pcitest: {bar} {kind}-{test} count {16 if test == 'no-eventfd' else 0}"
                 for bar, kind in (("mem", "mmio"), ("io", "portio"))
                 for test in ("no-eventfd", "wildcard-eventfd", "datamatch-eventfd")]
PCITEST_LINES.append("pcitest: 6 tests")


def pcitest_lines(out):
    return re.findall(r"^pcitest: .*?(?=\r?$)", out, re.M)


def fwcfg_values(out):
    return dict(re.findall(r"^fwcfg: (\S+) (.*?)\r?$", out, re.M))


def check_kvmini(out, mem_bytes, cpus):
    v = fwcfg_values(out)
    assert v.get("signature") == "QEMU", out
    assert v.get("id-traditional") == "1", out
    assert v.get("uuid-zero") == "1", out
    assert v.get("past-end") == "0", out
    assert v.get("unknown-key") == "0", out
    assert v.get("ram-size") == str(mem_bytes), out
    assert v.get("nb-cpus") == str(cpus), out
    assert v.get("max-cpus") == str(cpus), out
    assert v.get("files") == "0", out
    assert "fwcfg: done" in out, out


@pytest.mark.parametrize("memory,mem_bytes,cpus", [
    ("128M", 128 << 20, 1),
    ("64M", 64 << 20, 2),
    ("5G", 5 << 30, 3),  # RAM on both sides of the PCI hole: the total
])
def test_fwcfg_tracks_config(memory, mem_bytes, cpus):
    p = run_guest("fwcfg", "--memory", memory, "--cpus", str(cpus))
    assert p.returncode == 0, (p.stdout, p.stderr)
    check_kvmini(p.stdout, mem_bytes, cpus)


def test_testdev():
    p = run_guest("fwcfg", "--testdev", "--cmdline", "testdev=1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    check_kvmini(p.stdout, 128 << 20, 1)
    for line in TESTDEV_LINES:
        assert line in p.stdout, p.stdout


def test_pci_testdev():
    p = run_guest("fwcfg", "--testdev", "--cmdline", "pcitest=1")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert pcitest_lines(p.stdout) == PCITEST_LINES, p.stdout


@pytest.mark.parametrize("cmdline,failed", [
    ("testdev=1", r"inl\(0xe0\)"),
    ("pcitest=1", r"d != NULL"),
])
def test_no_testdevs_without_the_option(cmdline, failed):
    """Without --testdev the devices are not there: the guest's first check fails."""
    p = run_guest("fwcfg", "--cmdline", cmdline)
    assert p.returncode == GUEST_PANIC, (p.returncode, p.stdout, p.stderr)
    assert re.search(r"ASSERT failed at guest/fwcfg/fwcfg\.c:\d+: " + failed, p.stdout), \
        p.stdout
    assert "testdev:" not in p.stdout and "pcitest:" not in p.stdout, p.stdout


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not found "
                    "(Debian package qemu-system-x86)")
def test_same_as_qemu():
    cpus = 2
    q = run_reference(
        [QEMU, "-M", "pc", "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "128",
         "-smp", f"{cpus},sockets=1,cores={cpus}", "-nodefaults", "-no-user-config",
         "-display", "none", "-serial", "stdio", "-no-reboot",
         "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-device", "pc-testdev",
         "-device", "pci-testdev", "-kernel", guest("fwcfg"), "-append", "testdev=1 pcitest=1"],
        120, "fwcfg under pc", capture_output=True, text=True, errors="replace")
    assert q.returncode == (0 << 1) | 1, (q.returncode, q.stdout, q.stderr)
    k = run_guest("fwcfg", "--testdev", "--cpus", str(cpus), "--cmdline", "testdev=1 pcitest=1")
    assert k.returncode == 0, (k.stdout, k.stderr)
    qv, kv = fwcfg_values(q.stdout), fwcfg_values(k.stdout)
    for key in COMPARED:
        assert key in qv, q.stdout
        assert qv[key] == kv.get(key), (key, q.stdout, k.stdout)
    assert kv["ram-size"] == str(128 << 20) and kv["nb-cpus"] == str(cpus)
    for line in TESTDEV_LINES:
        assert line in q.stdout, q.stdout
        assert line in k.stdout, k.stdout
    assert pcitest_lines(q.stdout) == PCITEST_LINES, q.stdout
    assert pcitest_lines(k.stdout) == PCITEST_LINES, k.stdout


def test_snapshot_mid_read(tmp_path):
    """fw_cfg's selector and offset are saved: the read resumes after a restore.
    pc-testdev's data register too; its page flush, IRQ lines and pci-testdev
    (BARs and ioeventfds) work in the restored VM."""
    sock = str(tmp_path / f"qmp{random.random()}.sock")
    snap = str(tmp_path / "vm.snap")
    # With --testdev: pc-testdev's and pci-testdev's sections go along.
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("fwcfg"), "--cmdline",
                          "midread=1 testdev=1 pcitest=1",
                          "--qmp", sock, "--timeout", "120", "--testdev"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        q = QMP(sock)
        # The guest waits for a byte on COM1 (none comes) after this line.
        seen = []
        for line in p.stdout:
            seen.append(line)
            if line.startswith("fwcfg: mid-read"):
                break
        assert seen and seen[-1].strip() == "fwcfg: mid-read QE", "".join(seen)
        assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
        assert q.cmd("query-migrate")["return"]["status"] == "completed"
        q.cmd("quit")
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        assert "fwcfg: rest" not in out, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # Without --testdev the devices do not match the snapshot's.
    r = run_kvmini("run", "--incoming", f"file:{snap}", "--timeout", "120")
    assert r.returncode == 125 and "devices" in r.stderr, (r.returncode, r.stderr)
    r = run_kvmini("run", "--incoming", f"file:{snap}", "--timeout", "120", "--testdev",
                   stdin=None, input="x\n")
    assert r.returncode == 0, (r.stdout, r.stderr)
    # Where the read stood, not the start of the item again ("QE").
    assert "fwcfg: rest MU" in r.stdout, r.stdout
    assert "testdev: kept c0ffee42" in r.stdout, r.stdout
    for line in TESTDEV_LINES:
        assert line in r.stdout, r.stdout
    assert pcitest_lines(r.stdout) == PCITEST_LINES, r.stdout
    assert "fwcfg: done" in r.stdout, r.stdout
