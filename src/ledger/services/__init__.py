"""Use cases built on reads and the writer: honours runs, certificates,
exports, and the synthetic city behind ``ledger demo``."""

from typing import Final

# The demo city's scale unless ``ledger demo --scale`` says otherwise; here,
# not in ``synthetic_city``, so that the command line reads it without
# loading the generator (docs/benchmarks.md, CLI start-up).
DEFAULT_SCALE: Final = 0.01
