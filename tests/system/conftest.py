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


def run_guest(name, *args, timeout=60, **kw):
    return run_kvmini("run", "--kernel", guest(name), *args, timeout=timeout, **kw)
