"""The system programs some tests use, each declared once: what it is, how it is found, which Debian
package has it.

    system.require("sshd")              # in a fixture or test
    @pytest.mark.needs("sshd", "sshfs") # the same as a marker (applied in tests/conftest.py)

A need that is missing is installed first when it can be: running as root with `apt-get`, the
Debian package is installed (`apt-get update` once, then `apt-get install`), once per package and
test session. A file lock under /tmp serializes this across xdist workers and concurrent runs.
A package dpkg already lists as installed is not installed again (that cannot bring back a
program that is missing anyway). When the part still cannot be had, the test is skipped with one
line naming the package, e.g. `needs OpenSSH sshd (/usr/sbin/sshd): apt-get install openssh-server`.
With GISGATE_TEST_STRICT=1 (CI) it fails instead.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sshd import SSHD

STRICT_ENV = "GISGATE_TEST_STRICT"
SESSION_ENV = "GISGATE_TEST_SESSION"  # set by tests/conftest.py; xdist workers inherit it
UPDATE_TIMEOUT = 300  # seconds for `apt-get update`
INSTALL_TIMEOUT = 600  # seconds for one `apt-get install`


def _executable(path: str) -> str | None:
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def _dev_fuse() -> str | None:
    """Why FUSE mounts cannot work here, or None. Whether mounting is permitted shows only when a
    test mounts: see `fuse_refused`."""
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing (load the fuse kernel module; a container needs --device /dev/fuse)"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as e:
        return f"/dev/fuse cannot be opened ({e.strerror}; a container needs --device /dev/fuse)"
    return None


@dataclass(frozen=True)
class Part:
    label: str  # what the skip line calls it
    where: str  # where it is looked for
    package: str | None  # the Debian package that has it; None: apt cannot provide it
    find: Callable[[], str | None]  # its path, or None when absent
    needs: tuple[str, ...] = ()  # other parts it cannot work without
    problem: Callable[[], str | None] | None = None  # for a part no package provides: why it is unusable

    def usable(self) -> bool:
        return bool(self.find()) and not (self.problem and self.problem())


PARTS: dict[str, Part] = {
    "sshd": Part("OpenSSH sshd", SSHD, "openssh-server", lambda: _executable(SSHD), needs=("ssh-keygen",)),
    "ssh-keygen": Part("OpenSSH ssh-keygen", "ssh-keygen on PATH", "openssh-client",
                       lambda: shutil.which("ssh-keygen")),
    "ssh": Part("the OpenSSH client", "ssh on PATH", "openssh-client", lambda: shutil.which("ssh")),
    "fusermount": Part("FUSE's fusermount", "fusermount on PATH", "fuse3", lambda: shutil.which("fusermount")),
    "/dev/fuse": Part("FUSE", "/dev/fuse", None, lambda: "/dev/fuse", problem=_dev_fuse),
    "sshfs": Part("sshfs", "sshfs on PATH", "sshfs", lambda: shutil.which("sshfs"),
                  needs=("ssh", "fusermount", "/dev/fuse")),
    "chromium": Part("Chromium", "chromium or chromium-browser on PATH", "chromium",
                     lambda: shutil.which("chromium") or shutil.which("chromium-browser")),
}


def strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0")


def unavailable(message: str) -> None:
    """Skip the running test with `message` (one line), or fail it in strict mode."""
    __tracebackhide__ = True  # the skip line gives the test's location, not this file's
    if strict():
        pytest.fail(f"{message} [{STRICT_ENV} is set: a missing system part fails]", pytrace=False)
    pytest.skip(message)


def _closure(names) -> list[str]:
    """The named parts and everything they need, needs first."""
    seen: list[str] = []

    def visit(name: str) -> None:
        if name not in seen:
            for dep in PARTS[name].needs:
                visit(dep)
            seen.append(name)

    for name in names:
        visit(name)
    return seen


def require(*names: str) -> None:
    """Skip (strict: fail) the running test unless every named part, and what it needs, is usable;
    installs a missing Debian package first where that is possible. One line names all that is missing."""
    __tracebackhide__ = True
    missing: list[tuple[Part, str | None]] = []
    for name in _closure(names):
        part = PARTS[name]
        if part.usable():
            continue
        note = install(part.package) if part.package else None
        if not part.usable():
            missing.append((part, note))
    if missing:
        unavailable(describe(missing))


def describe(missing: list[tuple[Part, str | None]]) -> str:
    """`needs A (where), B (where): apt-get install a b (notes)`, plus what no package provides."""
    lines = []
    installable = [(part, note) for part, note in missing if part.package]
    if installable:
        packages = " ".join(dict.fromkeys(part.package for part, _ in installable))
        notes = "; ".join(dict.fromkeys(note for _, note in installable if note))
        lines.append("needs " + ", ".join(f"{part.label} ({part.where})" for part, _ in installable)
                     + f": apt-get install {packages}" + (f" ({notes})" if notes else ""))
    for part, _ in missing:
        if not part.package:
            lines.append(f"needs {part.label}: {part.problem() if part.problem else 'not available'}")
    return "; ".join(lines)


def fuse_refused(stderr: str) -> bool:
    """Whether a failed mount's error output blames FUSE (mounting not permitted here) rather than
    the server or the test."""
    text = stderr.lower()
    return "fuse" in text or "operation not permitted" in text


# -- installing with apt ---------------------------------------------------------------------------


def can_install() -> bool:
    return os.geteuid() == 0 and bool(shutil.which("apt-get")) and bool(shutil.which("dpkg-query"))


def dpkg_installed(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip().endswith(" installed")


def _state_file() -> Path:
    session = os.environ.get(SESSION_ENV) or str(os.getpid())
    return Path(tempfile.gettempdir()) / f"gisgate-test-apt-{session}.json"


def _apt(*args: str, timeout: float) -> str | None:
    """Run apt-get quietly; None when it worked, else its last error line."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "-qq", "-o", "DPkg::Lock::Timeout=120", *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"apt-get {args[0]} took more than {timeout:.0f} s"
    except OSError as e:
        return f"apt-get {args[0]}: {e.strerror or e}"
    if r.returncode == 0:
        return None
    lines = [ln.strip() for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("E:")] or lines or [f"exit {r.returncode}"]
    return f"apt-get {args[0]} failed: {errors[-1]}"


def install(package: str) -> str | None:
    """Install a Debian package unless that is impossible or was tried this session already.

    Returns a note for the skip line when there is something to say, else None."""
    if not can_install():
        return None
    if dpkg_installed(package):
        return f"dpkg lists {package} as installed"
    lock_path = Path(tempfile.gettempdir()) / "gisgate-test-apt.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # other workers and runs wait here while apt works
        state_path = _state_file()
        state = json.loads(state_path.read_text()) if state_path.exists() else {"updated": False, "tried": {}}
        if package in state["tried"]:
            return state["tried"][package]
        if dpkg_installed(package):  # another worker installed it while this one waited
            return f"dpkg lists {package} as installed"
        if not state["updated"]:
            state["updated"] = True
            _apt("update", timeout=UPDATE_TIMEOUT)  # a failure may still leave usable lists: try anyway
        error = _apt("install", "-y", package, timeout=INSTALL_TIMEOUT)
        note = f"tried: {error}" if error else f"apt-get install {package} worked, yet it is still missing"
        state["tried"][package] = note
        state_path.write_text(json.dumps(state))
        return note


def end_session() -> None:
    """Forget this session's install attempts (called once, by the controlling process)."""
    _state_file().unlink(missing_ok=True)
