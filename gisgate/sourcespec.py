"""The `[[source]]` tables of gisgate.toml: platform connectors that fetch from a REST API into a
route's inbox (domain-spec §5; the connectors themselves are in `gisgate.connectors`).

    [[source]]
    name = "ll"                 # names fetched files and the cursors in the ledger
    kind = "linklive"           # talkdesk | linklive | livevox
    route = "linklive"          # whose inbox receives the files
    base_url = "https://api.linklive-legacy.com/v2/organizations/org_5521"
    api_key_env = "GISGATE_LL_KEY"
    every = "5m"                # poll period
    overlap = "20m"             # each window reaches back this far (late records)
    start = "2d"                # the first run backfills this far (or an ISO-8601 instant)

Durations are `30s`, `5m`, `2h`, `2d` (or a number of seconds). Secrets are references only
(`*_env` names an environment variable, `*_file` a file), never literals; unknown keys are refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")


def seconds(value: object) -> float:
    """`30s` / `5m` / `2h` / `2d` (or a plain number of seconds) as seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    m = DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 2h or 2d")
    return float(m[1]) * UNITS[m[2]]


def instant(value: str) -> datetime:
    """An ISO-8601 instant with a zone (`2024-11-03T04:00:00Z`), as UTC."""
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (2d) nor an ISO-8601 time (2024-11-03T04:00:00Z)") from None
    if at.tzinfo is None:
        raise ValueError(f"{value!r} has no zone: write it in UTC, e.g. 2024-11-03T04:00:00Z")
    return at.astimezone(UTC)


Duration = Annotated[float, BeforeValidator(seconds), Field(gt=0)]


class SourceBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    route: str
    base_url: str
    every: Duration = 300.0
    overlap: Annotated[float, BeforeValidator(seconds), Field(ge=0)] = 1200.0
    start: str = "2d"  # a duration back from the first run, or an ISO-8601 instant
    timeout_s: float = Field(30.0, gt=0, description="connect, read and write limit of every call")
    ca_file: str | None = None
    retries: int = Field(3, ge=0, description="retries of one call (429/503 with Retry-After, 5xx, timeouts)")
    backoff_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(300.0, gt=0)
    retry_after_max_seconds: float = Field(600.0, gt=0, description="a longer Retry-After is cut to this")
    breaker_failures: int = Field(5, ge=1, description="failed polls in a row that open the source's breaker")
    breaker_seconds: float = Field(300.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if not re.match(r"^https?://[^/@\s]+(/\S*)?$", v):
            raise ValueError(f"{v!r} is not an http(s) URL like https://api.example.com (no user:password@)")
        return v.rstrip("/")

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        try:
            seconds(v)
        except ValueError:
            instant(v)
        return v

    def first_start(self, now: float) -> float:
        """Where the first window begins (epoch seconds)."""
        try:
            return now - seconds(self.start)
        except ValueError:
            return instant(self.start).timestamp()

    def _check_windows(self, max_window: float) -> None:
        if self.overlap >= max_window:
            raise ValueError(f"source {self.name!r}: overlap ({self.overlap:g} s) must be shorter than "
                             f"max_window ({max_window:g} s), or no window would move forward")


def _secret(model: BaseModel, what: str) -> None:
    env, file = getattr(model, f"{what}_env"), getattr(model, f"{what}_file")
    if bool(env) == bool(file):
        raise ValueError(f"source {model.name!r}: set exactly one of {what}_env or {what}_file (never the secret)")


class TalkdeskSource(SourceBase):
    kind: Literal["talkdesk"]
    token_url: str
    client_id: str
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    scope: str = "data-reports:read data-reports:write"
    reports: list[Literal["contacts", "calls", "user_status"]] = ["contacts", "user_status"]
    format: Literal["json", "csv"] = "json"
    max_window: Duration = 7 * 86400.0  # Explore: at most one month a job
    poll_seconds: float = Field(5.0, gt=0, description="between two looks at a report job's status")
    job_timeout_s: float = Field(1800.0, gt=0, description="a job not done by then is given up (and retried)")
    job_attempts: int = Field(3, ge=1, description="a failed or canceled job is created again this often")
    users: bool = True  # fetch the Users API for [mapping] agents_file's e-mail matching (when it is set)
    users_every: Duration = 3600.0
    users_path: str = "/users"  # on the API host (Talkdesk: https://api.talkdeskapp.com/users)

    @model_validator(mode="after")
    def _check(self) -> TalkdeskSource:
        _secret(self, "client_secret")
        if self.max_window > 31 * 86400:
            raise ValueError(f"source {self.name!r}: max_window may not exceed 31d (Explore: one month a job)")
        self._check_windows(self.max_window)
        return self


class LinkliveSource(SourceBase):
    kind: Literal["linklive"]
    api_key_env: str | None = None
    api_key_file: str | None = None
    fetch: list[Literal["userStates", "queueEngagementIntervals"]] = ["userStates", "queueEngagementIntervals"]
    max_window: Duration = 86400.0
    from_param: str = "startTime"  # query parameters of a window, Unix time UTC
    to_param: str = "endTime"
    time_unit: Literal["s", "ms"] = "s"
    users: bool = True  # fetch `users` for [mapping] agents_file's e-mail matching (when it is set)
    users_every: Duration = 3600.0

    @model_validator(mode="after")
    def _check(self) -> LinkliveSource:
        _secret(self, "api_key")
        self._check_windows(self.max_window)
        return self


class LivevoxSource(SourceBase):
    kind: Literal["livevox"]
    client_name: str
    username: str
    password_env: str | None = None
    password_file: str | None = None
    access_token_env: str | None = None
    access_token_file: str | None = None
    feeds: list[Literal["agentEvent", "event"]] = ["agentEvent", "event"]
    every: Duration = 1.0  # feeds are long polls: the next call goes out at once
    login_path: str = "/session/v6.0/login"
    agent_feed_path: str = "/realtime/v6.0/agentEvent/feed"
    event_feed_path: str = "/realtime/v6.0/event/feed"
    count: int = Field(1000, ge=1, le=1000, description="events asked for in one call (the API gives ≤ 1000)")
    # service statistics snapshots (cumulative today) of these services, one each quarter hour
    service_stats: list[str] = []
    stats_path: str = "/realtime/v6.0/service/stats"

    @model_validator(mode="after")
    def _check(self) -> LivevoxSource:
        _secret(self, "password")
        _secret(self, "access_token")
        return self


Source = Annotated[TalkdeskSource | LinkliveSource | LivevoxSource, Field(discriminator="kind")]


def source_problems(sources: list, routes: list) -> list[str]:
    """What is wrong between the sources and the routes (`[[route]]` tables): an unknown route, a route
    that would not take what lands (another format, a done-file), a name used twice."""
    by_name = {r.name: r for r in routes}
    problems = []
    for src in sources:
        route = by_name.get(src.route)
        if route is None:
            problems.append(f"source {src.name!r} names unknown route {src.route!r}; known: {list(by_name)}")
        elif route.format not in (src.kind, "auto"):
            problems.append(f"source {src.name!r} ({src.kind}) fills route {route.name!r} whose format is "
                            f"{route.format!r}: set format = {src.kind!r} (or auto) there")
        elif route.done_file:
            problems.append(f"route {route.name!r} takes a file only beside a .done marker, which a source's "
                            "files never have (they land whole, renamed into place): set done_file = false")
    names = [src.name for src in sources]
    return problems + [f"source name {dup!r} is used twice" for dup in sorted({n for n in names if names.count(n) > 1})]
