"""Pickup: which inbox files are inputs, and when one is stable enough to take.

watchdog events are only hints that wake the loop early; a full listing of every inbox every
`rescan_seconds` is the truth (inotify misses writes made on the server side of a network share,
and its thread can die silently). On cifs / nfs / fuse mounts the polling observer is used. A file
is taken when it is stable: not a temp name (`*.part`, `*.tmp`, `.*`, `~$*`), its done-file present
when the route asks for one, and its size and mtime unchanged across two looks `settle` seconds
apart, counted from when gisgate first saw it (SFTP clients preserve old mtimes). A file still
changing after `stuck_seconds` is reported, not taken. Files go oldest first, and at most
`queue_limit` are tracked at once: the inbox itself is the buffer. A file the gateway wrote whole
itself (a platform answer a source fetched: temp name, fsync, rename) is announced with
`Hints.landed` and taken at once, without settling.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gisgate.config import Route

log = logging.getLogger("gisgate.watch")

TEMP_PATTERNS = ("*.part", "*.tmp", ".*", "~$*")
DONE_SUFFIX = ".done"
CANARY = ".gisgate-canary"
NETWORK_FS = {"cifs", "smb3", "smbfs", "nfs", "nfs4", "9p", "fuse", "fuseblk", "afs", "ceph", "glusterfs"}
LISTING_NOTE_SECONDS = 2.0  # a listing that takes longer logs its progress (start-up over a big backlog)


def is_candidate(name: str, route: Route) -> bool:
    """Whether `name` in `route`'s inbox is an input at all (temp names and done-files are not)."""
    if any(fnmatch.fnmatchcase(name, p) for p in TEMP_PATTERNS):
        return False
    if route.done_file and name.endswith(DONE_SUFFIX):
        return False
    if not any(fnmatch.fnmatchcase(name, p) for p in route.include):
        return False
    return not any(fnmatch.fnmatchcase(name, p) for p in route.exclude)


def filesystem_type(path: Path, mounts: str = "/proc/mounts") -> str:
    """The file system type of the mount holding `path` (longest mount point prefix), or ""."""
    try:
        lines = Path(mounts).read_text().splitlines()
    except OSError:
        return ""
    real = os.path.realpath(path)
    best, kind = "", ""
    for line in lines:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        if (real == point or real.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, parts[2]
    return kind


def is_network(path: Path) -> bool:
    kind = filesystem_type(path)
    return kind in NETWORK_FS or kind.startswith("fuse.")


def unwatched(root: Path, inboxes: list[Path]) -> list[Path]:
    """Files sitting where no route looks: directly in `<root>/inbox/` when no route watches it, and
    in the subfolders of `<root>/inbox/` that no route watches (temp names and done-files left out).
    A partner who drops into the wrong folder would otherwise be ignored without a word."""
    top = root / "inbox"
    watched = {os.path.realpath(p) for p in inboxes}
    try:
        folders = [top, *sorted(d for d in top.iterdir() if d.is_dir() and not d.name.startswith("."))]
    except OSError:  # no <root>/inbox/ (every route watches elsewhere), or unreadable
        return []
    found = []
    for folder in folders:
        if os.path.realpath(folder) in watched:
            continue
        try:
            with os.scandir(folder) as it:
                found += [Path(e.path) for e in it if e.is_file(follow_symlinks=False)
                          and not e.name.endswith(DONE_SUFFIX)
                          and not any(fnmatch.fnmatchcase(e.name, p) for p in TEMP_PATTERNS)]
        except OSError:
            continue
    return sorted(found)


def folder_name(path: Path, root: Path) -> str:
    """A folder as messages show it: relative to the gateway root when inside it, with a final `/`."""
    try:
        return f"{path.relative_to(root)}/"
    except ValueError:
        return f"{path}/"


# ---- per-inbox tracking --------------------------------------------------------------------------


@dataclass
class Seen:
    size: int
    mtime_ns: int
    first_seen: float  # wall clock, for the ledger
    first_mono: float
    changed_mono: float
    stuck_reported: bool = False
    looks: int = 0
    whole: bool = False  # written whole by the gateway itself (a fetched answer): no need to settle


@dataclass
class Inbox:
    route: Route
    path: Path
    settle: float
    seen: dict[str, Seen] = field(default_factory=dict)
    canary_written: float = 0.0
    canary_seen: float = 0.0
    stuck: set[str] = field(default_factory=set)

    def scan(self, room: int, times: dict[str, tuple[float, float]] | None = None,
             whole: set[str] = frozenset()) -> None:
        """Start tracking new candidates, oldest first, at most `room` of them (the queue limit).

        A file's last change counts from its last file event when there was one (the loop may list
        the inbox a little later than the event), else from now."""
        times = times or {}
        for name in whole & self.seen.keys():  # listed already (its rename's file event came first)
            self.seen[name].whole = True
        fresh = []
        started = time.monotonic()
        next_note = started + LISTING_NOTE_SECONDS
        try:
            with os.scandir(self.path) as it:
                for e in it:
                    if time.monotonic() > next_note:  # a huge inbox (or a slow share): say it is being read
                        log.info("listing inbox %s: %d candidate file(s) so far", self.path, len(fresh))
                        next_note += LISTING_NOTE_SECONDS
                    if e.name in self.seen or not is_candidate(e.name, self.route):
                        continue
                    try:
                        if not e.is_file(follow_symlinks=False):
                            continue
                        st = e.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    fresh.append((st.st_mtime_ns, e.name, st.st_size))
        except FileNotFoundError:
            log.error("inbox %s is missing; creating it", self.path)
            self.path.mkdir(parents=True, exist_ok=True)
            return
        except OSError as e:
            log.error("cannot list inbox %s: %s", self.path, e.strerror)
            return
        took = time.monotonic() - started
        if took > LISTING_NOTE_SECONDS or len(fresh) > room:
            log.info("listed inbox %s in %.1f s: %d candidate file(s), %d taken into the queue (limit %d)",
                     self.path, took, len(fresh), max(0, min(room, len(fresh))), room)
        if room <= 0 or not fresh:
            return
        fresh.sort()
        now, wall = time.monotonic(), time.time()
        for mtime_ns, name, size in fresh[:room]:
            mono, at = times.get(name, (now, wall))
            self.seen[name] = Seen(size, mtime_ns, at, mono, mono, whole=name in whole)

    def look(self, now: float) -> list[tuple[float, int, str]]:
        """Stat every tracked file; return the stable ones as (first seen, mtime, name)."""
        ready = []
        for name, s in list(self.seen.items()):
            try:
                st = os.stat(self.path / name)
            except OSError:
                del self.seen[name]
                self.stuck.discard(name)
                continue
            s.looks += 1
            if (st.st_size, st.st_mtime_ns) != (s.size, s.mtime_ns):
                s.size, s.mtime_ns, s.changed_mono, s.whole = st.st_size, st.st_mtime_ns, now, False
            # stable: unchanged for `settle`, and confirmed by a look after the one that listed it
            if s.whole or (now - s.changed_mono >= self.settle and s.looks >= 2):
                if self.route.done_file and not (self.path / (name + DONE_SUFFIX)).exists():
                    continue
                ready.append((s.first_seen, s.mtime_ns, name))
            elif now - s.first_mono > self.route.stuck_seconds and not s.stuck_reported:
                s.stuck_reported = True
                self.stuck.add(name)
                log.error("%s/%s is still being written after %.0f s: not taken (a stuck upload?)",
                          self.route.name, name, now - s.first_mono)
        return ready


class Hints:
    """watchdog events turned into 'look at this inbox soon' (the listing decides what is true)."""

    def __init__(self, wake: threading.Event, inboxes: list[Inbox]):
        self.wake = wake
        self.by_dir = {os.path.realpath(i.path): n for n, i in enumerate(inboxes)}
        self.inboxes = inboxes
        self.pending: dict[int, dict[str, tuple[float, float]]] = {}  # inbox -> name -> last event (mono, wall)
        self.lock = threading.Lock()
        self.events = 0
        self.whole: set[tuple[int, str]] = set()  # (inbox, name) the gateway wrote whole itself

    def dispatch(self, event) -> None:  # watchdog's handler interface
        path = getattr(event, "dest_path", "") or event.src_path
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        n = self.by_dir.get(os.path.dirname(os.path.realpath(path)))
        if n is None:
            return
        self.events += 1
        if os.path.basename(path) == CANARY:
            self.inboxes[n].canary_seen = time.monotonic()
            return
        with self.lock:
            self.pending.setdefault(n, {})[os.path.basename(path)] = (time.monotonic(), time.time())
        self.wake.set()

    def landed(self, path: Path) -> None:
        """A file the gateway itself wrote whole into an inbox (temp name, fsync, rename: a fetched
        answer): taken at once, without waiting for it to settle."""
        n = self.by_dir.get(os.path.dirname(os.path.realpath(path)))
        if n is None:
            return
        with self.lock:
            self.pending.setdefault(n, {})[path.name] = (time.monotonic(), time.time())
            self.whole.add((n, path.name))
        self.wake.set()

    def take_whole(self, n: int) -> set[str]:
        """For `Inbox.scan` of inbox `n`: the names `landed` since the last call."""
        with self.lock:
            names = {name for i, name in self.whole if i == n}
            self.whole -= {(n, name) for name in names}
        return names

    def take(self) -> dict[int, dict[str, tuple[float, float]]]:
        """The inboxes with events since the last call, with each named file's last event time."""
        with self.lock:
            taken, self.pending = self.pending, {}
        return taken


def no_move_pairing_delay() -> None:
    """watchdog holds every IN_MOVED_FROM for 0.5 s to pair it with its IN_MOVED_TO, and the events
    queued behind it wait too. Each claim moves a file out of an inbox, so that would delay every
    hint by up to 0.5 s; events are only hints here, so moves need no pairing."""
    for module, cls in (("watchdog.observers.inotify_move_event_grouper", "InotifyMoveEventGrouper"),
                        ("watchdog.observers.inotify_buffer", "InotifyBuffer")):  # watchdog >= 6 / older
        try:
            getattr(__import__(module, fromlist=[cls]), cls).delay = 0.0
        except (ImportError, AttributeError):
            continue
