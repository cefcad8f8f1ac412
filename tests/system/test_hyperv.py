# SPDX-License-Identifier: MIT
"""--hyperv: the Hyper-V enlightenments (as QEMU's -cpu hv_passthrough) and
the hyperv-testdev. guest/hyperv reads the Hyper-V CPUID signature ("Hv#1"
at 0x40000001) and where KVM's own leaves went, and with --testdev drives
the SynIC through the device: a SINT interrupt, HvPostMessage to a free and
to a busy slot (msg_pending, delivered after EOM), HvSignalEvent through
KVM's eventfd. Without --hyperv the guest sees KVM's leaves at 0x40000000
and no Hyper-V interface.
"""
import random
import subprocess

import pytest

from conftest import KVMINI, guest, needs_kvm, run_guest, run_kvmini
from qmpclient import QMP

pytestmark = needs_kvm

SYNIC_LINES = [
    "hyperv: synic on",
    "hyperv: unknown hypercall status 2",
    "hyperv: sint interrupt delivered",
    "hyperv: message delivered",
    "hyperv: busy slot msg_pending",
    "hyperv: pending message delivered after EOM",
    "hyperv: event flag set",
    "hyperv: destroyed",
]


@pytest.mark.parametrize("cpus", ["1", "2"])
def test_hyperv_synic(cpus):
    p = run_guest("hyperv", "--hyperv", "--testdev", "--cpus", cpus)
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "hyperv: kvm leaves at 0x40000100" in p.stdout, p.stdout
    assert "hyperv: interface Hv#1" in p.stdout, p.stdout
    for line in SYNIC_LINES:
        assert line in p.stdout, (line, p.stdout)
    assert p.stderr == "", p.stderr


def test_without_hyperv_nothing_changes():
    p = run_guest("hyperv", "--testdev")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    assert "hyperv: kvm leaves at 0x40000000" in p.stdout, p.stdout
    assert "hyperv: no Hyper-V interface" in p.stdout, p.stdout


def test_hyperv_without_testdev():
    """--hyperv alone: the CPUID and the SynIC are there, port 0x3000 is not
    claimed, so the guest's SINT route never fires and its ASSERT ends it
    (120) after a 5 s wait."""
    p = run_guest("hyperv", "--hyperv")
    assert "hyperv: interface Hv#1" in p.stdout, p.stdout
    assert "hyperv: synic on" in p.stdout, p.stdout
    assert p.returncode == 120, (p.returncode, p.stdout, p.stderr)


def test_snapshot_refused(tmp_path):
    """Snapshots carry no Hyper-V state: migrate fails with a clear error
    and the VM goes on; --incoming with --hyperv is refused."""
    sock = str(tmp_path / f"qmp{random.random()}.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("snap-counter"), "--cmdline",
                          "rounds=100", "--qmp", sock, "--timeout", "120", "--hyperv"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    q = QMP(sock)
    r = q.cmd("migrate", {"uri": f"file:{tmp_path / 'vm.snap'}"})
    assert "error" in r and "--hyperv" in r["error"]["desc"], r
    q.cmd("quit")
    p.communicate(timeout=30)
    assert not (tmp_path / "vm.snap").exists()
    # A snapshot taken without it cannot come back with it.
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("snap-counter"), "--cmdline",
                          "rounds=100", "--qmp", sock + "2", "--timeout", "120"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    q = QMP(sock + "2")
    assert q.cmd("migrate", {"uri": f"file:{tmp_path / 'vm.snap'}"}) == {"return": {}}
    q.cmd("quit")
    p.communicate(timeout=30)
    r = run_kvmini("run", "--incoming", f"file:{tmp_path / 'vm.snap'}", "--hyperv")
    assert r.returncode == 125, (r.returncode, r.stderr)
    assert "--hyperv" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
