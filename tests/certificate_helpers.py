"""A volunteer to certify, an organisation to issue under, and the CLI to
issue and verify with: shared by the certificate tests (CLI and HTTP)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from ledger.api.cli.app import app
from ledger.application.ledger import Ledger
from ledger.bootstrap import LedgerComponents
from ledger.projections.registry import VOLUNTEER_HOURS
from ledger.services.certificates import (
    Issuer,
    issue_certificate,
    qr_text,
    write_certificate,
)
from ledger.settings import LedgerSettings
from tests.factories import activity, id_number, record_all, submission

CHINA = timezone(timedelta(hours=8))
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
SATURDAY = datetime(2024, 3, 2, 9, 0, tzinfo=CHINA)
ID_NUMBER = id_number(serial=417, birth="19851203")

# The organisation profile certificates are issued under, as settings.
ISSUER_ENVIRONMENT = {
    "LEDGER_CERTIFICATE_ORGANISATION": "昆山市新时代文明实践中心",
    "LEDGER_CERTIFICATE_PERSON_IN_CHARGE": "张建国",
    "LEDGER_CERTIFICATE_HANDLER": "李晓燕",
    "LEDGER_CERTIFICATE_CONTACT": "0512-57301234",
}


def serve_v1(ledger: Ledger) -> None:
    """V1 王小明 (ID number ``ID_NUMBER``): 150 verified minutes of culture
    service at A1 on 2024-03-02, and 120 make-up minutes of health service
    at A2 on 2024-03-09, both approved."""
    registered = datetime(2024, 1, 5, 10, 0, tzinfo=CHINA)
    record_all(
        ledger,
        [
            *[
                submission(
                    "register_venue",
                    registered,
                    venue_id=venue,
                    name=f"venue {venue}",
                    level=level,
                    parent_id=parent,
                )
                for venue, level, parent in [
                    ("C", "centre", None),
                    ("I1", "institute", "C"),
                    ("S1", "station", "I1"),
                ]
            ],
            submission(
                "register_volunteer",
                registered,
                volunteer_id="V1",
                name="王小明",
                id_number=ID_NUMBER,
                phone="13812345678",
            ),
            activity("A1", "S1", SATURDAY, hours=3, category="culture"),
            activity("A2", "S1", SATURDAY + 7 * DAY, hours=3, category="health"),
            submission("sign_up", SATURDAY - DAY, activity_id="A1", volunteer_id="V1"),
            submission(
                "check_in",
                SATURDAY,
                session_id="S1",
                volunteer_id="V1",
                activity_id="A1",
            ),
            submission("check_out", SATURDAY + 150 * MINUTE, session_id="S1"),
            submission("approve_session", SATURDAY + 151 * MINUTE, session_id="S1"),
            submission(
                "record_makeup_hours",
                SATURDAY + 7 * DAY + 4 * 60 * MINUTE,
                session_id="M1",
                volunteer_id="V1",
                activity_id="A2",
                minutes=120,
                reason="补录: paper sign-in sheet",
            ),
            submission("approve_session", SATURDAY + 8 * DAY, session_id="M1"),
        ],
    )


def correct_v1(ledger: Ledger, minutes: int) -> None:
    """V1's verified session S1 corrected to ``minutes``, a month later."""
    record_all(
        ledger,
        [
            submission(
                "correct_session",
                SATURDAY + 30 * DAY,
                session_id="S1",
                minutes=minutes,
                reason="left later than the sheet says",
            )
        ],
    )


Cli = Callable[..., Result]


def ledger_cli(database_url: str | None, key_directory: Path) -> Cli:
    """`ledger [--db URL] ARGUMENTS` in an English locale, under the issuer
    profile, the ledger's keys in ``key_directory``; ``environment`` adds or
    (None) removes variables."""

    def run(
        *arguments: str, environment: dict[str, str | None] | None = None
    ) -> Result:
        database = ["--db", database_url] if database_url else []
        return CliRunner().invoke(
            app,
            [*database, *arguments],
            env={
                "LEDGER_KEY_DIRECTORY": str(key_directory),
                "LEDGER_DATABASE_URL": None,
                "LANG": "en_US.UTF-8",
                **ISSUER_ENVIRONMENT,
                **(environment or {}),
            },
        )

    return run


def exited_cleanly_with(outcome: Result, code: int) -> bool:
    """The CLI chose its exit code (it did not crash)."""
    crashed = outcome.exception is not None and not isinstance(
        outcome.exception, SystemExit
    )
    return outcome.exit_code == code and not crashed


def issue(cli: Cli, out: Path, *arguments: str, **options: Any) -> Path:
    """`ledger certificate V1 --as-of 2024-12-31 --out OUT`: the PDF path printed."""
    outcome = cli(
        "certificate",
        "V1",
        "--as-of",
        "2024-12-31",
        "--out",
        str(out),
        *arguments,
        **options,
    )
    assert exited_cleanly_with(outcome, 0), (outcome.output, outcome.exception)
    return Path(outcome.stdout.strip().splitlines()[-1])


def forge(database_url: str, keys: Path, key: Ed25519PrivateKey, out: Path) -> Path:
    """V1's certificate as of 2024-12-31, made as the ledger makes one but
    signed with ``key``: what someone holding the database and the ledger's
    other key material (in ``keys``), but not its signing key, could make.
    The ledger itself refuses to sign with any key but its own."""
    components = LedgerComponents(
        LedgerSettings(database_url=database_url, key_directory=keys)
    )
    try:
        engine = components.projection_engine
        engine.catch_up()
        with components.database.reading() as conn:
            live = engine.live_version(conn, VOLUNTEER_HOURS.name)
            assert live is not None
            content = issue_certificate(
                components.ledger,
                conn,
                live.version,
                "V1",
                date(2024, 12, 31),
                live.position,
                Issuer(*ISSUER_ENVIRONMENT.values()),
                key,
            )
    finally:
        components.close()
    return write_certificate(content, out, qr=qr_text(content["token"], None))
