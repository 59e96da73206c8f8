"""Honours: star levels (星级), 嘉许礼遇 benefits and points, under versioned
rule sets, as of a date, at a ledger position.

A rule set is data (``projections/rules/NAME@VERSION.json``, validated
here): star thresholds in hours, the counting basis (cumulative, or within
the calendar year of the as-of date), whether make-up hours count, the
minimum months of continuous service, the years a fraud void bars star
awards, points per hour and benefit tiers. A standing is a pure function of
(rule set, as-of date, ledger position): it reads the ``volunteer_hours``
entries recorded up to the position for service dated up to the date (China
Standard Time), and the fraud voids known then. So running again with the
same inputs decides the same, and a run at an earlier position reproduces
what was decided then, whatever was corrected since.
"""

from __future__ import annotations

import json
import uuid
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from functools import cached_property
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple, cast
from uuid import UUID

import orjson
import sqlalchemy as sa
from eventsourcing.domain import Aggregate
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.engine import Connection

from ledger.application.bulk_append import DescribedEvent, append_described
from ledger.application.commands import Actor
from ledger.application.ledger import (
    MAX_ATTEMPTS,
    ConcurrencyConflictError,
    DecidedEvents,
    Ledger,
)
from ledger.domain.common import CHINA_STANDARD_TIME, topic_of
from ledger.domain.honours import (
    NOTHING_HELD,
    AwardsDue,
    HeldAwards,
    Honours,
    HonoursRunRecord,
    awards_due,
)
from ledger.domain.messages import TranslatedError
from ledger.projections.registry import HONOURS_AWARDS
from ledger.projections.service_sessions import VOIDED, china_date
from ledger.projections.volunteer_hours import entries_table, served_through
from ledger.store.event_store import (
    Envelope,
    events_table,
    placeholder,
    select_rows,
    select_rows_among,
    stream_versions,
)
from ledger.store.memory import cyclic_gc_paused

RULES_DIRECTORY = Path(__file__).parent / "rules"


class UnknownRuleSetError(TranslatedError, LookupError):
    """No rule set of that name (and version) applies."""


class Benefit(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stars: Annotated[int, Field(ge=1, le=5)]
    # Within what a RecordHonours command (and the awards projection) holds.
    benefit: Annotated[str, Field(min_length=1, max_length=500)]


class RuleSet(BaseModel):
    """One version of one city's rules for honours."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]*$", max_length=50)]
    # The label (name@version) fits what a RecordHonours command holds (60).
    version: Annotated[int, Field(ge=1, le=999)]
    effective_from: date
    description: str
    star_hours: Annotated[
        list[Annotated[int, Field(gt=0)]], Field(min_length=5, max_length=5)
    ]
    counting: Literal["cumulative", "calendar_year"]
    makeup_counts: bool
    minimum_continuous_months: Annotated[int, Field(ge=0)]
    fraud_ban_years: Annotated[int, Field(ge=0)]
    points_per_hour: Annotated[int, Field(ge=0)]
    benefits: list[Benefit]

    @field_validator("star_hours")
    @classmethod
    def _increasing(cls, hours: list[int]) -> list[int]:
        if any(later <= earlier for earlier, later in pairwise(hours)):
            raise ValueError("star thresholds must increase from 1★ to 5★")
        return hours

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"

    @cached_property
    def star_minutes(self) -> list[int]:
        return [hours * 60 for hours in self.star_hours]

    def stars_for(self, minutes: int) -> int:
        """A level is reached at or above its threshold."""
        return bisect_right(self.star_minutes, minutes)


def available_rule_sets(directory: Path = RULES_DIRECTORY) -> list[RuleSet]:
    return sorted(
        (
            RuleSet.model_validate(json.loads(path.read_text("utf-8")))
            for path in directory.glob("*.json")
        ),
        key=lambda rules: (rules.name, rules.version),
    )


def load_rule_set(spec: str, as_of: date, directory: Path = RULES_DIRECTORY) -> RuleSet:
    """``NAME@VERSION``, or ``NAME``: the latest version in effect on ``as_of``."""
    name, _, version = spec.partition("@")
    candidates = [r for r in available_rule_sets(directory) if r.name == name]
    if version:
        chosen = [r for r in candidates if str(r.version) == version]
    else:
        chosen = [r for r in candidates if r.effective_from <= as_of][-1:]
    if not chosen:
        known = ", ".join(r.label for r in available_rule_sets(directory))
        raise UnknownRuleSetError(
            "no rule set '{spec}' in effect on {day}; known: {known}",
            spec=spec,
            day=as_of.isoformat(),
            known=known,
        )
    return chosen[0]


@dataclass
class Standing:
    """Where a volunteer stands under a rule set, as of a date."""

    volunteer_id: str
    counted_minutes: int = 0
    longest_streak_months: int = 0
    barred_until: date | None = None
    stars: int = 0
    points: int = 0
    benefits: list[str] = field(default_factory=list)

    def due(self, held: HeldAwards) -> AwardsDue | None:
        """What this standing adds to ``held``, if anything."""
        return awards_due(
            held, stars=self.stars, benefits=self.benefits, points=self.points
        )


def compute_standings(
    conn: Connection,
    version: int,
    rules: RuleSet,
    as_of: date,
    position: int,
    only: Collection[str] | None = None,
) -> dict[str, Standing]:
    """Every volunteer with counted service (of ``only``, when given), under
    ``rules``. The database sums the minutes; months are read only when a
    rule needs continuity."""
    entries = _counted_entries(version, rules, as_of, position)
    counted = _counted_minutes(conn, entries, only)
    streaks = (
        _longest_streaks(conn, entries, only) if rules.minimum_continuous_months else {}
    )
    last_fraud = _last_fraud_voids(conn, as_of, position)
    # Read once, not per volunteer (hundreds of thousands of them)
    points_per_hour = rules.points_per_hour
    minimum_months = rules.minimum_continuous_months
    benefits_at = [
        [b.benefit for b in rules.benefits if b.stars <= stars] for stars in range(6)
    ]
    standings: dict[str, Standing] = {}
    for volunteer_id, minutes in counted.items():
        standing = Standing(
            volunteer_id,
            counted_minutes=minutes,
            longest_streak_months=streaks.get(volunteer_id, 0),
            points=minutes * points_per_hour // 60,
        )
        fraud = last_fraud.get(volunteer_id)
        if fraud is not None and rules.fraud_ban_years:
            until = _years_after(fraud, rules.fraud_ban_years)
            if as_of < until:
                standing.barred_until = until
        eligible = (
            standing.barred_until is None
            and standing.longest_streak_months >= minimum_months
        )
        standing.stars = rules.stars_for(minutes) if eligible else 0
        standing.benefits = list(benefits_at[standing.stars])
        standings[volunteer_id] = standing
    return standings


def _counted_entries(
    version: int, rules: RuleSet, as_of: date, position: int
) -> tuple[sa.ColumnElement[bool], ...]:
    """The entries a rule set counts: service dated up to ``as_of`` (within
    its year, for cyclic rules), recorded up to ``position``."""
    t = entries_table.c
    conditions = [
        t.version == version,
        t.position <= position,
        served_through(as_of),
    ]
    if rules.counting == "calendar_year":
        conditions.append(t.service_date >= f"{as_of.year:04d}-01-01")
    if not rules.makeup_counts:
        conditions.append(t.kind == "verified")
    return tuple(conditions)


def _counted_minutes(
    conn: Connection,
    entries: tuple[sa.ColumnElement[bool], ...],
    only: Collection[str] | None,
) -> dict[str, int]:
    t = entries_table.c
    total = sa.func.sum(t.minutes)
    query = (
        sa.select(t.volunteer_id, total)
        .where(*entries)
        .group_by(t.volunteer_id)
        .having(total > 0)
    )
    return {
        volunteer_id: int(minutes)
        for volunteer_id, minutes in select_rows_among(
            conn, query, t.volunteer_id, only
        )
    }


def _longest_streaks(
    conn: Connection,
    entries: tuple[sa.ColumnElement[bool], ...],
    only: Collection[str] | None,
) -> dict[str, int]:
    t = entries_table.c
    month = sa.func.substr(t.service_date, 1, 7)
    query = (
        sa.select(t.volunteer_id, month)
        .where(*entries)
        .group_by(t.volunteer_id, month)
        .having(sa.func.sum(t.minutes) > 0)
    )
    months: dict[str, list[str]] = defaultdict(list)
    for volunteer_id, service_month in select_rows_among(
        conn, query, t.volunteer_id, only
    ):
        months[volunteer_id].append(service_month)
    return {volunteer_id: _longest_streak(ms) for volunteer_id, ms in months.items()}


def _years_after(day: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def _longest_streak(months: Any) -> int:
    """The longest run of consecutive calendar months (``YYYY-MM``)."""
    numbers = sorted({int(m[:4]) * 12 + int(m[5:7]) - 1 for m in months})
    longest = current = 0
    previous = None
    for number in numbers:
        current = current + 1 if previous is not None and number == previous + 1 else 1
        longest = max(longest, current)
        previous = number
    return longest


class FraudVoid(NamedTuple):
    position: int
    volunteer_id: str
    voided_on: date  # in China Standard Time


def _fraud_voids(conn: Connection, as_of: date, position: int) -> list[FraudVoid]:
    """The voids for fraud dated up to ``as_of``, as known at ``position``."""
    voids = []
    for recorded_at, payload in _events_of(conn, VOIDED, position):
        if not payload.get("fraud"):
            continue
        voided_on = date.fromisoformat(china_date(payload["at"]))
        if voided_on <= as_of:
            volunteer_id = payload["session"]["volunteer_id"]
            voids.append(FraudVoid(recorded_at, volunteer_id, voided_on))
    return voids


def _last_fraud_voids(conn: Connection, as_of: date, position: int) -> dict[str, date]:
    """Each volunteer's latest void for fraud dated up to ``as_of``, as known
    at ``position``."""
    last: dict[str, date] = {}
    for void in _fraud_voids(conn, as_of, position):
        if void.volunteer_id not in last or void.voided_on > last[void.volunteer_id]:
            last[void.volunteer_id] = void.voided_on
    return last


class PlannedAwards(NamedTuple):
    """A volunteer whose standing adds to what is held, and the version of
    their honours record read with the holdings (0: none yet)."""

    standing: Standing
    record: UUID  # the volunteer's Honours record
    version: int
    due: AwardsDue


class EarlierRun(NamedTuple):
    """A completed run a later one builds on (``HonoursRun.Completed``)."""

    as_of: date
    position: int
    volunteers: int
    standings_by_stars: dict[int, int]


@dataclass
class HonoursRun:
    """What a run decided and what it recorded."""

    rules: str
    as_of: date
    position: int
    hours_version: int
    volunteers: int = 0
    new_stars: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    new_benefits: int = 0
    points_credited: int = 0
    standings_by_stars: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    cycle: str | None = None
    # The volunteers with awards not yet recorded, in volunteer order.
    changes: list[PlannedAwards] = field(default_factory=list)
    # The position of the completed run this one built on, if any
    since: int | None = None

    @property
    def recorded_at(self) -> datetime:
        """The business time of a run's awards: the end of its as-of day."""
        return datetime.combine(self.as_of, time(23, 59, 59), CHINA_STANDARD_TIME)


RUN_ACTOR = Actor(id="honours-run", role="system")


def plan_honours(
    conn: Connection,
    version: int,
    rules: RuleSet,
    as_of: date,
    position: int,
    *,
    from_scratch: bool = False,
) -> HonoursRun:
    """Decide every standing, and the awards not yet recorded.

    A run builds on the latest completed run under the same rules (and
    cycle) that read the same ``volunteer_hours`` version no later in date
    or position: every volunteer then held all that run decided, and stands
    the same now unless service of theirs was recorded since its position,
    or is dated since its as-of date, or their fraud bar may have changed.
    Only those are decided again; the standings by star level are its own,
    moved by theirs. ``from_scratch`` decides every volunteer (the same
    answer).

    What is held and the versions of the records holding it are read
    together, in ``conn``'s read: recording refuses a record that moved on
    since."""
    cycle = str(as_of.year) if rules.counting == "calendar_year" else None
    run = HonoursRun(rules.label, as_of, position, version, cycle=cycle)
    with cyclic_gc_paused():
        earlier = None if from_scratch else _earlier_run(conn, run)
        if earlier is None:
            standings = compute_standings(conn, version, rules, as_of, position)
            awards = HONOURS_AWARDS.recorded_awards(conn, rules.label, cycle)
            run.volunteers = len(standings)
            for standing in standings.values():
                run.standings_by_stars[standing.stars] += 1
        else:
            run.since = earlier.position
            changed = _may_stand_differently(
                conn, version, rules, earlier, as_of, position
            )
            before = compute_standings(
                conn, version, rules, earlier.as_of, earlier.position, changed
            )
            standings = compute_standings(
                conn, version, rules, as_of, position, changed
            )
            awards = HONOURS_AWARDS.recorded_awards(conn, rules.label, cycle, changed)
            run.volunteers = earlier.volunteers - len(before) + len(standings)
            by_stars = Counter(earlier.standings_by_stars)
            by_stars.subtract(standing.stars for standing in before.values())
            by_stars.update(standing.stars for standing in standings.values())
            if min(by_stars.values(), default=0) < 0:
                raise RuntimeError(
                    f"the completed run at position {earlier.position} counts "
                    "fewer volunteers at a star level than stood there"
                )
            run.standings_by_stars.update(+by_stars)
        changes: list[tuple[str, Standing, AwardsDue]] = []
        for volunteer_id, standing in standings.items():
            due = standing.due(awards.get(volunteer_id, NOTHING_HELD))
            if due is None:
                continue
            for level in due.levels:
                run.new_stars[level] += 1
            run.new_benefits += len(due.benefits)
            run.points_credited += due.points
            changes.append((volunteer_id, standing, due))
        # Recorded in volunteer order, so that a run is the same every time
        changes.sort(key=lambda change: change[0])
        records = [Honours.create_id(change[0]) for change in changes]
        # A register with no honours record yet (its first run) has none to
        # look up: each volunteer's record opens with their first award
        versions = stream_versions(conn, records) if _any_opened(conn) else {}
        run.changes = [
            PlannedAwards(standing, record, versions.get(record, 0), due)
            for record, (_, standing, due) in zip(records, changes, strict=True)
        ]
    return run


RUN_COMPLETED = topic_of(HonoursRunRecord, "Completed")
RECORD_OPENED = topic_of(Honours, "Opened")


def _any_opened(conn: Connection) -> bool:
    """Whether any volunteer's honours record has been opened (read through
    the topic index)."""
    t = events_table.c
    query = sa.select(t.position).where(t.topic == RECORD_OPENED).limit(1)
    return conn.execute(query).first() is not None


def _events_of(
    conn: Connection, topic: str, upto: int | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """The positions and payloads of the events of ``topic`` (up to position
    ``upto``), for topics with few events: read through the topic index."""
    mark = placeholder(conn)
    query = f"SELECT position, payload FROM {events_table.name} WHERE topic = {mark}"
    parameters: tuple[Any, ...] = (topic,)
    if upto is not None:
        query += f" AND position <= {mark}"
        parameters += (upto,)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(query, parameters)
        return [(int(row[0]), orjson.loads(row[1])) for row in cursor.fetchall()]
    finally:
        cursor.close()


def _earlier_run(conn: Connection, run: HonoursRun) -> EarlierRun | None:
    """The latest completed run ``run`` can build on."""
    candidates = [
        EarlierRun(
            date.fromisoformat(p["as_of"]),
            p["position"],
            p["volunteers"],
            {int(stars): count for stars, count in p["standings_by_stars"].items()},
        )
        for _, p in _events_of(conn, RUN_COMPLETED)
        if p["rules"] == run.rules
        and p["cycle"] == run.cycle
        and p["hours_version"] == run.hours_version
        and p["position"] <= run.position
        and date.fromisoformat(p["as_of"]) <= run.as_of
    ]
    return max(candidates, key=lambda e: (e.position, e.as_of), default=None)


def _may_stand_differently(
    conn: Connection,
    version: int,
    rules: RuleSet,
    earlier: EarlierRun,
    as_of: date,
    position: int,
) -> set[str]:
    """The volunteers whose standing can differ from the one ``earlier``
    decided: service recorded since its position (voids and corrections
    included), or dated since its as-of date; and a fraud void recorded
    since, or dated, or ending its bar, between the two as-of dates."""
    t = entries_table.c
    # One pass over the table: "+version" keeps SQLite off the index that
    # starts with it, through which it would fetch every entry in volunteer
    # order (entries are not indexed by position or date: honours runs are
    # rare, entries written all day)
    scanned_version = sa.literal_column(f"+{t.version.name}", sa.Integer)
    query = (
        sa.select(t.volunteer_id)
        .distinct()
        .where(
            scanned_version == version,
            t.position <= position,
            sa.or_(
                t.position > earlier.position,
                sa.and_(
                    t.service_date > earlier.as_of.isoformat(),
                    t.service_date <= as_of.isoformat(),
                ),
            ),
        )
    )
    changed = {volunteer_id for (volunteer_id,) in select_rows(conn, query)}
    if rules.fraud_ban_years:
        # A volunteer's bar changes only with a void recorded since, or one
        # dated, or ending its bar, between the two as-of dates
        since, until = earlier.as_of, as_of
        changed.update(
            void.volunteer_id
            for void in _fraud_voids(conn, as_of, position)
            if void.position > earlier.position
            or since < void.voided_on <= until
            or since < _years_after(void.voided_on, rules.fraud_ban_years) <= until
        )
    return changed


# Volunteers whose awards are appended in one transaction: on SQLite each
# commit checkpoints every index page the batch touched, so fewer, larger
# transactions save much of a run, while the append lock, held for the
# whole batch, must stay short for other writers (docs/benchmarks.md,
# "Honours").
HONOURS_BATCH = 10_000


def record_honours(
    ledger: Ledger, run: HonoursRun, source: str = "cli", *, batch: int = HONOURS_BATCH
) -> int:
    """Record a run's new awards, ``batch`` volunteers per transaction;
    return how many award events were written. A batch whose records
    another writer changed since the plan read them (a concurrent run) is
    decided again on their fresh state. A run stopped part way (killed)
    leaves whole batches and no completion: the next run finds what they
    hold and records the rest."""
    recorded = 0
    # One correlation id for the run: an auditor finds every award it made.
    correlation_id = uuid.uuid4().hex
    with cyclic_gc_paused():
        for start in range(0, len(run.changes), batch):
            planned = run.changes[start : start + batch]
            for attempt in range(1, MAX_ATTEMPTS + 1):
                try:
                    recorded += _record_batch(
                        ledger, run, planned, source, correlation_id
                    )
                    break
                except ConcurrencyConflictError:
                    if attempt == MAX_ATTEMPTS:
                        raise
                    planned = _decided_again(ledger, run, planned)
        if run.changes:
            _record_completion(ledger, run, recorded, source, correlation_id)
    return recorded


def _record_completion(
    ledger: Ledger, run: HonoursRun, awards: int, source: str, correlation_id: str
) -> None:
    """That every volunteer now holds what ``run`` decided, for later runs
    to build on."""
    completed = HonoursRunRecord(
        run_id=correlation_id,
        rules=run.rules,
        cycle=run.cycle,
        as_of=run.as_of.isoformat(),
        position=run.position,
        hours_version=run.hours_version,
        volunteers=run.volunteers,
        standings_by_stars={
            str(stars): count
            for stars, count in sorted(run.standings_by_stars.items())
            if count
        },
        awards=awards,
    )
    envelope = _run_envelope(run, source, correlation_id)
    events = cast(list[Aggregate.Event], completed.collect_events())
    ledger.append_decided([DecidedEvents(envelope, events)])


def _run_envelope(run: HonoursRun, source: str, correlation_id: str) -> Envelope:
    # No idempotency key: a run recorded twice decides nothing the second
    # time, and one decided again (a projection rebuilt) owes what it finds.
    return Envelope(
        actor_id=RUN_ACTOR.id,
        actor_role=RUN_ACTOR.role,
        at=run.recorded_at,
        source=source,
        correlation_id=correlation_id,
        caller=source,
    )


def _record_batch(
    ledger: Ledger,
    run: HonoursRun,
    batch: list[PlannedAwards],
    source: str,
    correlation_id: str,
) -> int:
    as_of = run.as_of.isoformat()
    described = [
        DescribedEvent(planned.record, planned.version + number, *award)
        for planned in batch
        for number, award in enumerate(
            Honours.award_events(
                planned.standing.volunteer_id,
                planned.version,
                planned.due,
                rules=run.rules,
                cycle=run.cycle,
                as_of=as_of,
                position=run.position,
            ),
            start=1,
        )
    ]
    # One envelope: a run's awards differ in nothing it holds
    envelope = _run_envelope(run, source, correlation_id)
    append_described(ledger, envelope, described, datetime.now(UTC))
    return sum(planned.due.events for planned in batch)


def _decided_again(
    ledger: Ledger, run: HonoursRun, batch: list[PlannedAwards]
) -> list[PlannedAwards]:
    """The batch decided on what the records hold now."""
    records = ledger.load_aggregates([planned.record for planned in batch])
    again = []
    for planned in batch:
        record = records.get(planned.record)
        held, version = NOTHING_HELD, 0
        if isinstance(record, Honours):
            held, version = record.held(run.rules, run.cycle), record.version
        due = planned.standing.due(held)
        if due is not None:
            again.append(planned._replace(version=version, due=due))
    return again
