"""Platform samples: golden outputs of the real CLI, and outputs tied back to what the inputs hold."""

import json
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from gisgate.cli import cli

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def run(case: str, out: Path) -> dict[str, bytes]:
    """The case's conversion, in-process (the golden test runs the same through a child process)."""
    folder = SAMPLES / case
    spec = tomllib.loads((folder / "job.toml").read_text())
    args = [str(folder / a) if (folder / a).is_file() else a for a in spec["args"]]
    inputs = [str(folder / i) for i in spec["inputs"]]
    result = CliRunner().invoke(cli, ["convert", *inputs, "--out", str(out), "-q", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def gis_rows(files: dict[str, bytes], suffix: str) -> list[tuple[str, dict[str, str]]]:
    rows = []
    for name, data in files.items():
        if name.endswith(suffix):
            lines = data.decode().split("\r\n")
            header = lines[1].split(",")
            rows += [(name, dict(zip(header, line.split(","), strict=True))) for line in lines[2:] if line]
    return rows


@pytest.mark.parametrize("case", ["talkdesk", "livevox", "linklive", "cwfm"])
def test_outputs_tie_back_to_inputs(case, tmp_path):
    truth = json.loads((SAMPLES / case / "truth.json").read_text())
    files = run(case, tmp_path)
    service = gis_rows(files, ".SERVICE")
    assert sum(float(r["contactsHandled"]) for _, r in service) == truth["answered_contacts"]
    # in-session time repeats on every row of an agent in a file: count it once per agent and file
    in_session: dict[str, float] = defaultdict(float)
    seen = set()
    for name, r in gis_rows(files, ".AGENT"):
        if (name, r["acdAgentId"]) not in seen:
            seen.add((name, r["acdAgentId"]))
            in_session[r["acdAgentId"]] += float(r["totalUnproratedInSessionSeconds"])
    assert {a: round(v, 3) for a, v in in_session.items()} == truth["logged_in_seconds"]


def test_each_agent_row_keeps_within_its_interval(tmp_path):
    for _, r in gis_rows(run("talkdesk", tmp_path), ".AGENT"):
        parts = [float(r[c]) for c in ("totalUnproratedReadyWaitingSeconds", "totalUnproratedNotReadyBusySeconds")]
        assert sum(parts) <= float(r["totalUnproratedInSessionSeconds"]) + 1e-6 <= 900 + 1e-6


def test_cwfm_bodies_match_service_totals(tmp_path):
    files = run("talkdesk-cwfm", tmp_path / "cwfm")
    gis = run("talkdesk", tmp_path / "gis")
    volume = [r for n, d in files.items() if "callvolume" in n for r in json.loads(d)["CallVolumeUpdates"]]
    assert all(len(json.loads(d)[k]) <= 500 for d in files.values() for k in json.loads(d) if k != "AccountId")
    assert sum(int(r["ContactsOffered"]) for r in volume) == sum(
        float(r["contactsOffered"]) for _, r in gis_rows(gis, ".SERVICE")
    )
    assert all(len(r["Interval"]) == 19 and r["Interval"][4] == "-" for r in volume)  # yyyy-MM-dd HH:mm:ss
    activity = [r for n, d in files.items() if "agentactivity" in n for r in json.loads(d)["AgentUpdates"]]
    assert {r["Activity"] for r in activity} <= {"LoggedOut", "NotReady", "Ready", "OnCall", "Wrapup", "Hold"}


def test_rtstate_arrays_are_ordered_and_typed(tmp_path):
    files = run("livevox-rtstate", tmp_path)
    events = [e for d in files.values() for e in json.loads(d)]
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert all(isinstance(e["gisStateIdentifier"], str) and isinstance(e["timestamp"], int) for e in events)
    assert {e["gisStateIdentifier"] for e in events} <= {"1", "2", "3", "4", "5", "6", "10"}
    assert len(events) == len({(e["acdAgentId"], e["timestamp"], e["gisStateIdentifier"]) for e in events})
    assert any(e.get("reasonCode") == "BREAK" for e in events)


def test_every_platform_sample_is_detected_without_from():
    from gisgate import sources

    for case in ["talkdesk", "livevox", "linklive", "cwfm"]:
        spec = tomllib.loads((SAMPLES / case / "job.toml").read_text())
        for name in spec["inputs"]:
            assert sources.detect(SAMPLES / case / name) == case, name


def test_agents_without_a_queue_stop_with_a_usage_error(tmp_path):
    from tests.conftest import run_cli

    case = SAMPLES / "linklive"
    result = run_cli(
        "convert",
        case / "input" / "user_states.json",
        "--from",
        "linklive",
        "--tz",
        "America/New_York",
        "--out",
        tmp_path,
    )
    assert result.returncode == 2
    assert "--service" in result.stderr and not list(tmp_path.iterdir())
