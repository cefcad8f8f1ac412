# SPDX-License-Identifier: MIT
"""Multiboot v1 boot (vmm/multiboot.c): guest/mboot, a 32-bit multiboot
kernel, reports what its loader handed it; it boots under kvmini and under
QEMU's -kernel (the reference loader, on a PC with SeaBIOS), and both must
report the same command line, module 0 and entry state. What differs by
design (the boot loader's name, the BIOS's memory map and the EBDA it takes
from mem_lower) is checked against each loader's own map. Bad images are
refused with exit 125 and the field named.
"""
import re
import shutil
import struct
import subprocess

import pytest

from conftest import (EXIT_HOST_ERROR, GUEST_DIR, assert_one_line_error, needs_kvm,
                      run_kvmini)
from qemuref import run_reference

QEMU = shutil.which("qemu-system-x86_64")
MB_MAGIC = 0x1BADB002
MEM_MB = 128
MiB = 1 << 20
INITRD = b"NR_CPUS=1\nMEMSIZE=128\n\x00\x01\xfe\\end"

pytestmark = needs_kvm


def image(name):
    path = f"{GUEST_DIR}/{name}"
    try:
        open(path, "rb").close()
    except OSError:
        pytest.fail(f"{path} was not built (run make)")
    return path


def parse(out):
    """The guest's "mboot: ..." lines as a list of (key, text)."""
    facts = []
    for line in out.splitlines():
        m = re.match(r"mboot: (\w+)[ =]?(.*)$", line.rstrip("\r\n"))
        if m:
            facts.append((m.group(1), m.group(2)))
    return facts


def fields(text):
    return dict(re.findall(r"(\w+)=(\S*)", text))


def run_kvmini_mb(img, cmdline, initrd, status):
    args = ["run", "--kernel", img, "--memory", f"{MEM_MB}M", "--timeout", "60"]
    if cmdline is not None:
        args += ["--cmdline", cmdline]
    if initrd:
        args += ["--initrd", initrd]
    p = run_kvmini(*args, timeout=120)
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    return parse(p.stdout)


def run_qemu_mb(img, cmdline, initrd, status):
    if QEMU is None:
        pytest.skip("qemu-system-x86_64 not found (Debian package qemu-system-x86)")
    cmd = [QEMU, "-enable-kvm", "-M", "pc", "-nodefaults", "-display", "none",
           "-serial", "stdio", "-no-reboot", "-m", str(MEM_MB),
           "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", img]
    if cmdline is not None:
        cmd += ["-append", cmdline]
    if initrd:
        cmd += ["-initrd", initrd]
    p = run_reference(cmd, 300, "multiboot image", capture_output=True, text=True,
                      errors="replace")
    assert p.returncode == (status << 1) | 1, (p.returncode, p.stdout, p.stderr)
    return parse(p.stdout)


def mmap_entries(facts):
    return [fields(t) for k, t in facts if k == "mmap" and t.startswith("size")]


def one(facts, key):
    vals = [t for k, t in facts if k == key]
    assert len(vals) == 1, (key, facts)
    return vals[0]


def check_self_consistent(facts):
    """What any multiboot loader owes this guest, checked on its own report."""
    assert fields(one(facts, "start"))["eax"] == "0x2badb002"
    flags = int(fields(one(facts, "info"))["flags"], 16)
    for bit in (0, 2, 3, 6):  # mem_*, cmdline, mods, mmap
        assert flags & (1 << bit), hex(flags)
    ents = mmap_entries(facts)
    assert ents and all(e["size"] == "20" for e in ents), ents
    assert int(one(facts, "mmap_length")) == 24 * len(ents)
    # mem_upper: the KiB of RAM from 1 MiB up to the first hole, per the map.
    upper = int(fields(one(facts, "mem"))["upper"])
    ram = [(int(e["base"], 16), int(e["length"], 16)) for e in ents if e["type"] == "1"]
    at_1m = [b + n for b, n in ram if b <= MiB < b + n]
    assert at_1m and upper * 1024 == at_1m[0] - MiB, (upper, ram)
    assert MEM_MB * MiB - 2 * MiB < at_1m[0] <= MEM_MB * MiB
    return flags


def normal(fact):
    """Module 0 by its size: where each loader puts it above the image differs
    (QEMU packs its own structures between)."""
    key, text = fact
    if key != "mod0":
        return fact
    f = fields(text)
    f["size"] = int(f.pop("end"), 16) - int(f.pop("start"), 16)
    return key, f


def compare(img, cmdline, initrd, status):
    k = run_kvmini_mb(img, cmdline, initrd, status)
    q = run_qemu_mb(img, cmdline, initrd, status)
    check_self_consistent(k)
    check_self_consistent(q)
    # The same for both loaders: everything but the loader's name, the
    # memory map and mem_* (SeaBIOS's map, and 639 KiB below its EBDA).
    same = ("start", "cmdline", "mods", "mod0", "data", "status")
    assert [normal(f) for f in k if f[0] in same] == [normal(f) for f in q if f[0] in same]
    assert one(k, "loader") == "kvmini"
    assert fields(one(k, "mem")) == {"lower": "640", "upper": str((MEM_MB - 1) * 1024)}
    assert int(fields(one(q, "mem"))["lower"]) in (639, 640)
    # kvmini's map is the e820 map every kvmini boot path gets.
    assert [(e["base"], e["length"], e["type"]) for e in mmap_entries(k)] == [
        ("0x0", "0xa0000", "1"), ("0xa0000", "0x60000", "2"),
        ("0x100000", hex((MEM_MB - 1) * MiB), "1"),
        ("0xfec00000", "0x1000", "2"), ("0xfee00000", "0x1000", "2")]
    return k


@pytest.fixture
def initrd(tmp_path):
    path = tmp_path / "env"
    path.write_bytes(INITRD)
    return str(path)


@pytest.mark.parametrize("name", ["mboot.elf", "mboot-aout.bin"])
def test_same_as_qemu_with_initrd(name, initrd):
    img = image(name)
    k = compare(img, "status=5 foo=bar", initrd, 5)
    assert one(k, "cmdline") == f"{img} status=5 foo=bar"
    mod = fields(one(k, "mod0"))
    assert mod["aligned"] == "1" and mod["above_image"] == "1" and mod["string"] == initrd
    assert int(mod["end"], 16) - int(mod["start"], 16) == len(INITRD)
    assert one(k, "data") == r"NR_CPUS=1\x0aMEMSIZE=128\x0a\x00\x01\xfe\x5cend"


@pytest.mark.parametrize("name", ["mboot.elf", "mboot-aout.bin"])
def test_same_as_qemu_without_initrd_or_cmdline(name):
    img = image(name)
    k = compare(img, None, None, 0)
    assert one(k, "cmdline") == f"{img} "
    assert fields(one(k, "mods"))["count"] == "0"


def set_header(data, flags, at=None, fix_checksum=True, extra=None):
    """@data with the multiboot header's flags (and address fields) changed."""
    off = data.find(struct.pack("<I", MB_MAGIC)) if at is None else at
    assert off >= 0 and off % 4 == 0
    b = bytearray(data)
    struct.pack_into("<I", b, off + 4, flags)
    if fix_checksum:
        struct.pack_into("<I", b, off + 8, (-(MB_MAGIC + flags)) & 0xFFFFFFFF)
    if extra:
        struct.pack_into("<5I", b, off + 12, *extra)
    return bytes(b)


def aout_fields(data):
    off = data.find(struct.pack("<I", MB_MAGIC))
    return off, list(struct.unpack_from("<5I", data, off + 12))


def refuse(tmp_path, data, *needles, memory=f"{MEM_MB}M"):
    k = tmp_path / "bad.img"
    k.write_bytes(data)
    p = run_kvmini("run", "--kernel", str(k), "--memory", memory, "--timeout", "30")
    assert p.returncode == EXIT_HOST_ERROR
    assert_one_line_error(p, f"kernel '{k}'", *needles)


def test_refusals(tmp_path):
    elf = open(image("mboot.elf"), "rb").read()
    flat = open(image("mboot-aout.bin"), "rb").read()
    off, (header, load, load_end, bss_end, entry) = aout_fields(flat)
    bad = bytearray(elf)
    struct.pack_into("<I", bad, elf.find(struct.pack("<I", MB_MAGIC)) + 8, 0x12345678)
    refuse(tmp_path, bytes(bad), "bad checksum", "magic + flags + checksum")
    refuse(tmp_path, set_header(elf, 3 | 4), "video mode (bit 2)")
    refuse(tmp_path, set_header(elf, 3 | 8), "bits 0x8", "does not define")
    # Without bit 16 the image must be an ELF; the flat binary is not.
    refuse(tmp_path, set_header(flat, 3), "lack bit 16", "not an ELF")
    # The address fields, one wrong at a time.
    refuse(tmp_path, set_header(flat, 0x10003, extra=[header, header + 4, load_end, bss_end,
                                                      entry]),
           "load_addr", "above header_addr")
    refuse(tmp_path, set_header(flat, 0x10003, extra=[header, load, load + len(flat) + 4096,
                                                      0, entry]),
           "load_end_addr", "past the end of the file")
    refuse(tmp_path, set_header(flat, 0x10003, extra=[header, load, load_end, load_end - 4,
                                                      entry]),
           "bss_end_addr")
    refuse(tmp_path, set_header(flat, 0x10003, extra=[header, load, load_end, bss_end,
                                                      bss_end + 16]),
           "entry_addr")
    low = 0x30000  # kvmini's multiboot structures
    refuse(tmp_path, set_header(flat, 0x10003, extra=[low, low, 0, low + 0x10000, low]),
           "overlaps kvmini's multiboot structures")
    # Truncated: the ELF's segment data runs past the end of the file.
    refuse(tmp_path, elf[:0x1400], "past the end of the file")
    # An image at 4 MiB does not fit in 4 MiB of RAM.
    refuse(tmp_path, elf, "RAM", memory="4M")
