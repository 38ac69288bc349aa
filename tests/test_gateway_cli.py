"""`gisgate init`, `status`, `retry` and the gateway's config checks."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from gateway_harness import Gate, csv_file, drop, files, finished, input_states, wait_until

from gisgate import config, gateway, watch
from gisgate.cli import cli
from gisgate.errors import ConfigError


def test_init_writes_a_valid_commented_config_and_the_tree(tmp_path):
    result = CliRunner().invoke(cli, ["init", str(tmp_path / "gw")])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "gw" / "gisgate.toml").read_text()
    assert text.count("\n#") > 10 and "[[route]]" in text
    for sub in ("inbox/generic", "work", "archive", "rejected", "outbox", "dataserver"):
        assert (tmp_path / "gw" / sub).is_dir()
    s = gateway.setup(tmp_path / "gw" / "gisgate.toml")
    assert s.inboxes == {"generic": tmp_path / "gw" / "inbox" / "generic"}
    assert s.config.target["dataserver"].path == str(tmp_path / "gw" / "dataserver")
    again = CliRunner().invoke(cli, ["init", str(tmp_path / "gw")])
    assert again.exit_code != 0 and "exists already" in str(again.exception)


def test_defaults_without_config(tmp_path):
    s = gateway.setup(None, tmp_path)
    assert [r.name for r in s.config.route] == ["generic"] and s.inboxes["generic"] == tmp_path / "inbox"
    assert s.config.target["dataserver"].kind == "folder" and s.config.watch.rescan_seconds == 30


def test_config_errors_are_all_listed_naming_their_keys(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.parse({"route": [{"name": "a", "settle_secs": 1, "targets": ["nowhere"]}],
                      "watch": {"rescan_seconds": -1, "polling": "sometimes"}, "outbox": {"max_attempts": 0}})
    msg = str(e.value)
    for key in ("route.0.settle_secs", "watch.rescan_seconds", "watch.polling", "outbox.max_attempts"):
        assert key in msg, msg
    with pytest.raises(ConfigError, match="unknown target"):
        config.parse({"route": [{"name": "a", "targets": ["nowhere"]}]})


def test_pickup_rules():
    route = config.Route(name="r", exclude=["*.bak"])
    assert watch.is_candidate("a.csv", route)
    for name in ("a.csv.part", "a.tmp", ".a.csv", "~$a.xlsx", "a.bak"):
        assert not watch.is_candidate(name, route), name
    done = config.Route(name="r", done_file=True)
    assert not watch.is_candidate("a.csv.done", done) and watch.is_candidate("a.csv", done)


def test_network_file_systems_are_recognised(tmp_path):
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\nsrv:/x /mnt/share nfs4 rw 0 0\n"
                      "u@h:/y /mnt/ssh fuse.sshfs rw 0 0\n")
    assert watch.filesystem_type(tmp_path, str(mounts)) == "ext4"
    assert watch.filesystem_type("/mnt/share/inbox", str(mounts)) == "nfs4"
    assert watch.filesystem_type("/mnt/ssh/in", str(mounts)) == "fuse.sshfs"


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
