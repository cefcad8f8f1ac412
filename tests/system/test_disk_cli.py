"""--disk: options and images kvmini refuses (exit 125, one line), and disks that
attach cleanly. Guest-side I/O through the disks is tested with the blk guests."""
import os
import shutil
import subprocess

import pytest

from conftest import KVMINI, assert_one_line_error, guest, needs_kvm, run_guest, run_kvmini


def image(tmp_path, name="d.img", size=1 << 20):
    p = tmp_path / name
    with open(p, "wb") as f:
        f.truncate(size)
    return str(p)


@pytest.mark.parametrize(
    "spec,needles",
    [
        ("", ["no path= given"]),
        ("disk.img", ["'disk.img' is not key=value"]),
        ("path=", ["empty path"]),
        ("path=a,readonly=yes", ["readonly must be on or off"]),
        ("path=a,cache=none", ["unknown option 'cache'"]),
        ("path=a,serial=123456789012345678901", ["serial is longer than 20"]),
        ("path=a,path=b", ["path given twice"]),
        ("path=a,aio=native", ["aio must be auto, threads or io_uring"]),
        ("path=a,werror=retry", ["werror must be stop, report, ignore or enospc"]),
        ("path=a,rerror=enospc", ["rerror must be stop, report, ignore, not 'enospc'"]),
        ("path=a,delay=1s", ["delay must be a number of ms from 0 to 10000, not '1s'"]),
    ],
)
def test_bad_disk_options(spec, needles):
    # Rejected while parsing the command line: no KVM needed.
    p = run_kvmini("run", "--kernel", "k.elf", "--disk", spec)
    assert_one_line_error(p, "--disk", *needles)


@needs_kvm
def test_missing_image(tmp_path):
    missing = str(tmp_path / "nope.img")
    p = run_guest("hello", "--disk", f"path={missing}")
    assert_one_line_error(p, missing, "No such file")


@needs_kvm
def test_image_is_directory(tmp_path):
    p = run_guest("hello", "--disk", f"path={tmp_path},readonly=on")
    assert_one_line_error(p, str(tmp_path), "not a regular file or block device")


@needs_kvm
def test_unreadable_image(tmp_path):
    img = image(tmp_path)
    os.chmod(img, 0)
    cmd = [KVMINI, "run", "--kernel", guest("hello"), "--disk", f"path={img}"]
    if os.geteuid() == 0:
        # root opens any file: run kvmini as nobody (who may still use /dev/kvm?).
        if not shutil.which("setpriv") or not os.stat("/dev/kvm").st_mode & 0o006:
            pytest.skip("as root, a file is only unreadable to another user, who cannot "
                        "open /dev/kvm here")
        os.chmod(tmp_path, 0o755)
        cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert_one_line_error(p, img, "Permission denied")


@needs_kvm
def test_size_not_multiple_of_512(tmp_path):
    img = image(tmp_path, size=1000)
    p = run_guest("hello", "--disk", f"path={img}")
    assert_one_line_error(p, img, "size 1000 bytes is not a multiple of 512")


@needs_kvm
def test_same_image_twice_is_refused(tmp_path):
    img = image(tmp_path)
    p = run_guest("hello", "--disk", f"path={img}", "--disk", f"path={img}")
    assert_one_line_error(p, img, "in use")


@needs_kvm
def test_disks_attach_and_vm_runs(tmp_path):
    a, b = image(tmp_path, "a.img"), image(tmp_path, "b.img", 512)
    empty = image(tmp_path, "empty.img", 0)
    p = run_guest("hello", "--disk", f"path={a},serial=disk-a", "--disk",
                  f"path={b},readonly=on", "--disk", f"path={empty}")
    assert p.returncode == 0, p.stderr
    assert "Hello" in p.stdout
    # The same read-only image may back two disks (shared lock).
    p = run_guest("hello", "--disk", f"path={b},readonly=on", "--disk", f"path={b},readonly=on")
    assert p.returncode == 0, p.stderr
    # Both I/O back ends attach (io_uring only where the host allows it).
    p = run_guest("hello", "--disk", f"path={a},aio=threads", "--disk", f"path={b},aio=auto")
    assert p.returncode == 0, p.stderr
    p = run_guest("hello", "--disk", f"path={a},aio=io_uring")
    if p.returncode != 0:
        assert_one_line_error(p, "io_uring")
    # Nothing was written to an image the guest never touched.
    assert os.path.getsize(a) == 1 << 20 and os.path.getsize(b) == 512


@needs_kvm
def test_query_block_and_snapshot(tmp_path):
    """A VM with disks snapshots and restores; the command line must give the
    same disks (same order, sizes, read-only flags), else a one-line error."""
    from qmpclient import QMP

    a, b = image(tmp_path, "a.img"), image(tmp_path, "b.img")
    snap = str(tmp_path / "snap")
    disks = ["--disk", f"path={a}", "--disk", f"path={b},readonly=on"]
    sock = str(tmp_path / "qmp.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang",
                          "--qmp", sock, "--timeout", "60", *disks],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        q = QMP(sock)
        blocks = q.cmd("query-block")["return"]
        assert [(x["device"], x["inserted"]["file"], x["inserted"]["ro"]) for x in blocks] == \
            [("virtio-blk0", a, False), ("virtio-blk1", b, True)]
        assert all(x["io-status"] == "ok" for x in blocks)
        assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
        q.cmd("cont")
        assert q.cmd("query-status")["return"]["running"] is True
        q.cmd("quit")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()

    r = subprocess.run([KVMINI, "snapshot", "inspect", snap], capture_output=True, text=True)
    assert r.returncode == 0 and "dev.4.virtio-blk" in r.stdout and "dev.5.virtio-blk" in r.stdout
    # The restored VM runs (the guest hangs on purpose: --timeout ends it).
    r = run_kvmini("run", "--incoming", f"file:{snap}", "--timeout", "1", *disks)
    assert r.returncode == 124, r.stderr
    # Mismatched command lines.
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", disks[0], disks[1]),
                          "devices")
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", *disks[:2],
                                     "--disk", f"path={b}"), "virtio-blk1", "readonly=on")
    c = image(tmp_path, "c.img", 2 << 20)
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", "--disk",
                                     f"path={c}", *disks[2:]), "virtio-blk0", "sectors")


# ---- --scsi-disk: the same image rules, plus lun= ----

@pytest.mark.parametrize(
    "spec,needles",
    [
        ("", ["no path= given"]),
        ("path=a,lun=256", ["lun must be a number from 0 to 255, not '256'"]),
        ("path=a,lun=-1", ["lun must be a number from 0 to 255"]),
        ("path=a,lun=x", ["lun must be a number from 0 to 255, not 'x'"]),
        ("path=a,lun=1,lun=2", ["lun given twice"]),
        ("path=a,target=1", ["unknown option 'target'", "keys: path, lun,"]),
        ("path=a,werror=retry", ["werror must be stop, report, ignore or enospc"]),
        ("path=a,serial=\x01", ["serial must be printable ASCII"]),
    ],
)
def test_bad_scsi_disk_options(spec, needles):
    p = run_kvmini("run", "--kernel", "k.elf", "--scsi-disk", spec)
    assert_one_line_error(p, "--scsi-disk", *needles)


def test_disk_has_no_lun():
    p = run_kvmini("run", "--kernel", "k.elf", "--disk", "path=a,lun=1")
    assert_one_line_error(p, "--disk", "unknown option 'lun'")


def test_too_many_scsi_disks():
    args = []
    for i in range(17):
        args += ["--scsi-disk", f"path=d{i}.img"]
    assert_one_line_error(run_kvmini("run", "--kernel", "k.elf", *args), "--scsi-disk",
                          "at most 16")


@needs_kvm
def test_scsi_disk_image_errors(tmp_path):
    a = image(tmp_path, "a.img")
    assert_one_line_error(run_guest("hello", "--scsi-disk", f"path={tmp_path}/nope.img"),
                          "nope.img", "No such file")
    odd = image(tmp_path, "odd.img", 1000)
    assert_one_line_error(run_guest("hello", "--scsi-disk", f"path={odd}"),
                          "size 1000 bytes is not a multiple of 512")
    # One image, two writers: refused, whether both are LUNs or one is a virtio-blk disk.
    assert_one_line_error(run_guest("hello", "--scsi-disk", f"path={a}", "--scsi-disk",
                                    f"path={a}"), a, "in use")
    assert_one_line_error(run_guest("hello", "--disk", f"path={a}", "--scsi-disk",
                                    f"path={a}"), a, "in use")
    b = image(tmp_path, "b.img")
    assert_one_line_error(run_guest("hello", "--scsi-disk", f"path={a},lun=3", "--scsi-disk",
                                    f"path={b},lun=3"), "lun 3 is already taken")


@needs_kvm
def test_scsi_query_block_and_snapshot(tmp_path):
    """LUNs appear in query-block as virtio-scsi0-lun<N> (defaults fill the lowest
    free numbers); a snapshot restores only with the same LUNs."""
    from qmpclient import QMP

    a, b, c = image(tmp_path, "a.img"), image(tmp_path, "b.img"), image(tmp_path, "c.img")
    snap = str(tmp_path / "snap")
    luns = ["--scsi-disk", f"path={a},lun=0", "--scsi-disk", f"path={b}",
            "--scsi-disk", f"path={c},lun=7,readonly=on"]
    sock = str(tmp_path / "qmp.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang",
                          "--qmp", sock, "--timeout", "60", *luns],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        q = QMP(sock)
        blocks = q.cmd("query-block")["return"]
        assert sorted((x["device"], x["inserted"]["file"], x["inserted"]["ro"])
                      for x in blocks) == [("virtio-scsi0-lun0", a, False),
                                           ("virtio-scsi0-lun1", b, False),
                                           ("virtio-scsi0-lun7", c, True)]
        assert q.cmd("migrate", {"uri": f"file:{snap}"}) == {"return": {}}
        q.cmd("quit")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
    r = subprocess.run([KVMINI, "snapshot", "inspect", snap], capture_output=True, text=True)
    assert r.returncode == 0 and "virtio-scsi" in r.stdout, r.stdout
    r = run_kvmini("run", "--incoming", f"file:{snap}", "--timeout", "1", *luns)
    assert r.returncode == 124, r.stderr
    # Another LUN number, size, read-only flag or count: refused, one line.
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", *luns[:2],
                                     "--scsi-disk", f"path={b},lun=2", *luns[4:]),
                          "virtio-scsi0", "LUN")
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", *luns[:4],
                                     "--scsi-disk", f"path={c},lun=7"),
                          "virtio-scsi0", "readonly")
    big = image(tmp_path, "big.img", 2 << 20)
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", "--scsi-disk",
                                     f"path={big},lun=0", *luns[2:]), "virtio-scsi0", "blocks")
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}", *luns[:4]),
                          "virtio-scsi0", "3 LUNs", "gives 2")
    assert_one_line_error(run_kvmini("run", "--incoming", f"file:{snap}"), "devices")


@needs_kvm
def test_scsi_query_block_luns_out_of_order(tmp_path):
    """LUNs are kept sorted by number: each must still report its own image."""
    from qmpclient import QMP

    a, b, c = image(tmp_path, "a.img"), image(tmp_path, "b.img"), image(tmp_path, "c.img")
    sock = str(tmp_path / "qmp.sock")
    p = subprocess.Popen([KVMINI, "run", "--kernel", guest("exit"), "--cmdline", "hang",
                          "--qmp", sock, "--timeout", "60",
                          "--scsi-disk", f"path={a},lun=9", "--scsi-disk", f"path={b},lun=2",
                          "--scsi-disk", f"path={c},readonly=on"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        q = QMP(sock)
        blocks = q.cmd("query-block")["return"]
        assert sorted((x["device"], x["inserted"]["file"], x["inserted"]["ro"])
                      for x in blocks) == [("virtio-scsi0-lun0", c, True),
                                           ("virtio-scsi0-lun2", b, False),
                                           ("virtio-scsi0-lun9", a, False)]
        q.cmd("quit")
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
