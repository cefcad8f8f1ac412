# SPDX-License-Identifier: MIT
"""Debian's stock kernel as a kvmini guest (issue: Linux guests).

Each test builds an initramfs (tests/system/linux.py: busybox-static and the
kernel's own modules) whose /init does the test's work and then powers off,
reboots or panics; the test checks what Linux saw (its console) and how
kvmini ended. Boots are slow in the nested test VM (about 10-20 s each), so
one boot checks several things where it can.
"""
import base64
import hashlib
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import termios
import time

import pytest

from conftest import BUILD, EXIT_CRASH, KVMINI, needs_kvm
from linux import CMDLINE, initramfs, kernel
from qmpclient import QMP

pytestmark = needs_kvm

TIMEOUT = 240  # kvmini's --timeout: far above a boot, below the test's patience
# A stock Linux guest in the nested test VM (TCG, then KVM inside it) now
# and then stops making progress after "Switched to clocksource kvm-clock"
# and never prints again; QEMU microvm does the same there, on the same
# kernel (3 of 3 boots under load, measured 2026-12-06), so it is the
# emulated machine, not kvmini. A boot that ends on kvmini's own --timeout
# is tried once more; a second stall fails the test.
BOOT_TRIES = 2
BOOT_TIMEOUT = 150
MEM = "256M"
TOOLS = os.path.join(BUILD, "guest", "linux")


def tool(name):
    path = os.path.join(TOOLS, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} was not built (run make)")
    return open(path, "rb").read()


def linux_cmd(rd, timeout, kind="pvh", cmdline=CMDLINE, cpus=1, memory=MEM, args=()):
    """kvmini's command line for Linux with initramfs @rd."""
    return [KVMINI, "run", "--kernel", kernel(kind), "--initrd", rd, "--cmdline", cmdline,
            "--memory", memory, "--cpus", str(cpus), "--timeout", str(timeout), *args]


def boot(tmp_path, script, kind="pvh", args=(), modules=(), files=None, cmdline=CMDLINE,
         stdin=subprocess.DEVNULL, input=None, cpus=1, memory=MEM):
    """Boot Linux with an initramfs running @script; CompletedProcess (text)."""
    rd = initramfs(tmp_path, script, modules, files)
    cmd = linux_cmd(rd, BOOT_TIMEOUT, kind, cmdline, cpus, memory, args)
    if input is not None:
        stdin = None
    for attempt in range(BOOT_TRIES):
        p = subprocess.run(cmd, stdin=stdin, input=input, capture_output=True, text=True,
                           errors="replace", timeout=BOOT_TIMEOUT + 60)
        if p.returncode != 124:
            break
        print(f"Linux boot stalled (attempt {attempt + 1}): {p.stdout[-300:]!r}")
    return p


def section(out, name):
    """The lines between NAME-BEGIN and NAME-END in the guest's output."""
    m = re.search(rf"^{name}-BEGIN\r?\n(.*?)^{name}-END", out, re.S | re.M)
    assert m, (name, out[-3000:])
    return m.group(1)


# /init of the platform test: what Linux found, the ACPI tables as bytes.
PLATFORM = r"""
echo "CPUS $(grep -c ^processor /proc/cpuinfo)"
echo "CLOCKSOURCE $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
grep -q kvm-clock /proc/cpuinfo /sys/devices/system/clocksource/clocksource0/available_clocksource && echo KVMCLOCK-AVAILABLE
echo DMESG-BEGIN; dmesg; echo DMESG-END
for t in DSDT FACP APIC; do
	echo "ACPI-$t-BEGIN"; base64 /sys/firmware/acpi/tables/$t; echo "ACPI-$t-END"
done
echo PLATFORM-BEGIN
ls /sys/bus/platform/drivers/pvpanic-mmio/ 2>&1
cat /proc/ioports
echo PLATFORM-END
poweroff -f
"""


@pytest.fixture(scope="module")
def platform_boot(tmp_path_factory):
    """One boot of the PVH vmlinux checking the platform (shared by tests)."""
    return boot(tmp_path_factory.mktemp("platform"), PLATFORM, modules=["pvpanic_mmio"])


def test_poweroff_ends_kvmini_with_0(platform_boot):
    p = platform_boot
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "PLATFORM-END" in p.stdout
    assert "reboot: Power down" in p.stdout


def test_clock_is_kvm_clock(platform_boot):
    out = platform_boot.stdout
    assert "CLOCKSOURCE kvm-clock" in out, out[-3000:]


def test_no_i8042_no_rtc_probing(platform_boot):
    """The FADT says there is no i8042 and no CMOS RTC: Linux does not probe them."""
    dmesg = section(platform_boot.stdout, "DMESG")
    assert "Can't read CTR" not in dmesg
    assert "i8042: probe" not in dmesg
    assert "rtc_cmos" not in dmesg or "broken or not accessible" not in dmesg
    assert "ACPI: Interpreter disabled" not in dmesg
    assert "valid RSDP was not found" not in dmesg


def test_acpi_devices_found(platform_boot):
    """Linux's ACPI enumerated the PCI host bridge, COM1 on IRQ 4 and pvpanic."""
    out = platform_boot.stdout
    dmesg = section(out, "DMESG")
    assert re.search(r"ACPI: PCI Root Bridge \[PCI0\] \(domain 0000 \[bus 00-ff\]\)", dmesg), dmesg
    assert re.search(r"00:0\d: ttyS0 at I/O 0x3f8 \(irq = 4, base_baud = \d+\) is a 16550A",
                     dmesg), dmesg
    plat = section(out, "PLATFORM")
    assert "QEMU0001:00" in plat, plat
    assert "0600-060b : ACPI PM1a_EVT_BLK" in plat or "ACPI PM1a_EVT_BLK" in plat, plat


def iasl_decode(tmp_path, name, data):
    """Disassemble @data with Debian's iasl; the .dsl text."""
    path = tmp_path / f"{name.lower()}.dat"
    path.write_bytes(data)
    p = subprocess.run(["iasl", "-d", str(path)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    dsl = (tmp_path / f"{name.lower()}.dsl").read_text()
    assert "Error" not in p.stdout + p.stderr, p.stdout + p.stderr
    return dsl


def test_acpi_tables_decode_with_iasl(platform_boot, tmp_path):
    """The tables Linux read from kvmini decode with ACPICA's own disassembler."""
    out = platform_boot.stdout
    tables = {t: base64.b64decode(section(out, f"ACPI-{t}")) for t in ("DSDT", "FACP", "APIC")}
    dsdt = iasl_decode(tmp_path, "DSDT", tables["DSDT"])
    assert re.search(r'Device \(PCI0\)', dsdt), dsdt
    assert 'EisaId ("PNP0A03")' in dsdt, dsdt
    assert re.search(r'Device \(COM1\)', dsdt) and 'EisaId ("PNP0501")' in dsdt, dsdt
    assert re.search(r"IRQNoFlags \(\)\s*\{4\}", dsdt), dsdt
    assert '"QEMU0001"' in dsdt and "0x0505" in dsdt, dsdt
    assert re.search(r'Device \(FWCF\)', dsdt) and '"QEMU0002"' in dsdt, dsdt
    assert "0x0510" in dsdt and "Name (_STA, 0x0B)" in dsdt, dsdt
    assert "_S5" in dsdt, dsdt
    # The 32-bit window kvmini assigns BARs from.
    assert "0xC0000000" in dsdt and "0xFEBFFFFF" in dsdt, dsdt
    fadt = iasl_decode(tmp_path, "FACP", tables["FACP"])
    assert re.search(r"PM1A Control Block Address : 0+604", fadt), fadt
    assert re.search(r"PM Timer Block Address : 0+608", fadt), fadt
    assert re.search(r"8042 Present on ports 60/64 \(V2\) : 0", fadt), fadt
    assert re.search(r"CMOS RTC Not Present \(V5\) : 1", fadt), fadt
    assert re.search(r"Reset Register Supported \(V2\) : 1", fadt), fadt
    madt = iasl_decode(tmp_path, "APIC", tables["APIC"])
    assert madt.count("Subtable Type : 00 [Processor Local APIC]") == 1, madt
    assert "Subtable Type : 01 [I/O APIC]" in madt, madt


def test_reboot_ends_kvmini_with_0(tmp_path):
    p = boot(tmp_path, "echo REBOOTING; reboot -f\n")
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "REBOOTING" in p.stdout


def test_panic_is_a_crash(tmp_path):
    """A kernel panic reaches kvmini through pvpanic: 126 and a report, at once."""
    p = boot(tmp_path, "echo PANICKING; echo c > /proc/sysrq-trigger\n",
             modules=["pvpanic_mmio"], cmdline=CMDLINE.replace("panic=-1", "panic=0"))
    assert p.returncode == EXIT_CRASH, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "Kernel panic" in p.stdout, p.stdout[-3000:]
    assert "guest kernel panicked (pvpanic)" in p.stderr, p.stderr
    assert "timeout" not in p.stderr


def test_console_input_from_a_pipe(tmp_path):
    """COM1 input is interrupt-driven: a shell in the guest reads kvmini's stdin."""
    script = "echo READY; read -r line </dev/console; echo \"GOT:$line\"; poweroff -f\n"
    cmd = linux_cmd(initramfs(tmp_path, script), TIMEOUT)
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out = b""
    deadline = time.time() + TIMEOUT
    while b"READY" not in out and time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 5)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    p.stdin.write(b"hello-from-the-host\n")
    p.stdin.flush()
    rest, err = p.communicate(timeout=TIMEOUT)
    out += rest
    assert p.returncode == 0, (p.returncode, out[-2000:], err)
    assert b"GOT:hello-from-the-host" in out, out[-2000:]


def test_console_input_from_a_terminal(tmp_path):
    """kvmini's stdin a terminal: raw mode for the guest (Enter is "\\r", the
    guest's tty turns it into a newline), and the terminal's settings come
    back as they were when kvmini ends."""
    script = "echo READY; read -r line </dev/console; echo \"GOT:$line\"; poweroff -f\n"
    cmd = linux_cmd(initramfs(tmp_path, script), TIMEOUT)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    try:
        p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
        out = b""
        typed = False
        deadline = time.time() + TIMEOUT + 30
        while p.poll() is None and time.time() < deadline:
            r, _, _ = select.select([master], [], [], 1)
            if r:
                out += os.read(master, 4096)
            if not typed and b"READY" in out:
                os.write(master, b"typed-at-a-terminal\r")
                typed = True
        while select.select([master], [], [], 0.2)[0]:
            out += os.read(master, 4096)
        if p.poll() is None:
            p.kill()
        err = p.communicate()[1]
        after = termios.tcgetattr(slave)
    finally:
        os.close(master)
        os.close(slave)
    assert p.returncode == 0, (p.returncode, out[-2000:], err)
    assert b"GOT:typed-at-a-terminal" in out, out[-2000:]
    assert after == before, "kvmini left the terminal's settings changed"


def test_smp_cpus_online(tmp_path):
    """--cpus 2 gives Linux two online CPUs (the MADT lists both).

    `nopv`: inside the nested test VM (single-threaded TCG), an SMP Linux
    with KVM's paravirtual features takes minutes to boot (QEMU microvm too,
    measured); without them it boots in seconds. The CPUs come from the
    MADT either way."""
    p = boot(tmp_path, PLATFORM.replace("poweroff -f", "echo ONLINE $(cat /sys/devices/system/cpu/online); poweroff -f"),
             cpus=2, cmdline=CMDLINE + " nopv")
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "CPUS 2" in p.stdout, p.stdout[-3000:]
    assert "ONLINE 0-1" in p.stdout, p.stdout[-3000:]


# ---------------------------------------------------------------- disks

DISK_MODULES = ["virtio_pci", "virtio_blk", "virtio_scsi", "sd_mod", "ext4", "crc32c_generic"]

# The initramfs of the disk tests: drivers, then the ext4 root on /dev/vda.
TO_ROOT = r"""
mkdir -p /newroot
mount -t ext4 /dev/vda /newroot || { echo "ROOT-MOUNT-FAILED"; ls /dev; poweroff -f; }
exec switch_root /newroot /sbin/init
"""

# The root file system's /sbin/init prelude.
ROOT_HEAD = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
echo "ROOT $(awk '$2 == "/" {print $1, $3}' /proc/mounts)"
"""

# Unmount cleanly (fsck must find nothing) and power off.
ROOT_END = r"""
sync
mount -o remount,ro /
poweroff -f
"""


def rootfs(tmp_path, script, size_mib=32, tools=()):
    """An ext4 image (mkfs.ext4 -d) whose /sbin/init runs @script."""
    from linux import BUSYBOX
    tree = tmp_path / "rootfs"
    for d in ("bin", "sbin", "dev", "proc", "sys", "tmp"):
        (tree / d).mkdir(parents=True, exist_ok=True)
    (tree / "bin" / "busybox").write_bytes(open(BUSYBOX, "rb").read())
    (tree / "bin" / "busybox").chmod(0o755)
    (tree / "sbin" / "init").write_text(ROOT_HEAD + script + ROOT_END)
    (tree / "sbin" / "init").chmod(0o755)
    for t in tools:
        (tree / "bin" / t).write_bytes(tool(t))
        (tree / "bin" / t).chmod(0o755)
    img = tmp_path / "root.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(tree), str(img), f"{size_mib}M"],
                   check=True, capture_output=True)
    return img


def fsck_clean(img):
    p = subprocess.run(["fsck.ext4", "-fn", str(img)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def raw(tmp_path, name, size):
    path = tmp_path / name
    with open(path, "wb") as f:
        f.truncate(size)
    return path


DEVICES = r"""
echo "GUEST-FILE" > /written-by-guest
echo DEVICES-BEGIN
for b in vda vdb sda sdb; do echo "BLOCK $b $(cat /sys/block/$b/size 2>&1)"; done
for d in /sys/bus/pci/devices/*; do
	echo "PCI $(basename $d) $(cat $d/vendor):$(cat $d/device) $(head -n 3 $d/resource | tr '\n' ' ')"
done
echo "SCSI-MODEL $(cat /sys/block/sda/device/vendor) $(cat /sys/block/sda/device/model)"
echo "VDB-DATA $(head -c 16 /dev/vdb)"
echo DEVICES-END
"""


def test_linux_drivers_on_every_device(tmp_path):
    """Linux's own drivers: the ext4 root on virtio-blk /dev/vda, a second
    virtio-blk disk, two virtio-scsi LUNs as /dev/sda and /dev/sdb, and an
    ivshmem device with its BARs in sysfs, all at once."""
    root = rootfs(tmp_path, DEVICES)
    vdb = raw(tmp_path, "vdb.img", 8 << 20)
    with open(vdb, "r+b") as f:
        f.write(b"vdb-data-marker!")
    sda = raw(tmp_path, "sda.img", 16 << 20)
    sdb = raw(tmp_path, "sdb.img", 32 << 20)
    shm = raw(tmp_path, "ivshmem.bin", 1 << 20)
    p = boot(tmp_path, TO_ROOT, modules=DISK_MODULES,
             args=["--disk", f"path={root}", "--disk", f"path={vdb}",
                   "--scsi-disk", f"path={sda},lun=0", "--scsi-disk", f"path={sdb},lun=1",
                   "--ivshmem", f"mem={shm},size=1M"])
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "ROOT /dev/vda ext4" in p.stdout, p.stdout[-3000:]
    dev = section(p.stdout, "DEVICES")
    assert "BLOCK vda 65536" in dev and "BLOCK vdb 16384" in dev, dev
    assert "BLOCK sda 32768" in dev and "BLOCK sdb 65536" in dev, dev
    assert "VDB-DATA vdb-data-marker!" in dev, dev
    # ivshmem (1af4:1110): BAR 2 is the 1 MiB shared memory.
    m = re.search(r"PCI \S+ 0x1af4:0x1110 (\S+ \S+ \S+) (\S+ \S+ \S+) (0x\w+) (0x\w+) ", dev)
    assert m, dev
    assert int(m.group(4), 16) - int(m.group(3), 16) + 1 == 1 << 20, dev
    assert dev.count("0x1af4:0x1042") == 2, dev  # two virtio-blk
    assert dev.count("0x1af4:0x1048") == 1, dev  # virtio-scsi
    fsck_clean(root)
    p2 = subprocess.run(["debugfs", "-R", "cat /written-by-guest", str(root)],
                        capture_output=True, text=True)
    assert "GUEST-FILE" in p2.stdout, p2.stdout + p2.stderr


VHOST_WORK = r"""
dd if=/dev/urandom of=/data.bin bs=4k count=256 2>/dev/null
sync
echo "VHOST-SUM $(md5sum /data.bin | cut -d' ' -f1)"
echo "VHOST-QUEUES $(ls /sys/block/vda/mq | wc -l)"
"""


@pytest.mark.skipif(shutil.which("qemu-storage-daemon") is None,
                    reason="qemu-storage-daemon missing (Debian qemu-system-common)")
def test_linux_root_over_vhost_user_blk(tmp_path):
    """Linux's virtio-blk driver over vhost-user-blk: the ext4 root is served
    by qemu-storage-daemon (two queues), the guest writes 1 MiB through it,
    and the image holds it, fsck-clean, after poweroff."""
    from test_vhost_user_blk import Qsd

    root = rootfs(tmp_path, VHOST_WORK, size_mib=32)
    qsd = Qsd(root, tmp_path / "vu.sock", num_queues=2)
    try:
        p = boot(tmp_path, TO_ROOT, modules=DISK_MODULES, cpus=2,
                 cmdline=CMDLINE + " nopv",
                 args=["--vhost-user-blk", f"socket={qsd.sock},num-queues=2"])
    finally:
        qsd.stop()
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr)
    assert "ROOT /dev/vda ext4" in p.stdout, p.stdout[-3000:]
    assert "VHOST-QUEUES 2" in p.stdout, p.stdout[-3000:]
    m = re.search(r"VHOST-SUM ([0-9a-f]{32})", p.stdout)
    assert m, p.stdout[-3000:]
    fsck_clean(root)
    data = subprocess.run(["debugfs", "-R", "cat /data.bin", str(root)], capture_output=True)
    assert len(data.stdout) == 1 << 20, data.stderr
    assert hashlib.md5(data.stdout).hexdigest() == m.group(1)


# ---------------------------------------------------------------- snapshots

SNAP_WORK = r"""
echo SNAP-READY
(i=0; while :; do echo "$i" >> /progress; i=$((i + 1)); sync; sleep 0.2; done) &
c=$!
blkpattern /dev/vdb lnx-blk 1024 0 8 & a=$!
blkpattern /dev/sda lnx-scsi 1024 0 8 & b=$!
read -r line
kill -USR1 $a $b
wait $a; ra=$?
wait $b; rb=$?
kill $c; wait $c
echo "SNAP-RESULT $ra $rb $(wc -l < /progress)"
"""


def start_linux(tmp_path, args, ready, count=1):
    """A LinuxVM that got as far as @ready (@count times); started once more
    if the first boot stalls (BOOT_TRIES)."""
    for attempt in range(BOOT_TRIES):
        vm = LinuxVM(tmp_path, args)
        try:
            vm.wait_output(ready, count=count, timeout=BOOT_TIMEOUT)
            return vm
        except AssertionError as e:
            vm.p.kill()
            vm.p.communicate()
            vm.q.close()
            if attempt + 1 == BOOT_TRIES:
                raise
            print(f"Linux boot stalled (attempt {attempt + 1}): {str(e)[-300:]}")


class LinuxVM:
    """kvmini running (or restoring) a Linux guest, with QMP and its console."""

    def __init__(self, tmp_path, args):
        self.sock = str(tmp_path / "qmp.sock")
        self.p = subprocess.Popen([KVMINI, "run", *args, "--qmp", self.sock,
                                   "--timeout", str(TIMEOUT)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.q = QMP(self.sock, timeout=60)
        self.out = b""

    def wait_output(self, text, count=1, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while self.out.count(text.encode()) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"no {text!r} in {self.out[-3000:]!r}"
            if select.select([self.p.stdout], [], [], left)[0]:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                assert chunk, f"kvmini ended before {text!r}: {self.out[-3000:]!r}"
                self.out += chunk

    def finish(self, timeout=TIMEOUT):
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
            self.q.close()
            pytest.fail(f"kvmini did not end: {(self.out + out)[-4000:]!r} {err!r}")
        self.q.close()
        return (self.out + out).decode(errors="replace"), self.p.returncode, err.decode()


def blk_in_flight(snap, index):
    """Requests virtio-blk section dev.<index> held when @snap was taken."""
    from test_snap_blk import blk_section
    data = open(snap, "rb").read()
    off, _, _ = blk_section(data, index)
    return struct.unpack_from("<I", data, off + 4)[0]


def test_snapshots_of_linux_doing_direct_io(tmp_path):
    """The founding promise under Linux: 20 snapshot/restore cycles while
    Linux writes a known pattern with O_DIRECT (8 writers each) to a
    virtio-blk disk and a virtio-scsi LUN, and its ext4 root is being
    written; then it finishes: every block on both images holds exactly the
    generation Linux last wrote, and fsck finds the root clean."""
    from blkutil import check_image_pattern
    root = rootfs(tmp_path, SNAP_WORK, tools=["blkpattern"])
    vdb = raw(tmp_path, "vdb.img", 4 << 20)
    sda = raw(tmp_path, "sda.img", 4 << 20)
    snap = str(tmp_path / "linux.snap")
    # delay=: each pattern write waits 10 ms in the host, so a migrate
    # nearly always catches some in flight (without it, CI's host once
    # needed many tries per cycle).
    devs = ["--memory", MEM, "--disk", f"path={root}", "--disk", f"path={vdb},delay=10",
            "--scsi-disk", f"path={sda},delay=10"]
    rd = initramfs(tmp_path, TO_ROOT, DISK_MODULES)
    vm = start_linux(tmp_path, ["--kernel", kernel("pvh"), "--initrd", rd, "--cmdline",
                                CMDLINE, *devs], "blkpattern: thread 0 at write", count=2)
    out = ""
    caught = 0
    for i in range(int(os.environ.get("LINUX_SNAP_CYCLES", "20"))):
        time.sleep(0.3)
        # Until one snapshot has caught a request in flight, retry (cont)
        # when the disk happened to be idle, as test_snap_blk does. The
        # last snapshot taken is the one restored: the VM must not run on
        # after it (its writes would reach the images, not the snapshot).
        tries = 1 if caught else 20
        for t in range(tries):
            r = vm.q.cmd("migrate", {"uri": f"file:{snap}"})
            assert r == {"return": {}}, (i, r)
            if blk_in_flight(snap, 5) > 0:
                caught += 1
                break
            if t + 1 < tries:
                assert vm.q.cmd("cont") == {"return": {}}
                time.sleep(0.05)
        assert vm.q.cmd("quit") == {"return": {}}
        o, code, err = vm.finish(60)
        out += o
        assert code == 0, (i, code, err, o[-2000:])
        vm = LinuxVM(tmp_path, ["--incoming", f"file:{snap}", *devs])
    vm.p.stdin.write(b"finish\n")
    vm.p.stdin.flush()
    o, code, err = vm.finish()
    out += o
    assert code == 0, (code, err, out[-3000:])
    m = re.search(r"SNAP-RESULT 0 0 (\d+)", out)
    assert m, out[-3000:]
    results = re.findall(r"blkpattern: verified (\d+) blocks, gensum 0x([0-9a-f]+)", out)
    assert len(results) == 2, out[-3000:]
    assert "differs" not in out, out[-3000:]
    assert caught > 0, "no snapshot caught a virtio-blk request in flight"
    # The two result lines come in either order: each image must match one.
    for img, magic in ((vdb, b"lnx-blk\0"), (sda, b"lnx-scsi")):
        assert any(_image_matches(check_image_pattern, img, int(n), int(g, 16), magic)
                   for n, g in results), (img, results)
    fsck_clean(root)


def _image_matches(check, img, nblocks, gensum, magic):
    try:
        check(img, nblocks, gensum, magic)
        return True
    except AssertionError:
        return False


ENOSPC_WORK = r"""
blkpattern /dev/vdb lnx-blk 1024 3000 8
echo "ENOSPC-RESULT $?"
"""


def test_werror_stop_on_a_real_enospc(tmp_path, small_tmpfs):
    """werror=stop under Linux: the image's file system fills up, the VM
    pauses with BLOCK_IO_ERROR; space is freed, cont retries the held
    writes and Linux never sees an error: every block is right."""
    from blkutil import check_image_pattern
    mnt = small_tmpfs
    root = rootfs(tmp_path, ENOSPC_WORK, tools=["blkpattern"])
    vdb = raw(mnt, "vdb.img", 4 << 20)
    filler = mnt / "filler"
    filler.write_bytes(b"\xaa" * (14 << 20))
    rd = initramfs(tmp_path, TO_ROOT, DISK_MODULES)
    vm = LinuxVM(tmp_path, ["--kernel", kernel("pvh"), "--initrd", rd, "--cmdline",
                            CMDLINE, "--memory", MEM, "--disk", f"path={root}",
                            "--disk", f"path={vdb},werror=stop"])
    e = vm.q.wait_event("BLOCK_IO_ERROR", timeout=TIMEOUT)["data"]
    assert e["device"] == "virtio-blk1" and e["nospace"] and e["action"] == "stop", e
    vm.q.wait_event("STOP")
    assert vm.q.cmd("query-status")["return"]["status"] == "io-error"
    filler.unlink()
    assert vm.q.cmd("cont") == {"return": {}}
    out, code, err = vm.finish()
    assert code == 0, (code, err, out[-3000:])
    assert "ENOSPC-RESULT 0" in out, out[-3000:]
    m = re.search(r"blkpattern: verified (\d+) blocks, gensum 0x([0-9a-f]+)", out)
    assert m, out[-3000:]
    check_image_pattern(vdb, int(m.group(1)), int(m.group(2), 16), b"lnx-blk\0")
    fsck_clean(root)

