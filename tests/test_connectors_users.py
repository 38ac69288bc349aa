"""Agents mapped by e-mail at the size of a real center: the gateway's LinkLive source fetches the
platform's users, and `[mapping] agents_file` (a Webex WFO persons export: e-mail → acdId) maps each
user whose e-mail matches — no inline `[mapping.agents]` table at all. What it delivers equals the
same data dropped by hand into a gateway with the inline table."""

from __future__ import annotations

import json

from fake_platforms import API_SAMPLES, FakeLinkLive
from gateway_harness import Gate, wait_until
from test_connectors_watch import CONFIG, KEY, SOURCE, by_hand, contents, recent_day

INLINE = ['"u-5f2a11" = "1001"', '"u-5f2a12" = "1002"', '"u-5f2a13" = "1003"', '"u-5f2a14" = "1004"']
PERSONS = ("personId,email,firstName,lastName,acdId,acdServerId\n"
           + "".join(f"0,Agent{n}@Example.com,Agent,{n},100{n},1\n" for n in range(1, 5))
           + "0,agent1@example.com,Agent,1,9001,2\n")  # another ACD's row: not this gateway's


def test_a_source_fetches_the_users_and_agents_are_mapped_by_e_mail(tmp_path):
    records = recent_day()
    expected = by_hand(tmp_path, records)
    server = FakeLinkLive(key=KEY, records=records)
    server.lists["users"] = json.loads((API_SAMPLES / "linklive-api" / "users.json").read_text())["users"]
    server.start()
    root = tmp_path / "fetching"
    root.mkdir()
    (root / "persons.csv").write_text(PERSONS)
    config = CONFIG.format(source=SOURCE.format(url=server.base_url))
    for line in INLINE:
        config = config.replace(line + "\n", "")
    config = config.replace("[mapping]\n", '[mapping]\nagents_file = "persons.csv"\n', 1)
    (root / "gisgate.toml").write_text(config)
    gate = Gate(root, extra_env={"GISGATE_TEST_LL_KEY": KEY})
    try:
        wait_until(lambda: contents(root / "dataserver") == expected, 60, what="the fetched day, mapped by e-mail")
    finally:
        gate.stop()
        server.stop()
    users = json.loads((root / "mappings" / "ll-users.json").read_text())["users"]
    assert {u["id"] for u in users} == {"u-5f2a11", "u-5f2a12", "u-5f2a13", "u-5f2a14"}
    assert len(server.asked("/users")) == 1  # once an hour (users_every), not every poll
    assert "1 user(s)" not in gate.text() and "4 user(s) with an e-mail fetched" in gate.text()
