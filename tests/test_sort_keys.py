"""`_checks.sort_by_keys`: the packed integer sort orders rows exactly as `frame.sort(keys, maintain_order=True)`."""

from __future__ import annotations

import random

import polars as pl
import pytest

from gisgate.model import same_as_previous_any
from gisgate.sources import _checks as chk

KEYS = ["interval_start", "agent_id", "service_id"]


def frame(rng: random.Random, n: int, nulls: bool = False) -> pl.DataFrame:
    ids = ["a", "b", "B", "10", "9", "é", "zz", "a ", "00123", ""] + ([None] if nulls else [])
    seconds = [0, 900, 1800, 60, 7, 86400 * 400]  # (7 s: not whole minutes; 400 days: wide)
    return pl.DataFrame({
        "interval_start": pl.Series([rng.choice(seconds) * 1_000_000 for _ in range(n)]).cast(pl.Datetime("us", "UTC")),
        "agent_id": [rng.choice(ids) for _ in range(n)],
        "service_id": [rng.choice(["1", "2", "10"]) for _ in range(n)],
        "value": [rng.random() for _ in range(n)],
        "_line": range(2, n + 2),
    })


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("consume", [False, True])
def test_same_order_as_a_stable_sort(seed, consume):
    rng = random.Random(seed)
    f = frame(rng, rng.randint(0, 400), nulls=seed % 5 == 0)
    want = f.sort(KEYS, maintain_order=True)
    given = f.clone()
    got, repeated = chk.sort_by_keys(given, KEYS, consume=consume)
    assert got.equals(want)
    assert repeated == same_as_previous_any(want, KEYS)
    assert given.width == (0 if consume else f.width)


def test_keys_too_wide_to_pack_take_the_plain_sort():
    f = pl.DataFrame({"k": [2**62, 0, 2**61, 0], "j": [1, 2, 3, 1], "v": [1, 2, 3, 4]})
    got, repeated = chk.sort_by_keys(f, ["k", "j"], consume=True)
    assert got["v"].to_list() == [4, 2, 3, 1] and not repeated
