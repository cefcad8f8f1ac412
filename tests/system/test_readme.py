# SPDX-License-Identifier: MIT
"""What a newcomer meets, tested as they would meet it.

- README.md walked top to bottom: every command of every code block runs,
  in order, from the source tree, in one shell per block; each exits 0
  (unless the next line is `echo $?`), and prints what its "# → TEXT"
  comment says (a line of its output starts with TEXT).
- `make install DESTDIR=...` installs three files; `man -l` renders the
  page; the completion completes; `--version` names the git revision.
- The first errors name the fix: no /dev/kvm, no permission on it, a
  kernel kvmini cannot boot.
"""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import KVMINI, ROOT, guest, kvm_usable

README = Path(ROOT) / "README.md"
MARK = "@@README-STEP"
# Commands a newcomer would run that this test must not.
SKIP = {"make test": "the whole test suite, of which this test is a part"}


def blocks():
    """(heading, text) of each fenced code block, in order."""
    heading, out, lines, inside = "", [], [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if inside:
                out.append((heading, "\n".join(lines)))
            inside, lines = not inside, []
        elif inside:
            lines.append(line)
        elif line.startswith("#"):
            heading = line.lstrip("# ")
    return out


def commands(text):
    """[(command, expectation or None)]: continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        cur += line + "\n"
        if line.endswith("\\"):
            continue
        cmd, expect = cur.rstrip("\n"), None
        m = re.match(r"(?s)(.*?)\s+#\s?(.*)$", cmd)
        if m and "'" not in m.group(1) and '"#' not in m.group(1):
            cmd, comment = m.group(1), m.group(2)
            if comment.startswith("→"):
                expect = comment[1:].strip().split(": ")[0].strip()
        if cmd.strip():
            out.append((cmd.strip(), expect))
        cur = ""
    return out


def run_block(heading, text, timeout=900):
    cmds = commands(text)
    script = [f"cd {ROOT}"]
    for i, (cmd, _) in enumerate(cmds):
        script.append(f"true  # skipped: {SKIP[cmd]}" if cmd in SKIP else cmd)
        # Print the status, then give it back for an `echo $?` that follows.
        script.append(f'__s=$?; printf "\\n{MARK} {i} %d\\n" $__s; (exit $__s)')
    p = subprocess.run(["bash", "-c", "\n".join(script) + "\nwait\n"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace", timeout=timeout)
    steps = re.split(rf"\n?{MARK} (\d+) (\d+)\n", p.stdout)
    outputs, statuses = steps[0::3], [int(s) for s in steps[2::3]]
    assert len(statuses) == len(cmds), f"[{heading}] the block stopped early:\n{p.stdout}"
    for i, (cmd, expect) in enumerate(cmds):
        out = outputs[i]
        next_is_echo = i + 1 < len(cmds) and cmds[i + 1][0].startswith("echo $?")
        if not next_is_echo:
            assert statuses[i] == 0, f"[{heading}] `{cmd}` exited {statuses[i]}:\n{out}"
        if expect:
            assert any(line.startswith(expect) for line in out.splitlines()), \
                f"[{heading}] `{cmd}` should print a line starting '{expect}', got:\n{out}"
    return outputs


def counts(text):
    """The numbers of the complete "count N" lines (a VM may be saved in the
    middle of one), checked to be 1, 2, 3, ..."""
    got = [int(x.split()[1]) for x in text.split("\n")[:-1] if x.startswith("count ")]
    assert got == list(range(1, len(got) + 1)), (got[:3], got[-3:])
    return len(got)


@pytest.mark.skipif(not kvm_usable(), reason="the README boots VMs: /dev/kvm is missing or "
                    "not accessible (make test runs this in scripts/kvmbox)")
def test_walk_the_readme():
    seen = []
    for heading, text in blocks():
        if not commands(text):
            continue
        run_block(heading, text)
        seen.append(heading)
        if heading == "Snapshots in one minute":
            # The restored VM counts on from where it was saved: the two
            # logs join into one sequence, longer than the first.
            before = Path("/tmp/before.log").read_text()
            after = Path("/tmp/after.log").read_text()
            assert counts(before + after) > counts(before)
    assert "Running a guest" in seen and "Snapshots in one minute" in seen, seen


def test_version_names_the_revision(tmp_path):
    p = subprocess.run([KVMINI, "--version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    if rev:
        assert re.fullmatch(r"kvmini \d+\.\d+ \(git [0-9a-g-]+(-dirty)?\)\n", p.stdout), p.stdout
    # Outside a git checkout the Makefile says "unknown".
    for f in ("Makefile", "aio/aio.mk", "guest/guest.mk", "tests/unit/unit.mk"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(Path(ROOT) / f, tmp_path / f)
    p = subprocess.run(["make", "-s", "-C", str(tmp_path), "--eval",
                        "print-rev: ; @echo $(KVMINI_GIT_REV)", "print-rev"],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.strip() == "unknown", (p.stdout, p.stderr)


def run_options():
    """The run options as --help lists them (generated from vmm/cli.c)."""
    out = subprocess.run([KVMINI, "--help"], capture_output=True, text=True).stdout
    section = out.split("Options of kvmini run")[1].split("\n\n")[0]
    return re.findall(r"^  (--[a-z-]+)", section, re.M)


def test_help_covers_snapshots():
    opts = run_options()
    for o in ("--kernel", "--qmp", "--incoming", "--paused", "--disk"):
        assert o in opts
    out = subprocess.run([KVMINI, "run", "--help"], capture_output=True, text=True).stdout
    assert "required unless --incoming" in out and "snapshot FILE" in out


def test_make_install_three_files(tmp_path):
    dest = tmp_path / "dest"
    p = subprocess.run(["make", "-C", ROOT, "install", f"DESTDIR={dest}", "PREFIX=/usr"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    files = sorted(str(f.relative_to(dest)) for f in dest.rglob("*") if f.is_file())
    assert files == ["usr/bin/kvmini", "usr/share/bash-completion/completions/kvmini",
                     "usr/share/man/man1/kvmini.1"], files
    assert os.access(dest / "usr/bin/kvmini", os.X_OK)

    # the man page renders, and lists every run option
    env = dict(os.environ, MANWIDTH="80")
    page = subprocess.run(["man", "-l", "-Tutf8", str(dest / "usr/share/man/man1/kvmini.1")],
                          capture_output=True, text=True, timeout=60, env=env)
    assert page.returncode == 0, page.stderr
    text = re.sub(r".\x08", "", page.stdout)  # no overstrike
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    for opt in run_options():
        assert opt in text, opt
    assert "kvmini ctl" in text and "snapshot FILE" in text

    # the completion completes options, and ctl commands, from --help
    comp = dest / "usr/share/bash-completion/completions/kvmini"
    script = (f"source {comp}\n"
              f"COMP_WORDS=({KVMINI} run --inc); COMP_CWORD=2; _kvmini; echo ${{COMPREPLY[@]}}\n"
              f"COMP_WORDS=({KVMINI} ctl /s sn); COMP_CWORD=3; _kvmini; echo ${{COMPREPLY[@]}}\n")
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines() == ["--incoming", "snapshot"], (p.stdout, p.stderr)


# ------------------------------------------------------------- first errors

def one_line(p, *needles):
    assert p.returncode == 125, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvmini: "), p.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def in_private_dev(setup, *cmd):
    """Run cmd in a mount namespace with an empty tmpfs on /dev, after
    the shell commands @setup (root only)."""
    shell = f"mount -t tmpfs tmpfs /dev && {setup} exec \"$@\""
    return subprocess.run(["unshare", "-m", "sh", "-c", shell, "sh", *cmd],
                          capture_output=True, text=True, timeout=60)


can_unshare = pytest.mark.skipif(
    os.getuid() != 0 or not shutil.which("unshare") or not shutil.which("setpriv"),
    reason="needs root with unshare and setpriv (util-linux) to hide /dev/kvm "
           "(make test runs this in scripts/kvmbox, as root)")


def test_no_dev_kvm_names_the_fix():
    cmd = [KVMINI, "run", "--kernel", guest("hello")]
    if os.path.exists("/dev/kvm"):
        if os.getuid() != 0 or not shutil.which("unshare"):
            pytest.skip("/dev/kvm exists and hiding it needs root with unshare")
        p = in_private_dev("", *cmd)
    else:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    one_line(p, "/dev/kvm does not exist", "nested virtualization", "scripts/kvmbox")


@can_unshare
def test_no_permission_names_the_group():
    # A /dev/kvm only root may open; kvmini runs as nobody. The kernel is
    # read first, so it must be readable by nobody too.
    elf = guest("hello")
    if not all(os.stat(p).st_mode & 0o005 for p in (KVMINI, elf)):
        pytest.skip("the build tree is not readable by other users")
    p = in_private_dev("touch /dev/kvm && chmod 600 /dev/kvm &&", "setpriv", "--reuid=65534",
                       "--regid=65534", "--clear-groups", KVMINI, "run", "--kernel", elf)
    one_line(p, "no permission to open /dev/kvm", "group", "usermod")


@pytest.mark.skipif(not kvm_usable(), reason="the kernel is parsed after /dev/kvm is opened; "
                    "/dev/kvm is missing or not accessible")
def test_unbootable_kernel_names_the_formats(tmp_path):
    for name, data in (("text", b"#!/bin/sh\necho not a kernel\n" * 10),
                       ("elf-without-pvh", open("/bin/true", "rb").read())):
        k = tmp_path / name
        k.write_bytes(data)
        p = subprocess.run([KVMINI, "run", "--kernel", str(k)], capture_output=True, text=True,
                           timeout=60)
        one_line(p, str(k), "kvmini boots", "PVH ELF", "multiboot")
