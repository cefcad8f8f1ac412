"""Shared helpers for system tests: run kvmini on a guest, skip without KVM."""
import os
import subprocess

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
KVMINI = os.path.join(BUILD, "kvmini")
GUEST_DIR = os.path.join(BUILD, "guest")

EXIT_TIMEOUT = 124
EXIT_HOST_ERROR = 125
EXIT_CRASH = 126


def guest(name):
    path = os.path.join(GUEST_DIR, name + ".elf")
    if not os.path.exists(path):
        pytest.fail(f"guest {path} was not built (run make)")
    return path


def kvm_usable():
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


needs_kvm = pytest.mark.skipif(not kvm_usable(), reason="/dev/kvm is missing or not accessible")


def run_kvmini(*args, timeout=60, stdin=subprocess.DEVNULL, **kw):
    """Run kvmini with args; returns CompletedProcess (text output)."""
    return subprocess.run(
        [KVMINI, *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        **kw,
    )


def assert_one_line_error(p, *needles):
    """kvmini refused to run: exit 125 and one "kvmini: ..." line naming the problem."""
    assert p.returncode == EXIT_HOST_ERROR, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("kvmini: "), lines[0]
    for n in needles:
        assert n in lines[0], (n, lines[0])


def run_guest(name, *args, timeout=60, **kw):
    return run_kvmini("run", "--kernel", guest(name), *args, timeout=timeout, **kw)


# A file system that fills up for real (werror/rerror tests, any file).
@pytest.fixture
def small_tmpfs(tmp_path):
    """A 16 MiB tmpfs (we mount it: root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for a real ENOSPC needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


# ---------------------------------------------------------------- make test
# `make test` sets KVMINI_TEST_REQUIRE_KVM=1: it runs the system tests natively
# only where /dev/kvm is usable and otherwise inside the test VM
# (scripts/kvmbox), so a missing /dev/kvm is then an error, never a skip.
REQUIRE_KVM = os.environ.get("KVMINI_TEST_REQUIRE_KVM") == "1"


def pytest_collection_modifyitems(session, config, items):
    if REQUIRE_KVM and not kvm_usable():
        pytest.exit("/dev/kvm is missing or not accessible, and this run must not skip VM "
                    "tests for it (KVMINI_TEST_REQUIRE_KVM=1): run them through "
                    "scripts/kvmbox, as make test does", returncode=3)


_file_seconds = {}


def pytest_runtest_logreport(report):
    path = report.nodeid.split("::", 1)[0]
    _file_seconds[path] = _file_seconds.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    """Seconds per test file, slowest first: what to make faster."""
    if not _file_seconds:
        return
    terminalreporter.section("seconds per file")
    for path, secs in sorted(_file_seconds.items(), key=lambda kv: -kv[1]):
        terminalreporter.write_line(f"{secs:8.1f} s  {path}")
