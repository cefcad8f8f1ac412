"""Linux guests for system tests: Debian's stock kernel (as bzImage or as the
PVH vmlinux inside it) and initramfs images built here from busybox-static
and the kernel's own modules, dependencies read from each .ko.

`make deps` (scripts/kvmbox prepare) keeps the files under
build/kvmbox/guest: vmlinuz, vmlinux, busybox, modules/*.ko, RELEASE.
"""
import gzip
import os
import sys

import pytest

from conftest import BUILD, ROOT

sys.path.insert(0, os.path.join(ROOT, "scripts"))
from debkernel import cpio_newc, module_order  # noqa: E402

GUEST = os.path.join(BUILD, "kvmbox", "guest")
BZIMAGE = os.path.join(GUEST, "vmlinuz")
VMLINUX = os.path.join(GUEST, "vmlinux")
BUSYBOX = os.path.join(GUEST, "busybox")
MODULES = os.path.join(GUEST, "modules")

# Kernel images by boot path, for parametrized tests.
KERNELS = {"bzimage": BZIMAGE, "pvh": VMLINUX}

# The guest's console and quick boot: no probing of hardware kvmini lacks.
CMDLINE = "console=ttyS0 panic=-1 quiet"

# Prepended to every test's /init: busybox applets, the usual mounts, modules.
INIT_HEAD = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in $(cat /modules); do
	insmod "/lib/$m" || echo "INSMOD-FAILED $m"
done
"""


def kernel(kind="bzimage"):
    path = KERNELS[kind]
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing (run make deps: scripts/kvmbox prepare keeps it)")
    return path


def initramfs(tmp_path, script, modules=(), files=None, name="initrd.gz"):
    """Write a gzip'd newc initramfs to tmp_path/name and return its path.

    script: the body of /init after INIT_HEAD (busybox sh).
    modules: module names; they and their dependencies are loaded in order.
    files: {path in the guest: bytes} extra regular files (mode 0755).
    """
    if not os.path.exists(BUSYBOX):
        pytest.fail(f"{BUSYBOX} is missing (run make deps)")
    mods = module_order(MODULES, list(modules)) if modules else []
    entries = [(d, 0o40755, b"") for d in ("bin", "dev", "proc", "sys", "lib", "mnt", "tmp")]
    entries.append(("bin/busybox", 0o100755, open(BUSYBOX, "rb").read()))
    entries.append(("init", 0o100755, (INIT_HEAD + script).encode()))
    names = []
    for m in mods:
        base = os.path.basename(m)
        names.append(base)
        entries.append(("lib/" + base, 0o100644, open(m, "rb").read()))
    entries.append(("modules", 0o100644, (" ".join(names) + "\n").encode()))
    for path, data in (files or {}).items():
        entries.append((path.lstrip("/"), 0o100755, data))
    out = os.path.join(str(tmp_path), name)
    with open(out, "wb") as f:
        f.write(gzip.compress(cpio_newc(entries), compresslevel=1))
    return out
