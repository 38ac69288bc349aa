"""`gisgate.toml`, validated by pydantic.

Unknown keys are rejected and every problem is listed at once, each naming its key
(`target.dataserver.port: Input should be a valid integer`). Secrets are never literals:
targets name an environment variable (`*_env`) or a file (`*_file`) that holds them.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gisgate import mappings
from gisgate.errors import ConfigError
from gisgate.sourcespec import Source, source_problems
from gisgate.targetspec import (  # noqa: F401 (the target tables: config.SftpTarget, ... name them too)
    CwfmTarget,
    FolderTarget,
    SftpTarget,
    Target,
    WebexTarget,
    check_base_url,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# Legacy zone names, and the IANA zone to use instead.
FIXED_LEGACY = {  # fixed offsets without daylight saving
    "EST": "America/New_York (or America/Panama where -05:00 holds all year)",
    "MST": "America/Denver (or America/Phoenix where -07:00 holds all year)",
    "HST": "Pacific/Honolulu",
}
POSIX_LEGACY = {"EST5EDT": "America/New_York", "CST6CDT": "America/Chicago", "MST7MDT": "America/Denver",
                "PST8PDT": "America/Los_Angeles"}
FIXED_OFFSET = re.compile(r"^(?:(?:Etc/)?(?:GMT|UTC))?[+-](\d{1,2})(?::?(\d{2}))?$")


def check_zone(name: str) -> str:
    """An IANA zone name. Fixed offsets ("-0500", "Etc/GMT+5") and the legacy names ("EST", "MST",
    "HST", "EST5EDT", ...) are refused with the zone to use: a fixed offset is wrong half the year
    where daylight saving applies, and a legacy name is not the place whose rules the ACD follows."""
    if name in FIXED_LEGACY:
        raise ValueError(f"{name!r} is a legacy zone name with a fixed offset (no daylight saving); use the IANA "
                         f"name of the ACD's place, e.g. {FIXED_LEGACY[name]}")
    if name in POSIX_LEGACY:
        raise ValueError(f"{name!r} is a legacy POSIX-style zone name; use the IANA name {POSIX_LEGACY[name]}")
    fixed = FIXED_OFFSET.match(name.strip())
    if fixed and (int(fixed[1]) or int(fixed[2] or 0)):
        raise ValueError(f"{name!r} is a fixed UTC offset, wrong half the year where daylight saving applies; use "
                         "the IANA zone of the ACD's place, e.g. America/New_York or Europe/Berlin")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as America/New_York or UTC") from None
    return name


class Acd(Strict):
    number: int = Field(1, ge=0, description="ACD server number: the `ACD:` header and the acdServerId")
    timezone: str = Field("UTC", description="IANA zone of the ACD; file names use its local clock")
    interval_minutes: Literal[15, 30] = 15

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)


class Gis(Strict):
    newline: Literal["crlf", "lf"] = "crlf"
    utc_offset_token: Literal["P0000", "N0000"] = "P0000"
    positive_offset_letter: Literal["P"] = "P"


class Mapping(Strict):
    """Translation tables from a platform's IDs and states to the ACD's."""

    agents: dict[str, str] = {}
    services: dict[str, str] = {}  # queue / ring group / service -> acdServiceId
    service_names: dict[str, str] = {}  # acdServiceId -> name, for WHIT serviceName
    states: dict[str, str] = {}  # platform state -> one of model.STATES
    home_queue: dict[str, str] = {}  # agent -> acdServiceId for agents without contacts
    default_service: str | None = None
    # CSV files read again whenever they change (gisgate/mappings.py); inline entries win over them
    agents_file: str | None = None  # platform ID and/or e-mail -> ACD agent ID (a WFO persons export too)
    services_file: str | None = None  # platform queue ID -> acdServiceId (and name)
    # the platform's users (ID, e-mail): agents_file matched by e-mail; the gateway adds the users its
    # sources fetch
    users_file: str | list[str] | None = None

    def users_files(self) -> list[str]:
        return [self.users_file] if isinstance(self.users_file, str) else list(self.users_file or [])

    def resolved(self, acd: int) -> Mapping:
        """This mapping with its files' entries merged in (the inline tables win)."""
        if not (self.agents_file or self.services_file):
            return self
        agents = mappings.agents(Path(self.agents_file) if self.agents_file else None,
                                 [Path(u) for u in self.users_files()], acd)
        services, names = mappings.services(Path(self.services_file) if self.services_file else None, acd)
        return self.model_copy(update={"agents": {**agents, **self.agents}, "services": {**services, **self.services},
                                       "service_names": {**names, **self.service_names}})

    def relative_to(self, folder: Path) -> Mapping:
        """Relative file paths taken from `folder` (the config file's)."""
        update: dict = {k: str(folder / os.path.expanduser(v)) for k in ("agents_file", "services_file")
                        if (v := getattr(self, k))}
        if self.users_file:
            update["users_file"] = [str(folder / os.path.expanduser(u)) for u in self.users_files()]
        return self.model_copy(update=update) if update else self


class Contacts(Strict):
    """`[contacts]`: bulk contact import (CONTACT.*.csv recordings, TEXTCONTACT text contacts).

    `columns` maps an export's column names onto CONTACT fields (`"Agent Login" = "AgentId"`,
    `"Start" = "ContactStartTimeMs"`, `"Queue" = "metadata.Queue"`); `text_columns` does the same
    for TEXTCONTACT fields. Mapped start times may be epoch ms or ISO-8601 (naive = `naive_tz`).
    """

    columns: dict[str, str] = {}
    text_columns: dict[str, str] = {}
    batch: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                              description="fixed batch name; default gisgate-<source>-<first start>-<digest>")
    text_format: Literal["csv", "json"] = "csv"  # TEXTCONTACT.csv (Data Server, REST) or .json (REST only)
    # Talkdesk calls-report columns kept as metadata.<name>
    talkdesk_metadata: list[str] = ["disposition_code", "ring_groups"]
    zip_max_bytes: int = Field(4 * 1024**3, gt=0, description="total uncompressed size allowed in one ZIP")
    zip_max_ratio: float = Field(200.0, gt=1, description="uncompressed/compressed limit per member (bombs)")
    zip_max_members: int = Field(20000, gt=0)


class Report(Strict):
    """`[report]`: data-quality bounds of `gisgate report` (and of the reports the watcher writes)."""

    aht_min_s: float = Field(10.0, ge=0, description="average handle time below this is an outlier")
    aht_max_s: float = Field(1800.0, gt=0, description="average handle time above this is an outlier")
    max_agents: int = Field(40, ge=1, description="agents charted (the most logged-in first); the table lists all")
    title: str = "gisgate report"

    @model_validator(mode="after")
    def _bounds(self) -> Report:
        if self.aht_min_s >= self.aht_max_s:
            raise ValueError(f"aht_min_s ({self.aht_min_s:g}) must be below aht_max_s ({self.aht_max_s:g})")
        return self


class Route(Strict):
    name: str
    inbox: str | None = None  # default: <root>/inbox/<name>
    format: str = "auto"
    outputs: list[str] = ["gis"]
    targets: list[str] = []
    settle_seconds: float = Field(2.0, ge=0, description="size and mtime unchanged this long before pickup")
    done_file: bool = False  # take `x.csv` only once `x.csv.done` (or `x.done`) exists
    include: list[str] = ["*"]
    exclude: list[str] = []  # added to the temp patterns that are always ignored (*.part, *.tmp, .*, ~$*)
    stuck_seconds: float = Field(3600.0, gt=0, description="a file still changing after this is reported")
    # The route as one stream (interval outputs): every drop merged, changed intervals sent again.
    stream: bool = True  # false: each input converted on its own (inputs that are each a complete day)
    hold_minutes: float = Field(20.0, ge=0, description="an interval is first sent this long after its end")
    stream_days: float = Field(2.0, gt=0, description="how far back from the latest record intervals may change")
    corrections: bool = True  # false: a changed interval is counted and shown, not sent again


class Watch(Strict):
    """How the gateway looks at its inboxes (`[watch]`)."""

    rescan_seconds: float = Field(30.0, gt=0, description="full listing of every inbox, events or not")
    polling: bool | None = None  # None: polling on network file systems (cifs, nfs, fuse), inotify elsewhere
    queue_limit: int = Field(1000, ge=1, description="files tracked at once; the rest wait in the inbox")
    heartbeat_seconds: float = Field(60.0, gt=0, description="canary through the watcher thread")
    stop_grace_seconds: float = Field(10.0, ge=0, description="on SIGTERM, time left to deliver staged files")
    converters: int | None = Field(None, ge=0, description="converter processes; 0: convert in the gateway "
                                   "process; default: 2 on machines with 2+ CPUs")
    reports: bool = Field(True, description="write <input>.report.html (the `gisgate report` page) beside each "
                          "archived input")


class Outbox(Strict):
    """Delivery retries (`[outbox]`): exponential backoff with jitter, then `failed/`."""

    backoff_seconds: float = Field(2.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    max_attempts: int = Field(20, ge=1)
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open a target's breaker")
    breaker_seconds: float = Field(60.0, gt=0, description="how long an open breaker waits before one probe")
    outcome_seconds: float = Field(10.0, gt=0, description="how often targets are asked what became of sent files")


class Archive(Strict):
    """Retention of `archive/` (`[archive]`); nothing else is ever deleted."""

    keep_days: float | None = Field(None, gt=0)
    max_bytes: int | None = Field(None, gt=0)


def defaults(table: type[BaseModel]):
    """A table's built-in values, not validated: they are valid (tests/test_gateway_cli.py checks),
    and validating them would build the table's schema, which a convert without a config file
    never needs (each costs a few ms of every start)."""
    return Field(default_factory=table.model_construct)


class Config(Strict):
    root: str = "."
    acd: Acd = defaults(Acd)
    gis: Gis = defaults(Gis)
    mapping: Mapping = defaults(Mapping)
    contacts: Contacts = defaults(Contacts)
    report: Report = defaults(Report)
    route: list[Route] = []
    target: dict[str, Target] = {}
    watch: Watch = defaults(Watch)
    outbox: Outbox = defaults(Outbox)
    archive: Archive = defaults(Archive)
    source: list[Source] = []  # platform connectors (gisgate.sourcespec)

    @model_validator(mode="after")
    def _routes_name_known_targets(self) -> Config:
        problems = source_problems(self.source, self.route)
        for r in self.route:
            missing = [t for t in r.targets if t not in self.target]
            if missing:
                problems.append(f"route {r.name!r} names unknown target(s) {missing}; known: {sorted(self.target)}")
        names = [r.name for r in self.route]
        for dup in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"route name {dup!r} is used twice")
        for r in self.route:
            if not r.name or "/" in r.name or r.name.startswith("."):
                problems.append(f"route name {r.name!r} must be a plain folder name")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def load(path: str | Path | None) -> Config:
    """Read and validate a config file; `None` gives the built-in defaults."""
    if path is None:
        # (the defaults need no validation, and validating builds the schemas of every table, the
        # targets' and sources' too: a sixth of a small convert's time)
        return Config.model_construct()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    config = parse(data, str(path))
    return config.model_copy(update={"mapping": config.mapping.relative_to(path.resolve().parent)})


def parse(data: dict, where: str = "config") -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError("\n".join(f"{where}: {line}" for line in explain(e, Config))) from None


def explain(error: ValidationError, model: type[BaseModel], option: bool = False) -> list[str]:
    """pydantic's errors in the words of the config file: `key: reason`, an unknown key named with
    its table and the known key it nearly is; with `option`, keys as the command line's `--key`."""
    lines = []
    for err in error.errors():
        loc = tuple(err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and loc:
            table, known = _table(model, loc[:-1])
            hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
            lines.append(f"unknown key `{loc[-1]}` {table}" + (f" (did you mean `{hint[0]}`?)" if hint else
                                                                     f"; known keys: {', '.join(known)}"))
        elif option:
            lines.append(f"--{'.'.join(map(str, loc)).replace('_', '-')}: {msg}")
        else:
            lines.append(f"{'.'.join(map(str, loc)) or '(top level)'}: {msg}")
    return lines


def _table(model: type[BaseModel], loc: tuple) -> tuple[str, list[str]]:
    """Where the table at `loc` is in gisgate.toml, as a person says it (`in [watch]`, `in [target.wfo]`,
    `in [[route]] #2`, `at the top level`), and its keys."""
    kind: object = model
    name: list[str] = []
    for part in loc:
        while get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            if field is None:
                break
            kind = field.annotation
            name.append(str(part))
        elif get_origin(kind) is dict:
            kind = get_args(kind)[1]
            name.append(str(part))
        elif get_origin(kind) is list:
            kind = get_args(kind)[0]
            name[-1:] = [f"[{name[-1]}]] #{int(part) + 1}" if isinstance(part, int) else name[-1]]
        else:  # a union told apart by `kind`: the part is the tag (pydantic puts it in the path)
            members = [m for m in get_args(kind) if isinstance(m, type) and issubclass(m, BaseModel)]
            kind = next((m for m in members if get_args(m.model_fields["kind"].annotation) == (part,)), None)
    known = sorted(kind.model_fields) if isinstance(kind, type) and issubclass(kind, BaseModel) else []
    if not name:
        return "at the top level", known
    text = ".".join(name)
    return (f"in [{text}" if "]] #" in text else f"in [{text}]"), known


class ConvertOptions(Strict):
    """Everything a conversion needs besides its inputs (merged from the CLI and gisgate.toml)."""

    source: str = "auto"  # a key of sources.SOURCES, or auto
    to: str = "gis"  # gis | whit | cwfm | rtstate | contact | textcontact
    acd: int = 1
    tz: str = "UTC"  # the ACD's zone: file names, bucketing, naive times of WHIT
    interval: Literal[15, 30] = 15  # output interval
    source_interval: Literal[15, 30] | None = None  # input granularity; None = infer
    date_order: Literal["ymd", "mdy", "dmy"] = "ymd"  # WHIT dates
    whit_utc: bool = False  # WHIT date/period are UTC rather than `tz`
    naive_tz: str = "UTC"  # zone of naive timestamps in platform exports
    until: str | None = None  # end of an event export (ISO-8601); default: the latest event
    service: str | None = None  # default acdServiceId for agent rows without a queue
    sl_threshold_s: float = 20.0  # service-level threshold for contact-derived intervals
    max_span_hours: float = 12.0  # state spans longer than this are cut and warned
    cwfm_account_id: str = "1"  # AccountId of CommunityWFM Cloud Connect bodies (--to cwfm)
    newline: Literal["crlf", "lf"] = "crlf"
    utc_offset_token: Literal["P0000", "N0000"] = "P0000"
    mapping: Mapping = defaults(Mapping)
    contacts: Contacts = defaults(Contacts)
    # Bad rows: None = reject the whole input (InputError); a path = write them there, keep the rest.
    rejects: str | None = None

    @field_validator("tz", "naive_tz")
    @classmethod
    def _zone(cls, v: str) -> str:
        return check_zone(v)


def convert_options(config: Config, **given) -> ConvertOptions:
    """Options for a conversion: the config file's values, overridden by those given (not None)."""
    base = {
        "acd": config.acd.number,
        "tz": config.acd.timezone,
        "interval": config.acd.interval_minutes,
        "newline": config.gis.newline,
        "utc_offset_token": config.gis.utc_offset_token,
        "mapping": config.mapping,
        "contacts": config.contacts,
    }
    base.update({k: v for k, v in given.items() if v is not None})
    base["mapping"] = base["mapping"].resolved(base["acd"])
    try:
        return ConvertOptions(**base)
    except ValidationError as e:
        raise ConfigError("\n".join(explain(e, ConvertOptions, option=True))) from None


def report_settings(config: Config, **given) -> Report:
    """`[report]` of the config file, overridden by the values given (not None)."""
    try:
        return Report(**{**config.report.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    except ValidationError as e:
        raise ConfigError("\n".join(
            f"[report] {'.'.join(str(p) for p in err['loc']) or 'bounds'}: {err['msg'].removeprefix('Value error, ')}"
            for err in e.errors()
        )) from None
