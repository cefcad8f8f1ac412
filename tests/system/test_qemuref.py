# SPDX-License-Identifier: MIT
"""qemuref.run_reference: a stalled QEMU reference run is tried again, a run
that ends is the reference, and a run that never ends fails the test. Plain
shell commands stand in for QEMU; no VM is needed."""
import subprocess

import pytest

import qemuref


def test_a_run_that_ends_is_returned_once(tmp_path):
    count = tmp_path / "count"
    p = qemuref.run_reference(["sh", "-c", f"echo x >> {count}; exit 3"], 10, "ends",
                              capture_output=True, text=True)
    assert p.returncode == 3
    assert count.read_text() == "x\n"


def test_a_stalled_run_is_tried_again(tmp_path, capfd):
    mark = tmp_path / "stalled-once"
    script = f"if [ -e {mark} ]; then echo reference; else touch {mark}; echo booting; exec sleep 30; fi"
    p = qemuref.run_reference(["sh", "-c", script], 1, "stalls once",
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert p.stdout == b"reference\n"
    err = capfd.readouterr().err
    assert "QEMU (stalls once) did not finish within 1 s, try 1 of 3" in err, err
    assert "booting" in err, err


def test_a_run_that_always_stalls_fails_the_test(tmp_path):
    count = tmp_path / "count"
    with pytest.raises(pytest.fail.Exception) as e:
        qemuref.run_reference(["sh", "-c", f"echo x >> {count}; echo stuck; exec sleep 30"], 1,
                              "always stalls", capture_output=True, text=True)
    assert "did not finish within 1 s in 3 tries" in str(e.value)
    assert "stuck" in str(e.value)
    assert count.read_text() == "x\n" * qemuref.TRIES
