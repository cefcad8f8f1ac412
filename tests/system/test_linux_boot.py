"""Linux boots under kvmini both ways --kernel takes it: Debian's bzImage
(x86 boot protocol, 64-bit entry) and the PVH vmlinux inside it, each with a
busybox initramfs whose /init prints a marker and reboots."""
import struct

import pytest

import linux
from conftest import assert_one_line_error, needs_kvm, run_kvmini

# Nested in the test VM, on a loaded host, a boot has taken from 40 s to more
# than 150 s: the time limits only catch a guest that never gets there.
MARK = "KVMINI-LINUX-UP"
# Reaches the guest's /proc/cmdline only if the command line was handed over.
CMDLINE_TOKEN = "kvmini.test=cmdline-ok"


@needs_kvm
@pytest.mark.parametrize("kind", ["bzimage", "pvh"])
def test_linux_boots_and_resets(tmp_path, kind):
    # The ACPI tables are found through boot_params.acpi_rsdp_addr (bzImage)
    # or start_info.rsdp_paddr (PVH).
    initrd = linux.initramfs(tmp_path, f'echo "{MARK} $(cat /proc/cmdline)"\n'
                             '[ -e /sys/firmware/acpi/tables/DSDT ] && echo ACPI-TABLES-FOUND\n'
                             'reboot -f\n')
    # One more try after a stall of the nested test VM (see test_linux.py).
    for _ in range(2):
        p = run_kvmini("run", "--kernel", linux.kernel(kind), "--initrd", initrd,
                       "--memory", "256M", "--cmdline", f"{linux.CMDLINE} {CMDLINE_TOKEN}",
                       "--timeout", "150", timeout=210)
        if p.returncode != 124:
            break
    # reboot -f resets the machine (ACPI reset register): without --reboot,
    # kvmini ends with status 0.
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr[-2000:])
    line = next((l for l in p.stdout.splitlines() if l.startswith(MARK)), None)
    assert line is not None, p.stdout[-3000:]
    assert CMDLINE_TOKEN in line, line
    assert "ACPI-TABLES-FOUND" in p.stdout, p.stdout[-3000:]


def patched_bzimage(tmp_path, off, fmt, value):
    """Debian's bzImage with one setup header field changed."""
    data = bytearray(open(linux.kernel("bzimage"), "rb").read())
    struct.pack_into(fmt, data, off, value)
    out = tmp_path / "vmlinuz"
    out.write_bytes(bytes(data))
    return str(out)


@needs_kvm
@pytest.mark.parametrize("off,fmt,value,needles", [
    (0x206, "<H", 0x020b, ["boot protocol 2.11 is older than 2.12"]),
    (0x236, "<H", 0x7e, ["xloadflags 0x7e", "XLF_KERNEL_64"]),
    (0x211, "<B", 0x80, ["LOADED_HIGH"]),
    (0x1f4, "<I", 0x1000000, ["syssize 0x1000000", "runs past the end of the file"]),
    (0x230, "<I", 0x300000, ["kernel_alignment 0x300000"]),
    (0x260, "<I", 0x1000, ["init_size 0x1000 is smaller"]),
])
def test_bad_bzimage_refused(tmp_path, off, fmt, value, needles):
    k = patched_bzimage(tmp_path, off, fmt, value)
    assert_one_line_error(run_kvmini("run", "--kernel", k), f"kernel '{k}': bzImage", *needles)


@needs_kvm
def test_bzimage_too_little_memory():
    k = linux.kernel("bzimage")
    assert_one_line_error(run_kvmini("run", "--kernel", k, "--memory", "64M"),
                          f"kernel '{k}'", "init_size", "--memory")


@needs_kvm
def test_bzimage_cmdline_longer_than_its_cmdline_size():
    p = run_kvmini("run", "--kernel", linux.kernel("bzimage"), "--cmdline", "x" * 2048)
    assert_one_line_error(p, "2048 bytes", "cmdline_size")


@needs_kvm
def test_neither_elf_nor_bzimage(tmp_path):
    k = tmp_path / "vmlinuz"
    k.write_bytes(b"\x00" * 4096)
    assert_one_line_error(run_kvmini("run", "--kernel", str(k)),
                          f"kernel '{k}': not a PVH ELF, a multiboot image or a bzImage",
                          "(kvmini boots PVH ELF", "multiboot", "Linux bzImages")


@needs_kvm
def test_linux_boots_with_hyperv(tmp_path):
    """Debian's kernel boots with --hyperv as under QEMU's hv_passthrough: it
    finds KVM's leaves at 0x40000100 (and picks KVM: Linux takes Hyper-V
    only from a "Microsoft Hv" vendor, and prefers KVM when both are there)."""
    initrd = linux.initramfs(tmp_path, 'dmesg | grep "Hypervisor detected"\n'
                             'echo HV-LINUX-UP\nreboot -f\n')
    p = run_kvmini("run", "--kernel", linux.kernel("bzimage"), "--initrd", initrd,
                   "--memory", "256M", "--cmdline", linux.CMDLINE, "--hyperv",
                   "--timeout", "200", timeout=260)
    assert p.returncode == 0, (p.returncode, p.stdout[-3000:], p.stderr[-2000:])
    assert "Hypervisor detected: KVM" in p.stdout, p.stdout[-3000:]
    assert "HV-LINUX-UP" in p.stdout, p.stdout[-3000:]
