"""Make the sample inputs under samples/<case>/input/ (deterministic), and, with --expected, the
golden outputs under samples/<case>/expected/ by running the real CLI.

    python samples/make_samples.py               # inputs only
    python samples/make_samples.py --expected    # inputs + golden outputs (review the diff!)

Regenerating the golden files is deliberate and never happens in the tests.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import shutil
import subprocess
import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent

SERVICE_COLS = ["periodStart", "acdServiceId", "contactsOffered", "contactsHandled", "contactsAnswered",
                "contactsAbandoned", "totalTalkSeconds", "totalHoldSeconds", "totalAfterContactWorkSeconds",
                "totalAnswerDelaySeconds", "serviceLevelPercent"]
AGENT_COLS = ["periodStart", "acdAgentId", "acdServiceId", "contactsHandled", "totalTalkSeconds", "totalHoldSeconds",
              "totalAfterContactWorkSeconds", "totalPeriodHandleTimeSeconds", "totalUnproratedReadyWaitingSeconds",
              "totalUnproratedNotReadyBusySeconds", "totalUnproratedInSessionSeconds", "contactsTransferredOut"]


def local_day_intervals(day: str, tz: str, minutes: int = 15) -> list[datetime]:
    """UTC starts of every interval of one local day (100 on a fall-back day, 92 on spring-forward)."""
    zone = ZoneInfo(tz)
    start = datetime.fromisoformat(day).replace(tzinfo=zone).astimezone(UTC)
    end = (datetime.fromisoformat(day) + timedelta(days=1)).replace(tzinfo=zone).astimezone(UTC)
    out, t = [], start
    while t < end:
        out.append(t)
        t += timedelta(minutes=minutes)
    return out


def volume(local: datetime, peak: float) -> float:
    """Contact arrivals shaped like a contact-center day: quiet nights, mid-morning and afternoon peaks."""
    h = local.hour + local.minute / 60
    return peak * (0.05 + math.exp(-((h - 10.5) / 2.2) ** 2) + 0.8 * math.exp(-((h - 15) / 2.5) ** 2))


def make_rows(starts: list[datetime], tz: str, services: list[str], agents: list[str], seed: int,
              peak: float = 30.0, shift: tuple[int, int] = (7, 17)) -> tuple[list[dict], list[dict]]:
    """Consistent service and agent rows: the agents' handled contacts add up to the service's."""
    rnd = random.Random(seed)
    zone = ZoneInfo(tz)
    service_rows, agent_rows = [], []
    for start in starts:
        local = start.astimezone(zone)
        on_shift = [a for i, a in enumerate(agents) if shift[0] + i % 3 <= local.hour < shift[1] + i % 3]
        handled_by: dict[tuple[str, str], int] = {}
        for s_index, service in enumerate(services):
            offered = max(0, round(rnd.gauss(volume(local, peak / (s_index + 1)), 2)))
            if not on_shift:
                offered = min(offered, 1)
            abandoned = sum(rnd.random() < (0.06 if on_shift else 1.0) for _ in range(offered))
            handled = offered - abandoned
            answered = handled
            talk = round(sum(rnd.uniform(120, 420) for _ in range(handled)), 1)
            hold = round(sum(rnd.choice([0, 0, 0, rnd.uniform(10, 90)]) for _ in range(handled)), 1)
            acw = round(sum(rnd.uniform(15, 60) for _ in range(handled)), 1)
            delay = round(sum(rnd.expovariate(1 / 18) for _ in range(answered)), 1)
            within = sum(rnd.random() < 0.82 for _ in range(answered))
            sl = round(100 * within / offered, 2) if offered else 0
            service_rows.append(dict(zip(SERVICE_COLS, [
                start, service, offered, handled, answered, abandoned, talk, hold, acw, delay, sl], strict=True)))
            for _ in range(handled):
                agent = rnd.choice(on_shift)
                handled_by[(agent, service)] = handled_by.get((agent, service), 0) + 1
        for agent in on_shift:
            rows = [(svc, n) for (a, svc), n in sorted(handled_by.items()) if a == agent] or [(services[0], 0)]
            busy = [round(n * rnd.uniform(200, 330), 1) for _, n in rows]
            handle = min(sum(busy), 880.0)
            not_ready = round(rnd.choice([0, 0, 30, 60, 120]) * (handle < 760), 1)
            ready = round(max(0.0, 900 - handle - not_ready), 1)
            for (service, n), b in zip(rows, busy, strict=True):
                period = round(b * handle / sum(busy), 1) if sum(busy) else 0.0
                agent_rows.append(dict(zip(AGENT_COLS, [
                    start, agent, service, n, round(b * 0.78, 1), round(b * 0.05, 1), round(b * 0.17, 1), period,
                    ready, not_ready, 900, rnd.choice([0, 0, 0, 1]) if n else 0], strict=True)))
    return service_rows, agent_rows


def iso(t: datetime, tz: str) -> str:
    return t.astimezone(ZoneInfo(tz)).isoformat()


def write_csv(path: Path, rows: list[dict], columns: list[str], *, delimiter: str = ",", bom: bool = False,
              time=lambda t: t.isoformat()) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([time(r[c]) if isinstance(r[c], datetime) else r[c] for c in columns])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))


def whit_rows(service_rows: list[dict], tz: str, names: dict[str, str]) -> list[dict]:
    out = []
    for r in service_rows:
        local = r["periodStart"].astimezone(ZoneInfo(tz))
        h = r["contactsHandled"]
        out.append({
            "serviceName": names[r["acdServiceId"]], "serviceNumber": r["acdServiceId"],
            "date": local.strftime("%Y-%m-%d"), "period": local.strftime("%H:%M"),
            "receivedCalls": r["contactsOffered"], "handledCalls": h, "abandonedCalls": r["contactsAbandoned"],
            "avgTalkTime": round((r["totalTalkSeconds"] + r["totalHoldSeconds"]) / h, 3) if h else 0,
            "avgACWTime": round(r["totalAfterContactWorkSeconds"] / h, 3) if h else 0,
            "ASA": round(r["totalAnswerDelaySeconds"] / h, 3) if h else 0,
            "serviceLevel": round(r["serviceLevelPercent"]),
        })
    return out


def make_inputs() -> None:
    ny = "America/New_York"
    # 1. New York fall-back day: 100 intervals, CSV, ISO periodStart with the local offset.
    s, a = make_rows(local_day_intervals("2024-11-03", ny), ny, ["9912306", "9912307"],
                     ["12345", "67890", "00123", "A-17"], seed=1)
    case = HERE / "generic-ny-fallback" / "input"
    write_csv(case / "service.csv", s, SERVICE_COLS, time=lambda t: iso(t, ny))
    write_csv(case / "agent.csv", a, AGENT_COLS, time=lambda t: iso(t, ny))
    # 2. New York spring-forward day: 92 intervals, agent data only, Z timestamps.
    s, a = make_rows(local_day_intervals("2024-03-10", ny), ny, ["9912306"], ["12345", "67890"], seed=2)
    write_csv(HERE / "generic-ny-spring" / "input" / "agent.csv", a, AGENT_COLS,
              time=lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    write_csv(HERE / "generic-ny-spring" / "input" / "service.csv", s, SERVICE_COLS,
              time=lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ"))
    # 3. Kathmandu (+05:45), JSON array, 15-minute data rolled up to 30 minutes.
    ktm = "Asia/Kathmandu"
    starts = [t for t in local_day_intervals("2024-06-12", ktm) if 8 <= t.astimezone(ZoneInfo(ktm)).hour < 14]
    s, a = make_rows(starts, ktm, ["501", "502"], ["np-01", "np-02", "np-03"], seed=3)
    case = HERE / "generic-kathmandu-30" / "input"
    case.mkdir(parents=True, exist_ok=True)
    for name, rows in (("service.json", s), ("agent.json", a)):
        (case / name).write_text(json.dumps([{k: (iso(v, ktm) if isinstance(v, datetime) else v)
                                              for k, v in r.items()} for r in rows], indent=1) + "\n")
    # 4. UTC tenant, NDJSON with epoch-millisecond periodStart.
    starts = [t for t in local_day_intervals("2024-01-15", "UTC") if 9 <= t.hour < 12]
    s, a = make_rows(starts, "UTC", ["7001"], ["u1", "u2"], seed=4)
    case = HERE / "generic-utc-epoch" / "input"
    case.mkdir(parents=True, exist_ok=True)
    (case / "service.ndjson").write_text("".join(
        json.dumps({**r, "periodStart": int(r["periodStart"].timestamp() * 1000)}) + "\n" for r in s))
    # 5. Berlin summer (positive offset): semicolon CSV with BOM, epoch seconds, IDs with leading zeros.
    ber = "Europe/Berlin"
    starts = [t for t in local_day_intervals("2024-07-01", ber) if 9 <= t.astimezone(ZoneInfo(ber)).hour < 11]
    s, a = make_rows(starts, ber, ["0042", "0043"], ["007", "0815"], seed=5)
    case = HERE / "generic-berlin" / "input"
    write_csv(case / "service.csv", s, SERVICE_COLS, delimiter=";", bom=True, time=lambda t: int(t.timestamp()))
    write_csv(case / "agent.csv", a, AGENT_COLS, delimiter=";", bom=True, time=lambda t: int(t.timestamp()))
    # 6. WHIT in New York local time across the fall-back hour → ServiceHistorical files.
    s, _ = make_rows([t for t in local_day_intervals("2024-11-03", ny) if 4 <= t.hour < 8], ny,
                     ["9912306", "9912307"], ["12345"], seed=6, peak=120, shift=(0, 24))
    write_csv(HERE / "whit-ny-fallback" / "input" / "whit.csv",
              whit_rows(s, ny, {"9912306": "Billing", "9912307": "Support"}),
              ["serviceName", "serviceNumber", "date", "period", "receivedCalls", "handledCalls", "abandonedCalls",
               "avgTalkTime", "avgACWTime", "ASA", "serviceLevel"])
    # 7. Service data → WHIT (UTC date/period).
    (HERE / "generic-to-whit" / "input").mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "generic-ny-fallback" / "input" / "service.csv", HERE / "generic-to-whit" / "input")


def make_expected() -> None:
    for job in sorted(HERE.glob("*/job.toml")):
        case = job.parent
        spec = tomllib.loads(job.read_text())
        out = case / "expected"
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, "-m", "gisgate", "convert", *[str(case / i) for i in spec["inputs"]],
               "--out", str(out), *spec.get("args", [])]
        subprocess.run(cmd, check=True)
        print(f"{case.name}: {len(list(out.iterdir()))} files")


if __name__ == "__main__":
    make_inputs()
    if "--expected" in sys.argv:
        make_expected()
