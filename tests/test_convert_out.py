"""`convert --out` never mixes the files of two runs silently: produced files this conversion would not
write make it refuse (exit 2, nothing written) unless `--force`; re-running the same conversion is fine."""

from __future__ import annotations

from tests.conftest import SAMPLES

NY = SAMPLES / "generic-ny-fallback"


def names(folder) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_an_out_folder_with_another_runs_files_is_refused_unless_forced(tmp_path, cli):
    out = tmp_path / "out"
    assert cli("convert", *sorted((NY / "input").iterdir()), "--tz", "America/New_York", "--out", out).returncode == 0
    first = names(out)
    assert len(first) == 148
    r = cli("convert", NY / "input" / "service.csv", "--tz", "America/Chicago", "--out", out)
    assert r.returncode == 2
    assert "already holds 144 produced file(s) this conversion does not write" in r.stderr
    assert "--force" in r.stderr and "Nothing was written" in r.stderr
    assert names(out) == first and not [p for p in out.iterdir() if p.name.startswith(".")]
    r = cli("convert", NY / "input" / "service.csv", "--tz", "America/Chicago", "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert len(names(out)) == 244


def test_the_same_conversion_again_overwrites_its_own_files(tmp_path, cli):
    out = tmp_path / "out"
    args = ("convert", *sorted((NY / "input").iterdir()), "--tz", "America/New_York", "--out", out)
    assert cli(*args).returncode == 0
    (out / "notes.txt").write_text("mine")  # not a produced file: no reason to refuse
    r = cli(*args)
    assert r.returncode == 0, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix != ".txt"} == {
        p.name: p.read_bytes() for p in (NY / "expected").iterdir()}


def test_inputs_inside_the_out_folder_do_not_count(tmp_path, cli):
    whit = next((SAMPLES / "whit-ny-fallback" / "input").iterdir())
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / whit.name).write_bytes(whit.read_bytes())
    r = cli("convert", folder / whit.name, "--from", "whit", "--tz", "America/New_York", "--out", folder)
    assert r.returncode == 0, r.stderr
