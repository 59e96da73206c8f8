"""A property of ``ledger import`` told as stories (CONTRACT §1.2–§1.3):
each file is a small valid story (a venue, a volunteer, an activity served
and approved, an order), into which hypothesis mixes lines the contract
says to refuse — times outside 2000–2099 or without an offset, numbers for
times, texts and numbers past their bounds, lines over 64 KiB, broken JSON
and bytes — and repeats of story lines (duplicates) and story keys reused
with other content (``idempotency_key_reused``). Every non-blank line gets
exactly one outcome, every line the contract refuses is rejected, the story
itself is recorded, and the ledger verifies afterwards.

``test_import_property`` draws lines at random; this one knows what each
line must become. Examples accumulate in one ledger, so later files meet
earlier state. ``LEDGER_FUZZ_IMPORT_EXAMPLES`` sets the number of files.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ledger.api.cli.app import app as cli
from ledger.application.commands import LONGEST_COMMAND_BYTES
from ledger.application.importer import default_report_path, import_file
from ledger.application.ledger import Ledger
from ledger.store.event_store import Database
from ledger.store.integrity import KEY_DIRECTORY_SETTING
from tests.factories import KEY_DIRECTORIES, T0, id_number, line

EXAMPLES = int(os.environ.get("LEDGER_FUZZ_IMPORT_EXAMPLES", "12"))

# Values every line that carries them must be refused for (CONTRACT §1.3).
TIMES_OUT_OF_BOUNDS: tuple[Any, ...] = (
    "0001-01-01T00:00:00+08:00",
    "9999-12-31T20:00:00-14:00",
    "1999-12-31T23:59:59+08:00",
    "2100-01-01T00:00:00+08:00",
    "2024-03-01T09:00:00+15:00",
    "2024-03-01T09:00:00-13:00",
    "2024-03-01T09:00:00",
    1709254800,
    1.5e300,
    "",
    None,
)
TEXT_FIELDS = ("name", "title", "reason", "description", "comment", "kind")
LONG_TEXT = "长" * 501


@dataclass(frozen=True)
class Line:
    """One line of a file and the outcome the contract gives it (None for a
    blank line, which asks for none)."""

    raw: bytes
    outcome: str | None

    def __repr__(self) -> str:
        shown = self.raw if len(self.raw) <= 160 else self.raw[:160] + b"..."
        return f"Line({shown!r}, {self.outcome})"


def refused(raw: bytes) -> Line:
    return Line(raw, "rejected")


def story(n: int) -> list[dict[str, Any]]:
    """A valid story of example ``n``: every fact it needs, in time order."""
    venue, volunteer, act, order = f"P{n}", f"V{n}", f"A{n}", f"O{n}"
    session = f"{volunteer}-{act}"
    starts = T0 + timedelta(days=n)
    admin = {"id": "admin-1", "role": "admin"}
    return [
        line(
            "register_venue",
            T0,
            venue_id=venue,
            name=f"点{n}",
            level="centre",
            parent_id=None,
            actor=admin,
            key=f"venue-{n}",
        ),
        line(
            "register_volunteer",
            T0,
            volunteer_id=volunteer,
            name=f"志愿者{n}",
            id_number=id_number(n, birth=f"19{70 + n // 1000 % 30}0101"),
            key=f"volunteer-{n}",
        ),
        line(
            "publish_activity",
            starts - timedelta(days=7),
            activity_id=act,
            venue_id=venue,
            category="culture",
            title=f"活动{n}",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=2)).isoformat(),
            capacity=10,
            key=f"activity-{n}",
        ),
        line(
            "sign_up",
            starts - timedelta(days=1),
            activity_id=act,
            volunteer_id=volunteer,
            key=f"sign-up-{n}",
        ),
        line(
            "check_in",
            starts,
            session_id=session,
            volunteer_id=volunteer,
            activity_id=act,
            key=f"check-in-{n}",
        ),
        line(
            "check_out",
            starts + timedelta(hours=2),
            session_id=session,
            key=f"check-out-{n}",
        ),
        line(
            "approve_session",
            starts + timedelta(hours=3),
            session_id=session,
            key=f"approve-{n}",
        ),
        line(
            "post_order",
            starts,
            order_id=order,
            kind="wish",
            venue_id=venue,
            category="health",
            description=f"心愿{n}",
            key=f"order-{n}",
        ),
    ]


def encoded(document: dict[str, Any]) -> bytes:
    """The line's bytes (the standard library writes integers past 64 bits)."""
    return json.dumps(document, ensure_ascii=False).encode()


@st.composite
def hostile_line(draw: st.DrawFn, n: int, document: dict[str, Any]) -> Line:
    """A line made from ``document`` (of example ``n``) that the contract
    says to refuse, under a key of its own."""
    serial = draw(st.integers(0, 10**9))
    changed = dict(document, key=f"{document['key']}-hostile-{serial}")
    kind = draw(
        st.sampled_from(
            [
                "time",
                "business_time",
                "text",
                "capacity",
                "line_too_long",
                "not_json",
                "not_utf8",
                "not_object",
                "deep",
                "number_key",
            ]
        )
    )
    if kind == "time":
        changed["at"] = draw(st.sampled_from(TIMES_OUT_OF_BOUNDS))
    elif kind == "business_time":
        changed = line(
            "publish_activity",
            T0,
            activity_id=f"X{n}-{serial}",
            venue_id=f"P{n}",
            category="culture",
            title="t",
            starts_at=draw(st.sampled_from(TIMES_OUT_OF_BOUNDS)),
            ends_at=(T0 + timedelta(hours=1)).isoformat(),
            capacity=1,
        )
    elif kind == "text":
        field = draw(st.sampled_from(TEXT_FIELDS))
        changed[field] = LONG_TEXT
    elif kind == "capacity":
        changed = line(
            "publish_activity",
            T0,
            activity_id=f"Y{n}-{serial}",
            venue_id=f"P{n}",
            category="culture",
            title="t",
            starts_at=T0.isoformat(),
            ends_at=(T0 + timedelta(hours=1)).isoformat(),
            capacity=draw(st.sampled_from([0, -1, 10_001, 2**63, 2**70])),
        )
    elif kind == "line_too_long":
        changed["reason"] = "x" * LONGEST_COMMAND_BYTES
    elif kind == "not_json":
        return refused(draw(st.binary(max_size=40)).replace(b"\n", b" ") + b"{")
    elif kind == "not_utf8":
        return refused(b'{"type": "approve_session", "reason": "\xff\xfe"}')
    elif kind == "not_object":
        return refused(
            draw(st.sampled_from([b"[]", b"42", b'"text"', b"null", b"true"]))
        )
    elif kind == "deep":
        return refused(b"[" * 30_000 + b"]" * 30_000)
    else:
        changed["key"] = draw(st.sampled_from([12, 2**64, ["k"], {"k": 1}]))
    return refused(encoded(changed))


@st.composite
def import_file_lines(draw: st.DrawFn, n: int) -> list[Line]:
    """A story of example ``n`` with hostile lines, repeats and reused keys
    mixed in (each repeat comes after its original)."""
    documents = story(n)
    lines: list[Line] = []
    for document in documents:
        lines.append(Line(encoded(document), "accepted"))
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(hostile_line(n, document)))
        if draw(st.integers(0, 4)) == 0:
            lines.append(Line(encoded(document), "duplicate"))
        if draw(st.integers(0, 4)) == 0:
            # The same key with other content: refused, never a duplicate.
            later = T0 + timedelta(days=n, minutes=1)
            reused = dict(document, at=later.isoformat())
            lines.append(refused(encoded(reused)))
        if draw(st.integers(0, 6)) == 0:
            lines.append(Line(b"", None))
    return lines


examples = itertools.count(1)


def test_in_any_story_every_refused_line_is_rejected_and_the_story_recorded(
    ledger: Ledger, database: Database, tmp_path: Path
) -> None:
    @given(data=st.data())
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def imports(data: st.DataObject) -> None:
        lines = data.draw(import_file_lines(next(examples)))
        path = tmp_path / "file.jsonl"
        path.write_bytes(b"\n".join(item.raw for item in lines) + b"\n")

        summary = import_file(ledger, path)

        report = default_report_path(path).read_bytes().splitlines()
        rejected = {orjson.loads(entry)["line"] for entry in report}
        expected = Counter(item.outcome for item in lines if item.outcome)
        assert (summary.accepted, summary.duplicate, summary.rejected) == (
            expected["accepted"],
            expected["duplicate"],
            expected["rejected"],
        )
        misjudged = [
            item
            for number, item in enumerate(lines, 1)
            if (item.outcome == "rejected") != (number in rejected)
        ]
        assert misjudged == [] and len(report) == len(rejected)

    imports()
    runner = CliRunner(env={KEY_DIRECTORY_SETTING: str(KEY_DIRECTORIES[database.url])})
    projected = runner.invoke(cli, ["--db", database.url, "project"])
    verified = runner.invoke(cli, ["--db", database.url, "verify"])
    assert projected.exit_code == 0, projected.output
    assert verified.exit_code == 0, verified.output
