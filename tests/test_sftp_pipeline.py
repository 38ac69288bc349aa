"""Pipelined runs of many batches through the sftp target (`deliver_many`, stream.py), as `gisgate
deliver` sends them: several files in flight across batches, each batch still made visible in order,
a failed file failing its own batch only, and nothing half-written left under a final name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sftp_faults import FaultySftpServer
from test_target_sftp import files, names, spec_for

from gisgate import config
from gisgate.commands.deliver import deliver_files
from gisgate.errors import PermanentDeliveryError, TransientDeliveryError
from gisgate.targets import Receipt
from gisgate.targets.sftp import SftpTarget
from gisgate.targets.sftp.stream import WINDOW_FILES


def agent(stamp: int) -> str:
    return f"2026110{2 + stamp // 96}{stamp % 96 // 4:02d}{stamp % 4 * 15:02d}P0000_7_AgentProductivity.AGENT"


def service(stamp: int) -> str:
    return agent(stamp).replace("AgentProductivity.AGENT", "ServiceHistorical.SERVICE")


def make_batches(folder: Path, spec: list[dict[str, bytes]]) -> list[list[Path]]:
    return [files(folder / str(i), contents) for i, contents in enumerate(spec)]


def no_temp_files(folder: Path) -> bool:
    return not [n for n in names(folder) if n.startswith(".~gisgate-")]


def faulty_config(folder: Path, server) -> Path:
    toml = folder / "gisgate.toml"
    toml.write_text(f'[target.ds]\nkind = "sftp"\nhost = "{server.host}"\nport = {server.port}\n'
                    f'user = "{server.user}"\nhost_key = "{server.host_key_line.strip()}"\n'
                    f'key_file = "{server.client_key}"\ntimeout_s = 5\n')
    return toml


@pytest.fixture
def faulty(tmp_path):
    with FaultySftpServer(tmp_path / "faulty") as server:
        yield server


def test_a_run_of_many_batches_delivers_each_complete_and_in_its_order(sshd, tmp_path):
    remote = "pipeline-run"
    (sshd.root / remote).mkdir()
    spec: list[dict[str, bytes]] = []
    for i in range(40):
        if i % 10 == 3:  # a contact batch: media first, the CSV last
            spec.append({f"call-{i}.wav": os.urandom(70_000), f"mail-{i}.txt": b"body",
                         f"CONTACT.run-{i}.csv": f"AgentId,Recording1\r\na,call-{i}.wav\r\n".encode()})
        elif i % 2:
            spec.append({agent(i): os.urandom(40_000), service(i): os.urandom(3_000)})
        else:
            spec.append({agent(i): os.urandom(40_000 + i)})
    batches = make_batches(tmp_path, spec)
    target = SftpTarget("ds", spec_for(sshd, path=remote))
    try:
        outcomes = target.deliver_many(batches)
    finally:
        target.close()
    assert [type(o) for o in outcomes] == [Receipt] * len(batches)
    assert [o.delivered for o in outcomes] == [[p.name for p in b] for b in batches]
    folder = sshd.root / remote
    assert no_temp_files(folder) and len(names(folder)) == sum(len(b) for b in batches)
    for batch in batches:
        assert all((folder / p.name).read_bytes() == p.read_bytes() for p in batch)
        renamed_at = [(folder / p.name).stat().st_ctime_ns for p in batch]
        assert renamed_at == sorted(renamed_at)  # each batch made visible in its order
    assert target.connections == 1


def test_a_file_failing_mid_run_fails_its_batch_only_and_leaves_nothing_half_written(faulty, tmp_path):
    faulty.faults.short_at = 100_000  # every write acknowledged, a big file's tail silently lost
    spec: list[dict[str, bytes]] = [{agent(i): b"a%d" % i} for i in range(8)]
    spec[2] = {service(2): b"fits", agent(2): os.urandom(300_000)}  # its first file is renamed before
    spec[5] = {agent(5): os.urandom(300_000), service(5): b"never renamed"}
    batches = make_batches(tmp_path, spec)
    target = SftpTarget("ds", spec_for(faulty))
    outcomes = target.deliver_many(batches)
    assert len(outcomes) == len(batches)
    failed = {i: o for i, o in enumerate(outcomes) if not isinstance(o, Receipt)}
    assert sorted(failed) == [2, 5]
    assert all(isinstance(o, TransientDeliveryError) for o in failed.values())
    assert failed[2].delivered == [service(2)] and str(failed[2]).endswith(f"(already delivered: {service(2)})")
    assert failed[5].delivered == []
    assert f"the server holds 100000 bytes of {agent(5)}, expected 300000" in str(failed[5])
    assert isinstance(failed[5].__cause__, Exception)
    delivered = sorted(n for o in outcomes if isinstance(o, Receipt) for n in o.delivered)
    assert names(faulty.root) == sorted([*delivered, service(2)])  # no temp file, no short file
    for i, o in enumerate(outcomes):
        if isinstance(o, Receipt):
            assert o.delivered == [p.name for p in batches[i]]
    faulty.faults.short_at = None
    assert isinstance(target.deliver_many([batches[5]])[0], Receipt)  # the same connection goes on
    target.close()
    assert target.connections == 1
    assert (faulty.root / agent(5)).read_bytes() == batches[5][0].read_bytes()


def test_a_contact_batch_whose_media_fails_never_shows_its_csv(faulty, tmp_path):
    faulty.faults.short_at = 100_000
    contact = {"call-1.wav": b"RIFF small", "call-2.wav": os.urandom(200_000), "call-3.wav": b"RIFF",
               "CONTACT.run-1.csv": b"AgentId,Recording1\r\na,call-1.wav\r\na,call-2.wav\r\na,call-3.wav\r\n"}
    batches = make_batches(tmp_path, [{agent(0): b"a"}, contact, {agent(1): b"b"}])
    target = SftpTarget("ds", spec_for(faulty))
    outcomes = target.deliver_many(batches)
    target.close()
    assert isinstance(outcomes[0], Receipt) and isinstance(outcomes[2], Receipt)
    assert outcomes[1].delivered == ["call-1.wav"]  # visible in order, and nothing after the failed file
    assert names(faulty.root) == sorted([agent(0), agent(1), "call-1.wav"])


def test_a_refused_directory_fails_its_batches_permanently_and_the_others_arrive(faulty, tmp_path):
    for day in ("20261102", "20261103"):
        (faulty.root / "gis" / day).mkdir(parents=True)
    faulty.faults.deny = "20261103"  # opening anything in that folder: permission denied
    batches = make_batches(tmp_path, [{agent(i): b"x"} for i in range(90, 100)])  # 02 23:30 .. 03 00:45
    target = SftpTarget("ds", spec_for(faulty, path="gis/{date}"))
    outcomes = target.deliver_many(batches)
    target.close()
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Receipt"] * 6 + ["PermanentDeliveryError"] * 4
    assert all("ermission denied" in str(o) for o in outcomes[6:])
    assert names(faulty.root / "gis/20261102") == sorted(agent(i) for i in range(90, 96))
    assert names(faulty.root / "gis/20261103") == []


def test_a_connection_dropped_mid_run_fails_the_batches_in_flight_and_leaves_the_rest(faulty, tmp_path):
    faulty.faults.drop_at = 100_000
    spec: list[dict[str, bytes]] = [{agent(i): b"small %d" % i} for i in range(3 * WINDOW_FILES)]
    spec[3] = {agent(3): os.urandom(400_000)}
    batches = make_batches(tmp_path, spec)
    target = SftpTarget("ds", spec_for(faulty, connect_attempts=1))
    outcomes = target.deliver_many(batches)
    assert 4 <= len(outcomes) <= WINDOW_FILES + 1  # the batches in flight; the rest are not tried
    assert isinstance(outcomes[3], TransientDeliveryError)
    for batch, outcome in zip(batches, outcomes, strict=False):
        if isinstance(outcome, Receipt):  # (a rename whose answer the drop lost may have happened: not known)
            assert (faulty.root / batch[0].name).read_bytes() == batch[0].read_bytes()
    assert not (faulty.root / agent(3)).exists()
    faulty.faults.drop_at = None
    retried = [i for i, o in enumerate(outcomes) if not isinstance(o, Receipt)]
    rest = target.deliver_many([batches[i] for i in retried] + batches[len(outcomes):])
    target.close()
    assert all(isinstance(o, Receipt) for o in rest)
    assert sorted(n for n in names(faulty.root) if not n.startswith(".~")) == sorted(b[0].name for b in batches)
    assert target.connections == 2


def test_gisgate_deliver_retries_a_batch_that_failed_mid_run(faulty, tmp_path):
    faulty.faults.short_at = 100_000
    toml = faulty_config(tmp_path, faulty)
    paths = files(tmp_path / "out", {agent(i): os.urandom(300_000 if i == 4 else 1_000) for i in range(10)})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # the server recovers while gisgate waits to retry
        sleeps.append(seconds)
        faulty.faults.short_at = None

    result = deliver_files(paths, config.load(toml), "ds", deadline_s=60, sleep=sleep, jitter=lambda: 0.0)
    assert sleeps == [0.5]  # one retry, of the one failed batch
    assert result.attempts == 11 and not result.failed
    assert sorted(n for r in result.receipts for n in r.delivered) == sorted(p.name for p in paths)
    assert names(faulty.root) == sorted(p.name for p in paths)
    assert (faulty.root / agent(4)).read_bytes() == paths[4].read_bytes()


def test_gisgate_deliver_names_only_the_batch_that_could_not_be_delivered(faulty, tmp_path):
    faulty.faults.short_at = 100_000
    toml = faulty_config(tmp_path, faulty)
    paths = files(tmp_path / "out", {agent(i): os.urandom(300_000 if i == 4 else 1_000) for i in range(10)})
    with pytest.raises(TransientDeliveryError) as e:
        deliver_files(paths, config.load(toml), "ds", deadline_s=0.4, sleep=lambda s: None, jitter=lambda: 0.0)
    message = str(e.value)
    assert "delivered 9 file(s) in 9 batch(es)" in message and "1 batch(es) failed" in message
    assert f"  {agent(4)}: " in message and "gave up after 1 attempt(s)" in message
    assert names(faulty.root) == sorted(p.name for i, p in enumerate(paths) if i != 4)
    assert not isinstance(e.value, PermanentDeliveryError)


def test_gisgate_deliver_to_sftp_loads_only_what_it_needs(sshd, tmp_path):
    """Start-up is part of what `gisgate deliver` costs: no conversion engine, no HTTP client, and not
    the task runner paramiko would import for OpenSSH client configs."""
    (sshd.root / "lean").mkdir()
    toml = tmp_path / "gisgate.toml"
    toml.write_text(f'[target.ds]\nkind = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
                    f'user = "{sshd.user}"\npath = "lean"\nknown_hosts = "{sshd.known_hosts}"\n'
                    f'key_file = "{sshd.client_key}"\n')
    batch = files(tmp_path / "out", {agent(0): b"agent rows\r\n"})
    # (`main`, not the `gisgate` command: the command may end the process as soon as it is done)
    script = ("import sys\nfrom gisgate.cli import main\n"
              f"sys.argv = ['gisgate', 'deliver', {str(batch[0])!r}, '--target', 'ds', '--config', {str(toml)!r}]\n"
              "try:\n    main()\n"
              "except SystemExit as e:\n    assert not e.code, e.code\n"
              "heavy = {'polars', 'httpx', 'invoke', 'pandas', 'numpy', 'watchdog'}\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "[]"
    assert (sshd.root / "lean" / agent(0)).read_bytes() == b"agent rows\r\n"
