"""A property of ``ledger import`` (CONTRACT §1.2–§1.3), on a real SQLite
file and real PostgreSQL: whatever the lines (commands with values at and
past every bound, other JSON, bytes that are not UTF-8, a BOM, lines over
64 KiB, nesting too deep to read), every non-blank line gets exactly one
outcome, nothing stops the import, and the ledger projects and verifies
afterwards."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.application.commands import COMMAND_TYPES, LONGEST_COMMAND_BYTES
from ledger.application.importer import import_file
from ledger.application.ledger import Ledger
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import Database
from ledger.store.integrity import verify_ledger
from tests.e2e.http_helpers import city
from tests.factories import id_number, record_all

# The ids of the city (tests.e2e.http_helpers.city), and the first too long.
IDS = [
    *("C", "I1", "S1", "P1", "I2", "S2", "T1", "V1", "V2", "A1", "A2", "O1", "O2"),
    *("V1-A1", "V2-A2", "i" * 64, "i" * 65),
]
TIMES: list[Any] = [
    "2024-03-01T09:00:00+08:00",
    "2024-03-01T12:00:00+08:00",
    "2024-03-02T09:00:00+08:00",
    "2024-03-02T09:30:00+08:00",
    "2024-03-03T09:00:00+08:00",
    "2000-01-01T00:00:00-12:00",
    "2099-12-31T23:59:59+14:00",
    "1999-12-31T23:59:59+14:00",
    "9999-12-31T20:00:00-14:00",
    "0001-01-01T00:00:00+08:00",
    "2024-03-01T09:00:00",
    "2024-03-01",
    1_709_254_800,
    None,
]
WORDS = [
    *("centre", "institute", "station", "point", "corps", "brigade", "team"),
    *("culture", "health", "wish", "service", "order", "activity"),
]
NUMBERS = [-1, 0, 1, 5, 60, 1_440, 1_441, 10_000, 10_001, 2**63, 2**70]

# Valid values more often than not, and the first ones past each bound.
texts = st.sampled_from([1, 1, 1, 100, 500, 0, 101, 501]).map(lambda n: "理" * n)
ids = st.sampled_from(IDS) | st.from_regex(r"N[0-9]{1,3}", fullmatch=True)
id_lists = st.one_of(
    st.lists(st.sampled_from(IDS), max_size=3),
    st.sampled_from([200, 201]).map(lambda n: [f"V{i}" for i in range(n)]),
)
values = st.one_of(
    st.sampled_from(IDS),
    st.sampled_from(TIMES),
    st.sampled_from(WORDS),
    st.sampled_from(NUMBERS),
    st.booleans(),
    texts,
    id_lists,
    st.text(max_size=10),
)
# What each field is mostly drawn from, so that many lines reach the rules.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "starts_at": st.sampled_from(TIMES),
    "ends_at": st.sampled_from(TIMES),
    "level": st.sampled_from(WORDS[:7]),
    "category": st.sampled_from(["culture", "health", "sports"]),
    "kind": st.sampled_from(["wish", "service"]) | texts,
    "subject": st.sampled_from(["order", "activity"]),
    "id_number": st.sampled_from([id_number(7), id_number(8), "123"]),
    "fraud": st.booleans(),
    "as_of": st.sampled_from(["2024-12-31", "0001-01-01"]),
    **dict.fromkeys(["volunteer_ids", "team_ids", "benefits"], id_lists),
    # Ids of the city's records of the kind the field names, or new ones.
    **{
        field: st.sampled_from(known) | st.from_regex(r"N[0-9]{1,3}", fullmatch=True)
        for field, known in {
            "venue_id": ["C", "I1", "S1", "P1", "I2", "S2"],
            "parent_id": ["C", "I1", "S1", "T1"],
            "team_id": ["T1"],
            "volunteer_id": ["V1", "V2"],
            "rater_id": ["V1", "V2"],
            "activity_id": ["A1", "A2"],
            "order_id": ["O1", "O2"],
            "session_id": ["V1-A1", "V2-A2"],
            "subject_id": ["A1", "O1"],
        }.items()
    },
    **dict.fromkeys(
        ["capacity", "minutes", "stars", "points", "position"],
        st.sampled_from(NUMBERS),
    ),
    **dict.fromkeys(
        ["name", "title", "reason", "description", "comment", "rules", "cycle"],
        texts,
    ),
}


@st.composite
def commands(draw: st.DrawFn) -> bytes:
    """A command line: each field of its type (most of them) drawn from its
    kind of values (now and then from any), with times and numbers at and
    past their bounds."""
    command_type = draw(st.sampled_from(sorted(COMMAND_TYPES)))
    fields = set(COMMAND_TYPES[command_type].model_fields) - {"type", "at", "actor"}
    document: dict[str, Any] = {
        "type": command_type,
        "at": draw(
            st.sampled_from(TIMES if draw(st.integers(0, 3)) == 3 else TIMES[:5])
        ),
        "actor": {"id": "staff-1", "role": "venue_staff"},
    }
    for field in sorted(fields - {"key"}):
        # (Hypothesis starts from the least value of a draw: 0 is the usual.)
        if draw(st.integers(0, 19)) == 19:
            continue
        usual = FIELD_VALUES.get(field, ids)
        document[field] = draw(values if draw(st.integers(0, 7)) == 7 else usual)
    if draw(st.booleans()):
        document["key"] = draw(st.sampled_from(["k1", "k2", "k3"]))
    return to_json(document)


def to_json(value: Any) -> bytes:
    """JSON text as other platforms write it (integers of any size)."""
    return json.dumps(value, ensure_ascii=False).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
odd_lines = st.sampled_from(
    [
        b"",
        b"   ",
        codecs.BOM_UTF8 + b'{"type": "register_team"}',
        b"\xff\xfe\x00{}",
        b"x" * (LONGEST_COMMAND_BYTES + 1),
        b" " * (LONGEST_COMMAND_BYTES + 1),
        b'{"type": "register_team", "x": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b'{"type": "register_team", "team_id": "\\ud800", "name": "\\udfff"}',
    ]
)
lines = st.lists(
    st.one_of(
        # Commands most of the time: they are what reaches the ledger's rules.
        commands(),
        commands(),
        commands(),
        json_values.map(to_json),
        st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),
        odd_lines,
    ),
    max_size=25,
)


def judged_lines(file_lines: list[bytes]) -> int:
    """How many lines ask for a judgement: all but blank ones (a BOM opening
    the file is skipped first)."""
    if file_lines and file_lines[0].startswith(codecs.BOM_UTF8):
        file_lines = [file_lines[0][len(codecs.BOM_UTF8) :], *file_lines[1:]]
    return sum(
        1 for raw in file_lines if len(raw) > LONGEST_COMMAND_BYTES or raw.strip()
    )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(file_lines=lines)
def test_every_line_of_any_file_gets_one_outcome_and_the_ledger_verifies(
    database: Database, ledger: Ledger, tmp_path: Path, file_lines: list[bytes]
) -> None:
    # Given a city (once: later examples find it recorded)
    if ledger.recorder.max_notification_id() is None:
        record_all(ledger, city())
    file = tmp_path / "lines.jsonl"
    file.write_bytes(b"".join(raw + b"\n" for raw in file_lines))
    report = tmp_path / "rejected.jsonl"

    # When the file is imported
    summary = import_file(ledger, file, report_path=report)

    # Then every line that asks for a judgement got exactly one
    rejected = [orjson.loads(row)["line"] for row in report.read_bytes().splitlines()]
    assert summary.lines == judged_lines(file_lines)
    assert len(rejected) == len(set(rejected)) == summary.rejected
    # and whatever was accepted projects and verifies
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    assert not any(engine.catch_up().dead_letters.values())
    assert all(result.ok for result in engine.verify())
    assert verify_ledger(database, None, ledger).ok
