"""The gateway's streams: a route's drops merged into one state, intervals re-derived as that state
changes (stream.py), kept in one SQLite file beside the ledger (store.py); what a stream sent to
Cloud Connect (cloud.py)."""
