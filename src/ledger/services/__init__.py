"""Use cases built on reads and the writer: honours runs, certificates,
exports, and the synthetic city behind ``ledger demo``."""
