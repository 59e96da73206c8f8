"""Bulk work without the cyclic garbage collector."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Run bulk work (catching up, importing, recording a run's awards)
    without the cyclic garbage collector, and restore it afterwards.

    Bulk work allocates millions of short-lived objects (payload dicts,
    events, rows); the collector's passes over them, and over the long-lived
    objects it walks again as the heap grows, can cost more than the work
    itself (measured in docs/benchmarks.md). Reference counting frees
    whatever is not in a cycle, so the work must not build cycles that hold
    much (a rejected command's error is kept without its traceback for this
    reason); the collector finds the few left once it runs again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
