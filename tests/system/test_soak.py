"""Soak: snapshot and restore a guest doing disk I/O (snap-blk) many times in a
row, and check that kvmini does not leak.

Two phases on one guest run and one disk image:
  1. in one kvmini process, N times: migrate (snapshot; the VM stops), sample
     the process's fd count and RSS, cont;
  2. N times: migrate, sample, quit, restore the snapshot in a new process.
After each cycle kvmini must still be running the guest: snap-blk checks every
completion (each exactly once, with its data) and exits with an error
otherwise, which ends kvmini. At the end the guest finishes its I/O, reports
"completed once each", and the image is checked against the guest's own
account of what it wrote (no request lost or run twice).

fds must not grow at all; RSS may not grow by more than RSS_SLACK_KB over
the largest of the first samples (warm-up: the guest's working set, malloc's
arenas). N is KVMINI_SOAK_CYCLES (default 10 per phase: `make test`; `make
soak` runs 1000). The figures are printed (pytest -s or -rP shows them)."""
import os
import subprocess
import time

from conftest import guest, needs_kvm
from test_snap_blk import MEM, VM, finish_cycles, in_flight, make_image

pytestmark = needs_kvm

CYCLES = int(os.environ.get("KVMINI_SOAK_CYCLES", "10"))
# kvmini's own --timeout, a safety net: the first process lives N cycles.
LIFETIME = 120 + 10 * CYCLES
# The guest runs until told ('q'): give it far more guest time than that.
FOREVER = f"ms={1000 * 10 * LIFETIME}"
WARMUP = 3
RSS_SLACK_KB = 4096


def sample(vm, i):
    """(open fds, RSS in kB) of @vm's kvmini, which must be running."""
    assert vm.p.poll() is None, (i, vm.finish())
    pid = vm.p.pid
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return fds, rss


def fd_list(pid):
    out = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
        try:
            out.append(f"{fd}->{os.readlink(f'/proc/{pid}/fd/{fd}')}")
        except OSError:
            pass
    return out


def check_no_growth(what, samples, first_fds):
    fds = [s[0] for s in samples]
    rss = [s[1] for s in samples]
    base = max(rss[:WARMUP])
    assert max(fds) == fds[0], f"{what}: fds grew: {fds}\nfirst: {first_fds}"
    assert max(rss[WARMUP:], default=base) <= base + RSS_SLACK_KB, \
        f"{what}: RSS grew (kB): {rss}"
    print(f"soak {what}: {len(samples)} cycles, fds {fds[0]} -> {fds[-1]}, "
          f"RSS {rss[0]} kB -> {rss[-1]} kB (max {max(rss)} kB)")


def migrate(vm, snap, i):
    r = vm.q.cmd("migrate", {"uri": f"file:{snap}"})
    assert r == {"return": {}}, (i, r)
    st = vm.q.cmd("query-status")["return"]["status"]
    assert st == "postmigrate", (i, st)
    return in_flight(snap)


def test_soak_snapshot_restore(tmp_path):
    assert CYCLES > WARMUP, "KVMINI_SOAK_CYCLES must exceed the warm-up"
    img = make_image(tmp_path / "d.img")
    snap = str(tmp_path / "soak.snap")
    disk = ["--disk", f"path={img}", "--memory", MEM]
    vm = VM(tmp_path, ["--kernel", guest("snap-blk"), "--cmdline", FOREVER, *disk],
            stdin=subprocess.PIPE, timeout=LIFETIME)
    vm.wait_output("snap-blk: running")
    held = 0
    out = ""

    # Phase 1: one process, N snapshots.
    samples = []
    first_fds = None
    for i in range(CYCLES):
        time.sleep(0.02)
        held += migrate(vm, snap, i) > 0
        samples.append(sample(vm, i))
        if first_fds is None:
            first_fds = fd_list(vm.p.pid)
        assert vm.q.cmd("cont") == {"return": {}}, i
        assert vm.p.poll() is None, (i, vm.finish())
    check_no_growth("same process", samples, first_fds)

    # Phase 2: N restores, each in a new process (sampled from the first
    # restored one on: the original process has no snapshot file mapped).
    samples = []
    first_fds = None
    for i in range(CYCLES + 1):
        time.sleep(0.02)
        held += migrate(vm, snap, i) > 0
        if i:
            samples.append(sample(vm, i))
        if i == 1:
            first_fds = fd_list(vm.p.pid)
        if i == CYCLES:
            assert vm.q.cmd("cont") == {"return": {}}
            break
        o, code, err = vm.quit()
        assert code == 0, (i, err)
        assert "completed once each" not in o, (i, o)
        out += o
        vm = VM(tmp_path, ["--incoming", f"file:{snap}", *disk], stdin=subprocess.PIPE,
                timeout=LIFETIME)
        st = vm.q.cmd("query-status")["return"]["status"]
        assert st == "running", (i, st)
    check_no_growth("restored processes", samples, first_fds)
    print(f"soak: {held} of {2 * CYCLES + 1} snapshots held requests in flight")
    finish_cycles(vm, out, img)
