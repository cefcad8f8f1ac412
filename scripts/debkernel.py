"""Debian's stock kernel as a VM guest: package download, module dependencies,
newc cpio archives and the vmlinux inside a bzImage.

Shared by scripts/kvmbox (the test VM) and the Linux-guest system tests
(tests/system/linux.py). Errors raise KernelPackageError with one line.
"""
import io
import lzma
import os
import re
import struct
import subprocess
import zlib

KERNEL_PKG_RE = re.compile(r"^linux-image-(\d+\.\d+\.\d+-\d+)-amd64-unsigned$")


class KernelPackageError(Exception):
    """The kernel package or an image in it is unusable."""


def natural_key(s):
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", s)]


def newest_kernel_package():
    out = subprocess.run(
        ["apt-cache", "search", "--names-only", r"^linux-image-.*-amd64-unsigned$"],
        capture_output=True, text=True, check=False).stdout
    names = [l.split(" ", 1)[0] for l in out.splitlines()]
    names = [n for n in names if KERNEL_PKG_RE.match(n)]
    if not names:
        raise KernelPackageError("no linux-image-*-amd64-unsigned package in apt's lists "
                                 "(run apt-get update, or make deps)")
    return max(names, key=natural_key)


def apt_download(pkgs, dest):
    # As root, apt's sandbox user cannot write here; download unsandboxed.
    cmd = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", *pkgs]
    p = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or ["?"])[-1]
        raise KernelPackageError(f"apt-get download {' '.join(pkgs)} failed: {last}")


def modinfo_depends(path):
    """The module names in a .ko's modinfo `depends=` field."""
    data = open(path, "rb").read()
    i = data.find(b"\0depends=")
    if i < 0:
        return []
    end = data.find(b"\0", i + 1)
    return [d.replace("-", "_") for d in data[i + 9:end].decode().split(",") if d]


def module_index(modroot):
    """{module name: path of its .ko} for every .ko under modroot."""
    index = {}
    for dirpath, _, files in os.walk(modroot):
        for f in files:
            if f.endswith(".ko"):
                index[f[:-3].replace("-", "_")] = os.path.join(dirpath, f)
    return index


def module_order(modroot, wanted):
    """Paths of the wanted modules and their dependencies, dependencies first."""
    index = module_index(modroot)
    order, seen = [], set()

    def visit(name, chain):
        if name in seen:
            return
        if name in chain:
            raise KernelPackageError(f"module dependency loop at {name}")
        if name not in index:
            raise KernelPackageError(f"no module {name}.ko under {modroot}")
        for d in modinfo_depends(index[name]):
            visit(d, chain + [name])
        seen.add(name)
        order.append(index[name])

    for m in wanted:
        visit(m.replace("-", "_"), [])
    return order


def cpio_newc(entries):
    """A newc cpio archive of (name, mode, data or link target) entries."""
    out = io.BytesIO()
    ino = 1

    def put(name, mode, data):
        nonlocal ino
        nb = name.encode() + b"\0"
        hdr = "070701" + "".join("%08X" % v for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(nb), 0))
        out.write(hdr.encode() + nb)
        out.write(b"\0" * ((4 - (110 + len(nb)) % 4) % 4))
        out.write(data)
        out.write(b"\0" * ((4 - len(data) % 4) % 4))
        ino += 1

    for name, mode, data in entries:
        put(name, mode, data)
    put("TRAILER!!!", 0, b"")
    return out.getvalue()


def extract_vmlinux(bzimage):
    """The ELF vmlinux compressed inside a bzImage (bytes), located through
    the setup header's payload_offset/payload_length (boot protocol 2.08+)."""
    if len(bzimage) < 0x250 or bzimage[0x202:0x206] != b"HdrS":
        raise KernelPackageError("not a bzImage (no HdrS setup header)")
    version = struct.unpack_from("<H", bzimage, 0x206)[0]
    if version < 0x208:
        raise KernelPackageError("boot protocol %x.%02x has no payload fields" %
                                 (version >> 8, version & 0xff))
    setup_sects = bzimage[0x1f1] or 4
    off, length = struct.unpack_from("<II", bzimage, 0x248)
    start = (setup_sects + 1) * 512 + off
    payload = bzimage[start:start + length]
    if payload.startswith(b"\xfd7zXZ\0"):
        # The kernel's xz stream carries its size appended; decompress the stream only.
        data = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(payload)
    elif payload.startswith(b"\x1f\x8b"):
        data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(payload)
    elif payload.startswith(b"\x28\xb5\x2f\xfd"):
        raise KernelPackageError("zstd-compressed kernel payload: not supported here")
    else:
        raise KernelPackageError("unknown kernel payload compression %r" % payload[:4])
    if not data.startswith(b"\x7fELF"):
        raise KernelPackageError("the bzImage payload is not an ELF vmlinux")
    return data
