"""The command line: parses options, calls the library, prints a summary. No logic lives here.

`main()` is the one place where errors become exit codes:
0 ok · 1 unexpected · 2 usage or configuration · 3 input rejected · 4 delivery failed.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path

import click

from gisgate import allocator  # noqa: F401  (first of gisgate: before anything loads polars)
from gisgate.errors import ConfigError, DeliveryError, GisgateError, InputError
from gisgate.produced import OUTPUTS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logging.")
@click.version_option(package_name="gisgate")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """gisgate: contact-center exports in, WFM import files (GIS, WHIT, CONTACT, REST) out."""
    ctx.obj = {"verbose": verbose}
    if verbose:
        logging.basicConfig(level=logging.DEBUG, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


# --- convert / validate -------------------------------------------------------------------------

INPUT_OPTIONS = [
    click.option("--from", "source", default=None, metavar="FORMAT",
                 help="Input format: generic, whit, contacts, textcontacts, gis, talkdesk, linklive, livevox or "
                      "cwfm (default: detected from the columns / keys)."),
    click.option("--acd", type=int, default=None, help="ACD server number (header ACD:, acdServerId)."),
    click.option("--tz", default=None, help="IANA zone of the ACD, e.g. America/New_York (default UTC)."),
    click.option("--interval", type=click.Choice(["15", "30"]), default=None, help="Output interval minutes."),
    click.option("--source-interval", type=click.Choice(["15", "30"]), default=None,
                 help="Interval of the input data (default: inferred)."),
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="gisgate.toml with [acd], [gis] and [mapping] tables."),
    click.option("--date-order", type=click.Choice(["ymd", "mdy", "dmy"]), default=None,
                 help="WHIT dates: ymd (default), or mdy / dmy for MM/DD/YYYY / DD/MM/YYYY."),
    click.option("--whit-utc", is_flag=True, default=None, help="WHIT date/period are UTC, not --tz."),
    # platform exports (talkdesk, linklive, livevox, cwfm)
    click.option("--until", default=None, help="End of an event export (ISO-8601); default: the latest event."),
    click.option("--service", default=None, help="acdServiceId for agent rows that have no queue."),
    click.option("--naive-tz", default=None, help="IANA zone of naive timestamps in platform exports (default UTC)."),
]


def input_options(f):
    for option in reversed(INPUT_OPTIONS):
        f = option(f)
    return f


@cli.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--to", type=click.Choice(OUTPUTS), default="gis",
              show_default=True)
@input_options
@click.option("--newline", type=click.Choice(["crlf", "lf"]), default=None, help="Line endings (default crlf).")
@click.option("--rejects", type=click.Path(dir_okay=False), default=None, help="Write every problem as CSV.")
@click.option("--force", is_flag=True, help="Write into an --out that holds produced files of another run.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def convert(inputs, out_dir, to, config_path, rejects, force, as_json, quiet, **given):
    """Convert INPUT files into WFM import files in --out.

    Example: gisgate convert samples/generic-ny-fallback/input/service.csv --tz America/New_York --out out/
    """
    from gisgate.commands import convert as command

    options = command.options(config_path, to=to, rejects=rejects, **given)
    progress = Progress(enabled=not (quiet or as_json) and sys.stderr.isatty())
    with progress:
        conversion, written = command.convert([Path(p) for p in inputs], Path(out_dir), options,
                                              progress if progress.enabled else None, force=force)
    if as_json or not quiet:  # the summary scans every row again: only when someone reads it
        click.echo(command.summary(conversion, written, as_json))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--tz", default=None, help="Also check each GIS offset against this IANA zone.")
@click.option("--interval", type=click.Choice(["15", "30"]), default="15", show_default=True)
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write every problem as CSV (file,line,column,reason).")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing when all files are valid.")
def validate(files, tz, interval, rejects, quiet):
    """Check GIS, WHIT, CONTACT and TEXTCONTACT files (folders: every file in them); exit 3 if any is invalid.

    Example: gisgate validate out/ --tz America/New_York
    """
    from gisgate.commands import convert as command

    paths = command.validate([Path(f) for f in files], tz, int(interval), rejects)
    if not quiet:
        click.echo(f"{len(paths)} file(s) valid")


# --- gateway: watch / status / retry / init ------------------------------------------------------

ROOT_OPTIONS = [
    click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                 help="gisgate.toml (default: <root>/gisgate.toml, else the built-in gateway)."),
    click.option("--root", type=click.Path(file_okay=False), default=None,
                 help="Gateway root: inbox/, work/, archive/, rejected/, outbox/, gisgate.db."),
]


def root_options(f):
    for option in reversed(ROOT_OPTIONS):
        f = option(f)
    return f


@cli.command()
@root_options
@click.option("--settle", type=float, default=None, help="Seconds a file must stay unchanged (all routes).")
@click.option("--rescan", type=float, default=None, help="Seconds between full inbox listings (default 30).")
@click.option("--polling/--events", default=None, help="Force the polling observer, or inotify events.")
@click.option("--metrics", default=None, metavar="PATH|PORT", help="Prometheus text to a file or 127.0.0.1:PORT.")
@click.option("--log-json", is_flag=True, help="One JSON object per log line.")
@click.option("--tz", default=None, help="Override [acd] timezone (IANA zone of the ACD).")
@click.option("--acd", type=int, default=None, help="Override [acd] number.")
@click.option("--once", is_flag=True, help="Process what is in the inboxes, deliver it, then exit (3 if an input "
              "was rejected, 4 if some outputs could not be delivered within --drain seconds).")
@click.option("--drain", type=float, default=120.0, show_default=True,
              help="With --once: seconds to keep retrying deliveries after the inboxes emptied.")
@click.pass_context
def watch(ctx, config_path, root, settle, rescan, polling, metrics, log_json, tz, acd, once, drain):
    """Run the gateway until SIGTERM / Ctrl-C: watch the inboxes, convert, deliver.

    \b
    Example: gisgate watch --root /var/lib/gisgate
             gisgate watch --root demo --once     (cron style: drain the inboxes, then exit)
    """
    from gisgate.commands import watch as command

    outcome = command.run(config_path, root, settle=settle, rescan=rescan, polling=polling, metrics=metrics,
                          log_json=log_json, verbose=ctx.obj["verbose"], once=drain if once else None,
                          acd={k: v for k, v in (("timezone", tz), ("number", acd)) if v is not None})
    if once:
        outcome.check()  # exit 3: an input was rejected; 4: outputs still waiting


@cli.command()
@root_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(config_path, root, as_json):
    """What the gateway holds: inputs per state, deliveries per target, oldest pending, last errors."""
    import json

    from gisgate.commands import status as command

    report = command.status(config_path, root)
    click.echo(json.dumps(report, indent=2, default=str) if as_json else command.format_status(report))


@cli.command()
@root_options
@click.argument("source")
@click.option("--since", required=True, help="Start: 2d (that long ago) or an ISO-8601 time (2024-11-03T04:00:00Z).")
@click.option("--until", default=None, help="End, like --since (default: now).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the fetched files (default: the source's route inbox).")
def fetch(config_path, root, source, since, until, out_dir):
    """Fetch a [[source]]'s data over [--since, --until) once, window by window: a backfill.

    Each answer lands as one file <source>-<what>-<start>-<end>.<ext>; the source's cursor is left alone.
    Example: gisgate fetch ll --since 2024-11-03T00:00:00Z --until 2024-11-04T00:00:00Z --root /var/lib/gisgate
    """
    from gisgate.commands import fetch as command

    landed = command.fetch(source, since, until, out_dir, config_path, root)
    for path in landed:
        click.echo(str(path))
    click.echo(f"{len(landed)} file(s) fetched")


@cli.command()
@root_options
@click.option("--target", "targets", multiple=True, help="Check only this target or source (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as JSON.")
def doctor(config_path, root, targets, as_json):
    """Check config, folders, free disk, every target's connection (host key, TLS, login) and every source's API.

    Exit 0 when all is well, 2 for a config / folder / disk problem, 4 when a target fails.
    Example: gisgate doctor --root /var/lib/gisgate
    """
    import dataclasses
    import json

    from gisgate.commands import doctor as checks

    results = checks.run(config_path, root, list(targets))
    click.echo(json.dumps([dataclasses.asdict(c) for c in results], indent=2) if as_json else checks.text(results))
    code = checks.exit_code(results)
    if code:
        raise (ConfigError if code == 2 else DeliveryError)(f"{sum(not c.ok for c in results)} check(s) failed")


@cli.command()
@root_options
@click.argument("files", nargs=-1, type=click.Path())
@click.option("--all-rejected", is_flag=True, help="Every file in rejected/ goes back to its inbox.")
def retry(config_path, root, files, all_rejected):
    """Send rejected inputs back to their inbox, or failed outputs back to pending, after a fix."""
    from gisgate.commands import retry as command

    if not files and not all_rejected:
        raise click.UsageError("name FILE(s) or pass --all-rejected")
    for line in command.retry(list(files), all_rejected, config_path, root):
        click.echo(line)


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
def init(folder):
    """Write a commented example gisgate.toml and the gateway's folder tree into FOLDER."""
    from gisgate.commands import init as command

    for path in command.init(folder):
        click.echo(f"created {path}")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; the single catch site for GisgateError."""
    verbose = "--verbose" in (argv or sys.argv[1:]) or "-v" in (argv or sys.argv[1:])
    try:
        cli.main(args=argv, prog_name="gisgate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except GisgateError as e:
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: {e}", err=True)
        sys.exit(e.exit_code)
    except Exception as e:  # a bug: one line, and the traceback with --verbose
        if verbose:
            import traceback

            traceback.print_exc()
        click.echo(f"Error: gisgate failed unexpectedly ({type(e).__name__}: {e}). This is a bug in gisgate: "
                   "please report it with the command (gisgate --verbose ... shows the details).", err=True)
        sys.exit(1)
    sys.exit(0)


def run() -> None:
    """The `gisgate` command: `main`, then a quick exit when nothing is left to do.

    Tearing the interpreter down (the modules of polars, pydantic and the rest) takes 0.1–0.25 s
    after a conversion, a tenth of a small one. Once `main` returned, every file it wrote is
    closed and its `finally` blocks ran; if no other thread is alive either, and no tracer or
    profiler (coverage, cProfile, a debugger) waits to write what it saw at exit, streams and log
    handlers are flushed and the process ends at once. (Tests call `main`, which exits normally.)
    """
    try:
        main()
        code: object = 0
    except SystemExit as e:
        code = e.code
    if not isinstance(code, int | None) or threading.active_count() > 1 or _observed():
        sys.exit(code)
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:  # a closed pipe: nothing more can be said
        pass
    os._exit(code or 0)


def _observed() -> bool:
    """Whether a tracer, profiler or monitoring tool watches this process."""
    if sys.gettrace() is not None or sys.getprofile() is not None:
        return True
    monitoring = getattr(sys, "monitoring", None)  # (Python 3.12+: coverage may use it instead)
    return monitoring is not None and any(monitoring.get_tool(i) for i in range(6))


# -- SFTP host keys ---------------------------------------------------------------------------------


@cli.command("hostkey")
@click.argument("target")
@click.option("--config", "config_file", default="gisgate.toml", show_default=True,
              type=click.Path(dir_okay=False), help="The gisgate.toml that defines TARGET.")
def hostkey(target: str, config_file: str) -> None:
    """Show the host key an sftp TARGET's server offers, for a human to approve. Trusts nothing."""
    from gisgate.commands import hostkey as command

    click.echo(command.host_key(config_file, target).describe())


# -- deliver: one-shot delivery of produced files through a configured target ------------------------


@cli.command("deliver")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", "target_name", required=True, help="Name of a [target.NAME] table in the config.")
@click.option("--config", "config_path", default="gisgate.toml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The gisgate.toml holding the target.")
@click.option("--kind", type=click.Choice(OUTPUTS),
              help="What the files are, when their names and contents do not tell.")
@click.option("--deadline", type=click.FloatRange(min=0), default=120.0, show_default=True,
              help="Seconds to keep retrying transient failures before giving up (exit 4).")
def deliver_command(files: tuple[Path, ...], target_name: str, config_path: Path, kind: str | None,
                    deadline: float) -> None:
    """Deliver FILES once through the target NAME (folder, sftp, webex, cwfm).

    An interval's AGENT and SERVICE files travel together; a CONTACT CSV goes with the media it
    references (media first). Exit 4 when something could not be delivered. Example:

    \b
        gisgate deliver out/*.AGENT out/*.SERVICE --target wfo --config gisgate.toml
    """
    from gisgate import config
    from gisgate.commands import deliver

    result = deliver.deliver_files(list(files), config.load(config_path), target_name, kind=kind,
                                   deadline_s=deadline)
    click.echo(result.summary())


# -- progress bar of convert, and report: one HTML page with charts and data-quality findings ---------


class Progress:
    """A progress bar over the files being written: on a terminal only, and only once the command has
    run for `delay` seconds (short conversions stay quiet). Call it once per file."""

    def __init__(self, enabled: bool, total: int = 0, delay: float = 1.0, file=None):
        self.enabled, self.total, self.delay, self.file = enabled, total, delay, file or sys.stderr
        self.started, self.done, self.bar = time.monotonic(), 0, None

    def __call__(self, _output=None) -> None:
        self.done += 1
        if self.bar is None and self.enabled and time.monotonic() - self.started >= self.delay:
            self.bar = click.progressbar(length=max(self.total, self.done), label="writing", file=self.file,
                                         show_pos=True)
            self.bar.__enter__()
            self.bar.update(self.done - 1)
        if self.bar is not None:
            self.bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)



@cli.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write.")
@input_options
@click.option("--aht-min", type=float, default=None, help="Average handle time below this (s) is an outlier [10].")
@click.option("--aht-max", type=float, default=None, help="Average handle time above this (s) is an outlier [1800].")
@click.option("--max-agents", type=int, default=None, help="Agents charted, most logged-in first [40].")
@click.option("--title", default=None, help="Page title [gisgate report].")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
def report_command(paths, out_file, config_path, aht_min, aht_max, max_agents, title, quiet, **given):
    """Write one self-contained HTML page about PATHs: inputs (as convert reads them) or produced
    GIS / WHIT files (a folder stands for its files). Exit 3 when convert would reject the input
    (the report then lists why). Example:

    \b
        gisgate report out/ --tz America/New_York --out report.html
    """
    from gisgate.commands import convert as command

    result = command.report(list(paths), out_file, config_path,
                            {"aht_min_s": aht_min, "aht_max_s": aht_max, "max_agents": max_agents, "title": title},
                            **given)
    if not quiet:
        click.echo(result.summary())
    if result.problems:
        raise InputError(result.problems).hinted(f"see the report {out_file}; gisgate convert --rejects FILE lists all")
