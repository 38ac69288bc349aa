"""Where to find every problem when there are more than the message shows: the hint depends on the
command (convert and validate have `--rejects FILE`; report has its page), and it is real."""

from __future__ import annotations

import csv

from tests.conftest import SAMPLES

EXPECTED = SAMPLES / "generic-ny-fallback" / "expected"
HEADER = ("periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
          "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent\n")


def broken_service_csv(tmp_path, rows: int = 24):
    path = tmp_path / "s.csv"
    path.write_text(HEADER + "".join(f"2024-11-04T{h:02d}:00:00-05:00,1,x,1,1,0,1,0,0,1,100\n" for h in range(rows)))
    return path


def broken_gis_files(tmp_path, count: int = 25):
    folder = tmp_path / "gis"
    folder.mkdir()
    for src in sorted(EXPECTED.glob("*.SERVICE"))[:count]:
        (folder / src.name).write_bytes(src.read_bytes().replace(b"ACD: 1", b"ACD: 2"))
    return folder


def test_convert_without_rejects_suggests_it(tmp_path, cli):
    r = cli("convert", broken_service_csv(tmp_path), "--out", tmp_path / "o", "--tz", "America/New_York")
    assert r.returncode == 3 and "... and 4 more problem(s) (use --rejects FILE to get them all)" in r.stderr


def test_convert_with_rejects_says_where_they_are(tmp_path, cli):
    rejects = tmp_path / "r.csv"
    r = cli("convert", broken_service_csv(tmp_path), "--out", tmp_path / "o", "--tz", "America/New_York",
            "--rejects", rejects)
    assert r.returncode == 3 and f"... and 4 more problem(s) (all of them are in {rejects})" in r.stderr


def test_validate_rejects_writes_every_problem_as_csv(tmp_path, cli):
    folder = broken_gis_files(tmp_path)
    r = cli("validate", folder)
    assert r.returncode == 3 and "... and 5 more problem(s) (use --rejects FILE to get them all)" in r.stderr
    rejects = tmp_path / "problems.csv"
    r = cli("validate", folder, "--rejects", rejects)
    assert r.returncode == 3 and f"(all of them are in {rejects})" in r.stderr
    with open(rejects, newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 25 and all("header ACD 2 differs" in row["reason"] for row in got)
    assert {row["file"] for row in got} == {str(p) for p in folder.iterdir()}


def test_validate_rejects_of_valid_files_is_only_the_header(tmp_path, cli):
    rejects = tmp_path / "problems.csv"
    rejects.write_text("file,line,column,reason\nold,1,x,stale\n")
    r = cli("validate", EXPECTED, "--rejects", rejects, "--tz", "America/New_York")
    assert r.returncode == 0, r.stderr
    assert rejects.read_text().splitlines() == ["file,line,column,reason"]


def test_report_points_to_its_page(tmp_path, cli):
    out = tmp_path / "r.html"
    r = cli("report", broken_service_csv(tmp_path), "--out", out, "--tz", "America/New_York")
    assert r.returncode == 3 and f"(see the report {out}; gisgate convert --rejects FILE lists all)" in r.stderr
