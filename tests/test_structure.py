"""The shape of the package: layered imports, one error tree, a thin CLI, documented commands."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import click
import polars as pl

from gisgate import errors
from gisgate.cli import cli
from gisgate.render import number

PACKAGE = Path(__file__).resolve().parent.parent / "gisgate"
README = (PACKAGE.parent / "README.md").read_text()

# Layers top to bottom; a module may import only from layers below its own.
LAYERS = [
    {"cli"},
    {"commands"},
    {"gateway", "pipeline", "connectors"},
    {"report"},
    {"sources", "render", "validate", "targets"},
    {"transform"},  # the pure core: readers and writers both use its clock
    {"model", "config", "durable", "produced", "retry"},
    {"mappings", "sourcespec", "targetspec"},  # read by the config: mapping files, [[source]] and [target.*] tables
    {"errors", "allocator"},  # (allocator: the command's memory setting, imported before polars)
]


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def test_every_module_belongs_to_a_layer():
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = unit(".".join(rel.parts))
        if name in ("__init__", "__main__", ""):
            continue
        layer(name)


def test_imports_only_go_down_the_layers():
    bad = []
    for path in PACKAGE.rglob("*.py"):
        me = unit(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        if me in ("__init__", "__main__", ""):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gisgate"):
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names] if node.module == "gisgate" \
                    else [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("gisgate")]
            else:
                continue
            for target in targets:
                other = unit(target)
                if not other or other == me or other in ("__init__",):
                    continue
                if layer(other) <= layer(me):
                    bad.append(f"{path.name}: {me} imports {other}")
    assert not bad, bad


def test_cli_imports_no_heavy_library_at_module_level():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    names = {a.name for n in top for a in n.names} | {n.module for n in top if isinstance(n, ast.ImportFrom)}
    assert not names & {"polars", "paramiko", "httpx", "jinja2", "watchdog"}


def test_every_error_class_has_an_exit_code():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, Exception)]
    for c in classes:
        assert issubclass(c, errors.GisgateError)
        assert isinstance(c.exit_code, int)
    assert {c.exit_code for c in classes} == {1, 2, 3, 4}


def test_no_sys_exit_outside_cli():
    for path in PACKAGE.rglob("*.py"):
        if path.name != "cli.py":
            assert "sys.exit" not in path.read_text(), path


def test_every_command_has_help_and_is_in_the_readme():
    for name, command in cli.commands.items():
        assert command.help, name
        assert f"gisgate {name}" in README, f"README does not document `gisgate {name}`"
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(opt in README for opt in param.opts), f"README misses {name} {param.opts}"


def test_readme_lists_the_exit_codes():
    for code in ("0", "1", "2", "3", "4"):
        assert re.search(rf"\|\s*{code}\s*\|", README), code


def test_number_formatting():
    values = [0.0, 12.0, 734.5, 0.1 + 0.2, 1e-7, 2311.5, 1234567.0005, 83.333333, 100.0, 1e15, -0.0]
    out = pl.DataFrame({"x": values}).select(s=number(pl.col("x"), 3), p=number(pl.col("x"), 2))
    assert out["s"].to_list() == ["0", "12", "734.5", "0.3", "0", "2311.5", "1234567.001", "83.333", "100",
                                  "1000000000000000", "0"]  # an input "-0" passes the checks: never print "-0"
    assert out["p"][7] == "83.33"


def test_is_sorted_is_lexicographic():
    from gisgate.model import is_sorted

    frame = pl.DataFrame({"a": [1, 1, 2, 2], "b": ["x", "y", "a", "a"]})
    assert is_sorted(frame, ["a", "b"])
    assert not is_sorted(frame, ["b", "a"])
    assert not is_sorted(frame.reverse(), ["a", "b"])
    assert is_sorted(frame.head(1), ["a", "b"]) and is_sorted(frame.clear(), ["a", "b"])


def test_targets_never_import_config_or_commands():
    bad = []
    for path in (PACKAGE / "targets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            bad += [f"{path.name}: {n}" for n in names if n.startswith(("gisgate.config", "gisgate.commands"))]
    assert not bad, bad
