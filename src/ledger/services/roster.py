"""The honours roster (表彰名单): the volunteers an honours run finds newly
reaching a star level, with their counted hours, the benefits they are now
granted and the points credited — what the 表彰 ceremony reads out.

ID and phone numbers are masked unless the caller may see them (an admin);
names stay, as a roster is read out by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.volunteers import Volunteer
from ledger.reads.personal import personal_view
from ledger.services.exports import HOURS, Column, ExportSource, Sheet
from ledger.services.honours import HonoursRun
from ledger.store.event_store import chain_hash_at, events_table, select_rows_among
from ledger.store.personal_data import PersonalDataVault

ROSTER_SHEET = Sheet("roster", "表彰名单")
ROSTER_COLUMNS = (
    Column("stars", "stars reached", "新达星级", 12),
    Column("level", "level", "星级", 10),
    Column("volunteer_id", "volunteer", "志愿者编号", 14),
    Column("name", "name", "姓名", 12),
    Column("id_number", "ID number", "身份证号", 21),
    Column("phone", "phone", "手机号", 14),
    Column("hours", "counted hours", "计入时长(小时)", 15, HOURS),
    Column("benefits", "benefits granted", "嘉许礼遇", 40),
    Column("points", "points credited", "新增积分", 10),
    Column("total_points", "total points", "积分合计", 10),
)


def roster_rows(
    conn: Connection,
    run: HonoursRun,
    vault: PersonalDataVault,
    *,
    reveal_personal_data: bool = False,
) -> Iterator[dict[str, Any]]:
    """One row per volunteer newly reaching a level, highest level first
    (then by volunteer), personal data opened with ``vault`` and masked
    unless revealed."""
    reaching = [change for change in run.changes if change.due.levels]
    reaching.sort(key=lambda c: (-c.due.levels[-1], c.standing.volunteer_id))
    registered = _registrations(
        conn,
        [change.standing.volunteer_id for change in reaching],
        vault,
        reveal_personal_data,
    )
    for change in reaching:
        standing, due = change.standing, change.due
        person = registered.get(standing.volunteer_id, {})
        yield {
            "stars": due.levels[-1],
            "level": "★" * due.levels[-1],
            "volunteer_id": standing.volunteer_id,
            "name": person.get("name"),
            "id_number": person.get("id_number"),
            "phone": person.get("phone"),
            "hours": standing.counted_minutes / 60,
            "benefits": "；".join(due.benefits),
            "points": due.points,
            "total_points": due.total_points,
        }


def roster_source(
    conn: Connection, run: HonoursRun, *, reveal_personal_data: bool
) -> ExportSource:
    """What a roster reflects: the run as asked, and the position it read."""
    return ExportSource(
        [
            ("rules", run.rules),
            ("as of day", run.as_of.isoformat()),
            ("personal data", "revealed" if reveal_personal_data else "masked"),
        ],
        run.position,
        chain_hash_at(conn, run.position),
    )


def _registrations(
    conn: Connection,
    volunteer_ids: list[str],
    vault: PersonalDataVault,
    reveal: bool,
) -> dict[str, dict[str, Any]]:
    """Each volunteer's registration (name, ID and phone numbers), read
    from the first event of their stream, as the caller may see it."""
    t = events_table.c
    streams = [str(Volunteer.create_id(volunteer_id)) for volunteer_id in volunteer_ids]
    rows = select_rows_among(
        conn,
        sa.select(t.stream_id, t.topic, t.payload).where(t.stream_version == 1),
        t.stream_id,
        streams,
    )
    vault.load_keys(volunteer_ids)
    registrations = (
        personal_view(vault, topic, stream, orjson.loads(payload), reveal=reveal)
        for stream, topic, payload in rows
    )
    return {
        fields["volunteer_id"]: {
            name: fields.get(name) for name in ("name", "id_number", "phone")
        }
        for fields in registrations
    }
