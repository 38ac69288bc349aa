"""Mapping files (`[mapping] agents_file`, `services_file`, `users_file`): read, matched by e-mail,
checked, and read again when they change — by a running gateway too."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import pytest
from gateway_harness import Gate, files, finished, wait_until

from gisgate import config, mappings
from gisgate.errors import ConfigError

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "mapping-files"


def write(path: Path, text: str, bump: int = 0) -> Path:
    path.write_text(text)
    if bump:  # a new mtime even within the file system's time resolution
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))
    return path


def test_a_wfo_export_matched_by_e_mail_to_the_platform_users():
    agents = mappings.agents(SAMPLE / "wfo_persons.csv", [SAMPLE / "linklive_users.json"], acd=1)
    # e-mails match whatever their case; another ACD's row (acdServerId 2) does not count
    assert {k: agents[k] for k in ("u-5f2a11", "u-5f2a12", "u-5f2a13", "u-5f2a14")} == {
        "u-5f2a11": "1001", "u-5f2a12": "1002", "u-5f2a13": "1003", "u-5f2a14": "1004"}
    assert "u-9c0001" not in agents  # a platform user no ACD agent has: stays unknown (status and report list it)
    assert agents["eli.novak@example.com"] == "1005"  # exports naming agents by e-mail map too
    assert mappings.agents(SAMPLE / "wfo_persons.csv", [], acd=2)["ana.lopez@example.com"] == "7001"


def test_the_files_merge_into_the_options_and_inline_entries_win(tmp_path):
    shutil.copytree(SAMPLE, tmp_path / "s", symlinks=True)
    cfg = tmp_path / "s" / "gisgate.toml"
    cfg.write_text(cfg.read_text().replace('home_queue', 'agents = { "u-5f2a12" = "2002" }\nhome_queue'))
    o = config.convert_options(config.load(cfg))
    assert o.mapping.agents["u-5f2a11"] == "1001" and o.mapping.agents["u-5f2a12"] == "2002"
    assert o.mapping.services == {"q-billing": "101", "q-support": "102"}
    assert o.mapping.service_names == {"101": "Billing", "102": "Support"}


@pytest.mark.parametrize("text, says", [
    ("platform_id,acd_id\nu-1,1001\nu-2,1002\nu-1,1003\n", ":4: 'u-1' is mapped to '1001' on an earlier line"),
    ("user,agent\nu-1,1001\n", ":1: no column for acd: acdid"),
    ("platform_id,acd_id\nu-1,\n", ":2: column 'acd_id' is empty"),
    ("platform_id,acd_id\nu-1,10 01\n", ":2: ACD ID '10 01' holds a comma, quote or space"),
    ("acd_id,first_name\n1001,Ana\n", ":2: neither a platform ID nor an e-mail"),
    ("", "mapping file is empty"),
])
def test_a_bad_agents_file_is_named_with_its_line(tmp_path, text, says):
    path = write(tmp_path / "agents.csv", text)
    with pytest.raises(ConfigError) as e:
        mappings.agents(path, [], acd=1)
    assert str(path) in str(e.value) and says in str(e.value)


def test_a_missing_mapping_file_is_a_config_error(tmp_path):
    (tmp_path / "gisgate.toml").write_text('[mapping]\nagents_file = "nope.csv"\n')
    with pytest.raises(ConfigError, match="nope.csv: mapping file not readable"):
        config.convert_options(config.load(tmp_path / "gisgate.toml"))


def test_read_again_when_changed_and_a_broken_version_keeps_the_last_good_one(tmp_path, caplog):
    path = write(tmp_path / "agents.csv", "platform_id,acd_id\nu-1,1001\n")
    assert mappings.agents(path, [], acd=1) == {"u-1": "1001"}
    write(path, "platform_id,acd_id\nu-1,1001\nu-2,1002\n", bump=1)
    assert mappings.agents(path, [], acd=1) == {"u-1": "1001", "u-2": "1002"}
    caplog.set_level(logging.ERROR, "gisgate.mapping")
    write(path, "platform_id\nu-3\n", bump=2)
    assert mappings.agents(path, [], acd=1) == {"u-1": "1001", "u-2": "1002"}
    assert "no column for acd" in caplog.text and "the mapping read before stays in use" in caplog.text


def test_a_running_gateway_maps_with_the_file_as_it_is_now(tmp_path):
    """An agents file edited while `gisgate watch` runs: the next input is mapped with the new rows."""
    root = tmp_path / "gw"
    root.mkdir()
    states = (SAMPLE.parent / "linklive" / "input" / "user_states.json").read_text()
    write(root / "users.json", (SAMPLE / "linklive_users.json").read_text())
    persons = (SAMPLE / "wfo_persons.csv").read_text()
    write(root / "agents.csv", persons)
    (root / "gisgate.toml").write_text(
        '[acd]\ntimezone = "America/New_York"\n\n'
        '[mapping]\nagents_file = "agents.csv"\nusers_file = "users.json"\ndefault_service = "101"\n\n'
        '[watch]\nconverters = 0\nreports = false\n\n'
        '[[route]]\nname = "ll"\nformat = "linklive"\nstream = false\ntargets = ["ds"]\n\n'
        '[target.ds]\nkind = "folder"\npath = "dataserver"\n')
    inbox = root / "inbox" / "ll"
    inbox.mkdir(parents=True)
    def agent_files() -> dict[str, str]:
        return {p.name: p.read_text() for p in files(root / "dataserver") if p.suffix == ".AGENT"}

    gate = Gate(root, settle=0.1, rescan=0.3)
    try:
        (inbox / "one.json").write_text(states)
        wait_until(lambda: finished(root) == 1 and len(agent_files()) == 14, 60, what="the first input's files")
        first = agent_files()
        write(root / "agents.csv", persons.replace(",1001,1", ",2001,1"), bump=1)
        (inbox / "two.json").write_text(json.dumps(json.loads(states)))  # the same records, other bytes
        wait_until(lambda: not any("\n1001," in t for t in agent_files().values()), 60,
                   what="the second input's files")
        second = agent_files()
    finally:
        assert gate.stop() == 0, gate.text()
    assert sorted(first) == sorted(second)
    assert any("\n1001," in t for t in first.values()) and not any("\n2001," in t for t in first.values())
    assert any("\n2001," in t for t in second.values())
