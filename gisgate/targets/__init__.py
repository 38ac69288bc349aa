"""Delivery targets: one module per kind, each `deliver(batch) -> Receipt` plus `close()`.

Each target translates its library's errors once into TransientDeliveryError (retry later) or
PermanentDeliveryError (a human must act).
"""
