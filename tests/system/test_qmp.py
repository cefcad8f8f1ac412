"""QMP: protocol behaviour and the VM control commands."""
import json
import os
import subprocess
import time

import pytest

from conftest import KVMINI, guest, needs_kvm
from qmpclient import QMP

pytestmark = needs_kvm


@pytest.fixture
def vm(tmp_path):
    """A running guest that never exits by itself, with a QMP socket."""
    sock = str(tmp_path / "qmp.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang",
                          "--qmp", sock, "--timeout", "60"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    yield p, sock
    if p.poll() is None:
        p.kill()
    p.communicate()


def test_greeting_and_negotiation(vm):
    p, sock = vm
    q = QMP(sock, negotiate=False)
    assert "QMP" in q.greeting and q.greeting["QMP"]["capabilities"] == []
    r = q.cmd("query-status")
    assert r["error"]["class"] == "CommandNotFound"
    assert q.cmd("qmp_capabilities") == {"return": {}}
    assert q.cmd("qmp_capabilities")["error"]["class"] == "CommandNotFound"
    assert q.cmd("query-status")["return"]["status"] == "running"


def test_bad_input_keeps_connection(vm):
    p, sock = vm
    q = QMP(sock)
    assert q.cmd("no-such-command")["error"]["class"] == "CommandNotFound"
    q.send_raw('{"execute": "query-status", ')  # incomplete, finished below
    q.send_raw('"id": 7}')
    r = q.reply()
    assert r["id"] == 7 and r["return"]["running"] is True
    for bad in ['{"execute": }', '{"execute": 5}', '{"arguments": {}}', '[1, 2]',
                'garbage{"execute":"query-status"}',
                '{"execute": "migrate", "arguments": [1]}']:
        q.send_raw(bad)
        r = q.reply()
        assert "error" in r, (bad, r)
        assert r["error"]["class"] == "GenericError", (bad, r)
        if "garbage" in bad:  # the object after the garbage still runs
            assert q.reply()["return"]["status"] == "running"
    q.send_raw("{" + '"x": "' + "a" * 70000 + '"}')
    assert "too large" in q.reply()["error"]["desc"]
    # Two commands in one write, string id echoed.
    q.send_raw('{"execute": "query-status", "id": "a"}{"execute": "query-block", "id": "b"}')
    assert q.reply()["id"] == "a"
    assert q.reply() == {"return": [], "id": "b"}
    assert p.poll() is None


def test_stop_cont_events(vm):
    p, sock = vm
    q = QMP(sock)
    assert q.cmd("stop") == {"return": {}}
    assert q.wait_event("STOP")["data"] == {}
    st = q.cmd("query-status")["return"]
    assert st == {"status": "paused", "singlestep": False, "running": False}
    assert q.cmd("cont") == {"return": {}}
    ev = q.wait_event("RESUME")
    assert "seconds" in ev["timestamp"] and "microseconds" in ev["timestamp"]
    assert q.cmd("query-status")["return"]["running"] is True


def test_two_clients_both_get_events(vm):
    p, sock = vm
    a, b = QMP(sock), QMP(sock)
    a.cmd("stop")
    a.wait_event("STOP")
    b.wait_event("STOP")
    b.cmd("cont")
    a.wait_event("RESUME")


def test_quit(vm):
    p, sock = vm
    q = QMP(sock)
    assert q.cmd("quit") == {"return": {}}
    assert p.wait(timeout=30) == 0
    assert not os.path.exists(sock), "the socket is removed on exit"


def test_system_reset_reboots(vm):
    p, sock = vm
    q = QMP(sock)
    assert p.stdout.readline().startswith("exit: halting forever")
    assert q.cmd("system_reset") == {"return": {}}
    assert q.wait_event("RESET")["data"]["guest"] is False
    # The same QMP connection controls the rebooted VM.
    assert p.stdout.readline().startswith("exit: halting forever")
    assert q.cmd("query-status")["return"]["status"] == "running"
    q.cmd("quit")
    assert p.wait(timeout=30) == 0


def test_guest_exit_sends_shutdown(tmp_path):
    sock = str(tmp_path / "q")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "status=5",
                          "--qmp", sock, "--paused"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    q = QMP(sock)
    assert q.cmd("query-status")["return"]["status"] == "paused"
    q.cmd("cont")
    ev = q.wait_event("SHUTDOWN")
    assert ev["data"]["guest"] is True
    assert p.wait(timeout=30) == 5


def test_migrate_errors(vm, tmp_path):
    p, sock = vm
    q = QMP(sock)
    assert "uri" in q.cmd("migrate", {})["error"]["desc"]
    assert "file:" in q.cmd("migrate", {"uri": "tcp:localhost:4444"})["error"]["desc"]
    r = q.cmd("migrate", {"uri": f"file:{tmp_path}/no/such/dir/snap"})
    assert r["error"]["class"] == "GenericError" and "No such file" in r["error"]["desc"]
    assert q.cmd("query-migrate")["return"]["status"] == "failed"
    # Nothing saved: the VM runs on, as in QEMU.
    assert q.cmd("query-status")["return"]["status"] == "running"
    assert p.poll() is None


def test_qmp_path_not_a_socket(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = subprocess.run([KVMINI, "run", "--kernel", guest("hello"), "--qmp", str(f)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 125
    assert "not a socket" in p.stderr
    assert f.read_text() == "x"
