"""The gateway (`gisgate watch`): inboxes in, converted files delivered, nothing lost.

    setup.py       the config with every path resolved (Setup, Layout)
    pickup.py      which inbox files are inputs, when one is stable (Inbox, Hints)
    observers.py   watchdog observers and the canary that proves them alive
    watcher.py     the main loop: list, look, claim, convert, complete in order
    converters.py  converter processes for the CPU-bound conversions
    claims.py      one input through conversion to archive or rejected, crash-safe
    streams.py     the stream routes: inputs merged into their state, due intervals staged
    stream/        one route's stream (stream.py), where it is kept (store.py), what went to Cloud Connect (cloud.py)
    staging.py     what of some outputs goes into the outbox; conversions.py: what the gateway runs
    outbox.py      staged files per target in folders that are their delivery state
    delivery.py    the worker that delivers due batches (gisgate/retry.py: when to try again)
    ledger.py      the SQLite ledger: inputs, outputs, deliveries
    runtime.py     one running gateway: its parts, the root lock, the delivery thread
    metrics.py     Prometheus text from the parts' snapshots; logs.py: log lines, secrets masked
    retention.py   archive retention; faults.py: crash points for the recovery tests
"""
