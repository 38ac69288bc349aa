"""Converter processes: the CPU-bound polars work of conversions runs beside the gateway's file I/O.

The conversions are passed in (the pipeline's module-level functions, so they can be sent to a
spawned process by name).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gisgate.config import ConvertOptions
from gisgate.gateway.claims import Job, Page
from gisgate.gateway.conversions import Conversions

_SAMPLE = (
    "periodStart,acdServiceId,contactsOffered,contactsHandled,contactsAnswered,contactsAbandoned,totalTalkSeconds,"
    "totalHoldSeconds,totalAfterContactWorkSeconds,totalAnswerDelaySeconds,serviceLevelPercent\n"
    "2026-01-05T08:00:00Z,1,1,1,1,0,1,0,0,1,100\n"
)


def _warm_up(convert: Callable) -> int:
    with tempfile.TemporaryDirectory(prefix="gisgate-warm-") as d:
        path = Path(d) / "warm.csv"
        path.write_text(_SAMPLE)
        convert(str(path), [ConvertOptions()], None)
    time.sleep(0.2)  # hold this worker so the next warm-up call lands on another process
    return os.getpid()


def die_with_parent(gateway_pid: int) -> None:
    """Converter processes end when the gateway does, even after a kill -9 (Linux); Ctrl-C in a
    terminal reaches the whole process group, but only the gateway decides when to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != gateway_pid:  # the gateway died before the line above: nobody will stop us
        os._exit(1)


class Converters:
    """A pool of converter processes running each job's conversion."""

    def __init__(self, workers: int, conversions: Conversions):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=die_with_parent, initargs=(os.getpid(),))
        self.workers = workers
        self.conversions = conversions

    def warm(self) -> None:
        """Start every process and run one tiny conversion in each now (imports, polars' first
        query plans), so the first real file is not slower than the rest."""
        for f in [self.pool.submit(_warm_up, self.conversions.convert) for _ in range(self.workers)]:
            f.result()

    def submit(self, job: Job):
        return self.pool.submit(self.conversions.function(job), str(job.work), job.options, job.report)

    def submit_page(self, page: Page):
        """An archived input's conversion again, for its report page (`Conversions.page`)."""
        function = self.conversions.parse if page.stream else self.conversions.convert
        return self.pool.submit(function, str(page.archived), page.options, page.report)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
