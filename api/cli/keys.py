"""``ledger keys``: API keys for the HTTP API — create, list, revoke."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import ExitCode, fail, note, say

if TYPE_CHECKING:
    from ledger.api.http.access import KeyListing

app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)

CHINA = ZoneInfo("Asia/Shanghai")


def parse_expiry(text: str) -> datetime:
    """``--expires``: a day YYYY-MM-DD (the key works to the end of that day,
    China time) or a time with a UTC offset."""
    try:
        day = date.fromisoformat(text) if len(text) == 10 else None
        moment = (
            datetime.combine(day + timedelta(days=1), time(), CHINA)
            if day is not None
            else datetime.fromisoformat(text)
        )
    except (ValueError, OverflowError):
        fail(
            "--expires must be a day YYYY-MM-DD or a time, not '{text}'",
            ExitCode.BAD_INPUT,
            text=text,
        )
    if moment.utcoffset() is None:
        fail(
            "--expires '{text}' needs a UTC offset, e.g. +08:00",
            ExitCode.BAD_INPUT,
            text=text,
        )
    return moment


@app.command("create")
def create_key_command(
    ctx: typer.Context,
    role: Annotated[
        str,
        typer.Option(
            help="admin, auditor, dispatcher, venue_staff, volunteer or dashboard"
        ),
    ],
    venue: Annotated[
        str | None, typer.Option(help="The venue a venue_staff key is scoped to.")
    ] = None,
    volunteer: Annotated[
        str | None, typer.Option(help="The volunteer a volunteer key is for.")
    ] = None,
    expires: Annotated[
        str | None,
        typer.Option(
            help="Last day of use YYYY-MM-DD (China time), or a time with offset."
        ),
    ] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    from ledger.api.http.access import InvalidKeyRequestError, create_key

    expires_at = None if expires is None else parse_expiry(expires)
    database = components_of(ctx).may_create().database
    try:
        key = create_key(
            database,
            role,
            venue_id=venue,
            volunteer_id=volunteer,
            expires_at=expires_at,
        )
    except InvalidKeyRequestError as error:
        fail(error, ExitCode.BAD_INPUT)
    note("created a {role} key; store it now, it cannot be shown again", role=role)
    typer.echo(key)


# The columns of ``ledger keys list``, with their widths.
LISTED = (
    ("prefix", 12),
    ("role", 11),
    ("scope", 20),
    ("created", 27),
    ("last used", 27),
    ("expires", 27),
    ("revoked", 0),
)


def _row(values: tuple[str, ...]) -> str:
    return "  ".join(
        value.ljust(width) for value, (_, width) in zip(values, LISTED, strict=True)
    ).rstrip()


def _listed(key: KeyListing) -> tuple[str, ...]:
    scope = (
        f"venue:{key.venue_id}"
        if key.venue_id
        else f"volunteer:{key.volunteer_id}"
        if key.volunteer_id
        else "-"
    )
    return (
        key.prefix,
        key.role,
        scope,
        key.created_at,
        key.last_used_at or "never",
        key.expires_at or "never",
        key.revoked_at or "-",
    )


@app.command("list")
def list_keys_command(ctx: typer.Context) -> None:
    """List the keys: prefix, role, scope, created, last used, expiry,
    revocation (UTC); never the key itself."""
    from ledger.api.http.access import list_keys

    keys = list_keys(components_of(ctx).database)
    typer.echo(_row(tuple(name for name, _ in LISTED)))
    for key in keys:
        typer.echo(_row(_listed(key)))


@app.command("revoke")
def revoke_key_command(
    ctx: typer.Context,
    key_or_prefix: Annotated[
        str, typer.Argument(help="The key, or a prefix as `ledger keys list` shows.")
    ],
) -> None:
    """Revoke a key: running servers refuse it within a second."""
    from ledger.api.http.access import (
        AmbiguousKeyPrefixError,
        UnknownKeyError,
        revoke_key,
    )

    try:
        key = revoke_key(components_of(ctx).database, key_or_prefix)
    except AmbiguousKeyPrefixError as error:
        fail(error, ExitCode.BAD_INPUT)
    except UnknownKeyError as error:
        fail(error, ExitCode.NOT_FOUND)
    say(
        "revoked {prefix} ({role}) at {revoked_at}",
        prefix=key.prefix,
        role=key.role,
        revoked_at=key.revoked_at,
    )
