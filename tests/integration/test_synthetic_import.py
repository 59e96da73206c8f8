"""A tiny synthetic city imports with no rejection, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from ledger.application.importer import default_report_path, import_file
from ledger.application.ledger import Ledger
from ledger.services.synthetic_city import write_city


def test_a_tiny_city_is_accepted_whole_and_a_second_import_adds_nothing(
    ledger: Ledger, tmp_path: Path
) -> None:
    # Given a tiny synthetic city-year written to a file
    path = tmp_path / "city.jsonl"
    lines = write_city(path, scale=0.001)

    # When it is imported, every line is accepted
    first = import_file(ledger, path)
    assert default_report_path(path).read_text() == ""
    assert (first.accepted, first.duplicate, first.rejected) == (lines, 0, 0)

    # And importing it again finds every key already accepted
    second = import_file(ledger, path)
    assert (second.accepted, second.duplicate, second.rejected) == (0, lines, 0)
