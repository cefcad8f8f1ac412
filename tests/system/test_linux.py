# SPDX-License-Identifier: MIT
"""Debian's stock kernel as a kvmini guest (issue: Linux guests).

Each test builds an initramfs (tests/system/linux.py: busybox-static and the
kernel's own modules) whose /init does the test's work and then powers off,
reboots or panics; the test checks what Linux saw (its console) and how
kvmini ended. Boots are slow in the nested test VM (about 10-20 s each), so
one boot checks several things where it can.
"""
import base64
import os
import re
import select
import subprocess
import time

import pytest

from conftest import BUILD, EXIT_CRASH, KVMINI, needs_kvm
from linux import CMDLINE, initramfs, kernel
from qmpclient import QMP

pytestmark = needs_kvm

TIMEOUT = 240  # kvmini's --timeout: far above a boot, below the test's patience
MEM = "256M"
TOOLS = os.path.join(BUILD, "guest", "linux")


def tool(name):
    path = os.path.join(TOOLS, name)
    if not os.path.exists(path):
        pytest.fail(f"{path} was not built (run make)")
    return open(path, "rb").read()


def boot(tmp_path, script, kind="pvh", args=(), modules=(), files=None, cmdline=CMDLINE,
         stdin=subprocess.DEVNULL, input=None, cpus=1, memory=MEM):
    """Boot Linux with an initramfs running @script; CompletedProcess (text)."""
    rd = initramfs(tmp_path, script, modules, files)
    cmd = [KVMINI, "run", "--kernel", kernel(kind), "--initrd", rd, "--cmdline", cmdline,
           "--memory", memory, "--cpus", str(cpus), "--timeout", str(TIMEOUT), *args]
    if input is not None:
        stdin = None
    return subprocess.run(cmd, stdin=stdin, input=input, capture_output=True, text=True,
                          errors="replace", timeout=TIMEOUT + 60)


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
    rd = initramfs(tmp_path, script)
    cmd = [KVMINI, "run", "--kernel", kernel("pvh"), "--initrd", rd, "--cmdline", CMDLINE,
           "--memory", MEM, "--timeout", str(TIMEOUT)]
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
