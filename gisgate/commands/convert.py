"""`gisgate convert` and `gisgate report`: one-shot conversions of inputs given on the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from gisgate import config, pipeline
from gisgate import report as reporting
from gisgate import validate as checker
from gisgate.config import ConvertOptions
from gisgate.errors import ConfigError, InputError
from gisgate.produced import kind_of


def options(config_path: str | None, **given) -> ConvertOptions:
    """Conversion options: the config file's, overridden by the command line's (given, not None)."""
    for key in ("interval", "source_interval"):
        if given.get(key) is not None:
            given[key] = int(given[key])
    return config.convert_options(config.load(config_path), **given)


def convert(inputs: list[Path], out_dir: Path, opts: ConvertOptions,
            progress: Callable | None = None, force: bool = False) -> tuple[pipeline.Conversion, list[Path]]:
    """Convert `inputs` into `out_dir`, all or nothing; every problem in `--rejects` when asked.

    Refused (ConfigError) when `out_dir` holds produced files this conversion does not write, unless
    `force`: files of two runs in one folder would be validated and delivered as one.
    `progress`, when given, is told the number of files first (`progress.total`) and then each file."""
    try:
        conversion = pipeline.convert(list(inputs), opts)
        if progress is not None:
            progress.total = conversion.output_count()
        check = None if force else no_mixing(out_dir, inputs)
        written = pipeline.write(conversion, out_dir, progress=progress, check=check)
    except InputError as e:
        if opts.rejects:
            pipeline.write_rejects(e.problems, Path(opts.rejects))
            raise e.hinted(f"all of them are in {opts.rejects}") from None
        raise e.hinted("use --rejects FILE to get them all") from None
    return conversion, written


def no_mixing(out_dir: Path, inputs: list[Path]) -> Callable[[list[str]], None]:
    """A check for `pipeline.write`: refuse when `out_dir` holds produced files (GIS, WHIT, CONTACT,
    TEXTCONTACT, JSON bodies) other than the ones about to be written (those are overwritten, as a
    re-run of the same conversion does). The inputs themselves do not count."""
    given = {p.resolve() for p in inputs}

    def check(names: list[str]) -> None:
        writing = set(names)
        others = sorted(p.name for p in out_dir.iterdir()
                        if p.name not in writing and p.is_file() and not p.name.startswith(".")
                        and p.resolve() not in given and kind_of(p) != "unknown")
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise ConfigError(
                f"{out_dir} already holds {len(others)} produced file(s) this conversion does not write ({shown}); "
                "they would be validated and delivered together with this run's. Use an empty --out folder, "
                "or pass --force to add this run's files to them. Nothing was written.")

    return check


def summary(conversion: pipeline.Conversion, written: list[Path], as_json: bool) -> str:
    """What `gisgate convert` prints: the summary as text, or as JSON with the files written."""
    data = conversion.summary()
    if as_json:
        return json.dumps({**data, "files": [str(p) for p in written]}, indent=2, default=str)
    return summary_text(data, len(written))


def summary_text(summary: dict, files: int) -> str:
    """The one-screen summary printed after a conversion."""
    if "contacts" in summary:  # bulk contact import
        lines = [f"wrote {files} file(s) ({summary['to']}) from {len(summary['inputs'])} input(s)",
                 f"  contacts: {summary['contacts']}   media files: {summary['media']}   "
                 f"rejected rows: {summary['rejected']}"]
        return "\n".join(lines + [f"  warning: {w}" for w in summary["warnings"]])
    lines = [
        f"wrote {files} file(s) ({summary['to']}) from {len(summary['inputs'])} input(s)",
        f"  intervals: {summary['intervals']}" + (f"  ({_clock(summary['first_local'])} .. "
                                                   f"{_clock(summary['last_local'])}, {summary['tz']})"
                                                   if summary.get("first_local") else ""),
        f"  services:  {summary['services']}   agents: {summary['agents']}",
    ]
    if "service_totals" in summary:
        t = summary["service_totals"]
        lines.append(f"  service rows: {summary['service_rows']}  offered {t['offered']:g}  handled {t['handled']:g}"
                     f"  answered {t['answered']:g}  abandoned {t['abandoned']:g}  talk {t['talk_s']:g} s")
    if "agent_totals" in summary:
        t = summary["agent_totals"]
        lines.append(f"  agent rows: {summary['agent_rows']}  handled {t['handled']:g}  talk {t['talk_s']:g} s"
                     f"  period handle {t['period_handle_s']:g} s")
    names = {"agents": "agents", "queues": "services", "states": "states"}
    for what, ids in summary.get("unknown", {}).items():
        lines.append(f"  unknown {what} (not in [mapping] {names.get(what, what)}): {', '.join(map(str, ids))}")
    lines += [f"  warning: {w}" for w in summary["warnings"]]
    return "\n".join(lines)


def _clock(iso: str) -> str:
    """`2024-11-03T01:00-04:00` → `2024-11-03 01:00 -04:00`."""
    return f"{iso[:10]} {iso[11:16]} {iso[16:] or '+00:00'}"


def report(paths: list[Path], out_file: Path, config_path: str | None, settings: dict,
           **given) -> reporting.ReportResult:
    """`gisgate report`: one HTML page about inputs or produced files."""
    opts = options(config_path, **given)
    bounds = config.report_settings(config.load(config_path), **settings)
    return reporting.report_paths(list(paths), opts, bounds, out_file, pipeline.convert)


def validate(files: list[Path], tz: str | None, interval: int, rejects: Path | None = None) -> list[Path]:
    """`gisgate validate`: the files checked (a folder stands for its files); InputError listing every
    problem when one is invalid, also written to `rejects` as CSV when given."""
    paths = checker.expand(files)
    problems = checker.validate(paths, tz, interval)
    if rejects is not None:
        pipeline.write_rejects(problems, rejects)  # header only when all is valid: no stale problems left
    if problems:
        hint = f"all of them are in {rejects}" if rejects else "use --rejects FILE to get them all"
        raise InputError(problems).hinted(hint)
    return paths
