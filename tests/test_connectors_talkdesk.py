"""The Talkdesk source against a real local Talkdesk: OAuth client credentials (cached, renewed before expiry,
fetched again on 401), Explore report jobs polled to done, a failed job created again, the 303 to a signed
file URL fetched without the token, 429 with Retry-After, a hanging answer, windows no longer than allowed."""

from __future__ import annotations

import json
import threading

import pytest
from fake_talkdesk import FakeTalkdesk

from gisgate import config
from gisgate.connectors.runner import Poller
from gisgate.connectors.talkdesk import Talkdesk
from gisgate.connectors.windows import Window
from gisgate.errors import ConfigError, FetchError

SECRET = "td-SECRET-0123456789"
DAY = 1730592000  # 2024-11-03T00:00:00Z
MORNING = Window(DAY + 4 * 3600, DAY + 6 * 3600)


@pytest.fixture
def talkdesk(monkeypatch):
    monkeypatch.setenv("GISGATE_TEST_TD_SECRET", SECRET)
    server = FakeTalkdesk(secret=SECRET).start()
    yield server
    server.stop()


def spec(server=None, **kw):
    url = server.url if server else "https://api.talkdeskapp.com"
    table = {"name": "td", "kind": "talkdesk", "route": "td", "base_url": url, "token_url": f"{url}/oauth/token",
             "client_id": "gisgate-client", "client_secret_env": "GISGATE_TEST_TD_SECRET", "poll_seconds": 0.05,
             "timeout_s": 1, "backoff_seconds": 0.05, **kw}
    return config.parse({"route": [{"name": "td"}], "source": [table]}).source[0]


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def test_a_window_becomes_a_report_job_whose_file_lands_as_returned(tmp_path, talkdesk):
    p = Poller(spec(talkdesk, start="2024-11-03T04:00:00Z", max_window="2h"), tmp_path / "inbox",
               tmp_path / "gisgate.db", threading.Event(), lambda: DAY + 6 * 3600)
    assert p.poll() == 2
    files = {f.name: f for f in (tmp_path / "inbox").iterdir()}
    assert sorted(files) == ["td-contacts-20241103T040000Z-20241103T060000Z.json",
                             "td-user_status-20241103T040000Z-20241103T060000Z.json"]
    report = json.loads(files["td-contacts-20241103T040000Z-20241103T060000Z.json"].read_bytes())
    assert report["type"] == "contacts" and report["total"] == len(report["entries"]) > 10
    jobs = talkdesk.asked("/jobs")
    body = json.loads(jobs[0].body)
    assert body["timezone"] == "UTC" and body["timespan"] == {"from": "2024-11-03T04:00:00Z",
                                                              "to": "2024-11-03T06:00:00Z"}
    assert len(talkdesk.asked("/oauth/token")) == 1  # the token is kept between calls
    signed = talkdesk.asked("/signed/")
    assert len(signed) == 2 and all("Authorization" not in r.headers for r in signed)
    p.close()


def test_a_failed_job_is_created_again_and_csv_is_kept_as_csv(talkdesk):
    talkdesk.fail_jobs = 1
    talkdesk.polls_to_done = 3
    td = Talkdesk(spec(talkdesk, format="csv"))
    [(data, ext)] = td.fetch("user_status", MORNING)
    assert ext == "csv" and data.startswith(b"user_id,user_name,user_email,status_label")
    assert len([r for r in talkdesk.asked("/jobs") if r.method == "POST"]) == 2
    talkdesk.fail_jobs = 5
    with pytest.raises(FetchError) as e:
        td.fetch("contacts", MORNING)
    assert "ended failed 3 time(s)" in str(e.value) and e.value.transient
    td.close()


def test_the_token_is_renewed_before_it_expires_and_once_on_401(talkdesk):
    clock = Clock()
    talkdesk.token_ttl = 600
    td = Talkdesk(spec(talkdesk), clock=clock)
    td.fetch("contacts", MORNING)
    clock.now += 545  # inside the last 60 s of its 600
    td.fetch("contacts", MORNING)
    assert td.tokens == 2
    talkdesk.expire_tokens()  # the platform revoked it early
    td.fetch("contacts", MORNING)
    assert td.tokens == 3
    assert [r.path for r in talkdesk.requests].count("/oauth/token") == 3
    td.close()


def test_429_with_retry_after_and_a_hanging_answer_are_retried(talkdesk):
    td = Talkdesk(spec(talkdesk))
    talkdesk.inject("/data/reports/contacts/jobs", status=429, retry_after=0.4)
    talkdesk.inject("/data/reports/contacts/jobs/", delay=1.5)  # a job status that never comes (timeout_s 1)
    [(data, _)] = td.fetch("contacts", MORNING)
    assert json.loads(data)["entries"]
    assert len([r for r in talkdesk.asked("/jobs") if r.method == "POST"]) == 2
    td.close()


def test_a_wrong_secret_is_a_permanent_failure_that_names_no_secret(talkdesk, monkeypatch):
    monkeypatch.setenv("GISGATE_TEST_TD_SECRET", "td-WRONG-secret-value")
    td = Talkdesk(spec(talkdesk))
    with pytest.raises(FetchError) as e:
        td.fetch("contacts", MORNING)
    assert not e.value.transient and "HTTP 401" in str(e.value) and "td-WRONG" not in str(e.value)
    td.close()


def test_windows_longer_than_a_month_are_refused():
    with pytest.raises(ConfigError, match="max_window may not exceed 31d"):
        spec(max_window="40d")
    assert spec().max_window == 7 * 86400


def test_the_users_api_is_read_page_by_page(talkdesk):
    talkdesk.users = [{"id": f"u{n}", "email": f"agent{n}@example.com"} for n in range(250)]
    td = Talkdesk(spec(talkdesk))
    try:
        users = td.users()
    finally:
        td.close()
    assert [u["id"] for u in users] == [f"u{n}" for n in range(250)]
    assert [r.query.get("page") for r in talkdesk.asked("/users")] == ["1", "2", "3"]
