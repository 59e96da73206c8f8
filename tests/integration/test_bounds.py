"""CONTRACT §1.3 on a real SQLite file and real PostgreSQL: input outside the
bounds is refused with its rule named and writes nothing, and input at their
very edges is recorded, projected, rebuilt and verified like any other: an
event the domain accepted is never refused by a projection."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from ledger.application.importer import ImportSummary, import_file
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.engine import ProjectionEngine
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.reads.queries import LedgerReads
from ledger.store.event_store import Database, head_position
from ledger.store.integrity import verify_ledger
from tests.factories import id_number, line, record_all, small_city, submission
from tests.integration.projection_helpers import run_cli

WEST = timezone(timedelta(hours=-12))
EAST = timezone(timedelta(hours=14))
EARLIEST = datetime(2000, 1, 1, tzinfo=WEST)  # 2000-01-01T00:00:00-12:00
LATEST = datetime(2099, 12, 31, 23, 59, 59, tzinfo=EAST)
LONGEST_ID = "i" * 64
LONGEST_NAME = "名" * 100
LONGEST_TEXT = "理" * 500


def import_lines(
    ledger: Ledger, folder: Path, lines: list[dict[str, Any] | bytes]
) -> tuple[ImportSummary, dict[int, str]]:
    """Import ``lines`` (a dict is written as JSON); the summary, and the
    code of each rejected line by its number."""
    file = folder / "lines.jsonl"
    file.write_bytes(
        b"".join(
            (item if isinstance(item, bytes) else orjson.dumps(item)) + b"\n"
            for item in lines
        )
    )
    report = folder / "rejected.jsonl"
    summary = import_file(ledger, file, report_path=report)
    rejected = [orjson.loads(row) for row in report.read_bytes().splitlines()]
    return summary, {row["line"]: row["code"] for row in rejected}


def head(database: Database) -> int:
    with database.reading() as conn:
        return head_position(conn)


def assert_projects_rebuilds_and_verifies(database: Database, ledger: Ledger) -> None:
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    caught_up = engine.catch_up()
    assert set(caught_up.dead_letters.values()) == {0}
    rebuilt = engine.rebuild()
    assert set(rebuilt.dead_letters.values()) == {0}
    for result in engine.verify():
        assert result.ok, (result.name, result.differences[:3], result.dead_letters)
    assert verify_ledger(database, None, ledger).ok


# --- refused -----------------------------------------------------------------


def publishing(**overrides: Any) -> dict[str, Any]:
    """The fields of a valid ``publish_activity`` at S1, with ``overrides``."""
    return {
        "activity_id": "A9",
        "venue_id": "S1",
        "category": "culture",
        "title": "an activity",
        "starts_at": "2024-03-01T09:00:00+08:00",
        "ends_at": "2024-03-01T10:00:00+08:00",
        "capacity": 5,
        **overrides,
    }


def far_future_activity() -> dict[str, Any]:
    return line(
        "publish_activity",
        **publishing(
            starts_at="9999-12-31T20:00:00-14:00", ends_at="9999-12-31T21:00:00-14:00"
        ),
    )


def test_an_activity_in_the_year_9999_is_refused_and_verify_stays_green(
    database: Database, ledger: Ledger, tmp_path: Path
) -> None:
    # Given a small city
    record_all(ledger, small_city())
    before = head(database)

    # When an activity starting in the year 9999 at -14:00 is imported
    summary, rejected = import_lines(ledger, tmp_path, [far_future_activity()])

    # Then it is refused for its time, nothing is written, and the ledger
    # projects and verifies
    assert (summary.accepted, summary.rejected) == (0, 1)
    assert rejected == {1: "time_out_of_range"}
    assert head(database) == before
    assert_projects_rebuilds_and_verifies(database, ledger)


def test_the_domain_refuses_a_time_out_of_range_that_skipped_parsing(
    database: Database, ledger: Ledger
) -> None:
    record_all(ledger, small_city())
    accepted = submission("publish_activity", **publishing())
    far = datetime(9999, 12, 31, 20, tzinfo=timezone(timedelta(hours=-14)))
    unparsed = accepted.command.model_copy(
        update={"starts_at": far, "ends_at": far + timedelta(hours=1)}
    )
    before = head(database)

    [result] = ledger.execute_batch([Submission(unparsed, accepted.envelope)])

    assert result.outcome is Outcome.REJECTED
    assert result.error is not None and result.error.code == "time_out_of_range"
    assert head(database) == before


def test_a_bad_time_after_line_3000_is_rejected_and_the_import_goes_on(
    database: Database, ledger: Ledger, tmp_path: Path
) -> None:
    teams = [
        line("register_team", team_id=f"T{n}", name="t", level="corps")
        for n in range(3_100)
    ]
    bad = line("register_team", team_id="T-bad", name="t", level="corps")
    bad["at"] = "0001-01-01T00:00:00+08:00"
    after = [
        line("register_team", team_id=f"U{n}", name="u", level="corps")
        for n in range(10)
    ]

    summary, rejected = import_lines(ledger, tmp_path, [*teams, bad, *after])

    assert summary.summary_line() == "accepted=3110 duplicate=0 rejected=1"
    assert rejected == {3_101: "time_out_of_range"}
    assert head(database) == 3_110


def test_every_malformed_line_is_rejected_with_its_rule_and_the_rest_recorded(
    database: Database, ledger: Ledger, tmp_path: Path
) -> None:
    record_all(ledger, small_city())
    before = head(database)
    team = 0

    def good() -> dict[str, Any]:
        nonlocal team
        team += 1
        return line("register_team", team_id=f"T-{team}", name="t", level="corps")

    def refused(**fields: Any) -> dict[str, Any]:
        return {**good(), **fields}

    def padded(size: int) -> bytes:
        """A team registration exactly ``size`` bytes long."""
        document = good()
        short = len(orjson.dumps({**document, "note": ""}))
        return orjson.dumps({**document, "note": "x" * (size - short)})

    rejections = {
        "line_too_long": padded(64 * 1024 + 1),
        "invalid_encoding": b"\xff\xfe" + orjson.dumps(good()),
        "byte_order_mark": b"\xef\xbb\xbf" + orjson.dumps(good()),
        "invalid_command": b"[1, 2]",
        "invalid_time": orjson.dumps(refused(at=1_700_000_000)),
        "time_out_of_range": orjson.dumps(refused(at="0001-01-01T00:00:00+08:00")),
        "text_too_long": orjson.dumps(refused(name="名" * 101)),
        "capacity_out_of_range": orjson.dumps(
            line("publish_activity", **publishing(capacity=10_001))
        ),
        "list_too_long": orjson.dumps(
            line(
                "accept_order",
                order_id="O1",
                volunteer_ids=[f"V{n}" for n in range(201)],
            )
        ),
    }
    nested = b'{"type": "register_team", "x": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    lines: list[dict[str, Any] | bytes] = [
        padded(64 * 1024),  # at the limit: read, and accepted
        *rejections.values(),
        nested,
        b"3",
        good(),
        b"",
        good(),
    ]

    summary, rejected = import_lines(ledger, tmp_path, lines)

    codes = list(rejections)
    assert rejected == {
        **{number: code for number, code in enumerate(codes, start=2)},
        len(codes) + 2: "invalid_command",
        len(codes) + 3: "invalid_command",
    }
    assert summary.summary_line() == f"accepted=3 duplicate=0 rejected={len(codes) + 2}"
    assert head(database) == before + 3


def test_a_byte_order_mark_opening_the_file_is_skipped_with_a_note(
    database: Database, ledger: Ledger, tmp_path: Path
) -> None:
    first = line("register_team", team_id="T1", name="t", level="corps")

    summary, rejected = import_lines(
        ledger, tmp_path, [b"\xef\xbb\xbf" + orjson.dumps(first)]
    )

    assert (summary.accepted, rejected) == (1, {})
    assert summary.notes == [
        "the file starts with a UTF-8 byte order mark (BOM); it was skipped and "
        "line 1 read without it"
    ]


# --- accepted at the edges -----------------------------------------------------


def edge_of_the_bounds() -> list[dict[str, Any]]:
    """A city whose every bounded value sits at its limit: the earliest and
    latest times at the farthest offsets (also those that fall in 1999 and
    2100 in China Standard Time), the longest ids, names and texts, the
    largest capacity, a 1,440-minute session and 200 accepting volunteers."""

    def at(moment: datetime, type_: str, **fields: Any) -> dict[str, Any]:
        return line(type_, moment, **fields)

    def activity(
        activity_id: str, starts: datetime, ends: datetime, capacity: int = 10
    ) -> dict[str, Any]:
        return at(
            starts,
            "publish_activity",
            activity_id=activity_id,
            venue_id=LONGEST_ID,
            category="culture",
            title=LONGEST_NAME,
            starts_at=starts.isoformat(),
            ends_at=ends.isoformat(),
            capacity=capacity,
        )

    def served(
        session_id: str, activity_id: str, starts: datetime, ends: datetime
    ) -> list[dict[str, Any]]:
        ids = {"session_id": session_id}
        return [
            at(starts, "sign_up", activity_id=activity_id, volunteer_id="V1"),
            at(starts, "check_in", **ids, volunteer_id="V1", activity_id=activity_id),
            at(ends, "check_out", **ids),
            at(ends, "approve_session", **ids),
        ]

    volunteers = ["V1", LONGEST_ID[:-1] + "v", *(f"V{n}" for n in range(2, 200))]
    west_1999 = datetime(2000, 1, 1, tzinfo=EAST)  # 1999-12-31T18:00 in CST
    east_2100 = datetime(2099, 12, 31, 20, tzinfo=WEST)  # 2100-01-01T16:00 in CST
    reason = {"reason": LONGEST_TEXT}
    return [
        at(
            EARLIEST,
            "register_venue",
            venue_id="C",
            name=LONGEST_NAME,
            level="centre",
            parent_id=None,
            kind=LONGEST_TEXT,
        ),
        at(
            EARLIEST,
            "register_venue",
            venue_id="I",
            name="i",
            level="institute",
            parent_id="C",
        ),
        at(
            EARLIEST,
            "register_venue",
            venue_id=LONGEST_ID,
            name="s",
            level="station",
            parent_id="I",
        ),
        at(
            EARLIEST,
            "register_team",
            team_id=LONGEST_ID,
            name=LONGEST_NAME,
            level="corps",
        ),
        *(
            at(
                EARLIEST,
                "register_volunteer",
                volunteer_id=volunteer,
                name=LONGEST_NAME,
                id_number=id_number(500 + n),
                team_ids=[LONGEST_ID],
            )
            for n, volunteer in enumerate(volunteers)
        ),
        activity("A-2000", EARLIEST, EARLIEST + timedelta(days=1), capacity=10_000),
        activity("A-2099", datetime(2099, 12, 31, tzinfo=EAST), LATEST, capacity=1),
        activity("A-1999", west_1999, west_1999 + timedelta(hours=3)),
        activity("A-2100", east_2100, datetime(2099, 12, 31, 23, 59, 59, tzinfo=WEST)),
        *served(LONGEST_ID, "A-2000", EARLIEST, EARLIEST + timedelta(minutes=1440)),
        at(LATEST, "correct_session", session_id=LONGEST_ID, minutes=1439, **reason),
        *served("S-1999", "A-1999", west_1999, west_1999 + timedelta(hours=3)),
        at(LATEST, "request_correction", session_id="S-1999", minutes=1, **reason),
        at(LATEST, "decline_correction", session_id="S-1999", **reason),
        *served("S-2100", "A-2100", east_2100, east_2100 + timedelta(minutes=239)),
        at(
            east_2100 + timedelta(minutes=239),
            "void_session",
            session_id="S-2100",
            fraud=True,
            **reason,
        ),
        at(
            LATEST,
            "record_makeup_hours",
            session_id="M-2099",
            volunteer_id="V1",
            activity_id="A-2099",
            minutes=1439,
            **reason,
        ),
        at(LATEST, "approve_session", session_id="M-2099"),
        at(
            LATEST,
            "rate",
            subject="activity",
            subject_id="A-2000",
            rater_id=LONGEST_ID,
            stars=5,
            comment=LONGEST_TEXT,
        ),
        *(
            at(
                EARLIEST,
                "post_order",
                order_id=order_id,
                kind="wish",
                venue_id=LONGEST_ID,
                category="health",
                description=LONGEST_TEXT,
            )
            for order_id in (LONGEST_ID, "O-withdrawn", "O-rejected")
        ),
        at(EARLIEST, "dispatch_order", order_id=LONGEST_ID, venue_id=LONGEST_ID),
        at(EARLIEST, "accept_order", order_id=LONGEST_ID, volunteer_ids=volunteers),
        at(EARLIEST, "fulfil_order", order_id=LONGEST_ID),
        at(
            LATEST,
            "rate",
            subject="order",
            subject_id=LONGEST_ID,
            rater_id=LONGEST_ID,
            stars=4,
            comment=LONGEST_TEXT,
        ),
        at(LATEST, "withdraw_order", order_id="O-withdrawn", **reason),
        at(LATEST, "reject_order", order_id="O-rejected", **reason),
    ]


def test_values_at_the_edge_of_every_bound_project_rebuild_and_verify(
    database: Database, ledger: Ledger, tmp_path: Path
) -> None:
    lines = edge_of_the_bounds()

    summary, rejected = import_lines(ledger, tmp_path, list(lines))

    assert rejected == {}
    assert summary.accepted == len(lines)
    assert_projects_rebuilds_and_verifies(database, ledger)
    hours = LedgerReads(database).volunteer_hours("V1")
    # 1,439 corrected minutes in 2000, 180 in CST's 1999, the make-up 1,439
    # in 2099; the voided 2100 session counts nothing.
    assert hours.by_year == {"1999": 180, "2000": 1439, "2099": 1439}


def test_ledger_import_notes_a_byte_order_mark_and_ends_with_the_summary(
    database: Database, tmp_path: Path
) -> None:
    file = tmp_path / "with-bom.jsonl"
    first = line("register_team", team_id="T1", name="t", level="corps")
    file.write_bytes(b"\xef\xbb\xbf" + orjson.dumps(first) + b"\n")

    result = run_cli(database, "import", str(file))

    assert result.exit_code == 0, result.output
    assert "note: the file starts with a UTF-8 byte order mark (BOM)" in result.output
    assert result.stdout.splitlines()[-1] == "accepted=1 duplicate=0 rejected=0"


def test_ledger_import_tells_its_rate_before_the_summary(
    database: Database, tmp_path: Path
) -> None:
    file = tmp_path / "teams.jsonl"
    teams = [
        line("register_team", team_id=team, name="t", level="corps")
        for team in ("T1", "T2")
    ]
    file.write_bytes(b"".join(orjson.dumps(team) + b"\n" for team in teams))

    result = run_cli(database, "import", str(file))

    assert result.exit_code == 0, result.output
    assert re.search(
        r"^2 lines, 2 events in \d+\.\d s: [\d,]+ lines/s, [\d,]+ events/s$",
        result.stderr,
        re.MULTILINE,
    ), result.stderr
    assert result.stdout.splitlines()[-1] == "accepted=2 duplicate=0 rejected=0"
