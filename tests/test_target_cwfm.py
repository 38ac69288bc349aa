"""The cwfm target against a real local Cloud Connect server (tests/fake_wfm.py)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gisgate import config
from gisgate.errors import PermanentDeliveryError, TransientDeliveryError
from gisgate.targets import open_target
from gisgate.targets.cwfm import CwfmTarget

PASSWORD_ENV = "GISGATE_TEST_CWFM_PASSWORD"


def spec(server, **extra) -> config.CwfmTarget:
    fields = {
        "kind": "cwfm",
        "base_url": server.url,
        "username": server.user,
        "password_env": PASSWORD_ENV,
        "timeout_s": 5.0,
        **extra,
    }
    return config.parse({"target": {"cc": fields}}).target["cc"]


@pytest.fixture(autouse=True)
def password(monkeypatch, fake_wfm):
    monkeypatch.setenv(PASSWORD_ENV, fake_wfm.password)


def call_volume(folder: Path, intervals=("2024-06-15 13:00:00",), points=("10", "11"), offered="5") -> Path:
    records = [
        {
            "CollectionPoint": cp,
            "Interval": iv,
            "ContactsOffered": offered,
            "ContactsNotHandled": "1",
            "TalkTime": "300",
            "HoldTime": "0",
            "ServiceLevelPct": "80",
        }
        for iv in intervals
        for cp in points
    ]
    path = folder / f"callvolume-{len(list(folder.iterdir()))}.json"
    path.write_text(json.dumps({"AccountId": "1", "CallVolumeUpdates": records}))
    return path


def body(folder: Path, name: str, payload: dict) -> Path:
    path = folder / name
    path.write_text(json.dumps(payload))
    return path


def test_login_bearer_and_all_four_bulk_endpoints(fake_wfm, tmp_path):
    files = [
        body(
            tmp_path,
            "people.json",
            {
                "AccountId": "1",
                "AgentInserts": [{"AgentId": "2", "FirstName": "First2", "LastName": "Last2"}],
            },
        ),
        body(
            tmp_path,
            "points.json",
            {
                "AccountId": "1",
                "CollectionPointInserts": [{"CollectionPointId": "10", "Description": "Sales"}],
            },
        ),
        body(
            tmp_path,
            "activity.json",
            {
                "AccountId": "1",
                "AgentUpdates": [
                    {
                        "AgentId": "2",
                        "EventTime": "2024-06-15 13:02:11",
                        "Activity": "notready",
                        "ReasonCode": "7",
                    }
                ],
            },
        ),
        call_volume(tmp_path),
    ]
    target = open_target("cc", spec(fake_wfm))
    receipt = target.deliver(files)
    target.close()
    assert [u.path for u in fake_wfm.uploads] == [
        "/api/ccc/People/BulkInsertPeople",
        "/api/ccc/CollectionPoint/BulkInsertCollectionPoints",
        "/api/ccc/AgentActivity/BulkInsertAgentActivity",
        "/api/ccc/CallVolume/BulkInsertCallVolume",
    ]
    assert fake_wfm.logins == 1 and fake_wfm.requests[0] == ("POST", "/api/ccs/auth/login")
    cv = fake_wfm.uploads[-1].body
    assert {r["UpdateExisting"] for r in cv["CallVolumeUpdates"]} == {"false"}
    assert receipt.delivered == [f.name for f in files]


def test_login_falls_back_to_ccc_path_on_404_and_remembers_it(fake_wfm, tmp_path):
    fake_wfm.cwfm_login_paths = {"/api/ccc/auth/login"}
    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([call_volume(tmp_path)])
    target._token = None  # force a second login
    target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:15:00",))])
    target.close()
    logins = [p for m, p in fake_wfm.requests if "auth/login" in p]
    assert logins == ["/api/ccs/auth/login", "/api/ccc/auth/login", "/api/ccc/auth/login"]


def test_token_is_refreshed_before_it_expires(fake_wfm, wfm_clock, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm), clock=wfm_clock)
    target.deliver([call_volume(tmp_path)])
    wfm_clock.advance(3000)  # 50 minutes: the client refreshes on its own
    target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:15:00",))])
    wfm_clock.advance(3000)  # 100 minutes after login: the first token is dead, the refreshed one alive
    target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:30:00",))])
    target.close()
    assert fake_wfm.logins == 1 and fake_wfm.refreshes == 2
    assert [p for m, p in fake_wfm.requests].count("/api/ccc/auth/refreshtoken") == 2
    assert fake_wfm.requests.count(("POST", "/api/ccc/CallVolume/BulkInsertCallVolume")) == 3  # never a 401
    assert len(fake_wfm.uploads) == 3


def test_expired_token_mid_batch_refreshes_once_and_continues(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm, batch_size=2))
    intervals = [f"2024-06-15 13:{m:02d}:00" for m in (0, 15, 30)]
    target.deliver([call_volume(tmp_path, intervals=intervals[:1])])
    # The second request of the next batch finds every token dead.
    fake_wfm.inject("/bulkinsertcallvolume", expire_sessions=True, after=1)
    target.deliver([call_volume(tmp_path, intervals=intervals[1:])])
    target.close()
    assert fake_wfm.refreshes == 1 and fake_wfm.logins == 1
    assert [len(u.body["CallVolumeUpdates"]) for u in fake_wfm.uploads] == [2, 2, 2]


def test_refresh_grant_type_falls_back_on_400(fake_wfm, wfm_clock, tmp_path):
    fake_wfm.grant_types = {"refresh_token"}
    target = CwfmTarget("cc", spec(fake_wfm), clock=wfm_clock)
    target.deliver([call_volume(tmp_path)])
    wfm_clock.advance(3100)
    target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:15:00",))])
    target.close()
    assert fake_wfm.refreshes == 1 and fake_wfm.logins == 1


def test_success_false_in_a_200_is_permanent(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm))
    fake_wfm.inject("/bulkinsertcallvolume", success_false=True, body="Interval is not aligned")
    with pytest.raises(PermanentDeliveryError, match="Success=false: Interval is not aligned") as e:
        target.deliver([call_volume(tmp_path)])
    assert isinstance(e.value.__cause__, httpx.HTTPStatusError)
    target.close()


def test_duplicate_call_volume_is_resent_as_correction(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([call_volume(tmp_path)])
    receipt = target.deliver([call_volume(tmp_path, offered="7")])
    target.close()
    first, second = fake_wfm.uploads
    assert {r["UpdateExisting"] for r in second.body["CallVolumeUpdates"]} == {"true"}
    assert {r["ContactsOffered"] for r in fake_wfm.rows["CallVolumeUpdates"].values()} == {"7"}
    assert "2 as corrections" in receipt.detail


def test_duplicate_agent_activity_counts_as_delivered(fake_wfm, tmp_path):
    events = {
        "AccountId": "1",
        "AgentUpdates": [{"AgentId": "2", "EventTime": "2024-06-15 13:02:11", "Activity": "OnCall"}],
    }
    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([body(tmp_path, "a1.json", events)])
    receipt = target.deliver([body(tmp_path, "a2.json", events)])
    target.close()
    assert len(fake_wfm.uploads) == 1 and "0 AgentUpdates record(s), 1 already present" in receipt.detail


def test_batches_keep_an_interval_together(fake_wfm, tmp_path):
    intervals = [f"2024-06-15 13:{m:02d}:00" for m in (0, 15, 30)]
    target = CwfmTarget("cc", spec(fake_wfm, batch_size=5))
    target.deliver([call_volume(tmp_path, intervals=intervals, points=("10", "11", "12"))])
    target.close()
    sizes = [[r["Interval"] for r in u.body["CallVolumeUpdates"]] for u in fake_wfm.uploads]
    assert [len(s) for s in sizes] == [3, 3, 3]
    assert all(len(set(s)) == 1 for s in sizes)


def test_bad_password_5xx_timeout(fake_wfm, tmp_path, monkeypatch):
    target = CwfmTarget("cc", spec(fake_wfm, timeout_s=1.0))
    fake_wfm.inject("/bulkinsertcallvolume", status=503)
    with pytest.raises(TransientDeliveryError, match="HTTP 503"):
        target.deliver([call_volume(tmp_path)])
    fake_wfm.inject("/bulkinsertcallvolume", delay=3.0)
    with pytest.raises(TransientDeliveryError, match="timed out") as e:
        target.deliver([call_volume(tmp_path)])
    assert isinstance(e.value.__cause__, httpx.TimeoutException)
    fake_wfm.inject("/bulkinsertcallvolume", status=400)
    with pytest.raises(PermanentDeliveryError, match="HTTP 400"):
        target.deliver([call_volume(tmp_path)])
    target.close()
    monkeypatch.setenv(PASSWORD_ENV, "wrong-password-123")
    wrong = CwfmTarget("cc", spec(fake_wfm))
    with pytest.raises(PermanentDeliveryError, match="Invalid user name or password.*password_env") as e:
        wrong.deliver([call_volume(tmp_path)])
    wrong.close()
    assert "wrong-password-123" not in str(e.value)


def test_not_a_bulk_body_is_refused(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm))
    with pytest.raises(PermanentDeliveryError, match="not a Cloud Connect bulk body"):
        target.deliver([body(tmp_path, "x.json", {"rows": []})])
    target.close()


def test_refused_refresh_falls_back_to_a_new_login(fake_wfm, wfm_clock, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm), clock=wfm_clock)
    target.deliver([call_volume(tmp_path)])
    fake_wfm.refresh_tokens.clear()  # the server forgot the refresh token
    wfm_clock.advance(3000)
    target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:15:00",))])
    target.close()
    assert fake_wfm.logins == 2 and fake_wfm.refreshes == 0 and len(fake_wfm.uploads) == 2


def test_401_after_refresh_and_login_is_permanent(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([call_volume(tmp_path)])
    fake_wfm.inject("/bulkinsertcallvolume", status=401, times=3)
    with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
        target.deliver([call_volume(tmp_path, intervals=("2024-06-15 13:15:00",))])
    target.close()
    assert fake_wfm.refreshes == 1 and fake_wfm.logins == 2


def test_tls_verified_with_ca_file(fake_wfm_tls, wfm_tls_files, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, fake_wfm_tls.password)
    untrusted = CwfmTarget("cc", spec(fake_wfm_tls))
    with pytest.raises(PermanentDeliveryError, match="not trusted"):
        untrusted.deliver([call_volume(tmp_path)])
    untrusted.close()
    trusted = CwfmTarget("cc", spec(fake_wfm_tls, ca_file=str(wfm_tls_files["ca"])))
    trusted.deliver([call_volume(tmp_path)])
    trusted.close()
    assert fake_wfm_tls.logins == 1 and len(fake_wfm_tls.uploads) == 1


def test_retry_of_a_partly_sent_file_resumes_where_it_stopped(fake_wfm, tmp_path):
    intervals = [f"2024-06-15 {h:02d}:00:00" for h in range(6)]
    target = CwfmTarget("cc", spec(fake_wfm, batch_size=2))
    file = call_volume(tmp_path, intervals=intervals)
    fake_wfm.inject("/bulkinsertcallvolume", status=500, after=2)
    with pytest.raises(TransientDeliveryError):
        target.deliver([file])
    receipt = target.deliver([file])
    target.close()
    assert len(fake_wfm.uploads) == 6 and "corrections" not in receipt.detail


def test_explicit_corrections_and_duplicate_people(fake_wfm, tmp_path):
    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([call_volume(tmp_path)])
    fix = json.loads(call_volume(tmp_path, offered="9").read_text())
    for r in fix["CallVolumeUpdates"]:
        r["UpdateExisting"] = "True"
    receipt = target.deliver([body(tmp_path, "fix.json", fix)])
    assert "corrections" not in receipt.detail  # sent as a correction at once, no failed first pass
    assert {r["UpdateExisting"] for r in fake_wfm.uploads[-1].body["CallVolumeUpdates"]} == {"true"}
    target.close()
    assert fake_wfm.requests.count(("POST", "/api/ccc/CallVolume/BulkInsertCallVolume")) == 2


def test_a_duplicate_among_new_people_does_not_lose_the_new_ones(fake_wfm, tmp_path):
    def people(*ids):
        return {"AccountId": "1", "AgentInserts": [{"AgentId": i, "FirstName": "F", "LastName": "L"} for i in ids]}

    target = CwfmTarget("cc", spec(fake_wfm))
    target.deliver([body(tmp_path, "p1.json", people("2"))])
    receipt = target.deliver([body(tmp_path, "p2.json", people("1", "2", "3"))])  # the server refuses all 3
    target.close()
    assert sorted(k[1] for k in fake_wfm.rows["AgentInserts"]) == ["1", "2", "3"]
    assert "p2.json: 2 AgentInserts record(s), 1 already present" in receipt.detail
