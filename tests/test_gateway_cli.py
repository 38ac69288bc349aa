"""`gisgate init`, `status`, `retry` and the gateway's config checks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from gateway_harness import Gate, csv_file, drop, files, finished, input_states, wait_until

from gisgate import config
from gisgate.cli import cli
from gisgate.errors import ConfigError
from gisgate.gateway import pickup
from gisgate.gateway.setup import setup
from gisgate.targets.secrets import Redactor, secret_values


def test_init_writes_a_valid_commented_config_and_the_tree(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "gw")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "gw" / "gisgate.toml").read_text()
    assert text.count("\n#") > 10 and "[[route]]" in text
    for sub in ("inbox", "work", "archive", "rejected", "outbox", "dataserver"):
        assert (tmp_path / "gw" / sub).is_dir()
    s = setup(tmp_path / "gw" / "gisgate.toml")
    assert s.inboxes == {"generic": tmp_path / "gw" / "inbox"}  # the built-in gateway's and the quick start's
    assert s.config.target["dataserver"].path == str(tmp_path / "gw" / "dataserver")
    again = CliRunner().invoke(cli, ["init", str(tmp_path / "gw")])
    assert again.exit_code != 0 and "exists already" in str(again.exception)


def test_defaults_without_config(tmp_path):
    s = setup(None, tmp_path)
    assert [r.name for r in s.config.route] == ["generic"] and s.inboxes["generic"] == tmp_path / "inbox"
    assert s.config.target["dataserver"].kind == "folder" and s.config.watch.rescan_seconds == 30


def test_config_errors_are_all_listed_naming_their_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.parse({"route": [{"name": "a", "settle_secs": 1, "targets": ["nowhere"]}],
                      "watch": {"rescan_seconds": -1, "polling": "sometimes"}, "outbox": {"max_attempts": 0}})
    msg = str(e.value)
    for key in ("watch.rescan_seconds", "watch.polling", "outbox.max_attempts"):
        assert key in msg, msg
    assert "unknown key `settle_secs` in [[route]] #1 (did you mean `settle_seconds`?)" in msg, msg
    with pytest.raises(ConfigError, match="unknown target"):
        config.parse({"route": [{"name": "a", "targets": ["nowhere"]}]})


def test_pickup_rules():
    route = config.Route(name="r", exclude=["*.bak"])
    assert pickup.is_candidate("a.csv", route)
    for name in ("a.csv.part", "a.tmp", ".a.csv", "~$a.xlsx", "a.bak"):
        assert not pickup.is_candidate(name, route), name
    done = config.Route(name="r", done_file=True)
    assert not pickup.is_candidate("a.csv.done", done) and pickup.is_candidate("a.csv", done)


def test_network_file_systems_are_recognised(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\nsrv:/x /mnt/share nfs4 rw 0 0\n"
                      "u@h:/y /mnt/ssh fuse.sshfs rw 0 0\n")
    assert pickup.filesystem_type(tmp_path, str(mounts)) == "ext4"
    assert pickup.filesystem_type("/mnt/share/inbox", str(mounts)) == "nfs4"
    assert pickup.filesystem_type("/mnt/ssh/in", str(mounts)) == "fuse.sshfs"


def test_status_and_retry_after_fixing_the_config(tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    toml = root / "gisgate.toml"
    toml.write_text('[[route]]\nname = "p"\nformat = "whit"\ntargets = ["ds"]\n'
                    '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    drop(root / "inbox" / "p", "day.csv", csv_file(0))
    gate = Gate(root)
    try:
        wait_until(lambda: finished(root) == 1, what="rejection")
    finally:
        assert gate.stop() == 0
    assert input_states(root) == {"rejected": 1}
    out = CliRunner().invoke(cli, ["status", "--root", str(root), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["inputs"] == {"rejected": 1} and report["last_rejected"][0]["name"] == "day.csv"
    human = CliRunner().invoke(cli, ["status", "--root", str(root)])
    assert "rejected p/day.csv" in human.output

    toml.write_text(toml.read_text().replace('format = "whit"', 'format = "generic"'))
    out = CliRunner().invoke(cli, ["retry", "--root", str(root), "--all-rejected"])
    assert out.exit_code == 0, out.output
    assert (root / "inbox" / "p" / "day.csv").exists()
    gate = Gate(root, log="after-fix")
    try:
        wait_until(lambda: input_states(root).get("archived") == 1, what="retried file archived")
        wait_until(lambda: files(root / "dataserver"), what="delivered")
    finally:
        assert gate.stop() == 0
    assert input_states(root) == {"archived": 1, "retried": 1}


def _metrics(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def test_metrics_file_and_port_and_the_canary(tmp_path):
    import socket
    import urllib.request

    root = tmp_path / "gw"
    root.mkdir()
    (root / "gisgate.toml").write_text(
        '[watch]\nheartbeat_seconds = 0.5\n[[route]]\nname = "p"\ntargets = ["ds"]\n'
        '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    drop(root / "inbox" / "p", "good.csv", csv_file(0))
    drop(root / "inbox" / "p", "empty.csv", b"")
    prom = tmp_path / "gisgate.prom"
    gate = Gate(root, "--metrics", str(prom))
    try:
        wait_until(lambda: prom.exists() and _metrics(prom.read_text()).get("gisgate_files_processed_total") == 1
                   and _metrics(prom.read_text()).get("gisgate_deliveries_sent_total") == 1, what="metrics")
        m = _metrics(prom.read_text())
        assert m["gisgate_files_seen_total"] == 2 and m["gisgate_files_rejected_total"] == 1
        assert m['gisgate_outbox_depth{target="ds"}'] == 0 and m["gisgate_oldest_pending_age_seconds"] == 0
        assert m['gisgate_last_success_timestamp_seconds{route="p"}'] > 0
        assert m["gisgate_heartbeat_timestamp_seconds"] > 0
        wait_until(lambda: (root / "inbox" / "p" / ".gisgate-canary").exists(), what="canary written")
        assert _metrics(prom.read_text())["gisgate_watcher_alive"] == 1
        assert "TYPE gisgate_files_processed_total counter" in prom.read_text()
    finally:
        assert gate.stop() == 0

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gate = Gate(root, "--metrics", str(port), log="port")
    try:
        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    return r.read().decode()
            except OSError:
                return ""
        text = wait_until(lambda: "gisgate_heartbeat_timestamp_seconds" in scrape() and scrape(), what="scrape")
        assert "gisgate_files_seen_total 0" in text
    finally:
        assert gate.stop() == 0


def test_a_second_gateway_on_the_same_root_is_refused_and_json_logs(tmp_path):
    root = tmp_path / "gw"
    gate = Gate(root, "--log-json")
    try:
        wait_until(lambda: (root / "gisgate.db").exists(), what="first gateway")
        second = Gate(root, log="second")
        assert second.wait_exit(30) == 2
        assert "another gisgate watch" in second.text()
        drop(root / "inbox", "a.csv", csv_file(1))
        wait_until(lambda: finished(root) == 1, what="a.csv")
    finally:
        assert gate.stop() == 0
    records = [json.loads(line) for line in gate.text().splitlines()]
    assert {"ts", "level", "logger", "msg"} <= set(records[0])
    assert any("generic/a.csv" in r["msg"] for r in records)


def test_secrets_behind_env_and_file_references_are_masked_in_logs(tmp_path, monkeypatch, caplog):
    import logging

    monkeypatch.setenv("GW_TEST_PASSWORD", "s3cret-Pa55word")
    (tmp_path / "token").write_text("tok-123456789\n")
    (tmp_path / "gisgate.toml").write_text(
        '[[route]]\nname = "p"\ntargets = ["remote"]\n'
        '[target.remote]\nkind = "sftp"\nhost = "127.0.0.1"\nuser = "u"\nknown_hosts = "kh"\n'
        'password_env = "GW_TEST_PASSWORD"\n'
        '[target.other]\nkind = "sftp"\nhost = "127.0.0.1"\nuser = "u"\nknown_hosts = "kh"\n'
        f'password_file = "{tmp_path / "token"}"\n')
    s = setup(tmp_path / "gisgate.toml")
    secrets = secret_values(s.config.target.values())
    assert set(secrets) == {"s3cret-Pa55word", "tok-123456789"}
    logger = logging.getLogger("gisgate.test-redaction")
    logger.addFilter(Redactor(*secrets))
    with caplog.at_level(logging.DEBUG, logger="gisgate.test-redaction"):
        logger.warning("login with %s failed; token %s", "s3cret-Pa55word", "tok-123456789")
    assert "s3cret" not in caplog.text and "tok-1234" not in caplog.text and "login with *** failed" in caplog.text


def test_failed_delivery_goes_to_failed_with_a_reason_then_retry_delivers_it(tmp_path):
    root = tmp_path / "gw"
    root.mkdir()
    (root / "blocked").write_text("a file where the target folder should be")  # ENOTDIR: permanent
    (root / "gisgate.toml").write_text(
        '[[route]]\nname = "p"\ntargets = ["ds"]\n[target.ds]\nkind = "folder"\npath = "blocked/gis"\n')
    gate = Gate(root)
    try:
        drop(root / "inbox" / "p", "a.csv", csv_file(0, 2))
        failed = root / "outbox" / "ds" / "failed"
        wait_until(lambda: len(files(failed)) == 4, what="2 failed files + 2 reasons")
        reason = next(p for p in files(failed) if p.name.endswith(".reason.txt")).read_text()
        assert "cannot write" in reason and "gisgate retry" in reason
        (root / "blocked").unlink()  # the operator fixes the share
        first = next(p for p in files(failed) if not p.name.endswith(".reason.txt"))
        out = CliRunner().invoke(cli, ["retry", "--root", str(root), str(first)])
        assert out.exit_code == 0 and "pending (1 file(s) of its batch)" in out.output, out.output  # one interval
        for p in [p for p in files(failed) if not p.name.endswith(".reason.txt")]:
            assert CliRunner().invoke(cli, ["retry", "--root", str(root), str(p)]).exit_code == 0
        wait_until(lambda: len(files(root / "blocked" / "gis")) == 2, what="delivered after retry")
    finally:
        assert gate.stop() == 0


def test_built_in_tables_are_valid():
    """Tables a config leaves out take their built-in values unvalidated (`config.defaults`): each
    must equal what validation gives, and so must the whole built-in config."""
    for table in (config.Acd, config.Gis, config.Mapping, config.Contacts, config.Report, config.Watch,
                  config.Outbox, config.Archive):
        assert table.model_construct() == table.model_validate({}), table
    assert config.load(None) == config.Config.model_validate({}) == config.parse({})
    assert config.parse({"watch": {"rescan_seconds": 5}}).outbox == config.Outbox.model_validate({})
