"""The command line: parses options, calls the library, prints a summary. No logic lives here.

`main()` is the one place where errors become exit codes:
0 ok · 1 unexpected · 2 usage or configuration · 3 input rejected · 4 delivery failed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gisgate.errors import GisgateError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--verbose", "-v", is_flag=True, help="Show tracebacks and debug logging.")
@click.version_option(package_name="gisgate")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """gisgate: contact-center exports in, WFM import files (GIS, WHIT, CONTACT, REST) out."""
    ctx.obj = {"verbose": verbose}


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
    sys.exit(0)


# -- deliver: one-shot delivery of produced files through a configured target ------------------------


@cli.command("deliver")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", "target_name", required=True, help="Name of a [target.NAME] table in the config.")
@click.option("--config", "config_path", default="gisgate.toml", show_default=True,
              type=click.Path(dir_okay=False, path_type=Path), help="The gisgate.toml holding the target.")
@click.option("--kind", type=click.Choice(["gis", "whit", "contact", "textcontact", "rtstate", "cwfm"]),
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
    from gisgate import config, deliver

    result = deliver.deliver_files(list(files), config.load(config_path), target_name, kind=kind,
                                   deadline_s=deadline)
    click.echo(result.summary())
