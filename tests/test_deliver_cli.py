"""`gisgate deliver` and gisgate/deliver.py: batching, retries within a deadline, exit codes, secrets."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from gisgate import config
from gisgate.cli import main
from gisgate.commands.deliver import batches, deliver_files
from gisgate.errors import InputError, PermanentDeliveryError, TransientDeliveryError

WFO_ENV, CWFM_ENV = "GISGATE_TEST_WFO_PASSWORD", "GISGATE_TEST_CWFM_PASSWORD"


def gis(folder: Path, stamp="202411030100N0400", acd=1) -> list[Path]:
    files = []
    for name, head in (("AgentProductivity.AGENT", "AGENT"), ("ServiceHistorical.SERVICE", "SERVICE")):
        f = folder / f"{stamp}_{acd}_{name}"
        header = f"{head} DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: {acd}"
        f.write_bytes(f"{header}\r\nacdServiceId\r\n10\r\n".encode())
        files.append(f)
    return files


def contact(folder: Path, media=("call-1.wav", "call-2.wav")) -> Path:
    rows = "".join(f"agent@example.com,17306112{i:05d},{m}\r\n" for i, m in enumerate(media))
    csv = folder / "CONTACT.gisgate-test-1.csv"
    csv.write_text("AgentId,ContactStartTimeMs,Recording1\r\n" + rows)
    for m in media:
        (folder / m).write_bytes(b"RIFF....WAVE")
    return csv


def write_config(folder: Path, server, **cwfm) -> Path:
    path = folder / "gisgate.toml"
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in cwfm.items())
    path.write_text(
        f"[acd]\nnumber = 1\n\n"
        f'[target.wfo]\nkind = "webex"\nbase_url = "{server.url}"\nusername = "{server.user}"\n'
        f'password_env = "{WFO_ENV}"\ntimeout_s = 5\n\n'
        f'[target.cc]\nkind = "cwfm"\nbase_url = "{server.url}"\nusername = "{server.user}"\n'
        f'password_env = "{CWFM_ENV}"\ntimeout_s = 5\n{extra}'
    )
    return path


@pytest.fixture(autouse=True)
def passwords(monkeypatch, fake_wfm):
    monkeypatch.setenv(WFO_ENV, fake_wfm.password)
    monkeypatch.setenv(CWFM_ENV, fake_wfm.password)


def run(capsys, *argv) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_batches_pair_gis_files_and_put_media_before_their_csv(tmp_path):
    a1, s1 = gis(tmp_path)
    a2, s2 = gis(tmp_path, "202411030115N0400")
    csv = contact(tmp_path)
    wav1 = tmp_path / "call-1.wav"
    groups = batches([s1, a2, wav1, csv, a1, s2])
    assert [[p.name for p in g] for g in groups] == [
        ["call-1.wav", "call-2.wav", csv.name],  # call-2.wav found beside the CSV
        [a1.name, s1.name],
        [a2.name, s2.name],
    ]


def test_missing_media_is_an_input_error(tmp_path, capsys, fake_wfm):
    csv = contact(tmp_path)
    (tmp_path / "call-2.wav").unlink()
    with pytest.raises(InputError, match="references call-2.wav"):
        batches([csv])
    code, _, err = run(
        capsys, "deliver", csv, "--target", "wfo", "--config", write_config(tmp_path, fake_wfm)
    )
    assert code == 3 and "call-2.wav" in err and fake_wfm.requests == []


def test_cli_delivers_everything_and_logs_out(tmp_path, capsys, fake_wfm):
    states = tmp_path / "states.txt"  # a name that says nothing: --kind tells
    states.write_text(
        json.dumps([{"acdAgentId": "7", "gisStateIdentifier": "3", "timestamp": 1730611200000}])
    )
    cfg = write_config(tmp_path, fake_wfm)
    code, out, err = run(
        capsys, "deliver", *gis(tmp_path), contact(tmp_path), "--target", "wfo", "--config", cfg
    )
    assert (code, err) == (0, "")
    assert "delivered 5 file(s) in 2 batch(es) to wfo" in out
    code, out, _ = run(capsys, "deliver", states, "--target", "wfo", "--config", cfg, "--kind", "rtstate")
    assert code == 0
    assert [u.kind for u in fake_wfm.uploads] == ["contact", "gis", "rtstate"]
    assert fake_wfm.uploads[1].query == {"acdServerId": "1"}  # from [acd] number
    assert fake_wfm.logins == fake_wfm.logouts == 2 and fake_wfm.sessions == {}


def test_transient_error_is_retried_with_backoff(tmp_path, fake_wfm):
    cfg = config.load(write_config(tmp_path, fake_wfm))
    fake_wfm.inject("/polling", status=500, times=2)
    sleeps = []
    result = deliver_files(gis(tmp_path), cfg, "wfo", sleep=sleeps.append, jitter=lambda: 1.0)
    assert sleeps == [1.0, 2.0] and result.attempts == 3
    assert len(fake_wfm.uploads_of("gis")) == 1 and fake_wfm.logouts == 1


def test_cli_500_then_success(tmp_path, capsys, fake_wfm):
    fake_wfm.inject("/polling", status=500)
    code, out, _ = run(
        capsys, "deliver", *gis(tmp_path), "--target", "wfo", "--config", write_config(tmp_path, fake_wfm)
    )
    assert code == 0 and "(2 attempt(s))" in out
    assert len(fake_wfm.uploads_of("gis")) == 1


def test_cli_gives_up_at_the_deadline_with_exit_4(tmp_path, capsys, fake_wfm):
    fake_wfm.inject("/polling", status=503, times=100)
    code, _, err = run(
        capsys,
        "deliver",
        *gis(tmp_path),
        "--target",
        "wfo",
        "--config",
        write_config(tmp_path, fake_wfm),
        "--deadline",
        "1",
    )
    assert code == 4
    assert err.startswith("Error: delivered 0 file(s)") and "HTTP 503" in err and "deadline reached" in err
    assert fake_wfm.logouts == 1  # the session is closed even on failure


def test_permanent_error_is_not_retried(tmp_path, fake_wfm):
    cfg = config.load(write_config(tmp_path, fake_wfm))
    fake_wfm.inject("/polling", status=400)
    first, second = gis(tmp_path), gis(tmp_path, "202411030115N0400")
    with pytest.raises(PermanentDeliveryError, match="1 batch.*failed") as e:
        deliver_files(first + second, cfg, "wfo", sleep=pytest.fail)
    assert "HTTP 400" in str(e.value)
    assert len(fake_wfm.uploads_of("gis")) == 1  # the other interval still went


def test_timeout_is_transient_and_retried_until_deadline(tmp_path, fake_wfm):
    cfg = config.load(write_config(tmp_path, fake_wfm))
    cfg = cfg.model_copy(
        update={"target": {**cfg.target, "wfo": cfg.target["wfo"].model_copy(update={"timeout_s": 0.5})}}
    )
    fake_wfm.inject("/polling", delay=2.0, times=5)
    with pytest.raises(TransientDeliveryError, match="timed out"):
        deliver_files(gis(tmp_path), cfg, "wfo", deadline_s=1.0, backoff_s=(0.1, 0.1))
    assert sum("polling" in p for _, p in fake_wfm.requests) >= 2  # retried before giving up


def test_unknown_target_and_kind_are_config_errors(tmp_path, capsys, fake_wfm):
    cfg = write_config(tmp_path, fake_wfm)
    code, _, err = run(capsys, "deliver", *gis(tmp_path), "--target", "nope", "--config", cfg)
    assert code == 2 and "known targets: cc, wfo" in err


def test_cwfm_through_the_cli(tmp_path, capsys, fake_wfm):
    body = tmp_path / "cv.json"
    body.write_text(
        json.dumps(
            {
                "AccountId": "1",
                "CallVolumeUpdates": [
                    {
                        "CollectionPoint": "10",
                        "Interval": "2024-06-15 13:00:00",
                        "ContactsOffered": "3",
                        "ContactsNotHandled": "0",
                        "TalkTime": "90",
                        "HoldTime": "0",
                        "ServiceLevelPct": "100",
                    }
                ],
            }
        )
    )
    code, out, _ = run(
        capsys, "deliver", body, "--target", "cc", "--config", write_config(tmp_path, fake_wfm)
    )
    assert code == 0 and "delivered 1 file(s)" in out
    assert fake_wfm.uploads_of("CallVolumeUpdates")[0].body["AccountId"] == "1"


def test_no_secret_in_debug_logs_or_errors(tmp_path, capsys, caplog, fake_wfm, monkeypatch):
    """A full delivery (login, uploads, re-auth, token refresh, logout, failures) at DEBUG, httpx and
    httpcore included: neither the password nor any session id or token appears anywhere."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    cfg = write_config(tmp_path, fake_wfm, refresh_after_s=0.001, batch_size=1)  # refresh per call
    outputs = []
    states = tmp_path / "rt.json"
    states.write_text(
        json.dumps([{"acdAgentId": "7", "gisStateIdentifier": "3", "timestamp": 1730611200000}])
    )
    fake_wfm.inject("/polling", expire_sessions=True)  # forces a second login mid-run
    fake_wfm.inject("/realtimeagentstate", status=500)  # a retried failure
    outputs.append(
        run(
            capsys,
            "-v",
            "deliver",
            *gis(tmp_path),
            contact(tmp_path),
            states,
            "--target",
            "wfo",
            "--config",
            cfg,
        )
    )
    volume = tmp_path / "cv.json"
    volume.write_text(
        json.dumps(
            {
                "AccountId": "1",
                "CallVolumeUpdates": [
                    {
                        "CollectionPoint": "10",
                        "Interval": f"2024-06-15 13:{m:02d}:00",
                        "ContactsOffered": "1",
                        "ContactsNotHandled": "0",
                        "TalkTime": "9",
                        "HoldTime": "0",
                        "ServiceLevelPct": "0",
                    }
                    for m in (0, 15)
                ],
            }
        )
    )
    outputs.append(run(capsys, "-v", "deliver", volume, "--target", "cc", "--config", cfg))
    fake_wfm.inject("/bulkinsertcallvolume", success_false=True, body="rejected")
    outputs.append(run(capsys, "-v", "deliver", volume, "--target", "cc", "--config", cfg))
    monkeypatch.setenv(WFO_ENV, fake_wfm.password + "-wrong")
    outputs.append(run(capsys, "-v", "deliver", *gis(tmp_path), "--target", "wfo", "--config", cfg))

    assert [code for code, _, _ in outputs] == [0, 0, 4, 4]
    assert fake_wfm.logins >= 3 and fake_wfm.refreshes >= 1 and fake_wfm.logouts == 1
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    everything = logs + "".join(out + err for _, out, err in outputs)
    assert "Set-Cookie" in logs and "***" in logs  # headers were logged, and masked
    secrets = [fake_wfm.password, *fake_wfm.issued]
    assert len(secrets) >= 6
    leaked = [s for s in secrets if s in everything]
    assert leaked == []


def test_after_the_deadline_remaining_batches_are_not_tried(tmp_path, fake_wfm):
    cfg = config.load(write_config(tmp_path, fake_wfm))
    fake_wfm.inject("/polling", status=503, times=100)
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    files = gis(tmp_path) + gis(tmp_path, "202411030115N0400") + gis(tmp_path, "202411030130N0400")
    with pytest.raises(TransientDeliveryError, match="not tried: the deadline was reached") as e:
        deliver_files(files, cfg, "wfo", deadline_s=10, sleep=sleep, clock=lambda: now[0])
    assert isinstance(e.value.__cause__, TransientDeliveryError)
    polls = [p for _, p in fake_wfm.requests if "polling" in p]
    assert 3 <= len(polls) <= 6 and fake_wfm.logouts == 1  # retries of the first batch only
    assert str(e.value).count("not tried") == 2


def test_real_process_at_debug_leaks_no_secret(tmp_path, cli, fake_wfm):
    """`gisgate -v deliver` as a child process: DEBUG logging on stderr, a failed first attempt, a
    retry, a logout; the password, session ids and tokens appear nowhere in its output."""
    fake_wfm.inject("/polling", status=500)
    done = cli("-v", "deliver", *gis(tmp_path), "--target", "wfo", "--config", write_config(tmp_path, fake_wfm))
    assert done.returncode == 0, done.stderr
    assert "DEBUG httpcore" in done.stderr and "Set-Cookie" in done.stderr and "retrying in" in done.stderr
    assert fake_wfm.logins == fake_wfm.logouts == 1
    secrets = [fake_wfm.password, *fake_wfm.issued]
    assert [s for s in secrets if s in done.stdout + done.stderr] == []


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("202411030100N0400_1_AgentProductivity.AGENT", "", "gis"),
        ("202406151300P0000_12_ServiceHistorical.SERVICE", "", "gis"),
        ("20241103010N0400_1_ServiceHistorical.SERVICE", "", "unknown"),  # 11 digits: not GIS
        ("CONTACT.batch-1.csv", "AgentId,ContactStartTimeMs,Recording1\n", "contact"),
        ("contact.batch-1.csv", "AgentId,ContactStartTimeMs,Recording1\n", "unknown"),  # prefix is case-sensitive
        ("TEXTCONTACT.csv", "textType,filename,time,username\n", "textcontact"),
        ("WHIT_1.csv", "\ufeffserviceName,serviceNumber,date,period,receivedCalls\n", "whit"),
        ("rt.json", '[{"acdAgentId": "1", "gisStateIdentifier": "3", "timestamp": 1}]', "rtstate"),
        ("cv.json", '{"AccountId": "1", "CallVolumeUpdates": []}', "cwfm"),
        ("other.json", '{"rows": []}', "unknown"),
        ("broken.json", "[{", "unknown"),
    ],
)
def test_classify(tmp_path, name, content, kind):
    from gisgate.produced import kind_of

    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert kind_of(path) == kind
