"""ZIP uploads, opened defensively: the archive is untrusted input.

A ZIP is a container only (domain §3.3): its members are flattened to their base names, which are
the keys contact rows reference. Before any member is read the whole archive is checked, and every
reason to refuse it is reported at once:

* a member name that is absolute (`/x`, `C:\\x`, `\\\\host\\x`) or climbs out (`..`);
* a symlink member; an encrypted member;
* two members with the same flattened name (compared case-insensitively: the Data Server may run
  on Windows), e.g. `a/rec.wav` and `b/REC.wav`;
* a decompression bomb: too many members, a total uncompressed size over the cap, or a member
  that inflates more than `max_ratio` times (only checked above `ratio_floor` bytes, where it
  matters).

Nothing is extracted by reading: `read_member` returns bytes, capped at the member's declared size.
`extract` writes members into one folder only (temp name, then rename) for callers that need files.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gisgate.errors import InputError, Problem

CHUNK = 1024 * 1024
IGNORED_DIRS = ("__MACOSX/",)  # resource forks macOS adds to archives it creates


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 4 * 1024**3
    max_ratio: float = 200.0
    max_members: int = 20000
    ratio_floor: int = 1024 * 1024


def _parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]", name) if p not in ("", ".")]


def _refusal(info: zipfile.ZipInfo, limits: Limits) -> str | None:
    name = info.filename
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "absolute path"
    if ".." in _parts(name):
        return "path climbs out of the archive (..)"
    if info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    if info.flag_bits & 0x1:
        return "encrypted member (password-protected ZIPs are not accepted)"
    if info.file_size > limits.ratio_floor and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        return f"inflates {ratio:.0f} times (limit {limits.max_ratio:g}): looks like a decompression bomb"
    return None


def members(path: Path, limits: Limits = Limits()) -> dict[str, zipfile.ZipInfo]:
    """Flattened name -> member of a ZIP, after checking the whole archive; InputError lists every refusal."""
    where = str(path)
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise InputError(f"not a readable ZIP archive: {e}", where) from None
    problems: list[Problem] = []
    files = [i for i in infos if not i.is_dir() and not i.filename.startswith(IGNORED_DIRS)]
    if len(files) > limits.max_members:
        problems.append(Problem(where, 0, "", f"{len(files)} members, at most {limits.max_members} allowed"))
    total = sum(i.file_size for i in files)
    if total > limits.max_bytes:
        problems.append(Problem(where, 0, "", f"members inflate to {total} bytes, at most {limits.max_bytes} "
                                              "allowed: looks like a decompression bomb"))
    out: dict[str, zipfile.ZipInfo] = {}
    seen: dict[str, str] = {}  # casefolded flat name -> first member
    for info in files:
        reason = _refusal(info, limits)
        if reason:
            problems.append(Problem(where, 0, info.filename, reason))
            continue
        flat = _parts(info.filename)[-1]
        if flat.casefold() in seen:
            problems.append(Problem(where, 0, info.filename,
                                    f"same file name as {seen[flat.casefold()]!r} once folders are flattened"))
            continue
        seen[flat.casefold()] = info.filename
        out[flat] = info
    if problems:
        raise InputError(problems)
    return out


def read_member(path: Path, info: zipfile.ZipInfo) -> bytes:
    """The bytes of one (already checked) member, never more than its declared size."""
    try:
        with zipfile.ZipFile(path) as z, z.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise InputError([Problem(str(path), 0, info.filename, f"cannot read member: {e}")]) from None
    if len(data) > info.file_size:
        raise InputError([Problem(str(path), 0, info.filename, "member is larger than its header says")])
    return data


def extract(path: Path, dest: Path, limits: Limits = Limits()) -> dict[str, Path]:
    """Write the checked, flattened members into `dest` (and nowhere else); name -> written path.

    Each member goes to a hidden temp name first and is renamed once complete, so a watcher of
    `dest` never sees half a file. Members that would replace an existing file are refused.
    """
    found = members(path, limits)
    dest = dest.resolve()
    clashes = [Problem(str(path), 0, n, f"{dest / n} already exists") for n in found if (dest / n).exists()]
    if clashes:
        raise InputError(clashes)
    written: dict[str, Path] = {}
    for name, info in sorted(found.items()):
        target = (dest / name).resolve()
        if target.parent != dest:  # defence in depth: flattening already removed separators
            raise InputError([Problem(str(path), 0, info.filename, "would be written outside the work folder")])
        tmp = dest / f".~gisgate-{name}.part"
        with open(tmp, "xb") as out:
            out.write(read_member(path, info))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
        written[name] = target
    return written
