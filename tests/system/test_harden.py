"""Files kvmini creates or is pointed at (issue 17's review): nothing is
followed, clobbered or left wider than asked. The unit tests (test_qmp,
test_snapshot, test_ivshmem) cover the same code paths in detail; these run
the real binary."""
import os
import stat
import subprocess

import pytest

from conftest import KVMINI, assert_one_line_error, guest, needs_kvm, run_guest, run_kvmini
from qmpclient import QMP


def test_ivshmem_server_refuses_a_non_socket(tmp_path):
    f = tmp_path / "precious"
    f.write_text("data")
    p = run_kvmini("ivshmem-server", "--socket", str(f), "--path", str(tmp_path / "m"),
                   "--size", "4K", timeout=30)
    assert_one_line_error(p, "exists and is not a socket")
    assert f.read_text() == "data"


def test_ivshmem_server_keeps_a_file_of_another_size(tmp_path):
    m = tmp_path / "mem"
    m.write_bytes(b"guest data" + bytes(4086))
    p = run_kvmini("ivshmem-server", "--socket", str(tmp_path / "s"), "--path", str(m),
                   "--size", "8K", timeout=30)
    assert_one_line_error(p, "exists with 4096 bytes, not --size 8192")
    assert m.read_bytes()[:10] == b"guest data" and m.stat().st_size == 4096


@needs_kvm
def test_serial_file_link_refused(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "console"
    link.symlink_to(target)
    p = run_guest("hello", "--serial", f"file={link}")
    assert_one_line_error(p, f"--serial file={link}", "symbolic link")
    assert target.read_text() == "keep"


@needs_kvm
def test_serial_file_new_is_0600(tmp_path):
    out = tmp_path / "console"
    old = os.umask(0)
    try:
        p = run_guest("hello", "--serial", f"file={out}")
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text()


@needs_kvm
@pytest.mark.parametrize("opt,mode", [("", 0o600), (",mode=0660", 0o660)])
def test_qmp_socket_mode(tmp_path, opt, mode):
    sock = str(tmp_path / "q.sock")
    old = os.umask(0)
    try:
        p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang",
                              "--qmp", sock + opt, "--timeout", "60"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    finally:
        os.umask(old)
    try:
        q = QMP(sock)
        assert stat.S_IMODE(os.stat(sock).st_mode) == mode
        q.cmd("quit")
        q.close()
    finally:
        p.communicate(timeout=30)


@needs_kvm
def test_qmp_bad_mode(tmp_path):
    p = run_guest("hello", "--qmp", f"{tmp_path}/q.sock,mode=999")
    assert_one_line_error(p, "--qmp: mode '999'")
