#!/usr/bin/env python3
"""Start-to-exit wall time and peak RSS: kvmini vs QEMU microvm on one guest.

Runs are interleaved (kvmini, qemu, kvmini, ...) so both see the same machine
state; prints medians, p90 and the ratio. Usage: boot.py [RUNS] [GUEST.elf]
"""
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVMINI = os.path.join(ROOT, "build", "kvmini")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 25
GUEST = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "build", "guest", "hello.elf")

# -arch-capabilities: this host refuses MSR 0x10a and QEMU 7.2 aborts on it.
QEMU = [
    "qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
    "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "32", "-nodefaults", "-no-user-config", "-nographic",
    "-serial", "stdio", "-no-reboot", "-kernel", GUEST,
    "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
]
KV = [KVMINI, "run", "--kernel", GUEST, "--memory", "32M"]


def run(cmd, want):
    """One run: wall seconds from spawn to exit."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    _, err = p.communicate()
    t1 = time.perf_counter()
    if p.returncode != want:
        sys.exit(f"{cmd[0]} exited {p.returncode}, expected {want}: {err.decode()[-300:]}")
    return t1 - t0


def run_rss(cmd):
    """Peak RSS (KiB) of one run. Measured through GNU time, not from this
    Python's wait4: a child forked from Python counts Python's own RSS in
    ru_maxrss until it execs."""
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(p.stderr.strip().splitlines()[-1])


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main():
    have_qemu = shutil.which("qemu-system-x86_64") is not None
    kv, qm = [], []
    run(KV, 0)  # warm the page cache
    if have_qemu:
        run(QEMU, 1)
    for _ in range(RUNS):
        kv.append(run(KV, 0))
        if have_qemu:
            qm.append(run(QEMU, 1))
    kv_rss = max(run_rss(KV) for _ in range(3))
    print(f"guest: {os.path.relpath(GUEST, ROOT)}, {RUNS} interleaved runs each")
    print(f"{'':22}{'kvmini':>12}{'qemu microvm':>16}{'ratio':>10}")
    km = statistics.median(kv)
    if have_qemu:
        qmed = statistics.median(qm)
        q_rss = max(run_rss(QEMU) for _ in range(3))
        print(f"{'start-to-exit median':22}{km*1e3:>10.2f}ms{qmed*1e3:>14.2f}ms{km/qmed:>10.3f}")
        print(f"{'start-to-exit p90':22}{pct(kv,.9)*1e3:>10.2f}ms{pct(qm,.9)*1e3:>14.2f}ms"
              f"{pct(kv,.9)/pct(qm,.9):>10.3f}")
        print(f"{'peak RSS':22}{kv_rss/1024:>10.2f}MB{q_rss/1024:>14.2f}MB{kv_rss/q_rss:>10.3f}")
    else:
        print(f"{'start-to-exit median':22}{km*1e3:>10.2f}ms{'(no qemu)':>16}")
        print(f"{'peak RSS':22}{kv_rss/1024:>10.2f}MB")
    size = os.path.getsize(KVMINI)
    print(f"kvmini binary: {size} bytes ({size/1024:.0f} KiB), static")
    print("goals: median <= 0.1 x QEMU, peak RSS <= 4 MiB")


if __name__ == "__main__":
    main()
