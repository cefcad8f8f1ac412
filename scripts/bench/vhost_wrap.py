#!/usr/bin/env python3
"""vhost_wrap.py IMAGE -- CMD...: run CMD (a VMM) against a fresh
qemu-storage-daemon exporting IMAGE as vhost-user-blk; @SOCK@ in CMD
becomes the daemon's socket. Waits for both, so that the caller's rusage
of this process covers the VMM and the daemon. Exits with CMD's status.
The daemon's own CPU time (user + system, from wait4) goes to stderr as
its last line, `vhost_wrap: daemon_cpu_s=SECONDS`, so that a benchmark can
tell the VMM's share from the daemon's.
"""
import os
import subprocess
import sys
import tempfile
import time


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit("usage: vhost_wrap.py IMAGE -- CMD...")
    image, cmd = sys.argv[1], sys.argv[3:]
    with tempfile.TemporaryDirectory(prefix="vhost-wrap-") as tmp:
        sock = os.path.join(tmp, "vu.sock")
        qsd = subprocess.Popen(
            ["qemu-storage-daemon", "--blockdev", f"driver=file,node-name=f,filename={image}",
             "--export", "type=vhost-user-blk,id=e,node-name=f,addr.type=unix,"
             f"addr.path={sock},writable=off,num-queues=1"],
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if qsd.poll() is not None or time.monotonic() > deadline:
                qsd.kill()
                sys.exit("qemu-storage-daemon did not start")
            time.sleep(0.01)
        try:
            status = subprocess.call([a.replace("@SOCK@", sock) for a in cmd],
                                     stdin=subprocess.DEVNULL)
        finally:
            qsd.terminate()
            _, _, ru = os.wait4(qsd.pid, 0)
            qsd.returncode = 0  # reaped here: Popen must not wait for it again
    print(f"vhost_wrap: daemon_cpu_s={ru.ru_utime + ru.ru_stime:.6f}", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
