"""tests/system.py, the test set-up's handling of missing system programs, against a fake apt-get and
dpkg-query: install once when root, else skip with one line naming the package, fail when strict."""

from __future__ import annotations

import shutil
import sys
import tempfile

import pytest
import system

FAKE_APT = """\
import os, sys
from pathlib import Path
here = Path(__file__).parent
with open(here / "apt.log", "a") as log:
    log.write(" ".join(sys.argv[1:]) + "\\n")
if "install" in sys.argv:
    package = sys.argv[-1]
    if (here / "unknown").exists():
        sys.exit("E: Unable to locate package " + package)
    (here / ("installed-" + package)).touch()
    if (here / "provides").exists():  # the package brings the program
        program = here / "bin" / "widget"
        program.write_text("#!/bin/sh\\n")
        program.chmod(0o755)
"""

FAKE_DPKG_QUERY = """\
import sys
from pathlib import Path
if (Path(__file__).parent / ("installed-" + sys.argv[-1])).exists():
    print("install ok installed", end="")
else:
    sys.exit(1)
"""


@pytest.fixture
def apt(tmp_path, monkeypatch):
    """A fake apt-get / dpkg-query first on PATH, a part `widget` from package `widget-pkg`, and root."""
    (tmp_path / "bin").mkdir()
    for name, code in (("apt-get", FAKE_APT), ("dpkg-query", FAKE_DPKG_QUERY)):
        (tmp_path / f"{name}.py").write_text(code)
        script = tmp_path / "bin" / name
        script.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / name}.py \"$@\"\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # lock and session state live here
    monkeypatch.setenv(system.SESSION_ENV, "fake-session")
    monkeypatch.delenv(system.STRICT_ENV, raising=False)
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    part = system.Part("Widget", "widget on PATH", "widget-pkg", lambda: shutil.which("widget"))
    monkeypatch.setitem(system.PARTS, "widget", part)

    def calls() -> list[str]:
        log = tmp_path / "apt.log"
        return log.read_text().splitlines() if log.exists() else []

    apt.dir, apt.calls = tmp_path, calls
    return apt


LOCK = "-qq -o DPkg::Lock::Timeout=120"


def test_a_missing_part_is_installed_with_apt_and_then_used(apt):
    (apt.dir / "provides").touch()
    system.require("widget")
    assert apt.calls() == [f"{LOCK} update", f"{LOCK} install -y widget-pkg"]
    system.require("widget")  # present now: apt is not asked again
    assert len(apt.calls()) == 2


def test_a_package_that_does_not_bring_the_part_is_tried_once_then_skipped(apt):
    with pytest.raises(pytest.skip.Exception) as e:
        system.require("widget")
    assert str(e.value.msg) == ("needs Widget (widget on PATH): apt-get install widget-pkg "
                                "(apt-get install widget-pkg worked, yet it is still missing)")
    with pytest.raises(pytest.skip.Exception):
        system.require("widget")
    assert apt.calls() == [f"{LOCK} update", f"{LOCK} install -y widget-pkg"]


def test_an_apt_failure_is_named_in_the_skip_line_and_not_retried(apt):
    (apt.dir / "unknown").touch()
    for _ in range(2):
        with pytest.raises(pytest.skip.Exception) as e:
            system.require("widget")
        assert e.value.msg == ("needs Widget (widget on PATH): apt-get install widget-pkg "
                               "(tried: apt-get install failed: E: Unable to locate package widget-pkg)")
    assert len(apt.calls()) == 2


def test_a_package_dpkg_lists_as_installed_is_not_installed_again(apt):
    (apt.dir / "installed-widget-pkg").touch()  # e.g. the program was removed by hand
    with pytest.raises(pytest.skip.Exception) as e:
        system.require("widget")
    assert e.value.msg == ("needs Widget (widget on PATH): apt-get install widget-pkg "
                           "(dpkg lists widget-pkg as installed)")
    assert apt.calls() == []


def test_without_root_nothing_is_installed_and_the_line_says_how(apt, monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception) as e:
        system.require("widget")
    assert e.value.msg == "needs Widget (widget on PATH): apt-get install widget-pkg"
    assert apt.calls() == []


def test_strict_mode_fails_instead_of_skipping(apt, monkeypatch):
    monkeypatch.setenv(system.STRICT_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="needs Widget .*apt-get install widget-pkg.*GISGATE_TEST_STRICT"):
        system.require("widget")


def test_one_line_names_everything_missing_with_what_the_parts_need(apt, monkeypatch):
    gadget = system.Part("Gadget", "gadget on PATH", "gadget-pkg", lambda: None, needs=("widget", "device"))
    device = system.Part("a device", "/dev/nothing", None, lambda: "/dev/nothing", problem=lambda: "not here")
    monkeypatch.setitem(system.PARTS, "gadget", gadget)
    monkeypatch.setitem(system.PARTS, "device", device)
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception) as e:
        system.require("gadget", "widget")
    assert e.value.msg == ("needs Widget (widget on PATH), Gadget (gadget on PATH): apt-get install widget-pkg "
                           "gadget-pkg; needs a device: not here")
