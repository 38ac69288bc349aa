"""Every samples/<case>/ is converted by the real CLI and compared byte for byte with expected/."""

from __future__ import annotations

import tomllib

import pytest

from tests.conftest import SAMPLES, run_cli

CASES = sorted(p.parent for p in SAMPLES.glob("*/job.toml"))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_sample_converts_to_the_golden_files(case, tmp_path):
    spec = tomllib.loads((case / "job.toml").read_text())
    result = run_cli("convert", *[case / i for i in spec["inputs"]], "--out", tmp_path, *spec.get("args", []), cwd=case)
    assert result.returncode == 0, result.stderr
    expected = {p.name: p.read_bytes() for p in (case / "expected").iterdir()}
    produced = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(produced) == sorted(expected)
    for name, data in expected.items():
        assert produced[name] == data, f"{case.name}/{name} differs from the golden file"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_files_pass_validate(case):
    spec = tomllib.loads((case / "job.toml").read_text())
    args = spec.get("args", [])
    tz = args[args.index("--tz") + 1]
    interval = args[args.index("--interval") + 1] if "--interval" in args else "15"
    result = run_cli("validate", case / "expected", "--tz", tz, "--interval", interval)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout
