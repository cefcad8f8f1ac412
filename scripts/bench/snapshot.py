#!/usr/bin/env python3
"""Snapshot save and restore: kvmini vs QEMU on the same guest, same run.

For each RAM size, each VMM boots build/guest/snap-counter.elf stopped
before its first instruction (kvmini --paused, QEMU -S), saves it (kvmini:
QMP migrate file:F; QEMU: migrate "exec:cat > F"), then restores it RUNS
times (kvmini --incoming file:F, QEMU -incoming "exec:cat F", both paused,
resumed with QMP cont) and measures from spawn to the guest's first output
byte and to the guest's exit. Runs are interleaved. Usage: snapshot.py [RUNS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
from qmpclient import QMP  # noqa: E402

KVMINI = os.path.join(ROOT, "build", "kvmini")
GUEST = os.path.join(ROOT, "build", "guest", "snap-counter.elf")
ARGS = "rounds=3 spin=0"
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
TMP = tempfile.mkdtemp(prefix="kvmini-bench-")


def qemu_cmd(mem):
    return ["qemu-system-x86_64", "-M",
            "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
            "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", mem, "-nodefaults",
            "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot",
            "-kernel", GUEST, "-append", ARGS,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]


def kvmini_cmd(mem):
    return [KVMINI, "run", "--memory", mem]


def save(vmm, mem, path):
    sock = os.path.join(TMP, "save.sock")
    if vmm == "kvmini":
        cmd = kvmini_cmd(mem) + ["--kernel", GUEST, "--cmdline", ARGS, "--paused", "--qmp", sock]
        uri = f"file:{path}"
    else:
        cmd = qemu_cmd(mem) + ["-S", "-qmp", f"unix:{sock},server=on,wait=off"]
        uri = f"exec:cat > {path}"
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    q = QMP(sock, poll=0.0002)
    t0 = time.perf_counter()
    r = q.cmd("migrate", {"uri": uri})
    assert r == {"return": {}}, r
    while q.cmd("query-migrate")["return"].get("status") not in ("completed", "failed"):
        time.sleep(0.001)
    t = time.perf_counter() - t0
    q.cmd("quit")
    p.wait(timeout=30)
    return t


def restore(vmm, mem, path):
    """Seconds from spawn to first guest output and to guest exit."""
    sock = os.path.join(TMP, "restore.sock")
    if vmm == "kvmini":
        cmd = kvmini_cmd(mem) + ["--incoming", f"file:{path}", "--paused", "--qmp", sock]
        want = 0
    else:
        cmd = qemu_cmd(mem) + ["-S", "-incoming", f"exec:cat {path}",
                               "-qmp", f"unix:{sock},server=on,wait=off"]
        want = 1
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    q = QMP(sock, timeout=30, poll=0.0002)
    if vmm == "qemu":  # cont is refused until the incoming migration is in
        while q.cmd("query-status")["return"]["status"] == "inmigrate":
            time.sleep(0.0005)
    assert q.cmd("cont") == {"return": {}}
    p.stdout.read(1)
    t1 = time.perf_counter()
    p.stdout.read()
    rc = p.wait(timeout=30)
    t2 = time.perf_counter()
    assert rc == want, (vmm, rc)
    return t1 - t0, t2 - t0


def main():
    have_qemu = shutil.which("qemu-system-x86_64") is not None
    vmms = ["kvmini"] + (["qemu"] if have_qemu else [])
    print(f"guest: snap-counter.elf ({ARGS}) saved before its first instruction; "
          f"{RUNS} interleaved restores each; resumed with QMP cont")
    hdr = f"{'':30}{'kvmini':>12}{'qemu':>12}{'ratio':>9}"
    for mem in ("128M", "1G"):
        print(f"\n--memory {mem}")
        print(hdr)
        res = {}
        for v in vmms:
            path = os.path.join(TMP, f"{v}-{mem}.snap")
            res[v] = {"save": save(v, mem, path), "size": os.path.getsize(path),
                      "disk": os.stat(path).st_blocks * 512, "first": [], "exit": []}
        for _ in range(RUNS):
            for v in vmms:
                a, b = restore(v, mem, os.path.join(TMP, f"{v}-{mem}.snap"))
                res[v]["first"].append(a)
                res[v]["exit"].append(b)

        def row(label, key, scale, unit, fn=statistics.median):
            vals = [fn(res[v][key]) if isinstance(res[v][key], list) else res[v][key]
                    for v in vmms]
            cells = "".join(f"{x * scale:>10.2f}{unit}" for x in vals)
            ratio = f"{vals[0] / vals[1]:>9.3f}" if len(vals) == 2 and vals[1] else ""
            print(f"{label:30}{cells}{ratio}")
        row("save time", "save", 1e3, "ms")
        row("file size (apparent)", "size", 1 / 2**20, "MB")
        row("file size (on disk)", "disk", 1 / 2**20, "MB")
        row("restore -> first output, med", "first", 1e3, "ms")
        row("restore -> guest exit, med", "exit", 1e3, "ms")
    shutil.rmtree(TMP, ignore_errors=True)
    print("\ngoal: restore of a 128 MiB guest to running in <= 5 ms, >= 10x faster than QEMU")


if __name__ == "__main__":
    main()
