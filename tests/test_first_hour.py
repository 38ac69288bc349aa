"""A new user's first hour: every problem of an input at once, zones that do not fit the data,
and messages in the user's words (no library jargon, formats named, the local clock shown)."""

from __future__ import annotations

import re

import pytest

from gisgate import config
from gisgate.errors import ConfigError
from tests.conftest import SAMPLES

NY = SAMPLES / "generic-ny-fallback" / "input"


# --- a wrong or missing zone ----------------------------------------------------------------------

@pytest.mark.parametrize(("zone", "use"), [("EST", "America/New_York"), ("MST", "America/Phoenix"),
                                           ("HST", "Pacific/Honolulu"), ("EST5EDT", "America/New_York"),
                                           ("PST8PDT", "America/Los_Angeles"), ("-0500", "America/New_York"),
                                           ("Etc/GMT+5", "America/New_York")])
def test_legacy_and_fixed_zones_are_refused_with_the_name_to_use(zone, use):
    with pytest.raises(ValueError, match=re.escape(use)):
        config.check_zone(zone)
    with pytest.raises(ConfigError, match=re.escape(use)):
        config.parse({"acd": {"timezone": zone}})
    for fine in ("UTC", "Etc/UTC", "GMT", "America/New_York", "US/Eastern", "Asia/Kathmandu"):
        assert config.check_zone(fine) == fine


def test_legacy_zone_on_the_command_line(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "EST", "--out", tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith("Error: --tz: 'EST' is a legacy zone name") and "America/New_York" in r.stderr


# --- messages in the user's words ---------------------------------------------------------------

def test_config_errors_name_the_key_and_the_key_meant(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.parse({"watch": {"rescan_secnds": 5}, "target": {"ds": {"kind": "sftp", "host": "h", "user": "u",
                                                                        "known_host": "k"}}}, "gisgate.toml")
    lines = str(e.value).splitlines()
    assert "gisgate.toml: unknown key `rescan_secnds` in [watch] (did you mean `rescan_seconds`?)" in lines
    assert "gisgate.toml: unknown key `known_host` in [target.ds] (did you mean `known_hosts`?)" in lines
    with pytest.raises(ConfigError, match=r"unknown key `zzz` at the top level; known keys: acd, archive"):
        config.parse({"zzz": 1})
    with pytest.raises(ConfigError) as e:
        config.parse({"acd": {"timezone": "Nowhere/Nope"}})
    assert "Value error" not in str(e.value) and "acd.timezone: unknown time zone 'Nowhere/Nope'" in str(e.value)


def test_option_errors_carry_no_library_jargon(tmp_path, cli):
    r = cli("convert", NY / "service.csv", "--tz", "Nowhere/Nope", "--out", tmp_path)
    assert r.returncode == 2
    assert r.stderr == ("Error: --tz: unknown time zone 'Nowhere/Nope': use an IANA name such as America/New_York "
                        "or UTC\n")
    config_file = tmp_path / "gisgate.toml"
    config_file.write_text("[watch]\nrescan_secnds = 5\n")
    r = cli("convert", NY / "service.csv", "--config", config_file, "--out", tmp_path)
    assert r.returncode == 2 and "did you mean `rescan_seconds`?" in r.stderr and "Extra inputs" not in r.stderr

