"""One way for every target to read its secrets, and to keep them out of logs (gisgate/targets/secrets.py)."""

from __future__ import annotations

import logging
import os
import time
from types import SimpleNamespace

import pytest
from sftp_faults import FaultySftpServer

from gisgate import config
from gisgate.errors import ConfigError, PermanentDeliveryError
from gisgate.targets.secrets import HTTP_LOGGERS, Redactor, read_secret, secret_values
from gisgate.targets.sftp import SftpTarget

ENV = "GISGATE_TEST_SECRET"


def spec(**fields) -> SimpleNamespace:
    return SimpleNamespace(**{"password_env": None, "password_file": None, **fields})


def test_a_secret_comes_from_the_environment_or_a_file_without_its_line_ending(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "from-env")
    assert read_secret("t", spec(password_env=ENV)) == "from-env"
    secret = tmp_path / "pw"
    secret.write_text(" spaced pass \r\n")  # the editor's line ending goes, the password's spaces stay
    os.chmod(secret, 0o600)
    assert read_secret("t", spec(password_file=str(secret))) == " spaced pass "
    (tmp_path / "token").write_text("tok\n")
    assert read_secret("t", SimpleNamespace(token_file=str(tmp_path / "token")), what="token") == "tok"


@pytest.mark.parametrize(("fields", "message"), [
    ({}, "no password; set password_env or password_file"),
    ({"password_env": ENV}, f"environment variable {ENV} \\(password_env\\) is not set"),
    ({"password_env": ENV, "password_file": "pw"}, "set password_env or password_file, not both"),
    ({"password_file": "no-such-file"}, "cannot read password_file no-such-file"),
    ({"password_file": "empty"}, "password_file empty is empty"),
])
def test_a_missing_secret_is_a_config_error_naming_the_setting(tmp_path, monkeypatch, fields, message):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=f"target 't': {message}"):
        read_secret("t", spec(**fields))


def test_secret_values_are_every_referenced_secret_and_never_raise(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, "s3cret-Pa55word")
    monkeypatch.delenv("GISGATE_TEST_UNSET", raising=False)
    (tmp_path / "token").write_text("tok-123456789\n")
    (tmp_path / "id_ed25519").write_text("PRIVATE KEY\n")
    specs = [
        config.SftpTarget(kind="sftp", host="h", user="u", known_hosts=str(tmp_path / "kh"),
                          key_file=str(tmp_path / "id_ed25519"), password_env=ENV),
        spec(password_file=str(tmp_path / "token"), ca_file=str(tmp_path / "id_ed25519")),
        spec(password_env="GISGATE_TEST_UNSET"),
        spec(password_file=str(tmp_path / "missing")),
    ]
    assert secret_values(specs) == ["s3cret-Pa55word", "tok-123456789"]


def test_as_a_handler_filter_only_the_known_values_are_masked(caplog):
    logger = logging.getLogger("gisgate.test-secrets")
    redact = Redactor(*["s3cret-Pa55word", "", None, "abc"])  # empty and very short values are ignored
    logger.addFilter(redact)
    try:
        with caplog.at_level(logging.INFO, logger="gisgate.test-secrets"):
            logger.info("login with %s failed; token: keep-me, abc", "s3cret-Pa55word")
    finally:
        logger.removeFilter(redact)
    assert "login with *** failed; token: keep-me, abc" in caplog.text


def test_with_shapes_secret_bearing_text_is_masked_before_its_value_is_known():
    redact = Redactor("p4ssword", shapes=True)
    text = 'Set-Cookie: hazelcast.sessionId=abc123; {"refresh_token": "r-1"} Authorization: Bearer x.y.z p4ssword'
    assert redact(text) == 'Set-Cookie: hazelcast.sessionId=***; {"refresh_token": "***"} Authorization: Bearer *** ***'


def test_installed_on_the_http_loggers_until_uninstalled(caplog):
    redact = Redactor("p4ssword", shapes=True).install()
    try:
        assert all(redact in logging.getLogger(name).filters for name in HTTP_LOGGERS)
        with caplog.at_level(logging.DEBUG, logger="httpcore.http11"):
            logging.getLogger("httpcore.http11").debug("send password=p4ssword")
        assert "password=***" in caplog.text and "p4ssword" not in caplog.text
    finally:
        redact.uninstall()
    assert not any(redact in logging.getLogger(name).filters for name in HTTP_LOGGERS)


def test_an_sftp_password_that_is_not_set_is_permanent_and_not_retried(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with FaultySftpServer(tmp_path / "pw", password="secret") as server:
        target = SftpTarget("ds", config.SftpTarget(
            kind="sftp", host=server.host, port=server.port, user=server.user, host_key=server.host_key_line,
            password_env=ENV, timeout_s=5, backoff_s=1, connect_attempts=3))
        (tmp_path / "a.csv").write_bytes(b"a")
        started = time.monotonic()
        with pytest.raises(PermanentDeliveryError, match=f"{ENV} \\(password_env\\) is not set") as e:
            target.deliver([tmp_path / "a.csv"])
        target.close()
    assert isinstance(e.value.__cause__, ConfigError)
    assert time.monotonic() - started < 1  # no backoff: waiting will not set the variable
