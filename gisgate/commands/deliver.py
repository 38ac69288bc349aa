"""One-shot delivery of produced files through a configured target (`gisgate deliver`).

    result = deliver_files(paths, config, "wfo", deadline_s=120)

Files are grouped into the batches that must travel together: an interval's AGENT and SERVICE file;
a CONTACT / TEXTCONTACT CSV with the media or `.txt` bodies it references (found among the given
files or beside the CSV), media first and the CSV last; every other file alone. Each batch is sent
once (an sftp target sends them all in one pipelined run, `SftpTarget.deliver_many`, and the failed
ones are retried after it); transient failures are retried with exponential backoff and jitter until
the deadline, which bounds the whole call: each request's timeouts are cut to the time left
(`Target.time_left`).
The target is always closed (a Webex session logged out) before returning or raising.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gisgate.config import Config
from gisgate.errors import (
    ConfigError,
    DeliveryError,
    InputError,
    PermanentDeliveryError,
    Problem,
    TransientDeliveryError,
)
from gisgate.produced import OUTPUTS, kind_of, referenced_files, travel_key
from gisgate.retry import Policy
from gisgate.targets import Receipt, open_target

log = logging.getLogger(__name__)
CLOSE_RESERVE_S = 5.0  # of the deadline, kept for ending the session (at most a tenth of it)
__all__ = ["Delivery", "batches", "deliver_files"]


@dataclass
class Delivery:
    """What a one-shot delivery did."""

    target: str
    receipts: list[Receipt] = field(default_factory=list)
    failed: list[tuple[list[str], str]] = field(default_factory=list)  # (file names, reason)
    attempts: int = 0

    def summary(self) -> str:
        files = sum(len(r.delivered) for r in self.receipts)
        return (
            f"delivered {files} file(s) in {len(self.receipts)} batch(es) to {self.target} "
            f"({self.attempts} attempt(s))"
        )


def batches(paths: list[Path], kind: str | None = None) -> list[list[Path]]:
    """Group files into the batches that travel together, in the order the files were given."""
    paths = [Path(p) for p in paths]
    kinds = {p: _kind(p, kind) for p in paths}
    real = {p: p.resolve() for p in paths}  # once per file: resolving costs a stat per path component
    given = {r: p for p, r in real.items()}
    used: set[Path] = set()
    problems: list[Problem] = []
    groups: list[list[Path]] = []
    for p in paths:  # contact batches first claim their media, wherever those were listed
        if kinds[p] in ("contact", "textcontact"):
            media = []
            for name in referenced_files(p):
                resolved = (p.parent / name).resolve()
                m = given.get(resolved, p.parent / name)
                if not m.is_file():
                    problems.append(Problem(str(p), 0, "", f"references {name}, which is not beside it"))
                media.append(m)
                used.add(resolved)
            groups.append(media + [p])
            used.add(real[p])
    if problems:
        raise InputError(problems)
    travelling: dict[str, list[tuple[int, Path]]] = {}
    for p in paths:
        if real[p] in used:
            continue
        key, seq = travel_key(p.name, kinds[p]) if kinds[p] == "gis" else (f"file:{real[p]}", 0)
        travelling.setdefault(key, []).append((seq, p))
        used.add(real[p])
    return groups + [[p for _, p in sorted(files, key=lambda f: f[0])] for files in travelling.values()]


def _kind(path: Path, kind: str | None) -> str:
    if kind in ("contact", "textcontact"):
        return kind if path.suffix.lower() == ".csv" else "media"
    return kind or kind_of(path)


def deliver_files(
    paths: list[Path],
    config: Config,
    target_name: str,
    *,
    kind: str | None = None,
    deadline_s: float = 120.0,
    backoff_s: tuple[float, float] = (1.0, 30.0),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    jitter: Callable[[], float] = random.random,
) -> Delivery:
    """Deliver `paths` through the target `target_name` of `config`; raise DeliveryError if any batch
    could not be delivered (Transient when a retry later may succeed, Permanent otherwise).

    Transient failures wait as the gateway's outbox does (`retry.Policy`: doubling from
    `backoff_s[0]`, capped at `backoff_s[1]`, with jitter) until the next wait would cross the deadline.
    """
    if kind is not None and kind not in OUTPUTS:
        raise ConfigError(f"unknown kind {kind!r}; known kinds: {', '.join(OUTPUTS)}")
    groups = batches(paths, kind)
    target = open_target(target_name, _spec(config, target_name))
    # The deadline bounds the whole command: no request outlives it (a server that accepts connections
    # and never answers), and a slice of it is kept for closing the session.
    end = clock() + deadline_s
    sending_ends = end - min(CLOSE_RESERVE_S, deadline_s / 10)
    target.time_left = lambda: sending_ends - clock()

    def send(batch):
        return target.deliver(batch, kind=kind)

    def one(groups):  # a target without deliver_many: the first batch's outcome
        try:
            return [send(groups[0])]
        except DeliveryError as e:
            return [e]

    many = getattr(target, "deliver_many", None)  # the sftp target pipelines batches
    run = (lambda groups: many(groups, kind=kind) or one(groups)) if many else one
    retry = _Retry(Policy(*backoff_s), sending_ends, sleep, clock, jitter)
    try:
        result = _send_all(run, send, groups, Delivery(target_name), retry)
    finally:
        target.time_left = lambda: end - clock()
        target.close()
    return result


def _spec(config: Config, target_name: str):
    if target_name not in config.target:
        known = ", ".join(sorted(config.target)) or "none configured"
        raise ConfigError(f"no target {target_name!r} in the config; known targets: {known}")
    spec = config.target[target_name]
    if getattr(spec, "kind", None) == "webex" and spec.acd_server_id is None:
        spec = spec.model_copy(update={"acd_server_id": config.acd.number})
    return spec


def _send_all(run, send, groups: list[list[Path]], result: Delivery, retry: _Retry) -> Delivery:
    """`run(groups)` tries batches from the first (the sftp target several at once, pipelined) and returns
    the outcomes of those it tried; a failed one is retried by `send` as the policy says."""
    transient: TransientDeliveryError | None = None
    permanent: PermanentDeliveryError | None = None
    done = 0
    while done < len(groups):
        if transient is not None:
            # A batch only gives up when its next retry would cross the deadline: time is up, and a
            # failing target must not cost a timeout for every remaining batch.
            result.failed += [([p.name for p in batch], "not tried: the deadline was reached")
                              for batch in groups[done:]]
            break
        outcomes = run(groups[done:])
        for batch, outcome in zip(groups[done:], outcomes, strict=False):  # outcomes: a prefix
            result.attempts += 1
            try:
                result.receipts.append(retry.send(send, batch, result, outcome))
            except TransientDeliveryError as e:
                transient = e
                result.failed.append(([p.name for p in batch], str(e)))
            except PermanentDeliveryError as e:
                permanent = e
                result.failed.append(([p.name for p in batch], str(e)))
        done += len(outcomes)
    if result.failed:
        lines = [f"{result.summary()}; {len(result.failed)} batch(es) failed:"]
        lines += [f"  {', '.join(names)}: {reason}" for names, reason in result.failed]
        if transient is not None:
            raise TransientDeliveryError("\n".join(lines)) from transient
        raise PermanentDeliveryError("\n".join(lines)) from permanent
    return result


@dataclass
class _Retry:
    policy: Policy
    deadline: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    jitter: Callable[[], float]

    def send(self, send, batch: list[Path], result: Delivery, first: Receipt | DeliveryError) -> Receipt:
        """`first` is the outcome of the batch's first attempt; after a transient error wait as the
        policy says and try again, unless the wait would cross the deadline."""
        outcome, attempts = first, 1
        while True:
            if isinstance(outcome, Receipt):
                return outcome
            if not isinstance(outcome, TransientDeliveryError):
                raise outcome
            delay = self.policy.delay(attempts, self.jitter)
            if self.clock() + delay >= self.deadline:
                raise TransientDeliveryError(f"{outcome} (gave up after {attempts} attempt(s): deadline reached)") \
                    from outcome
            log.warning("%s; retrying in %.1f s", outcome, delay)
            self.sleep(delay)
            attempts += 1
            result.attempts += 1
            try:
                outcome = send(batch)
            except DeliveryError as e:
                outcome = e
