#!/usr/bin/env python3
"""Doorbell ping-pong round trips over ivshmem: two kvmini VMs, then two QEMU VMs, on one
kvmini ivshmem-server, in the same run (interleaved: kvmini pair, QEMU pair, ...).

Each pair runs build/guest/ivshmem-ping.elf and ivshmem-pong.elf with rounds=N; ping
times every round trip (write a 64-byte message, ring pong's doorbell, wait for the reply,
check it) with the TSC and prints the median and p99 in ns. Modes: irq (wait for the
doorbell's MSI-X interrupt: halt at CPL0) and poll (spin on shared memory at CPL3; the
doorbell is still rung). Prints, per mode, the median over runs of each pair's median and
p99, and the ratio kvmini/QEMU. Usage: ivshmem.py [RUNS] [ROUNDS]
"""
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KVMINI = os.path.join(ROOT, "build", "kvmini")
GUEST = os.path.join(ROOT, "build", "guest")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
RTT = re.compile(r"ivshmem-ping: rtt (ns|ticks) median (\d+) p99 (\d+)")


def kvmini_cmd(elf, args, sock):
    return [KVMINI, "run", "--kernel", os.path.join(GUEST, elf + ".elf"), "--cmdline", args,
            "--memory", "64M", "--timeout", "300", "--ivshmem", f"server={sock},vectors=2"]


def qemu_cmd(elf, args, sock):
    # q35: PCI through the config ports; -arch-capabilities: QEMU 7.2 aborts without it here.
    return ["qemu-system-x86_64", "-M", "q35", "-enable-kvm", "-cpu", "host,-arch-capabilities",
            "-m", "64", "-nodefaults", "-no-user-config", "-nographic", "-serial", "stdio",
            "-no-reboot", "-kernel", os.path.join(GUEST, elf + ".elf"), "-append", args,
            "-device", "isa-debug-exit,iobase=0xf4,iosize=4",
            "-chardev", f"socket,path={sock},id=s", "-device", "ivshmem-doorbell,chardev=s,vectors=2"]


def pair(make, sock, mode, want):
    args = f"rounds={ROUNDS} mode={mode} nonce={random.randrange(1, 1 << 31)}"
    pong = subprocess.Popen(make("ivshmem-pong", args, sock), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ping = subprocess.run(make("ivshmem-ping", args, sock), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=600)
    pout = pong.communicate(timeout=600)[0].decode(errors="replace")
    out = ping.stdout.decode(errors="replace")
    if ping.returncode != want or pong.returncode != want:
        sys.exit(f"{make.__name__} {mode}: ping {ping.returncode}, pong {pong.returncode} "
                 f"(want {want}):\n{out[-500:]}{ping.stderr.decode(errors='replace')[-300:]}"
                 f"\n{pout[-300:]}")
    m = RTT.search(out)
    if not m:
        sys.exit(f"no round-trip line in: {out[-500:]}")
    return m.group(1), int(m.group(2)), int(m.group(3))


def main():
    if not os.access(KVMINI, os.X_OK) or not os.path.exists(os.path.join(GUEST, "ivshmem-ping.elf")):
        sys.exit("build/kvmini or the ivshmem guests are missing: run make")
    sides = [("kvmini", kvmini_cmd, 0)]
    if shutil.which("qemu-system-x86_64"):
        sides.append(("qemu", qemu_cmd, 1))
    else:
        print("(qemu-system-x86_64 not installed: QEMU column skipped)")
    tmp = tempfile.mkdtemp(prefix="kvmini-bench-ivshmem.")
    sock = os.path.join(tmp, "ivshmem.sock")
    shm = f"kvmini-bench-{os.getpid()}"
    server = subprocess.Popen([KVMINI, "ivshmem-server", "--socket", sock, "--shm", shm,
                               "--size", "1M", "--vectors", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    server.stdout.readline()  # "listening on ..."
    res = {}
    unit = "ns"
    try:
        for _ in range(RUNS):
            for mode in ("irq", "poll"):
                for name, make, want in sides:
                    unit, med, p99 = pair(make, sock, mode, want)
                    res.setdefault((mode, name), []).append((med, p99))
    finally:
        server.terminate()
        server.wait()
        try:
            os.unlink("/dev/shm/" + shm)
        except FileNotFoundError:
            pass
        os.rmdir(tmp)
    print(f"ivshmem doorbell ping-pong, {ROUNDS} round trips per run, {RUNS} runs "
          f"interleaved, one kvmini ivshmem-server; {unit}, median over runs")
    print(f"{'mode':6} {'':8} {'kvmini median':>14} {'kvmini p99':>12} {'QEMU median':>12} "
          f"{'QEMU p99':>10} {'ratio median':>13} {'ratio p99':>10}")
    for mode in ("irq", "poll"):
        row = {}
        for name, _, _ in sides:
            r = res[(mode, name)]
            row[name] = (statistics.median(m for m, _ in r), statistics.median(p for _, p in r))
        k = row["kvmini"]
        q = row.get("qemu")
        if q:
            print(f"{mode:6} {'rtt':8} {k[0]:14.0f} {k[1]:12.0f} {q[0]:12.0f} {q[1]:10.0f} "
                  f"{k[0] / q[0]:13.3g} {k[1] / q[1]:10.3g}")
        else:
            print(f"{mode:6} {'rtt':8} {k[0]:14.0f} {k[1]:12.0f} {'-':>12} {'-':>10}")


if __name__ == "__main__":
    main()
