"""Pure frame → frame functions: no files, no clock, no network.

    intervals.py   local-clock bucketing, alignment, roll-up 15 → 30
    contacts.py    CONTACTS → QUEUE_INTERVALS and per agent × queue contact metrics
    states.py      STATE_EVENTS → spans → per agent × interval state seconds
"""

from __future__ import annotations

from gisgate.config import ConvertOptions
from gisgate.model import Batch


def derive(batch: Batch, options: ConvertOptions) -> Batch:
    """Fill the interval frames of `batch` from its contacts and state events, when it has them."""
    if batch.contacts is None and batch.state_events is None:
        return batch
    raise NotImplementedError("deriving intervals from contacts and state events")
