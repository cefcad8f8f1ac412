"""Bad input on the command line: exit 125 and one line naming what was wrong."""
import os
import shutil
import struct
import subprocess

import pytest

from conftest import (KVMINI, assert_one_line_error, guest, needs_kvm, run_kvmini)


@pytest.mark.parametrize(
    "args,needles",
    [
        ([], ["no command"]),
        (["fly"], ["unknown command 'fly'"]),
        (["run"], ["no kernel"]),
        (["run", "--kernel"], ["--kernel needs a value"]),
        (["run", "--kernel", "x", "--memory", "12Q"], ["--memory '12Q'"]),
        (["run", "--kernel", "x", "--memory", "1K"], ["--memory '1K'"]),
        (["run", "--kernel", "x", "--cpus", "0"], ["--cpus '0'"]),
        (["run", "--kernel", "x", "--frobnicate"], ["unknown option '--frobnicate'"]),
        (["run", "--kernel", "x", "--cpu-features", "-warpdrive"], ["unknown CPU feature 'warpdrive'"]),
        (["run", "--kernel", "x", "--serial", "pty"], ["--serial 'pty'"]),
        (["run", "--kernel", "x", "--timeout", "soon"], ["--timeout 'soon'"]),
    ],
)
def test_bad_options(args, needles):
    assert_one_line_error(run_kvmini(*args), *needles)


def test_help_and_version():
    p = run_kvmini("--help")
    assert p.returncode == 0 and "--kernel" in p.stdout and "124" in p.stdout
    p = run_kvmini("--version")
    assert p.returncode == 0 and p.stdout.startswith("kvmini ")


def test_binary_is_static():
    out = subprocess.run(["file", "-L", KVMINI], capture_output=True, text=True).stdout
    assert "statically linked" in out or "static-pie linked" in out, out


@needs_kvm
def test_missing_kernel(tmp_path):
    missing = str(tmp_path / "nope.elf")
    assert_one_line_error(run_kvmini("run", "--kernel", missing), "kernel", missing,
                          "No such file")


@needs_kvm
def test_kernel_is_directory(tmp_path):
    assert_one_line_error(run_kvmini("run", "--kernel", str(tmp_path)), "not a regular file")


def test_unreadable_kernel(tmp_path):
    k = tmp_path / "k.elf"
    shutil.copy(guest("hello"), k)
    os.chmod(k, 0)
    cmd = [KVMINI, "run", "--kernel", str(k)]
    if os.geteuid() == 0:
        # root reads any file: run kvmini as nobody instead.
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        os.chmod(tmp_path, 0o755)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    # Files are checked before /dev/kvm is opened.
    assert_one_line_error(p, "cannot open kernel", str(k), "Permission denied")


@needs_kvm
def test_empty_kernel(tmp_path):
    k = tmp_path / "empty.elf"
    k.write_bytes(b"")
    assert_one_line_error(run_kvmini("run", "--kernel", str(k)), "empty")


@needs_kvm
def test_not_an_elf(tmp_path):
    k = tmp_path / "text.elf"
    k.write_text("this is not an ELF file\n" * 10)
    assert_one_line_error(run_kvmini("run", "--kernel", str(k)), str(k))


@needs_kvm
def test_elf_without_pvh_note(tmp_path):
    # A valid static x86-64 executable with no Xen PVH entry note.
    src = tmp_path / "nonote.S"
    src.write_text(".globl _start\n_start: hlt\n")
    elf = tmp_path / "nonote.elf"
    subprocess.run(["gcc", "-nostdlib", "-static", "-no-pie", "-Wl,-Ttext=0x200000",
                    "-Wl,--build-id=none", "-o", str(elf), str(src)], check=True)
    assert_one_line_error(run_kvmini("run", "--kernel", str(elf)), str(elf), "PVH")


@needs_kvm
def test_pie_elf_rejected():
    true = shutil.which("true")
    assert_one_line_error(run_kvmini("run", "--kernel", true), true, "ET_EXEC")


@needs_kvm
def test_truncated_elf(tmp_path):
    data = open(guest("hello"), "rb").read()
    # Inside the ELF header, the program headers, and the last loaded byte.
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    ends = []
    for i in range(phnum):
        ptype, _, off, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if ptype == 1 and filesz:
            ends.append(off + filesz)
    for cut in (16, 63, phoff + phentsize, max(ends) - 1):
        k = tmp_path / f"cut{cut}.elf"
        k.write_bytes(data[:cut])
        assert_one_line_error(run_kvmini("run", "--kernel", str(k)), str(k))


@needs_kvm
def test_initrd_missing(tmp_path):
    p = run_kvmini("run", "--kernel", guest("hello"), "--initrd", str(tmp_path / "none"))
    assert_one_line_error(p, "initrd")


@needs_kvm
def test_too_many_cpus_for_host():
    p = run_kvmini("run", "--kernel", guest("hello"), "--cpus", "255")
    # Either the host allows 255 vCPUs and the guest runs, or it is a clean error.
    if p.returncode != 0:
        assert_one_line_error(p, "--cpus")


def _unshare_ok():
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _unshare_ok(), reason="needs root and mount namespaces (unshare -m)")
def test_no_dev_kvm():
    # A private /dev without kvm: what a host without KVM looks like.
    p = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f"mount -t tmpfs none /dev && exec {KVMINI} run --kernel {guest('hello')}"],
        capture_output=True, text=True, timeout=30)
    assert_one_line_error(p, "/dev/kvm does not exist")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root (to drop to an unprivileged user) and setpriv")
@needs_kvm
def test_dev_kvm_permission_denied():
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible on this host")
    p = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMINI, "run",
         "--kernel", "/bin/true"],
        capture_output=True, text=True, timeout=30)
    assert_one_line_error(p, "no permission to open /dev/kvm")
