"""SftpTarget against a real OpenSSH sshd (tests/sshd.py) and a fault-injecting asyncssh server."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sftp_faults import FaultySftpServer
from sshd import Sshd, keygen

from gisgate import config
from gisgate.cli import cli as gisgate_cli
from gisgate.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from gisgate.targets import open_target
from gisgate.targets.sftp import SftpTarget

AGENT = "202611021415P0000_7_AgentProductivity.AGENT"
SERVICE = "202611021415P0000_7_ServiceHistorical.SERVICE"


def spec_for(server, **overrides) -> config.SftpTarget:
    fields = dict(kind="sftp", host=server.host, port=server.port, user=server.user,
                  key_file=str(server.client_key), timeout_s=5, backoff_s=0.05)
    if isinstance(server, Sshd):
        fields["known_hosts"] = str(server.known_hosts)
    else:
        fields["host_key"] = server.host_key_line
    fields.update(overrides)
    return config.SftpTarget(**{k: v for k, v in fields.items() if v is not None})


def files(folder: Path, contents: dict[str, bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in contents.items():
        (folder / name).write_bytes(data)
        paths.append(folder / name)
    return paths


def ssh_fingerprint(pub: Path) -> str:
    """The SHA256 fingerprint as OpenSSH itself prints it."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


def names(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- a real OpenSSH server -----------------------------------------------------------------------


def test_a_batch_arrives_complete_in_order_with_no_temp_names_left(sshd, tmp_path):
    remote = "deliver-batch"
    (sshd.root / remote).mkdir()
    big = os.urandom(300_000)  # several writes
    batch = files(tmp_path, {SERVICE: b"ACD: 7\r\nrow\r\n", AGENT: big, "empty.csv": b""})
    target = SftpTarget("ds", spec_for(sshd, path=remote))
    try:
        receipt = target.deliver(batch)
    finally:
        target.close()
    assert receipt.delivered == [SERVICE, AGENT, "empty.csv"]
    assert names(sshd.root / remote) == sorted([SERVICE, AGENT, "empty.csv"])
    renamed_at = [(sshd.root / remote / n).stat().st_ctime_ns for n in receipt.delivered]
    assert renamed_at == sorted(renamed_at)  # made visible in batch order
    for p in batch:
        assert (sshd.root / remote / p.name).read_bytes() == p.read_bytes()
    assert receipt.extra["bytes"] == sum(p.stat().st_size for p in batch)


def test_one_connection_serves_many_batches_and_replaces_files(sshd, tmp_path):
    remote = "reuse"
    (sshd.root / remote).mkdir()
    target = SftpTarget("ds", spec_for(sshd, path=remote))
    try:
        for n in range(3):
            target.deliver(files(tmp_path / str(n), {AGENT: f"version {n}".encode(), SERVICE: b"s" * n}))
    finally:
        target.close()
    assert target.connections == 1
    assert (sshd.root / remote / AGENT).read_bytes() == b"version 2"  # posix-rename replaced it
    assert names(sshd.root / remote) == sorted([AGENT, SERVICE])


def test_a_connection_idle_too_long_is_replaced_not_reused(sshd, tmp_path):
    (sshd.root / "idle").mkdir()
    target = SftpTarget("ds", spec_for(sshd, path="idle", idle_s=0))
    target.deliver(files(tmp_path, {AGENT: b"1"}))
    target.deliver(files(tmp_path, {AGENT: b"2"}))
    target.close()
    assert target.connections == 2
    assert (sshd.root / "idle" / AGENT).read_bytes() == b"2"


def test_stale_temp_files_of_an_interrupted_delivery_are_removed(sshd, tmp_path):
    folder = sshd.root / "sweep"
    folder.mkdir()
    stale, fresh, other = ".~gisgate-0123.part", ".~gisgate-4567.part", ".~gisgate-89.txt"
    for name in (stale, fresh, other):
        (folder / name).write_bytes(b"half")
    os.utime(folder / stale, (time.time() - 7200, time.time() - 7200))
    os.utime(folder / other, (time.time() - 7200, time.time() - 7200))
    target = SftpTarget("ds", spec_for(sshd, path="sweep"))
    target.deliver(files(tmp_path, {AGENT: b"a"}))
    target.close()
    assert names(folder) == sorted([fresh, other, AGENT])


def test_path_template_fills_tenant_and_acd_and_creates_directories(sshd, tmp_path):
    spec = spec_for(sshd, path="tmpl/{tenant}/{acd}/{date}", tenant="acme", create_dirs=True)
    target = open_target("ds", spec)
    try:
        target.deliver(files(tmp_path, {AGENT: b"a", SERVICE: b"s"}))
    finally:
        target.close()
    assert names(sshd.root / "tmpl/acme/7/20261102") == sorted([AGENT, SERVICE])


def test_missing_remote_directory_is_permanent(sshd, tmp_path):
    target = SftpTarget("ds", spec_for(sshd, path="no/such/dir"))
    with pytest.raises(PermanentDeliveryError, match="no/such/dir.*(No such file|no such file)"):
        target.deliver(files(tmp_path, {AGENT: b"a"}))
    target.close()


def test_unknown_host_key_is_refused_with_the_offered_fingerprint(sshd, tmp_path):
    other = tmp_path / "known_hosts"
    other.write_text(f"otherhost {sshd.host_key_line}\n")  # pins a key, but not for this host
    target = SftpTarget("ds", spec_for(sshd, known_hosts=str(other), path="."))
    with pytest.raises(PermanentDeliveryError) as e:
        target.deliver(files(tmp_path, {AGENT: b"a"}))
    message = str(e.value)
    assert ssh_fingerprint(sshd.host_key.with_suffix(".pub")) in message
    assert "not pinned" in message and "expected: none" in message
    assert not (sshd.root / AGENT).exists()


def test_changed_host_key_is_refused_with_both_fingerprints(sshd, tmp_path):
    impostor = keygen(tmp_path / "impostor")  # what the config pins; the server has another key
    pinned = " ".join(impostor.with_suffix(".pub").read_text().split()[:2])
    known = tmp_path / "known_hosts"
    known.write_text(f"[{sshd.host}]:{sshd.port} {pinned}\n")
    for spec in (spec_for(sshd, known_hosts=str(known)), spec_for(sshd, known_hosts=None, host_key=pinned)):
        target = SftpTarget("ds", spec)
        with pytest.raises(PermanentDeliveryError) as e:
            target.deliver(files(tmp_path, {AGENT: b"a"}))
        message = str(e.value)
        assert "HOST KEY CHANGED" in message
        assert ssh_fingerprint(sshd.host_key.with_suffix(".pub")) in message  # offered
        assert ssh_fingerprint(impostor.with_suffix(".pub")) in message  # pinned


def test_wrong_user_key_is_permanent(sshd, tmp_path):
    stranger = keygen(tmp_path / "stranger")
    target = SftpTarget("ds", spec_for(sshd, key_file=str(stranger)))
    with pytest.raises(PermanentDeliveryError, match="authentication refused"):
        target.deliver(files(tmp_path, {AGENT: b"a"}))


@pytest.mark.needs("sshd")
def test_server_down_is_transient_and_delivery_resumes_when_it_returns(tmp_path):
    with Sshd.start(tmp_path / "sshd") as server:
        target = SftpTarget("ds", spec_for(server, connect_attempts=2))
        target.deliver(files(tmp_path / "1", {AGENT: b"first"}))
        server.stop_all()  # listener and the live session: the gateway's connection dies too
        with pytest.raises(TransientDeliveryError, match="refused|lost|closed|dropped"):
            target.deliver(files(tmp_path / "2", {SERVICE: b"second"}))
        assert not (server.root / SERVICE).exists()
        server.run()  # back on the same port
        receipt = target.deliver(files(tmp_path / "2", {SERVICE: b"second"}))
        target.close()
    assert receipt.delivered == [SERVICE]
    assert (server.root / SERVICE).read_bytes() == b"second"
    assert target.connections == 2


@pytest.mark.needs("sshd")
def test_frozen_server_hits_the_deadline(tmp_path):
    with Sshd.start(tmp_path / "sshd") as server:
        spec = spec_for(server, timeout_s=60, deadline_s=30)  # each timeout alone would wait 60 s
        target = SftpTarget("ds", spec)
        target.deliver(files(tmp_path / "1", {AGENT: b"warm-up"}))
        target.spec = spec.model_copy(update={"deadline_s": 1.5})  # tight only while frozen (CI may be busy)
        server.freeze()
        try:
            for name in ("on the open connection", "on a new connection"):
                started = time.monotonic()
                with pytest.raises(TransientDeliveryError, match="deadline exceeded"):
                    target.deliver(files(tmp_path / "2", {SERVICE: os.urandom(100_000)}))
                assert 1.4 < time.monotonic() - started < 5.0, name
                assert target._transport is None
        finally:
            server.thaw()
        target.spec = spec
        target.deliver(files(tmp_path / "3", {SERVICE: b"after thaw"}))
        target.close()
    assert (server.root / SERVICE).read_bytes() == b"after thaw"


def test_hostkey_command_prints_the_fingerprint_without_trusting_it(sshd, tmp_path):
    toml = tmp_path / "gisgate.toml"
    toml.write_text(f'[target.ds]\nkind = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
                    f'user = "{sshd.user}"\nknown_hosts = "{tmp_path / "empty_known_hosts"}"\n'
                    f'key_file = "{sshd.client_key}"\n')
    (tmp_path / "empty_known_hosts").write_text("")
    result = CliRunner().invoke(gisgate_cli, ["hostkey", "ds", "--config", str(toml)])
    assert result.exit_code == 0, result.output
    fp = ssh_fingerprint(sshd.host_key.with_suffix(".pub"))
    assert f"ssh-ed25519 {fp}" in result.output
    assert f"[{sshd.host}]:{sshd.port} {sshd.host_key_line}" in result.output  # a known_hosts line
    assert "NOT pinned" in result.output
    assert (tmp_path / "empty_known_hosts").read_text() == ""  # nothing was trusted or written

    toml.write_text(toml.read_text().replace(str(tmp_path / "empty_known_hosts"), str(sshd.known_hosts)))
    result = CliRunner().invoke(gisgate_cli, ["hostkey", "ds", "--config", str(toml)])
    assert result.exit_code == 0 and "matches the pinned key" in result.output


def test_gisgate_deliver_sends_an_interval_through_the_sftp_target(cli, sshd, tmp_path):
    (sshd.root / "cli-deliver/acme").mkdir(parents=True)
    toml = tmp_path / "gisgate.toml"
    toml.write_text(f'[target.ds]\nkind = "sftp"\nhost = "{sshd.host}"\nport = {sshd.port}\n'
                    f'user = "{sshd.user}"\npath = "cli-deliver/{{tenant}}"\ntenant = "acme"\n'
                    f'known_hosts = "{sshd.known_hosts}"\nkey_file = "{sshd.client_key}"\n')
    batch = files(tmp_path / "out", {AGENT: b"agent rows\r\n", SERVICE: b"service rows\r\n"})
    result = cli("deliver", *batch, "--target", "ds", "--config", toml)
    assert result.returncode == 0, result.stderr
    assert names(sshd.root / "cli-deliver/acme") == sorted([AGENT, SERVICE])
    assert (sshd.root / "cli-deliver/acme" / AGENT).read_bytes() == b"agent rows\r\n"


def test_hostkey_command_names_the_sftp_targets_when_asked_for_another(cli, tmp_path):
    toml = tmp_path / "gisgate.toml"
    toml.write_text('[target.ds]\nkind = "sftp"\nhost = "127.0.0.1"\nuser = "u"\nknown_hosts = "kh"\n')
    (tmp_path / "kh").write_text("")
    result = cli("hostkey", "nope", "--config", toml, cwd=tmp_path)
    assert result.returncode == 2
    assert "no sftp target 'nope'; sftp targets: ds" in result.stderr


def test_config_without_a_pin_or_with_an_unknown_path_variable_is_refused(sshd):
    with pytest.raises(ConfigError, match="known_hosts or host_key"):
        SftpTarget("ds", spec_for(sshd, known_hosts=None))
    with pytest.raises(ConfigError, match="unknown variable"):
        SftpTarget("ds", spec_for(sshd, path="gis/{customer}"))
    with pytest.raises(ConfigError, match="set tenant"):
        SftpTarget("ds", spec_for(sshd, path="gis/{tenant}"))


# -- fault injection (asyncssh in-process server) --------------------------------------------------


@pytest.fixture
def faulty(tmp_path):
    with FaultySftpServer(tmp_path / "faulty") as server:
        yield server


def test_without_posix_rename_the_documented_fallback_replaces_the_file(faulty, tmp_path, caplog):
    faulty.advertise_posix_rename(False)
    faulty.faults.no_posix_rename = True
    (faulty.root / AGENT).write_bytes(b"old")
    target = SftpTarget("ds", spec_for(faulty))
    with caplog.at_level(logging.WARNING, logger="gisgate.targets.sftp"):
        receipt = target.deliver(files(tmp_path, {AGENT: b"new", SERVICE: b"s"}))
    target.close()
    assert receipt.delivered == [AGENT, SERVICE]
    assert (faulty.root / AGENT).read_bytes() == b"new"
    assert names(faulty.root) == sorted([AGENT, SERVICE])
    assert "lacks posix-rename" in caplog.text and "removing it first" in caplog.text


def test_a_server_that_announces_posix_rename_but_refuses_it_gets_plain_renames(faulty, tmp_path, caplog):
    faulty.faults.no_posix_rename = True  # still announced
    (faulty.root / SERVICE).write_bytes(b"old")
    target = SftpTarget("ds", spec_for(faulty))
    with caplog.at_level(logging.WARNING, logger="gisgate.targets.sftp"):
        target.deliver(files(tmp_path, {AGENT: b"a", SERVICE: b"new"}))
        target.deliver(files(tmp_path / "again", {AGENT: b"a2"}))
    target.close()
    assert (faulty.root / AGENT).read_bytes() == b"a2" and (faulty.root / SERVICE).read_bytes() == b"new"
    assert names(faulty.root) == sorted([AGENT, SERVICE])
    assert caplog.text.count("announces posix-rename@openssh.com but refuses it") == 1


def test_a_server_whose_posix_rename_cannot_replace_a_file_gets_remove_then_rename(faulty, tmp_path, caplog):
    faulty.faults.no_overwrite = True
    (faulty.root / AGENT).write_bytes(b"old")
    target = SftpTarget("ds", spec_for(faulty))
    with caplog.at_level(logging.WARNING, logger="gisgate.targets.sftp"):
        receipt = target.deliver(files(tmp_path, {AGENT: b"new", SERVICE: b"s"}))
    target.close()
    assert f"{AGENT} exists and the server cannot rename over it; removing it first" in caplog.text
    assert receipt.delivered == [AGENT, SERVICE]
    assert (faulty.root / AGENT).read_bytes() == b"new"
    assert names(faulty.root) == sorted([AGENT, SERVICE])


def test_disk_full_is_transient_and_leaves_nothing_behind(faulty, tmp_path):
    faulty.faults.disk_full = True
    target = SftpTarget("ds", spec_for(faulty))
    with pytest.raises(TransientDeliveryError, match="No space left on device") as e:
        target.deliver(files(tmp_path, {AGENT: b"x" * 50_000, SERVICE: b"s"}))
    assert isinstance(e.value.__cause__, Exception)
    assert names(faulty.root) == []  # temp file removed, nothing under a final name
    faulty.faults.disk_full = False
    target.deliver(files(tmp_path, {AGENT: b"x" * 50_000}))  # the same connection still works
    assert target.connections == 1
    target.close()


def test_a_server_that_stores_fewer_bytes_than_it_acknowledged_is_caught_by_the_size_check(faulty, tmp_path):
    faulty.faults.short_at = 300_000  # every write answered OK, the tail of a file silently lost
    data = os.urandom(600_000)  # three 255 KiB writes: one kept, one cut short, one dropped
    target = SftpTarget("ds", spec_for(faulty))
    with pytest.raises(TransientDeliveryError) as e:
        target.deliver(files(tmp_path, {SERVICE: b"fits", AGENT: data}))
    message = str(e.value)
    assert f"the server holds 300000 bytes of {AGENT}, expected 600000" in message
    assert message.endswith(f"(already delivered: {SERVICE})")
    assert e.value.delivered == [SERVICE]
    assert names(faulty.root) == [SERVICE]  # no short AGENT under its final name, temp file removed
    faulty.faults.short_at = None
    target.deliver(files(tmp_path, {AGENT: data}))  # the same connection, now complete
    target.close()
    assert (faulty.root / AGENT).read_bytes() == data
    assert target.connections == 1


def test_a_failure_mid_batch_reports_what_was_already_delivered(faulty, tmp_path):
    faulty.faults.full_after_writes = 1  # the first file fits, the second does not
    target = SftpTarget("ds", spec_for(faulty))
    with pytest.raises(TransientDeliveryError, match="already delivered: " + AGENT) as e:
        target.deliver(files(tmp_path, {AGENT: b"fits", SERVICE: b"does not fit"}))
    target.close()
    assert e.value.delivered == [AGENT]
    assert names(faulty.root) == [AGENT]


def test_connection_dropped_mid_file_is_transient_and_no_partial_file_is_visible(faulty, tmp_path):
    faulty.faults.drop_at = 100_000
    data = os.urandom(400_000)
    target = SftpTarget("ds", spec_for(faulty, connect_attempts=1))
    with pytest.raises(TransientDeliveryError):
        target.deliver(files(tmp_path, {AGENT: data}))
    assert not (faulty.root / AGENT).exists()
    assert all(n.startswith(".~gisgate-") and n.endswith(".part") for n in names(faulty.root))
    faulty.faults.drop_at = None
    target.deliver(files(tmp_path, {AGENT: data}))
    target.close()
    assert (faulty.root / AGENT).read_bytes() == data
    assert target.connections == 2


def test_permission_denied_is_permanent(faulty, tmp_path):
    (faulty.root / "locked").mkdir()
    faulty.faults.deny = "locked"
    target = SftpTarget("ds", spec_for(faulty, path="locked"))
    with pytest.raises(PermanentDeliveryError, match="permission denied|Permission denied"):
        target.deliver(files(tmp_path, {AGENT: b"a"}))
    target.close()


def test_password_comes_from_the_environment_and_is_never_logged(tmp_path, monkeypatch, caplog):
    secret = "s3cr3t-Pa55-word"
    with FaultySftpServer(tmp_path / "pw", password=secret) as server:
        monkeypatch.setenv("GISGATE_TEST_SFTP_PASSWORD", secret)
        spec = spec_for(server, key_file=None, password_env="GISGATE_TEST_SFTP_PASSWORD")
        with caplog.at_level(logging.DEBUG):
            target = SftpTarget("ds", spec)
            target.deliver(files(tmp_path, {AGENT: b"a"}))
            target.close()
            monkeypatch.setenv("GISGATE_TEST_SFTP_PASSWORD", secret + "-wrong")
            with pytest.raises(PermanentDeliveryError) as e:
                SftpTarget("ds", spec).deliver(files(tmp_path, {AGENT: b"a"}))
        assert (server.root / AGENT).read_bytes() == b"a"
    assert secret not in str(e.value)
    assert secret not in caplog.text
    assert "paramiko" in caplog.text or "gisgate" in caplog.text  # DEBUG logging really was on


def test_password_file_and_a_malformed_host_key(tmp_path):
    with FaultySftpServer(tmp_path / "pwf", password="from-a-file") as server:
        secret = tmp_path / "sftp.pw"
        secret.write_text("from-a-file\n")  # the trailing newline an editor leaves is not part of it
        target = SftpTarget("ds", spec_for(server, key_file=None, password_file=str(secret)))
        target.deliver(files(tmp_path, {SERVICE: b"s"}))
        target.close()
        assert (server.root / SERVICE).read_bytes() == b"s"
        with pytest.raises(ConfigError, match="not an OpenSSH public key"):
            SftpTarget("ds", spec_for(server, host_key="ssh-ed25519 not-base64!"))
