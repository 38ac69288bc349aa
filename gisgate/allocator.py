"""How the `gisgate` command asks polars' allocator to give memory back. Imported by the CLI before
anything loads polars, which reads the setting once, when it loads.

polars allocates with jemalloc, which keeps freed pages for 0.5 s, then marks them free lazily (still
in RSS) for 1 s more: pages one step of a conversion freed (the CSV scan's threads) stayed beside
those the next step took, 0.1 GiB above what it held. Here pages idle for 0.1 s are given back at
once. polars writes its default into `_RJEM_MALLOC_CONF`, which the children of a process that
loaded it inherit: only another value is someone's choice, and wins.
"""

from __future__ import annotations

import os

POLARS_JEMALLOC = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what polars puts in the environment
PROMPT = "dirty_decay_ms:100,muzzy_decay_ms:0"

if os.environ.get("_RJEM_MALLOC_CONF", POLARS_JEMALLOC) == POLARS_JEMALLOC:
    os.environ["_RJEM_MALLOC_CONF"] = PROMPT
