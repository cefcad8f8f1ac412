# SPDX-License-Identifier: MIT
"""Run QEMU as the reference peer of a comparison test.

QEMU guests in the nested test VM sometimes stall: CI runs saw a q35 boot print
SeaBIOS's banner and nothing more for 120 s (test_blk_qemu, test_pcilist[q35]),
and kvm-unit-tests entries under pc time out at 90 s that otherwise take a
second. A reference that stalled says nothing about kvmini, so a QEMU run that
times out is run again, at most twice, and the test output says so. Only a
timeout is retried: a QEMU run that ends, with any status, is the reference.
kvmini's own runs are never retried.
"""
import subprocess
import sys

import pytest

TRIES = 3


def _text(out):
    if out is None:
        return ""
    return out if isinstance(out, str) else out.decode(errors="replace")


def run_reference(cmd, timeout, what, **kw):
    """subprocess.run(cmd, timeout=timeout, **kw) for a QEMU reference run;
    stdin is /dev/null unless kw names it. A run that times out is tried again
    (TRIES in all); when every try timed out the test fails with the output of
    the last one. WHAT names the run in messages."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    out = ""
    for attempt in range(1, TRIES + 1):
        try:
            return subprocess.run(cmd, timeout=timeout, **kw)
        except subprocess.TimeoutExpired as e:
            out = _text(e.stdout) + _text(e.stderr)
            print(f"qemuref: QEMU ({what}) did not finish within {timeout} s, try {attempt} "
                  f"of {TRIES}; last output line: {out.strip().splitlines()[-1:]}",
                  file=sys.stderr)
    pytest.fail(f"QEMU ({what}) did not finish within {timeout} s in {TRIES} tries; "
                f"output of the last:\n{out}")
