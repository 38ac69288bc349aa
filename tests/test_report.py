"""`gisgate report`: numbers, charts and data-quality findings in the HTML, and the page in a real browser."""

from __future__ import annotations

import io
import re
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
import system
from polars.testing import assert_frame_equal

from gisgate import config, pipeline, report
from gisgate.cli import Progress
from gisgate.model import Batch
from tests.conftest import SAMPLES, run_cli

NY = SAMPLES / "generic-ny-fallback"
NY_INPUTS = [NY / "input" / "service.csv", NY / "input" / "agent.csv"]
SERVICE_HEADER = ("periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,"
                  "totalTalkSeconds,totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,"
                  "serviceLevelPercent")


def counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-issue="(\w+)" data-count="(\d+)"', html)}


def queue_totals(html: str) -> dict[tuple[str, str], float]:
    out = {}
    for queue, row in re.findall(r'<tr data-queue="([^"]+)">(.*?)</tr>', html, re.S):
        for metric, value in re.findall(r'data-metric="(\w+)" data-value="([^"]+)"', row):
            out[(queue, metric)] = float(value)
    return out


def findings(html: str, key: str) -> str:
    m = re.search(rf'<table class="findings" data-issue="{key}">(.*?)</table>', html, re.S)
    return re.sub(r"<[^>]+>", " ", m.group(1)) if m else ""


def service_csv(path: Path, starts: list[str], queues=("100", "200"), handled=None) -> Path:
    """A service CSV with one row per start and queue: 10 offered, 8 handled, 2 abandoned, 300 s AHT."""
    lines = [SERVICE_HEADER]
    for s in starts:
        for q in queues:
            h = (handled or {}).get((s, q), 8)
            lines.append(f"{s},{q},10,{h},{h},2,{200 * h},{20 * h},{80 * h},{15 * h},80")
    path.write_text("\n".join(lines) + "\n")
    return path


def utc_starts(first: str, count: int, minutes: int = 15) -> list[str]:
    t0 = datetime.fromisoformat(first).astimezone(UTC)
    return [(t0 + timedelta(minutes=minutes * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(count)]


def test_report_numbers_and_charts_match_the_input(tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("report", *NY_INPUTS, "--tz", "America/New_York", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "100 interval(s), 2 queue(s), 4 agent(s)" in result.stdout
    html = out.read_text()
    service = pl.read_csv(NY_INPUTS[0], schema_overrides={"acdServiceId": pl.String})
    sums = service.group_by("acdServiceId").agg(pl.col("contactsOffered", "contactsHandled", "contactsAbandoned").sum())
    totals = queue_totals(html)
    for queue, offered, handled, abandoned in sums.iter_rows():
        assert totals[(queue, "offered")] == offered
        assert totals[(queue, "handled")] == handled
        assert totals[(queue, "abandoned")] == abandoned
        # per queue: a volume chart with three lines and a handle-time chart, as inline SVG
        volume = re.search(rf'<svg class="chart" data-queue="{queue}" data-chart="volume".*?</svg>', html, re.S)
        assert volume and {"offered", "handled", "abandoned"} <= set(re.findall(r'data-series="(\w+)"', volume[0]))
        assert re.search(rf'<svg class="chart" data-queue="{queue}" data-chart="aht"', html)
    assert len(re.findall(r'<g class="bar" data-label="', html)) == 4  # one share bar per agent
    assert counts(html)["gaps"] == 0 and counts(html)["counts"] == 0
    # self-contained: no scripts, no external references
    assert "<script" not in html and not re.search(r'(src|href)="(https?:)?//', html)


def test_report_of_produced_gis_files_shows_the_same_data(tmp_path):
    from_input = report.write_report(pipeline.convert(NY_INPUTS, config.ConvertOptions(tz="America/New_York")),
                                     tmp_path / "a.html")
    result = run_cli("report", NY / "expected", "--tz", "America/New_York", "--out", tmp_path / "b.html")
    assert result.returncode == 0, result.stderr
    a, b = from_input.read_text(), (tmp_path / "b.html").read_text()
    assert queue_totals(a) == queue_totals(b) and queue_totals(a)
    assert re.findall(r'<tr data-agent=.*?</tr>', a, re.S) == re.findall(r'<tr data-agent=.*?</tr>', b, re.S)


def test_gis_source_reads_produced_files_back_into_the_same_frames():
    options = config.ConvertOptions(tz="America/New_York")
    read = pipeline.convert(sorted((NY / "expected").iterdir()), options).batch
    original = pipeline.convert(NY_INPUTS, options).batch
    keys = ["interval_start", "service_id"]
    assert_frame_equal(read.queue_intervals.sort(keys), original.queue_intervals.sort(keys))
    keys = ["interval_start", "agent_id", "service_id"]
    assert_frame_equal(read.agent_intervals.sort(keys), original.agent_intervals.sort(keys))


def test_missing_interval_and_missing_queue_are_listed(tmp_path):
    starts = utc_starts("2024-06-03T09:00:00-04:00", 12)
    data = service_csv(tmp_path / "s.csv", [s for s in starts if s != starts[5]])  # 10:15 local missing
    frame = pl.read_csv(data, infer_schema=False)  # queue 200 reports 10:30, queue 100 does not
    frame.filter(~((pl.col("periodStart") == starts[6]) & (pl.col("acdServiceId") == "100"))).write_csv(data)
    out = tmp_path / "r.html"
    result = run_cli("report", data, "--tz", "America/New_York", "--out", out)
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert counts(html)["gaps"] == 1
    assert "2024-06-03 10:15 -04:00" in findings(html, "gaps")
    assert counts(html)["queue_gaps"] == 1
    assert re.search(r"100\s+2024-06-03 10:30 -04:00", findings(html, "queue_gaps"))
    assert len(re.findall(r'<rect class="gap"', html)) >= 2  # the gap is shaded in each queue's charts


def test_fall_back_day_only_the_second_one_oclock_missing(tmp_path):
    # 00:00 .. 02:45 local on 2024-11-03 is 04:00Z .. 07:45Z: 16 intervals, two of them start at 01:00
    starts = utc_starts("2024-11-03T00:00:00-04:00", 16)
    second_one = "2024-11-03T06:00:00Z"  # 01:00 EST, the repeated hour
    data = service_csv(tmp_path / "s.csv", [s for s in starts if s != second_one])
    out = tmp_path / "r.html"
    assert run_cli("report", data, "--tz", "America/New_York", "--out", out).returncode == 0
    html = out.read_text()
    assert counts(html)["gaps"] == 1
    gaps = findings(html, "gaps")
    assert "2024-11-03 01:00 -05:00" in gaps and "-04:00" not in gaps.split("2024-11-03 01:00 -05:00")[0]


def test_spring_forward_day_has_no_false_gap(tmp_path):
    # 01:00 .. 03:45 EDT-day local: 02:xx does not exist, so 01:45 is followed by 03:00 without a gap
    data = service_csv(tmp_path / "s.csv", utc_starts("2024-03-10T01:00:00-05:00", 8))
    out = tmp_path / "r.html"
    assert run_cli("report", data, "--tz", "America/New_York", "--out", out).returncode == 0
    assert counts(out.read_text())["gaps"] == 0


def test_handled_above_offered_and_outliers_are_flagged(tmp_path):
    starts = utc_starts("2024-06-03T09:00:00Z", 4)
    data = service_csv(tmp_path / "s.csv", starts, handled={(starts[2], "200"): 12})
    out = tmp_path / "r.html"
    result = run_cli("report", data, "--out", out, "--aht-max", "250", "--title", "Week 23")
    assert result.returncode == 0, result.stderr
    html = out.read_text()
    assert "<title>Week 23</title>" in html
    assert counts(html)["counts"] == 1
    assert re.search(r"2024-06-03 09:30 \+00:00\s+200\s+10\s+12", findings(html, "counts"))
    assert "handled &gt; offered" in findings(html, "counts")
    assert counts(html)["outliers"] == 8  # AHT 300 s on every row, above --aht-max 250


def test_unknown_agents_and_queues_against_the_mapping(tmp_path):
    cfg = tmp_path / "gisgate.toml"
    cfg.write_text('[acd]\ntimezone = "America/New_York"\n[mapping]\nagents = { "12345" = "12345" }\n'
                   'service_names = { "9912306" = "Billing" }\n[report]\nmax_agents = 2\n')
    out = tmp_path / "r.html"
    assert run_cli("report", *NY_INPUTS, "--config", cfg, "--out", out).returncode == 0
    html = out.read_text()
    assert counts(html)["unknown_agents"] == 3 and "12345" not in findings(html, "unknown_agents")
    assert counts(html)["unknown_queues"] == 1 and "9912307" in findings(html, "unknown_queues")
    assert "9912306</a> · Billing" in html
    assert len(re.findall(r'<g class="bar"', html)) == 2  # [report] max_agents


def test_duplicate_and_conflicting_rows(tmp_path):
    options = config.ConvertOptions(tz="America/New_York")
    q = pipeline.convert(NY_INPUTS[:1], options).batch.queue_intervals
    changed = q.head(1).with_columns(pl.col("offered") + 1)
    batch = Batch(queue_intervals=pl.concat([q, q.slice(1, 1), changed]))
    html = report.write_report(batch, tmp_path / "r.html", options=options).read_text()
    assert counts(html)["duplicates"] == 2
    assert "conflicting" in findings(html, "duplicates") and "identical" in findings(html, "duplicates")
    # an input convert rejects (same key, different values) still gets a report, and exit 3
    bad = tmp_path / "bad.csv"
    lines = NY_INPUTS[0].read_text().splitlines()
    bad.write_text("\n".join([*lines, lines[1].replace(",1,0,0,1,", ",2,0,0,2,")]) + "\n")
    result = run_cli("report", bad, "--tz", "America/New_York", "--out", tmp_path / "bad.html")
    assert result.returncode == 3
    assert "duplicate key" in result.stderr and "duplicate key" in (tmp_path / "bad.html").read_text()


def test_report_of_a_produced_whit_file_reads_it_as_utc(tmp_path):
    case = SAMPLES / "generic-to-whit"
    out = tmp_path / "r.html"
    result = run_cli("report", case / "expected", "--tz", "America/New_York", "--out", out)
    assert result.returncode == 0, result.stderr
    offered = pl.read_csv(case / "input" / "service.csv")["contactsOffered"].sum()
    assert sum(v for (_, m), v in queue_totals(out.read_text()).items() if m == "offered") == offered
    assert counts(out.read_text())["gaps"] == 0


def test_progress_bar_only_on_a_terminal(tmp_path):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with Progress(enabled=True, total=3, delay=0, file=screen) as progress:
        for _ in range(3):
            progress()
    assert "writing" in screen.getvalue() and "3/3" in screen.getvalue()
    quiet = Terminal()
    with Progress(enabled=True, total=3, delay=60, file=quiet) as progress:  # fast: no bar
        progress()
    assert quiet.getvalue() == ""
    result = run_cli("convert", *NY_INPUTS, "--tz", "America/New_York", "--out", tmp_path)
    assert result.returncode == 0 and "writing" not in result.stderr + result.stdout  # a pipe: no bar
    assert "wrote 148 file(s)" in result.stdout


def png_pixels(data: bytes) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixels of an 8-bit RGB/RGBA PNG (enough for Chromium screenshots)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, channels = 8, b"", 0, 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride = zlib.decompress(idat), width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, {r[i:i + channels] for r in rows[::7] for i in range(0, stride, channels * 7)}


@pytest.mark.needs("chromium")
def test_report_renders_in_headless_chromium(tmp_path):
    browser = system.PARTS["chromium"].find()
    page = tmp_path / "report.html"
    assert run_cli("report", *NY_INPUTS, "--tz", "America/New_York", "--out", page).returncode == 0
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
                    page.as_uri()], capture_output=True, timeout=120, check=True)
    width, height, colours = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 2000)
    assert len(colours) > 20  # text, charts and lines in many colours, not a blank page


def test_thirty_minute_gis_files_are_not_reported_as_gaps(tmp_path):
    case = SAMPLES / "generic-kathmandu-30" / "expected"
    out = tmp_path / "r.html"
    assert run_cli("report", case, "--tz", "Asia/Kathmandu", "--out", out).returncode == 0
    html = out.read_text()
    assert counts(html)["gaps"] == 0 and "30-minute intervals" in html
    assert "intervals are taken as 30 minutes long" in html
    # told that they are 15 minutes long, every :15 and :45 between them is missing
    assert run_cli("report", case, "--tz", "Asia/Kathmandu", "--source-interval", "15", "--out", out).returncode == 0
    assert counts(out.read_text())["gaps"] > 0


def test_gis_source_names_bad_files_and_warns_about_a_foreign_offset(tmp_path):
    good = NY / "expected" / "202411030100N0500_1_ServiceHistorical.SERVICE"
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes().replace(b"contactsOffered", b"contactsOfered"))
    result = run_cli("convert", bad, "--tz", "America/New_York", "--out", tmp_path / "out")
    assert result.returncode == 3
    assert f"{bad}:2: contactsOfered: unknown column" in result.stderr
    batch = pipeline.convert([good], config.ConvertOptions(tz="Europe/Berlin")).batch
    assert set(batch.queue_intervals["interval_start"].to_list()) == {datetime(2024, 11, 3, 6, 0, tzinfo=UTC)}
    assert any("pass the ACD's zone with --tz" in w for w in batch.warnings)


def test_same_input_same_page_and_quiet(tmp_path):
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    for out in (a, b):
        result = run_cli("report", NY / "expected", "--tz", "America/New_York", "--out", out, "-q")
        assert result.returncode == 0 and result.stdout == "" and result.stderr == ""
    assert a.read_bytes() == b.read_bytes()
