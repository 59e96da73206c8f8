"""Audit queries: what 文明办 auditors ask of the ledger itself.

Events by subject (volunteer, venue, activity, order, session, team), by
actor, by type, by business-time or recorded-time period, in ledger order,
paged by position; and the correction history of a session told as a story
(original, adjustments, who, why). Answers cite the position they reflect
and the chain hash there, and mask personal data unless asked not to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.common import topic_of
from ledger.domain.messages import TranslatedError
from ledger.domain.teams import Team
from ledger.domain.venues import Venue
from ledger.domain.volunteers import Disclosure, Volunteer
from ledger.reads.answers import (
    Actor,
    Adjustment,
    AuditEvent,
    AuditPage,
    Chapter,
    PersonalDataRead,
    PersonalDataReadsPage,
    SessionStory,
)
from ledger.reads.bounds import MAX_PAGE
from ledger.reads.personal import personal_view
from ledger.store.event_store import (
    Database,
    chain_hash_at,
    event_subjects_table,
    events_table,
    head_position,
    utc_text,
)
from ledger.store.personal_data import PersonalDataVault

SUBJECT_KINDS = ("volunteer", "venue", "activity", "order", "session", "team")


class InvalidAuditQueryError(TranslatedError, ValueError):
    """An audit query's parameters are malformed."""


@dataclass(frozen=True)
class AuditQuery:
    """Which events an auditor wants. Every filter is optional."""

    subject: tuple[str, str] | None = None  # (kind, id)
    actor_id: str | None = None
    types: tuple[str, ...] = ()  # topics, e.g. "Volunteer.SessionCorrected"
    occurred_since: datetime | None = None  # business time, inclusive
    occurred_until: datetime | None = None  # business time, exclusive
    recorded_since: datetime | None = None
    recorded_until: datetime | None = None
    after_position: int = 0  # paging: continue after this position
    limit: int = 100
    as_of: int | None = None  # read the ledger as it was at this position

    def __post_init__(self) -> None:
        if self.subject is not None and self.subject[0] not in SUBJECT_KINDS:
            raise InvalidAuditQueryError(
                "subject kind must be one of {kinds}, not '{kind}'",
                kinds=", ".join(SUBJECT_KINDS),
                kind=self.subject[0],
            )
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidAuditQueryError(
                "limit must be from 1 to {most}", most=MAX_PAGE
            )


def parse_subject(text: str) -> tuple[str, str]:
    """``volunteer:V001`` → ``("volunteer", "V001")``."""
    kind, separator, subject_id = text.partition(":")
    if not separator or not subject_id:
        raise InvalidAuditQueryError(
            "a subject is KIND:ID (e.g. volunteer:V001), not '{text}'", text=text
        )
    return kind, subject_id


def find_events(
    database: Database,
    query: AuditQuery,
    *,
    reveal_personal_data: bool = False,
    vault: PersonalDataVault | None = None,
) -> AuditPage:
    """One page of the events ``query`` selects, in ledger order, personal
    data opened with ``vault`` (``ledger.reads.personal``)."""
    t = events_table.c
    with database.reading() as conn:
        position = _position(conn, query.as_of)
        select = sa.select(events_table).where(*_selected(query, position))
        rows = conn.execute(select.order_by(t.position).limit(query.limit + 1)).all()
        subjects = _subjects_of(conn, [row.position for row in rows[: query.limit]])
        chain_hash = chain_hash_at(conn, position)
    events = [
        _describe(row, subjects.get(row.position, []), reveal_personal_data, vault)
        for row in rows[: query.limit]
    ]
    more = len(rows) > query.limit
    return AuditPage(
        events=events,
        next_after=events[-1].position if more else None,
        position=position,
        chain_hash=chain_hash,
    )


def event_pages(
    database: Database,
    query: AuditQuery,
    *,
    reveal_personal_data: bool = False,
    vault: PersonalDataVault | None = None,
) -> Iterator[AuditPage]:
    """Every page of the events ``query`` selects after its
    ``after_position``, the largest pages allowed, all read at the position
    of the first: what an export streams (``limit`` is ignored)."""
    page = find_events(
        database,
        replace(query, limit=MAX_PAGE),
        reveal_personal_data=reveal_personal_data,
        vault=vault,
    )
    yield page
    while page.next_after is not None:
        following = replace(
            query, after_position=page.next_after, as_of=page.position, limit=MAX_PAGE
        )
        page = find_events(
            database,
            following,
            reveal_personal_data=reveal_personal_data,
            vault=vault,
        )
        yield page


PERSONAL_DATA_REVEALED = topic_of(Disclosure, "PersonalDataRevealed")


def find_personal_data_reads(
    database: Database,
    *,
    volunteer_id: str | None = None,
    reader_id: str | None = None,
    after_position: int = 0,
    limit: int = 100,
    as_of: int | None = None,
) -> PersonalDataReadsPage:
    """One page of the recorded reads of full ID and phone numbers (of one
    volunteer's, by one reader), in ledger order."""
    page = find_events(
        database,
        AuditQuery(
            subject=None if volunteer_id is None else ("volunteer", volunteer_id),
            actor_id=reader_id,
            types=(PERSONAL_DATA_REVEALED,),
            after_position=after_position,
            limit=limit,
            as_of=as_of,
        ),
    )
    return PersonalDataReadsPage(
        reads=[
            PersonalDataRead(
                position=event.position,
                reader=event.actor,
                read_at=event.recorded_at,
                volunteer_ids=event.payload["volunteer_ids"],
                read=event.payload["read"],
                chain_hash=event.chain_hash,
            )
            for event in page.events
        ],
        next_after=page.next_after,
        position=page.position,
        chain_hash=page.chain_hash,
    )


def count_events(database: Database, query: AuditQuery) -> int:
    """How many events ``query`` selects after its ``after_position``,
    however many pages they take."""
    with database.reading() as conn:
        position = _position(conn, query.as_of)
        selected = sa.select(sa.func.count()).where(*_selected(query, position))
        return int(conn.execute(selected.select_from(events_table)).scalar_one())


def subject_names(database: Database, position: int) -> dict[str, str]:
    """The names of the venues and teams registered up to ``position``, by
    ``KIND:ID`` as audit events name their subjects (a city has thousands,
    read through the topic index)."""
    t = events_table.c
    with database.reading() as conn:
        rows = conn.execute(
            sa.select(t.topic, t.payload).where(
                t.topic.in_(_NAMED_BY), t.position <= position
            )
        )
        names = {}
        for topic, payload in rows:
            fields = orjson.loads(payload)
            kind, id_field = _NAMED_BY[topic]
            names[f"{kind}:{fields[id_field]}"] = fields["name"]
    return names


_NAMED_BY = {
    topic_of(Venue, "Registered"): ("venue", "venue_id"),
    topic_of(Team, "Registered"): ("team", "team_id"),
}


def _selected(query: AuditQuery, position: int) -> list[sa.ColumnElement[bool]]:
    """The conditions on stored events that ``query`` sets, at ``position``."""
    t = events_table.c
    conditions = [t.position > query.after_position, t.position <= position]
    if query.subject is not None:
        s = event_subjects_table.c
        conditions.append(
            t.position.in_(
                sa.select(s.position).where(
                    s.kind == query.subject[0], s.subject_id == query.subject[1]
                )
            )
        )
    if query.actor_id is not None:
        conditions.append(t.actor_id == query.actor_id)
    if query.types:
        conditions.append(t.topic.in_(query.types))
    for column, since, until in (
        (t.occurred_utc, query.occurred_since, query.occurred_until),
        (t.recorded_at, query.recorded_since, query.recorded_until),
    ):
        if since is not None:
            conditions.append(column >= utc_text(since))
        if until is not None:
            conditions.append(column < utc_text(until))
    return conditions


def session_story(
    database: Database, session_id: str, *, as_of: int | None = None
) -> SessionStory:
    """A session's history as a story: how it began, every adjustment with
    who made it and why, and where it stands."""
    page = find_events(
        database,
        AuditQuery(subject=("session", session_id), limit=MAX_PAGE, as_of=as_of),
    )
    if not page.events:
        raise LookupError(f"session '{session_id}' is not recorded")
    chapters = [_chapter(event) for event in page.events]
    minutes: int | None = None
    status = "open"
    adjustments = []
    for chapter in chapters:
        if chapter.minutes is not None and chapter.what in (
            "checked out",
            "make-up hours recorded",
        ):
            minutes = chapter.minutes
        if chapter.what == "corrected":
            assert chapter.minutes is not None and chapter.previous_minutes is not None
            assert chapter.reason is not None
            adjustments.append(
                Adjustment(
                    from_minutes=chapter.previous_minutes,
                    to_minutes=chapter.minutes,
                    by=chapter.actor,
                    why=chapter.reason,
                    at=chapter.at,
                    position=chapter.position,
                )
            )
            minutes = chapter.minutes
        status = _STATUS_AFTER.get(chapter.what, status)
    original = next((c.minutes for c in chapters if c.minutes is not None), None)
    return SessionStory(
        session_id=session_id,
        status=status,
        original_minutes=original,
        minutes=minutes,
        adjustments=adjustments,
        story=chapters,
        position=page.position,
        chain_hash=page.chain_hash,
    )


_WHAT = {
    topic_of(Volunteer, event_name): what
    for event_name, what in (
        ("CheckedIn", "checked in"),
        ("CheckedOut", "checked out"),
        ("MakeupHoursRecorded", "make-up hours recorded"),
        ("SessionApproved", "approved"),
        ("SessionRejected", "rejected"),
        ("CorrectionRequested", "correction requested"),
        ("CorrectionDeclined", "correction declined"),
        ("SessionCorrected", "corrected"),
        ("SessionVoided", "voided"),
    )
}
_STATUS_AFTER = {
    "checked in": "open",
    "checked out": "pending",
    "make-up hours recorded": "pending",
    "approved": "approved",
    "rejected": "rejected",
    "voided": "voided",
}


def _chapter(event: AuditEvent) -> Chapter:
    payload = event.payload
    return Chapter(
        position=event.position,
        at=event.occurred_at,
        recorded_at=event.recorded_at,
        what=_WHAT.get(event.type, event.type),
        actor=event.actor,
        minutes=payload.get("minutes"),
        previous_minutes=payload.get("previous_minutes"),
        reason=payload.get("reason"),
        fraud=payload.get("fraud"),
    )


def _position(conn: Connection, as_of: int | None) -> int:
    head = head_position(conn)
    return head if as_of is None else min(as_of, head)


def _subjects_of(conn: Connection, positions: list[int]) -> dict[int, list[str]]:
    if not positions:
        return {}
    s = event_subjects_table.c
    found: dict[int, list[str]] = {}
    rows = conn.execute(
        sa.select(s.position, s.kind, s.subject_id)
        .where(s.position.in_(positions))
        .order_by(s.position, s.kind, s.subject_id)
    )
    for position, kind, subject_id in rows:
        found.setdefault(position, []).append(f"{kind}:{subject_id}")
    return found


def _describe(
    row: sa.Row[Any],
    subjects: list[str],
    reveal: bool,
    vault: PersonalDataVault | None,
) -> AuditEvent:
    payload = orjson.loads(row.payload)
    payload.pop("timestamp", None)  # the library's own copy of the recorded time
    payload.pop("originator_topic", None)
    return AuditEvent(
        position=row.position,
        type=row.topic,
        subjects=subjects,
        actor=Actor(id=row.actor_id, role=row.actor_role),
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        source=row.source,
        correlation_id=row.correlation_id,
        idempotency_key=row.idempotency_key,
        payload=personal_view(vault, row.topic, row.stream_id, payload, reveal=reveal),
        chain_hash=row.chain_hash,
    )
