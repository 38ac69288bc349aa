"""The `[target.NAME]` tables of gisgate.toml: where converted files are delivered (a folder, SFTP,
Webex WFO, CommunityWFM Cloud Connect). Secrets are references only (`*_env` / `*_file`)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class FolderTarget(Strict):
    kind: Literal["folder"]
    path: str
    # The Data Server's verdict on each delivered file (domain-spec §1.12): globs relative to `path`.
    archives: str | None = None  # e.g. "../archives*": files it imported
    penalty_box: str | None = None  # e.g. "../penaltyBox/*": files it refused (never retried by it)
    consume_alert_minutes: float = Field(15.0, gt=0, description="a file still unread after this is reported")


class SftpTarget(Strict):
    kind: Literal["sftp"]
    host: str
    port: int = 22
    user: str
    path: str = "."
    known_hosts: str | None = None
    host_key: str | None = None  # "ssh-ed25519 AAAA..." pinned in config instead of known_hosts
    key_file: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    timeout_s: float = Field(30.0, gt=0, description="connect, banner, key exchange, auth and each channel read")
    tenant: str | None = None  # fills {tenant} in `path`
    create_dirs: bool = False  # create missing remote directories of `path`
    deadline_s: float = Field(300.0, gt=0, description="outer limit for one delivery, connecting included")
    connect_attempts: int = Field(3, ge=1)
    backoff_s: float = Field(1.0, ge=0, description="first pause between connect attempts; doubles each time")
    idle_s: float = Field(120.0, ge=0, description="reconnect instead of reusing a connection idle this long")
    stale_temp_s: float = Field(3600.0, ge=0, description="remove our temp files untouched this long; 0: never")


def check_base_url(url: str) -> str:
    """An absolute http(s) URL without credentials (those come from *_env / *_file)."""
    if not re.match(r"^https?://[^/@\s]+(/\S*)?$", url):
        raise ValueError(f"{url!r} is not an http(s) URL like https://wfo.example.com (no user:password@)")
    return url


class WebexTarget(Strict):
    kind: Literal["webex"]
    base_url: str
    acd_server_id: int | None = None
    username: str
    password_env: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    timeout_s: float = 30.0
    tenant_id: int | str | None = None  # needed when the same login exists in several tenants
    language: str = "en"
    locale: str | None = None
    session_idle_s: float = Field(7200.0, gt=0)  # WFO drops a session after 2 h without calls
    # Multipart part name of every uploaded file (undocumented upstream; spec §7-Q9).
    part_name: str = "file"
    authorize_path: str = "/api/rest/authorize"
    gis_path: str = "/api/rest/scheduling/agentStateHistorical/polling"
    whit_path: str = "/api/upload/historicalData"
    whit_time_zone: Literal["UTC", "TENANT"] = "UTC"
    contacts_path: str = "/api/upload/contacts"
    textcontacts_path: str = "/api/upload/textcontacts/"
    rtstate_path: str = "/api/rest/scheduling/gis/realTimeAgentState"
    rtstate_content: Literal["json", "multipart"] = "json"  # spec §7-Q11
    rtstate_batch_size: int = Field(500, ge=1, le=500)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return check_base_url(v)


class CwfmTarget(Strict):
    kind: Literal["cwfm"]
    base_url: str
    account_id: str = "1"
    username: str
    password_env: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    timeout_s: float = 30.0
    # Paths as documented; the login falls back to the `/api/ccc/` spelling on 404 (spec §4.3, Q16).
    login_path: str = "/api/ccs/auth/login"
    login_fallback_path: str = "/api/ccc/auth/login"
    refresh_path: str = "/api/ccc/auth/refreshtoken"
    grant_type: str = "string"  # the documented literal (spec §7-Q15)
    refresh_after_s: float = Field(3000.0, gt=0)  # tokens live 1 h; refresh at 50 min
    people_path: str = "/api/ccc/People/BulkInsertPeople"
    collection_points_path: str = "/api/ccc/CollectionPoint/BulkInsertCollectionPoints"
    agent_activity_path: str = "/api/ccc/AgentActivity/BulkInsertAgentActivity"
    call_volume_path: str = "/api/ccc/CallVolume/BulkInsertCallVolume"
    batch_size: int = Field(500, ge=1)  # records per request (spec §7-Q14)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return check_base_url(v)


Target = Annotated[FolderTarget | SftpTarget | WebexTarget | CwfmTarget, Field(discriminator="kind")]
