"""The command line: parses options, calls the library, prints a summary. No logic lives here.

`main()` is the one place where errors become exit codes:
0 ok · 1 unexpected · 2 usage or configuration · 3 input rejected · 4 delivery failed.
"""

from __future__ import annotations

import sys

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


# -- SFTP host keys ---------------------------------------------------------------------------------


@cli.command("hostkey")
@click.argument("target")
@click.option("--config", "config_file", default="gisgate.toml", show_default=True,
              type=click.Path(dir_okay=False), help="The gisgate.toml that defines TARGET.")
def hostkey(target: str, config_file: str) -> None:
    """Show the host key an sftp TARGET's server offers, for a human to approve. Trusts nothing."""
    from gisgate.targets import sftp  # paramiko stays out of the CLI's import time

    click.echo(sftp.host_key_of(config_file, target).describe())
