"""The webex target against a real local WFO server (tests/fake_wfm.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest

from gisgate import config
from gisgate.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError
from gisgate.targets import open_target
from gisgate.targets.webex import WebexTarget

AGENT = "202411030100N0400_1_AgentProductivity.AGENT"
SERVICE = "202411030100N0400_1_ServiceHistorical.SERVICE"
PASSWORD_ENV = "GISGATE_TEST_WFO_PASSWORD"


def spec(server, **extra) -> config.WebexTarget:
    fields = {
        "kind": "webex",
        "base_url": server.url,
        "username": server.user,
        "password_env": PASSWORD_ENV,
        "acd_server_id": 1,
        "timeout_s": 5.0,
        **extra,
    }
    return config.parse({"target": {"wfo": fields}}).target["wfo"]


@pytest.fixture(autouse=True)
def password(monkeypatch, fake_wfm):
    monkeypatch.setenv(PASSWORD_ENV, fake_wfm.password)


def gis_pair(folder: Path, agent=AGENT, service=SERVICE) -> list[Path]:
    a, s = folder / agent, folder / service
    a.write_bytes(
        b"AGENT DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: 1\r\n"
        b"acdAgentId,acdServiceId,contactsHandled\r\n1001,10,3\r\n"
    )
    s.write_bytes(
        b"SERVICE DATE: 2024-11-03 INTERVAL: 01:00 TZOFFSET: -0400 ACD: 1\r\n"
        b"acdServiceId,contactsOffered,contactsHandled\r\n10,4,3\r\n"
    )
    return [a, s]


def test_gis_pair_goes_in_one_multipart_request_with_exact_names(fake_wfm, tmp_path):
    files = gis_pair(tmp_path)
    target = open_target("wfo", spec(fake_wfm))
    receipt = target.deliver(files)
    target.close()
    [upload] = fake_wfm.uploads_of("gis")
    assert upload.path == "/api/rest/scheduling/agentStateHistorical/polling"
    assert upload.query == {"acdServerId": "1"}
    assert [(p.name, p.filename) for p in upload.parts] == [("file", AGENT), ("file", SERVICE)]
    assert [p.data for p in upload.parts] == [f.read_bytes() for f in files]  # byte for byte, CRLF kept
    assert receipt.delivered == [AGENT, SERVICE] and receipt.detail.startswith("HTTP 200: ")


def test_session_cookie_is_reused_and_logout_on_close(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm))
    for minute in ("00", "15", "30"):
        target.deliver(
            gis_pair(
                tmp_path, AGENT.replace("0100N", f"01{minute}N"), SERVICE.replace("0100N", f"01{minute}N")
            )
        )
    assert fake_wfm.logins == 1 and len(fake_wfm.uploads_of("gis")) == 3
    assert len(fake_wfm.sessions) == 1
    target.close()
    assert fake_wfm.logouts == 1 and fake_wfm.sessions == {}
    assert fake_wfm.requests[-1] == ("DELETE", "/api/rest/authorize")
    target.close()  # idempotent
    assert fake_wfm.logouts == 1


def test_session_expiry_mid_batch_reauthorises_once(fake_wfm, tmp_path):
    states = [
        {"acdAgentId": str(1000 + i % 7), "gisStateIdentifier": "3", "timestamp": 1730611200000 + i}
        for i in range(1200)
    ]
    (tmp_path / "rt.json").write_text(json.dumps(states))
    target = WebexTarget("wfo", spec(fake_wfm))
    target.deliver(gis_pair(tmp_path))  # opens the session
    fake_wfm.inject("/realtimeagentstate", expire_sessions=True, after=1)  # the 2nd of 3 requests
    receipt = target.deliver([tmp_path / "rt.json"])
    target.close()
    uploads = fake_wfm.uploads_of("rtstate")
    assert [len(u.body) for u in uploads] == [500, 500, 200]
    assert sum((u.body for u in uploads), []) == states
    assert all(u.content_type.startswith("application/json") for u in uploads)
    assert fake_wfm.logins == 2 and target.authorizations == 2
    assert "1200 real-time state(s)" in receipt.detail


def test_idle_session_is_renewed_before_the_server_drops_it(fake_wfm, wfm_clock, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm), clock=wfm_clock)
    target.deliver(gis_pair(tmp_path))
    wfm_clock.advance(7200 - 30)  # inside the safety margin: the client re-opens without a 401 round trip
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert fake_wfm.logins == 2
    assert [m for m, p in fake_wfm.requests if "polling" in p] == ["POST", "POST"]


def test_refused_twice_is_permanent(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm))
    fake_wfm.inject("/polling", status=403, times=2)
    with pytest.raises(PermanentDeliveryError, match="even after re-authorising") as e:
        target.deliver(gis_pair(tmp_path))
    assert isinstance(e.value.__cause__, httpx.HTTPStatusError)
    target.close()
    assert fake_wfm.logins == 2


def test_wrong_password_is_permanent_and_not_echoed(fake_wfm, tmp_path, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    target = WebexTarget("wfo", spec(fake_wfm))
    with pytest.raises(PermanentDeliveryError, match="refused the login") as e:
        target.deliver(gis_pair(tmp_path))
    target.close()
    assert "not-the-password" not in str(e.value)


def test_server_error_is_transient_and_client_error_permanent(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm))
    fake_wfm.inject("/polling", status=500)
    with pytest.raises(TransientDeliveryError, match="HTTP 500") as e:
        target.deliver(gis_pair(tmp_path))
    assert isinstance(e.value.__cause__, httpx.HTTPStatusError)
    fake_wfm.inject("/polling", status=422, body="bad interval")
    with pytest.raises(PermanentDeliveryError, match="HTTP 422.*bad interval") as e:
        target.deliver(gis_pair(tmp_path))
    assert isinstance(e.value.__cause__, httpx.HTTPStatusError)
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert len(fake_wfm.uploads_of("gis")) == 1


def test_timeout_is_transient(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm, timeout_s=1.0))
    target.deliver(gis_pair(tmp_path))
    fake_wfm.inject("/polling", delay=3.0)
    with pytest.raises(TransientDeliveryError, match="timed out") as e:
        target.deliver(gis_pair(tmp_path))
    assert isinstance(e.value.__cause__, httpx.TimeoutException)
    target.close()


def test_connection_refused_is_transient(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm))
    fake_wfm.stop()
    with pytest.raises(TransientDeliveryError) as e:
        target.deliver(gis_pair(tmp_path))
    assert isinstance(e.value.__cause__, httpx.ConnectError)
    target.close()


def test_whit_contacts_and_text_contacts(fake_wfm, tmp_path):
    whit = tmp_path / "whit_20241103.csv"
    whit.write_text(
        "serviceName,serviceNumber,date,period,receivedCalls,handledCalls,avgTalkTime,avgACWTime\r\n"
        "Sales,10,2024-11-03,05:00,4,3,120,10\r\n"
    )
    media = tmp_path / "call-1.wav"
    media.write_bytes(bytes(range(256)) * 8)  # binary, with CR and LF bytes inside
    contact = tmp_path / "CONTACT.gisgate-test-20241103-1.csv"
    contact.write_text(
        "AgentId,ContactStartTimeMs,Recording1\r\nagent@example.com,1730611200000,call-1.wav\r\n"
    )
    body = tmp_path / "chat-1.txt"
    body.write_text("Agent: hello\n")
    text = tmp_path / "TEXTCONTACT.csv"
    text.write_text("textType,filename,time,username\r\nchat,chat-1.txt,1730611200000,agent@example.com\r\n")
    target = WebexTarget("wfo", spec(fake_wfm))
    target.deliver([whit])
    target.deliver([media, contact])
    target.deliver([body, text])
    target.close()
    [w] = fake_wfm.uploads_of("whit")
    assert w.query == {"acdServerId": "1", "timeZone": "UTC"} and w.parts[0].filename == whit.name
    [c] = fake_wfm.uploads_of("contact")
    assert [p.filename for p in c.parts] == ["call-1.wav", contact.name]  # media first, CSV last
    assert c.parts[0].data == media.read_bytes()
    [t] = fake_wfm.uploads_of("textcontact")
    assert t.path == "/api/upload/textcontacts/" and [p.filename for p in t.parts] == [
        "chat-1.txt",
        "TEXTCONTACT.csv",
    ]


def test_part_name_and_rtstate_multipart_are_configurable(fake_wfm, tmp_path):
    states = [{"acdAgentId": "7", "gisStateIdentifier": "2", "timestamp": 1730611200000, "reasonCode": 4}]
    (tmp_path / "rt.json").write_text(json.dumps(states))
    target = WebexTarget("wfo", spec(fake_wfm, part_name="upload", rtstate_content="multipart"))
    target.deliver(gis_pair(tmp_path))
    target.deliver([tmp_path / "rt.json"])
    target.close()
    assert {p.name for p in fake_wfm.uploads_of("gis")[0].parts} == {"upload"}
    [rt] = fake_wfm.uploads_of("rtstate")
    assert rt.content_type.startswith("multipart/form-data") and rt.body == states


def test_acd_mismatch_and_unknown_files_are_refused(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm, acd_server_id=2))
    with pytest.raises(PermanentDeliveryError, match="ACD"):
        target.deliver(gis_pair(tmp_path))
    (tmp_path / "notes.bin").write_bytes(b"\x00")
    with pytest.raises(PermanentDeliveryError, match="--kind"):
        target.deliver([tmp_path / "notes.bin"])
    target.close()
    assert fake_wfm.uploads == []


def test_missing_secret_is_a_config_error(fake_wfm, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV)
    with pytest.raises(ConfigError, match=PASSWORD_ENV):
        WebexTarget("wfo", spec(fake_wfm))


def test_password_file(fake_wfm, tmp_path, monkeypatch):
    secret = tmp_path / "wfo.pw"
    secret.write_text(fake_wfm.password + "\n")
    os.chmod(secret, 0o600)
    target = WebexTarget("wfo", spec(fake_wfm, password_env=None, password_file=str(secret)))
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert fake_wfm.logins == 1


def test_tls_untrusted_certificate_is_refused_then_trusted_with_ca_file(
    fake_wfm_tls, wfm_tls_files, tmp_path
):
    untrusted = WebexTarget("wfo", spec(fake_wfm_tls))
    with pytest.raises(PermanentDeliveryError, match="not trusted.*ca_file"):
        untrusted.deliver(gis_pair(tmp_path))
    untrusted.close()
    assert fake_wfm_tls.logins == 0
    trusted = WebexTarget("wfo", spec(fake_wfm_tls, ca_file=str(wfm_tls_files["ca"])))
    trusted.deliver(gis_pair(tmp_path))
    trusted.close()
    assert fake_wfm_tls.url.startswith("https://") and len(fake_wfm_tls.uploads_of("gis")) == 1


def test_redirect_to_a_login_page_reauthorises(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm))
    target.deliver(gis_pair(tmp_path))
    fake_wfm.inject("/polling", status=302)
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert fake_wfm.logins == 2 and len(fake_wfm.uploads_of("gis")) == 2


def test_tenant_id_is_sent_as_a_number_then_as_a_string_on_400(fake_wfm, tmp_path):
    fake_wfm.tenant_id_as_string = True
    target = WebexTarget("wfo", spec(fake_wfm, tenant_id=3, locale="en_US"))
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert [b.get("tenantId") for b in fake_wfm.authorize_bodies] == [3, "3"]
    assert fake_wfm.authorize_bodies[-1] == {
        "userId": fake_wfm.user,
        "language": "en",
        "locale": "en_US",
        "tenantId": "3",
    }


def test_gis_files_of_another_acd_need_their_own_acd_server_id(fake_wfm, tmp_path):
    target = WebexTarget("wfo", spec(fake_wfm, acd_server_id=None))
    files = gis_pair(tmp_path, AGENT.replace("_1_", "_7_"), SERVICE.replace("_1_", "_7_"))
    target.deliver(files)
    target.close()
    assert fake_wfm.uploads_of("gis")[0].query == {"acdServerId": "7"}


def test_retry_of_a_partly_sent_state_file_resumes_where_it_stopped(fake_wfm, tmp_path):
    states = [{"acdAgentId": "7", "gisStateIdentifier": "3", "timestamp": 1730611200000 + i} for i in range(1200)]
    (tmp_path / "rt.json").write_text(json.dumps(states))
    target = WebexTarget("wfo", spec(fake_wfm))
    fake_wfm.inject("/realtimeagentstate", status=502, after=1)
    with pytest.raises(TransientDeliveryError, match="HTTP 502"):
        target.deliver([tmp_path / "rt.json"])
    target.deliver([tmp_path / "rt.json"])
    target.close()
    assert sum((u.body for u in fake_wfm.uploads_of("rtstate")), []) == states  # each state exactly once


def test_base_url_must_be_http_without_credentials(fake_wfm):
    with pytest.raises(ConfigError, match="base_url.*not an http"):
        spec(fake_wfm, base_url="wfo.example.com")
    with pytest.raises(ConfigError, match="no user:password@"):
        spec(fake_wfm, base_url="https://svc:secret@wfo.example.com")


def test_a_vanished_file_is_a_permanent_failure(fake_wfm, tmp_path):
    files = gis_pair(tmp_path)
    files[1].unlink()
    target = WebexTarget("wfo", spec(fake_wfm))
    with pytest.raises(PermanentDeliveryError, match="cannot read") as e:
        target.deliver(files)
    target.close()
    assert isinstance(e.value.__cause__, FileNotFoundError) and fake_wfm.uploads == []


def test_session_id_from_the_set_cookie_header_alone(fake_wfm, tmp_path):
    fake_wfm.session_in_body = False
    target = WebexTarget("wfo", spec(fake_wfm))
    target.deliver(gis_pair(tmp_path))
    target.close()
    assert len(fake_wfm.uploads_of("gis")) == 1 and fake_wfm.logouts == 1
