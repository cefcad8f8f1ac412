#!/usr/bin/env python3
"""virtio-blk sequential reads (build/guest/blkbench.elf): kvmini beside QEMU.

Both VMMs boot the same guest on the same raw image (random bytes, kept in
the host page cache) in the same run; runs are interleaved (kvmini, QEMU,
kvmini, ...), each run starting with the next side (QEMU, kvmini, ...).
One VMM process per point (mode, request size, queue depth), so each
process's CPU time (user + system of all its threads, from wait4's rusage)
belongs to one point. CPU time per request subtracts a boot-only baseline
(a run of one 4 KiB request) and divides by the point's requests.

Prints, per point, the median MB/s and IOPS of each VMM, the ratio
kvmini/QEMU, and each VMM's host CPU time per request. With mode=poll the
guest's vCPU spins while it waits, so its thread is busy for the whole run
and CPU per request is about wall time per request; mode=irq halts it.

QEMU: microvm with pcie=on (no firmware: ~0.1 s to boot), virtio-blk-pci
with disable-legacy=on, in an iothread (kvmini runs each disk on one) with
QEMU's default aio=threads and cache=writeback; BLK_QEMU_IOTHREAD=0 runs it
in QEMU's main loop, BLK_QEMU_AIO=io_uring|native changes the aio backend.

BLK_TRACE=1 prints each run's result on stderr as it comes.

Usage: blk.py [--runs N] [--modes poll,irq] [--sizes 4,64,1024]
              [--depths 1,16] [--image-mb 256] [--mb 256] [--reqs 16384]
"""
import argparse
import math
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "system"))
from blkutil import Disk, guest_elf, parse_bench, qemu_cmd, qemu_status, random_image  # noqa: E402

KVMINI = os.environ.get("KVMINI_BIN") or os.path.join(ROOT, "build", "kvmini")
TIMEOUT = 600


def run_reaped(cmd, want):
    """Run CMD (stdin /dev/null, output to temporary files) and reap it with
    wait4 for its rusage. Returns (stdout, CPU seconds of the child and its
    reaped descendants, wall s, CPU seconds of a vhost-user daemon among
    them or None): vhost_wrap.py reports its daemon's on stderr."""
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = os.posix_spawnp(cmd[0], cmd, os.environ,
                              file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
                                            (os.POSIX_SPAWN_DUP2, err.fileno(), 2)])
        _, status, ru = os.wait4(pid, 0)
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != want:
        sys.exit(f"{cmd[0]} exited {code}, expected {want}:\n{text[-2000:]}{etext[-2000:]}")
    m = re.search(r"^vhost_wrap: daemon_cpu_s=([\d.]+)$", etext, re.M)
    return text, ru.ru_utime + ru.ru_stime, wall, float(m.group(1)) if m else None


def kvmini_cmd(append, image):
    return [KVMINI, "run", "--kernel", str(guest_elf("blkbench")), "--memory", "128M",
            "--timeout", str(TIMEOUT), "--cmdline", append, "--disk", f"path={image}"]


def qemu_blk_cmd(append, image):
    cmd = qemu_cmd("blkbench", append, [Disk(str(image))], "microvm")
    aio = os.environ.get("BLK_QEMU_AIO")
    iothread = os.environ.get("BLK_QEMU_IOTHREAD", "1") != "0"
    for i, a in enumerate(cmd):
        if a.startswith("file=") and aio:
            cmd[i] = a + f",aio={aio}" + (",cache.direct=on" if aio == "native" else "")
        if a.startswith("virtio-blk-pci") and iothread:
            cmd[i] = a + ",iothread=io0"
    if iothread:
        cmd[1:1] = ["-object", "iothread,id=io0"]
    return cmd


def has_option(option):
    """Does kvmini --help list @option?"""
    import subprocess
    p = subprocess.run([KVMINI, "--help"], capture_output=True, text=True, timeout=10)
    return option in p.stdout + p.stderr


def main(guest="blkbench", kvmini_cmd=kvmini_cmd, qemu_cmd=qemu_blk_cmd,
         title="virtio-blk sequential reads", qemu_dev="virtio-blk-pci", kvmini_option=None,
         sides=None, ratio=("kvmini", "qemu")):
    """The benchmark for @guest (blkbench's output format); scsi.py runs it
    for scsibench with its own command lines. @kvmini_option: an option
    kvmini must list in --help, or its column is skipped. @sides: other
    columns than kvmini and QEMU, [(name, make_cmd)] (names starting with
    "qemu" exit with QEMU's status); @ratio: the two columns compared."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BLK_RUNS", 3)))
    ap.add_argument("--modes", default=os.environ.get("BLK_MODES", "poll,irq"))
    ap.add_argument("--sizes", default="4,64,1024")
    ap.add_argument("--depths", default="1,16")
    ap.add_argument("--image-mb", type=int, default=256)
    ap.add_argument("--mb", type=int, default=256)
    ap.add_argument("--reqs", type=int, default=16384)
    a = ap.parse_args()

    if not os.path.exists(guest_elf(guest)):
        sys.exit(f"{guest_elf(guest)} missing: run make guests")
    sides_given, sides = sides, []
    if os.access(KVMINI, os.X_OK) and kvmini_option and not has_option(kvmini_option):
        print(f"({KVMINI} has no {kvmini_option} option: kvmini column skipped)")
    elif os.access(KVMINI, os.X_OK):
        sides.append(("kvmini", kvmini_cmd, 0))
    else:
        print(f"(no {KVMINI}: kvmini column skipped)")
    if shutil.which("qemu-system-x86_64"):
        sides.append(("qemu", qemu_cmd, qemu_status(0)))
    else:
        print("(qemu-system-x86_64 not installed: QEMU column skipped)")
    if sides_given:
        sides = [(n, mk, qemu_status(0) if n.startswith("qemu") else 0)
                 for n, mk in sides_given
                 if n.startswith("qemu") or any(s[0] == "kvmini" for s in sides)]
    if not sides:
        sys.exit("nothing to run")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("/dev/kvm is not accessible")

    modes = a.modes.split(",")
    sizes = [int(s) for s in a.sizes.split(",")]
    depths = [int(d) for d in a.depths.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-blk-") as tmp:
        image = os.path.join(tmp, "disk.img")
        random_image(image, a.image_mb << 20)
        with open(image, "rb") as f:  # into the page cache: both VMMs read it from there
            while f.read(1 << 20):
                pass
        base = {s: [] for s, _, _ in sides}
        # (side, mode, bs, qd) -> list of (mbps, iops, cpu_s, reqs, daemon cpu_s or None)
        res = {}
        for run in range(a.runs):
            # Each run starts with another side: a side that always ran
            # right after the same other one would carry that position's
            # bias (what the one before left in the caches) in every run.
            k = run % len(sides)
            order = sides[k:] + sides[:k]
            for side, mk, want in order:
                _, cpu, _, dcpu = run_reaped(mk("sizes=4 depths=1 reqs=1", image), want)
                base[side].append((cpu, dcpu))
            for mode in modes:
                for kb in sizes:
                    for qd in depths:
                        arg = (f"mode={mode} sizes={kb} depths={qd} mb={a.mb} "
                               f"reqs={a.reqs}")
                        for side, mk, want in order:
                            out, cpu, _, dcpu = run_reaped(mk(arg, image), want)
                            pts = parse_bench(out, guest)
                            p = pts.get((mode, kb * 1024, qd))
                            if not p:
                                sys.exit(f"{side}: no result line for {arg}:\n{out}")
                            res.setdefault((side, mode, kb, qd), []).append(
                                (p["mbps"], p["iops"], cpu, p["reqs"], dcpu))
                            if os.environ.get("BLK_TRACE"):
                                print(f"run {run} {side} {mode} {kb}K qd{qd}: "
                                      f"{p['mbps']} MB/s, {cpu:.2f} s CPU",
                                      file=sys.stderr, flush=True)

    names = [s for s, _, _ in sides]
    b = {s: statistics.median(x[0] for x in base[s]) for s in names}
    # Sides whose VMM ran beside a vhost-user daemon: their CPU time splits
    # into the VMM's own and the daemon's (each with its boot-only baseline).
    split = [s for s in names if all(x[1] is not None for x in base[s])]
    bd = {s: statistics.median(x[1] for x in base[s]) for s in split}
    print(f"{title}, {a.image_mb} MiB image in the host page cache, "
          f"median of {a.runs} runs; QEMU: microvm pcie=on, {qemu_dev}"
          f"{', iothread' if os.environ.get('BLK_QEMU_IOTHREAD', '1') != '0' else ''}"
          f"{', aio=' + os.environ['BLK_QEMU_AIO'] if os.environ.get('BLK_QEMU_AIO') else ''}")
    print("CPU us/req: host CPU time of the whole VMM process (all threads) per request, "
          "boot-only run subtracted (" +
          ", ".join(f"{s} {b[s] * 1000:.0f} ms" for s in names) + ")")
    if split:
        print("VMM us/req, qsd us/req: that CPU time split into the VMM's own and its "
              "qemu-storage-daemon's (" + ", ".join(split) + ")")
    show_ratio = all(r in names for r in ratio)
    if show_ratio:
        print("ratio: median MB/s of " + ratio[0] + " over " + ratio[1] + "'s; "
              "runs: the lowest and highest of the runs' own ratios (each run's two "
              "VMMs ran one after the other)")
    hdr = f"{'mode':5} {'bs':>6} {'qd':>3}"
    for s in names:
        hdr += f" {s + ' MB/s':>12} {s + ' IOPS':>12}"
    if show_ratio:
        hdr += f" {'ratio':>6} {'runs':>10}"
    for s in names:
        hdr += f" {s + ' CPU us/req':>17}"
    for s in split:
        hdr += f" {s + ' VMM us/req':>17} {s + ' qsd us/req':>17}"
    print(hdr)
    for mode in modes:
        for kb in sizes:
            for qd in depths:
                row = f"{mode:5} {str(kb) + 'K':>6} {qd:>3}"
                med = {}
                for s in names:
                    r = res[(s, mode, kb, qd)]
                    mbps = statistics.median(x[0] for x in r)
                    iops = int(statistics.median(x[1] for x in r))
                    cpu = statistics.median(max(0.0, x[2] - b[s]) / x[3] for x in r)
                    med[s] = (mbps, iops, cpu)
                    row += f" {mbps:12.2f} {iops:12d}"
                if show_ratio:
                    q = med[ratio[1]][0]
                    row += f" {med[ratio[0]][0] / q:6.2f}" if q else f" {'-':>6}"
                    pairs = run_ratios(res, ratio, (mode, kb, qd))
                    row += (f" {min(pairs):4.2f}-{max(pairs):4.2f}" if pairs
                            else f" {'-':>10}")
                for s in names:
                    row += f" {med[s][2] * 1e6:17.1f}"
                for s in split:
                    r = res[(s, mode, kb, qd)]
                    own = statistics.median(
                        max(0.0, (x[2] - x[4]) - (b[s] - bd[s])) / x[3] for x in r)
                    qsd = statistics.median(max(0.0, x[4] - bd[s]) / x[3] for x in r)
                    row += f" {own * 1e6:17.1f} {qsd * 1e6:17.1f}"
                print(row)
    if show_ratio:
        print_overall(res, ratio)


def run_ratios(res, ratio, point):
    """Each run's own MB/s ratio of @ratio's two sides at @point (mode, kb,
    qd): the runs' results are in run order on both sides."""
    return [x[0] / y[0] for x, y in zip(res[(ratio[0],) + point], res[(ratio[1],) + point])
            if y[0]]


def print_overall(res, ratio):
    """One line over every point and run: the geometric mean of the runs'
    own MB/s ratios and its 95% confidence interval (normal approximation
    on the logs). On a noisy host no single point may tell a gap from
    noise; all of them together can, if there is one."""
    logs = []
    for (side, *point) in res:
        if side == ratio[0] and (ratio[1], *point) in res:
            logs += [math.log(r) for r in run_ratios(res, ratio, tuple(point)) if r > 0]
    if len(logs) < 2:
        return
    m = statistics.mean(logs)
    h = 1.96 * statistics.stdev(logs) / math.sqrt(len(logs))
    print(f"all points: {ratio[0]}/{ratio[1]} MB/s, geometric mean of the {len(logs)} runs' "
          f"ratios {math.exp(m):.3f} (95% CI {math.exp(m - h):.3f}-{math.exp(m + h):.3f})")


if __name__ == "__main__":
    main()
