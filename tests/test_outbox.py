"""The outbox worker against the real ledger and real folders, with a target told how to fail
and a clock the test moves (so backoff and the breaker need no sleeping)."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from gisgate.errors import PermanentDeliveryError, TransientDeliveryError
from gisgate.gateway import outbox
from gisgate.gateway.delivery import Worker
from gisgate.gateway.ledger import Ledger, StagedOutput
from gisgate.gateway.retention import prune
from gisgate.model import Output
from gisgate.produced import travel_key
from gisgate.retry import Policy
from gisgate.targets import Receipt
from gisgate.targets.folder import FolderTarget


class Clock:
    def __init__(self):
        self.t = 1_000_000.0

    def __call__(self):
        return self.t


class FakeTarget:
    """Records every batch; raises the queued errors first."""

    def __init__(self, name="t", errors=()):
        self.name = name
        self.errors = list(errors)
        self.batches: list[list[str]] = []
        self.calls = 0

    def deliver(self, batch: list[Path], kind: str | None = None) -> Receipt:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        assert all(p.exists() and p.parent.name == "sending" for p in batch)
        self.batches.append([p.name for p in batch])
        return Receipt(self.name, [p.name for p in batch])

    def probe(self) -> str:
        return "fake"

    def outcomes(self, sent):
        return {}

    def close(self):
        pass


def queue(tmp_path: Path, led: Ledger, outputs: list[Output], target="t") -> None:
    """Stage `outputs` for `target` the way the gateway does."""
    input_id = led.start_input("r", "in.csv", 1, hashlib.sha256(repr(outputs).encode()).hexdigest(), 0.0)
    staged = []
    for out in outputs:
        outbox.stage(tmp_path / "outbox", target, out.name, out.data)
        key, seq = travel_key(out.name, out.kind)
        batch = f"{input_id}:{key}"
        staged.append(StagedOutput(out.name, out.kind, None, hashlib.sha256(out.data).hexdigest(), len(out.data),
                                   target, batch, seq))
    led.record_outputs(input_id, staged, "archive/in.csv")


def worker(tmp_path, target, clock, **policy) -> Worker:
    return Worker(tmp_path / "outbox", lambda: Ledger(tmp_path / "gisgate.db", now=clock), {target.name: target},
                         Policy(**policy), threading.Lock(), now=clock)


@pytest.fixture
def led(tmp_path):
    clock = Clock()
    ledger = Ledger(tmp_path / "gisgate.db", now=clock)
    ledger.clock = clock
    yield ledger
    ledger.close()


def gis_pair(interval: str) -> list[Output]:
    return [Output(f"{interval}P0000_1_AgentProductivity.AGENT", b"a" + interval.encode(), "gis-agent", interval),
            Output(f"{interval}P0000_1_ServiceHistorical.SERVICE", b"s" + interval.encode(), "gis-service", interval)]


def test_interval_pairs_travel_together_oldest_first(tmp_path, led):
    queue(tmp_path, led, gis_pair("202611020800"))
    queue(tmp_path, led, gis_pair("202611020815"))
    target = FakeTarget()
    w = worker(tmp_path, target, led.clock)
    while w.run_once(led):
        pass
    assert target.batches == [[o.name for o in gis_pair("202611020800")], [o.name for o in gis_pair("202611020815")]]
    assert sorted(p.name for p in (tmp_path / "outbox/t/sent").rglob("*.*")) == sorted(
        o.name for o in gis_pair("202611020800") + gis_pair("202611020815"))
    assert list((tmp_path / "outbox/t/pending").iterdir()) == []


def test_contact_batch_sends_media_first_and_csv_last(tmp_path, led):
    queue(tmp_path, led, [Output("CONTACT.b1.csv", b"csv", "contact"), Output("call1.wav", b"w1", "contact-media"),
                          Output("call2.wav", b"w2", "contact-media")])
    target = FakeTarget()
    worker(tmp_path, target, led.clock).run_once(led)
    assert target.batches == [["call1.wav", "call2.wav", "CONTACT.b1.csv"]]


def test_transient_errors_back_off_with_jitter_and_survive_a_restart(tmp_path, led):
    queue(tmp_path, led, gis_pair("202611020800"))
    target = FakeTarget(errors=[TransientDeliveryError("down")] * 3)
    clock = led.clock
    w = worker(tmp_path, target, clock, backoff_seconds=10, backoff_max_seconds=100)
    delays = []
    for attempt in range(1, 4):
        assert w.run_once(led)
        [row, _] = led.deliveries_in("pending")
        assert row.attempts == attempt
        delays.append(row.next_try - clock.t)
        assert not w.run_once(led), "nothing is due before next_try"
        clock.t = row.next_try
    # equal jitter: between half and all of 10, 20, 40 s
    assert 5 <= delays[0] <= 10 and 10 <= delays[1] <= 20 and 20 <= delays[2] <= 40
    assert [p.name for p in (tmp_path / "outbox/t/pending").iterdir()] != []
    # a new worker and ledger (a restart) see the same attempts and next try
    led2 = Ledger(tmp_path / "gisgate.db", now=clock)
    w2 = worker(tmp_path, target, clock)
    w2.recover(led2)
    assert w2.run_once(led2)
    assert target.batches == [[o.name for o in gis_pair("202611020800")]]
    assert [r.attempts for r in led2.deliveries_in("sent")] == [4, 4]
    led2.close()


def test_permanent_error_goes_to_failed_with_a_reason(tmp_path, led):
    queue(tmp_path, led, gis_pair("202611020800"))
    target = FakeTarget(errors=[PermanentDeliveryError("target 't': access refused by the server")])
    worker(tmp_path, target, led.clock).run_once(led)
    failed = tmp_path / "outbox/t/failed"
    names = sorted(p.name for p in failed.iterdir())
    assert names == sorted([*(o.name for o in gis_pair("202611020800")),
                            *(o.name + ".reason.txt" for o in gis_pair("202611020800"))])
    reason = (failed / (gis_pair("202611020800")[0].name + ".reason.txt")).read_text()
    assert "access refused" in reason and "gisgate retry" in reason
    assert len(led.deliveries_in("failed")) == 2


def test_gives_up_after_max_attempts(tmp_path, led):
    queue(tmp_path, led, gis_pair("202611020800"))
    target = FakeTarget(errors=[TransientDeliveryError("timeout")] * 5)
    w = worker(tmp_path, target, led.clock, max_attempts=3, backoff_seconds=1)
    for _ in range(3):
        led.clock.t += 10
        w.run_once(led)
    assert target.calls == 3
    assert len(led.deliveries_in("failed")) == 2
    assert "gave up after 3 attempts" in (tmp_path / "outbox/t/failed").joinpath(
        gis_pair("202611020800")[1].name + ".reason.txt").read_text()


def test_circuit_breaker_pauses_a_failing_target_then_probes_once(tmp_path, led):
    for i in range(5):
        queue(tmp_path, led, gis_pair(f"2026110208{15 * i:02}"[:12]))
    target = FakeTarget(errors=[TransientDeliveryError("refused")] * 3)
    w = worker(tmp_path, target, led.clock, backoff_seconds=1, backoff_max_seconds=1, breaker_failures=2,
               breaker_seconds=60)
    for _ in range(5):
        led.clock.t += 2
        w.run_once(led)
    assert target.calls == 2, "open after 2 failures: no more calls while open"
    led.clock.t += 60
    w.run_once(led)
    assert target.calls == 3, "one probe after the cool-down (it fails: open again)"
    w.run_once(led)
    assert target.calls == 3
    led.clock.t += 60
    for _ in range(10):
        led.clock.t += 2
        w.run_once(led)
    assert len(target.batches) == 5  # closed again after the first success, everything went


def test_folder_target_writes_atomically_and_skips_identical_files(tmp_path):
    src = tmp_path / "sending"
    src.mkdir()
    a = src / "202611020800P0000_1_AgentProductivity.AGENT"
    a.write_bytes(b"agent")
    dest = tmp_path / "dataserver" / "gis"
    target = FolderTarget("ds", type("Spec", (), {"path": str(dest)})())
    receipt = target.deliver([a])
    assert receipt.delivered == [a.name] and (dest / a.name).read_bytes() == b"agent"
    before = (dest / a.name).stat().st_mtime_ns
    target.deliver([a])  # a re-send after a crash: same bytes, left alone
    assert (dest / a.name).stat().st_mtime_ns == before
    assert [p.name for p in dest.iterdir()] == [a.name]  # no temp file left behind


def test_folder_target_classifies_errors(tmp_path):
    a = tmp_path / "x.SERVICE"
    a.write_bytes(b"s")
    blocker = tmp_path / "file-not-dir"
    blocker.write_bytes(b"")
    with pytest.raises(PermanentDeliveryError) as e:
        FolderTarget("ds", type("Spec", (), {"path": str(blocker / "sub")})()).deliver([a])
    assert "cannot write x.SERVICE" in str(e.value) and isinstance(e.value.__cause__, OSError)
    gone = tmp_path / "vanished.SERVICE"
    with pytest.raises(TransientDeliveryError):
        FolderTarget("ds", type("Spec", (), {"path": str(tmp_path / "out")})()).deliver([gone])


def test_archive_retention_by_age_then_size(tmp_path):
    archive = tmp_path / "archive"
    for day, names in {"2026-11-01": ["a", "b"], "2026-11-20": ["c"], "2026-11-25": ["d", "e"]}.items():
        (archive / "r" / day).mkdir(parents=True)
        for n in names:
            (archive / "r" / day / f"{n}.csv").write_bytes(b"x" * 100)
    (archive / "r" / "notes").mkdir()  # not a date folder: never touched
    (archive / "r" / "notes" / "keep.txt").write_bytes(b"k")
    now = 1795651200.0  # 2026-11-26 00:00 UTC
    removed = prune(archive, keep_days=10, max_bytes=None, now=now)
    assert sorted(p.name for p in removed) == ["a.csv", "b.csv"] and not (archive / "r" / "2026-11-01").exists()
    removed = prune(archive, keep_days=None, max_bytes=250, now=now)
    assert [p.name for p in removed] == ["c.csv"]  # oldest first, until <= 250 bytes
    assert sorted(p.name for p in archive.rglob("*.*")) == ["d.csv", "e.csv", "keep.txt"]
    assert prune(archive, None, None, now=now) == []


def test_folder_target_reports_unread_files(tmp_path):
    spec = type("Spec", (), {"path": str(tmp_path / "gis" / "acme"), "archives": "../archives*",
                             "penalty_box": "../penaltyBox/*", "consume_alert_minutes": 15.0})()
    target = FolderTarget("ds", spec)
    src = tmp_path / "x.SERVICE"
    src.write_bytes(b"s")
    target.deliver([src])
    assert target.outcomes([("x.SERVICE", 1000.0)], now=1000.0 + 60) == {}
    assert target.outcomes([("x.SERVICE", 1000.0)], now=1000.0 + 16 * 60) == {"x.SERVICE": "unread"}
    plain = FolderTarget("ds", type("Spec", (), {"path": str(tmp_path / "out")})())
    assert plain.outcomes([("x.SERVICE", 0.0)]) == {}
