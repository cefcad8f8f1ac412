#!/usr/bin/env python3
"""Per-operation costs measured inside build/guest/bench.elf (loop, port I/O,
serial lines, CPL switches, each at CPL0 and CPL3), under kvmini and QEMU.

Runs are interleaved (kvmini, qemu, kvmini, ...); prints the median ns/op of
each measurement for both and the ratio kvmini/QEMU. The guest converts TSC
ticks with the kvmclock rate. Usage: guest_cpl.py [RUNS]
"""
import os
import re
import shutil
import statistics
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVMINI = os.path.join(ROOT, "build", "kvmini")
GUEST = os.path.join(ROOT, "build", "guest", "bench.elf")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
LINE = re.compile(r"^bench: (.+?)\s+\d+ ops\s+\d+ ticks\s+([\d.]+) ns/op$", re.M)

# -arch-capabilities: this host refuses MSR 0x10a and QEMU 7.2 aborts on it.
QEMU = [
    "qemu-system-x86_64", "-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
    "-enable-kvm", "-cpu", "host,-arch-capabilities", "-m", "32", "-nodefaults",
    "-no-user-config", "-nographic", "-serial", "stdio", "-no-reboot", "-kernel", GUEST,
    "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
]
KV = [KVMINI, "run", "--kernel", GUEST, "--memory", "32M", "--timeout", "300"]


def run(cmd, want):
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    out = p.stdout.decode(errors="replace")
    if p.returncode != want:
        sys.exit(f"{cmd[0]} exited {p.returncode}, expected {want}: {out[-300:]}"
                 f"{p.stderr.decode(errors='replace')[-300:]}")
    return {name.strip(): float(ns) for name, ns in LINE.findall(out)}


def main():
    sides = []
    if os.access(KVMINI, os.X_OK):
        sides.append(("kvmini", KV, 0))
    else:
        print(f"(no {KVMINI}: kvmini column skipped)")
    if shutil.which("qemu-system-x86_64"):
        sides.append(("qemu", QEMU, 1))
    else:
        print("(qemu-system-x86_64 not installed: QEMU column skipped)")
    if not sides:
        sys.exit("nothing to run")
    if not os.path.exists(GUEST):
        sys.exit(f"{GUEST} missing: run make guests")
    results = {name: [] for name, _, _ in sides}
    for _ in range(RUNS):
        for name, cmd, want in sides:
            results[name].append(run(cmd, want))
    names = list(results[sides[0][0]][0])
    med = {s: {n: statistics.median(r[n] for r in results[s] if n in r) for n in names}
           for s in results}
    cols = [s for s, _, _ in sides]
    print(f"median ns/op over {RUNS} runs")
    print(f"{'measurement':34}" + "".join(f"{c:>14}" for c in cols) +
          ("   kvmini/qemu" if len(cols) == 2 else ""))
    for n in names:
        row = f"{n:34}" + "".join(f"{med[c][n]:14.2f}" for c in cols)
        if len(cols) == 2 and med["qemu"][n] > 0:
            row += f"{med['kvmini'][n] / med['qemu'][n]:14.2f}"
        print(row)


if __name__ == "__main__":
    main()
