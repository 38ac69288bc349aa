"""ZIP uploads: every kind of hostile archive is refused with its reason; nothing lands outside the folder."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from gisgate.errors import InputError
from gisgate.sources import _zip


def make_zip(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


DEFAULT = _zip.Limits()


def reasons(path: Path, limits: _zip.Limits = DEFAULT) -> list[str]:
    with pytest.raises(InputError) as e:
        _zip.members(path, limits)
    return [f"{p.column}: {p.reason}" for p in e.value.problems]


def test_members_are_flattened_to_their_base_names(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"calls/2024/a.wav": b"A", "b.opus": b"B", "calls/": b""})
    found = _zip.members(z)
    assert sorted(found) == ["a.wav", "b.opus"]
    assert _zip.read_member(z, found["a.wav"]) == b"A"


def test_macos_resource_forks_are_ignored(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"a.wav": b"A", "__MACOSX/._a.wav": b"junk"})
    assert list(_zip.members(z)) == ["a.wav"]


def test_colliding_names_after_flattening_are_refused_case_insensitively(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"x/rec.wav": b"1", "y/REC.wav": b"2"})
    assert reasons(z) == ["y/REC.wav: same file name as 'x/rec.wav' once folders are flattened"]


@pytest.mark.parametrize("name, reason", [
    ("../evil.wav", "path climbs out of the archive (..)"),
    ("a/../../evil.wav", "path climbs out of the archive (..)"),
    ("..\\evil.wav", "path climbs out of the archive (..)"),
    ("/etc/evil.wav", "absolute path"),
    ("C:\\temp\\evil.wav", "absolute path"),
    ("\\\\host\\share\\evil.wav", "absolute path"),
])
def test_traversal_and_absolute_paths_are_refused(tmp_path, name, reason):
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), b"x")  # ZipInfo keeps the name as given
    assert reasons(z) == [f"{name}: {reason}"]


def test_symlink_members_are_refused(tmp_path):
    z = tmp_path / "m.zip"
    info = zipfile.ZipInfo("link.wav")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(info, "/etc/passwd")
        zf.writestr("ok.wav", b"x")
    assert reasons(z) == ["link.wav: symbolic link"]


def test_encrypted_members_are_refused(tmp_path):
    # The stdlib cannot encrypt, so set the "encrypted" flag bit the way an encrypting archiver
    # does, in the local header (offset 6) and in the central directory entry (offset 8).
    z = make_zip(tmp_path / "m.zip", {"secret.wav": b"ciphertext"}, zipfile.ZIP_STORED)
    data = bytearray(z.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + offset] |= 0x1
    z.write_bytes(bytes(data))
    assert reasons(z) == ["secret.wav: encrypted member (password-protected ZIPs are not accepted)"]


def test_a_member_that_inflates_too_much_is_a_bomb(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"bomb.wav": bytes(4 * 1024 * 1024)})
    (reason,) = reasons(z)
    assert reason.startswith("bomb.wav: inflates ") and "looks like a decompression bomb" in reason


def test_small_members_may_compress_well(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"quiet.wav": bytes(100_000)})  # 100 kB of silence: harmless
    assert list(_zip.members(z)) == ["quiet.wav"]


def test_total_size_and_member_count_are_capped(tmp_path):
    z = make_zip(tmp_path / "m.zip", {f"{n}.wav": bytes(1000) for n in range(5)}, zipfile.ZIP_STORED)
    got = reasons(z, _zip.Limits(max_bytes=4000, max_members=3))
    assert got == [": 5 members, at most 3 allowed",
                   ": members inflate to 5000 bytes, at most 4000 allowed: looks like a decompression bomb"]


def test_every_refusal_is_listed_at_once(tmp_path):
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo("../a.wav"), b"x")
        zf.writestr(zipfile.ZipInfo("/b.wav"), b"x")
        zf.writestr("c/d.wav", b"x")
        zf.writestr("e/d.wav", b"x")
    assert len(reasons(z)) == 3


def test_not_a_zip(tmp_path):
    bad = tmp_path / "m.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    (reason,) = reasons(bad)
    assert reason.startswith(": not a readable ZIP archive")


def test_extract_writes_only_into_the_work_folder(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"deep/er/a.wav": b"A", "b.opus": b"B"})
    work = tmp_path / "work"
    work.mkdir()
    before = sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(work))
    written = _zip.extract(z, work)
    assert written == {"a.wav": work.resolve() / "a.wav", "b.opus": work.resolve() / "b.opus"}
    assert sorted(p.name for p in work.iterdir()) == ["a.wav", "b.opus"]  # no temp files left
    assert (work / "a.wav").read_bytes() == b"A"
    assert sorted(p for p in tmp_path.rglob("*") if not p.is_relative_to(work)) == before


def test_extract_refuses_hostile_archives_before_writing_anything(tmp_path):
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("fine.wav", b"x")
        zf.writestr(zipfile.ZipInfo("../escape.wav"), b"x")
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InputError):
        _zip.extract(z, work)
    assert list(work.iterdir()) == []
    assert not (tmp_path / "escape.wav").exists()


def test_extract_never_replaces_an_existing_file(tmp_path):
    z = make_zip(tmp_path / "m.zip", {"a.wav": b"new"})
    work = tmp_path / "work"
    work.mkdir()
    (work / "a.wav").write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        _zip.extract(z, work)
    assert (work / "a.wav").read_bytes() == b"old"
