"""``ledger forget``: erase a volunteer's personal data for ever (PIPL).

The operator holds the database, so runs it as an admin; the erasure is
recorded as an event (who, when, why) and the volunteer's data key is
destroyed in the same transaction. Their service record stays whole.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ledger.api.cli.context import ledger_of
from ledger.api.cli.output import ExitCode, fail

app = typer.Typer()


@app.command()
def forget(
    ctx: typer.Context,
    volunteer_id: Annotated[str, typer.Argument(help="The volunteer to forget.")],
    reason: Annotated[
        str,
        typer.Option(
            help="Why (kept for ever with the erasure: do not name the person)."
        ),
    ],
    actor: Annotated[
        str | None,
        typer.Option(help="Who erases (default: the operating-system user)."),
    ] = None,
) -> None:
    """Erase a volunteer's personal data for ever; their hours stay."""
    import getpass
    import uuid
    from datetime import UTC, datetime

    from pydantic import ValidationError

    from ledger.application.commands import Actor, ForgetVolunteer
    from ledger.application.ledger import Outcome, Submission
    from ledger.domain.messages import translate
    from ledger.store.event_store import Envelope

    now = datetime.now(UTC)
    try:
        command = ForgetVolunteer(
            at=now,
            actor=Actor(id=actor or getpass.getuser(), role="admin"),
            volunteer_id=volunteer_id,
            reason=reason,
        )
    except ValidationError as error:
        fail("refused: {reason}", ExitCode.BAD_INPUT, reason=error.errors()[0]["msg"])
    result = ledger_of(ctx).execute(
        Submission(
            command,
            Envelope(
                actor_id=command.actor.id,
                actor_role=command.actor.role,
                at=now,
                source="cli",
                correlation_id=f"cli-{uuid.uuid4().hex}",
                caller="cli",
            ),
        )
    )
    if result.outcome is Outcome.REJECTED:
        assert result.error is not None
        not_found = result.error.http_status == 404
        fail(result.error, ExitCode.NOT_FOUND if not_found else ExitCode.BAD_INPUT)
    if result.outcome is Outcome.UNCHANGED:
        typer.echo(
            translate(
                "the personal data of volunteer '{volunteer_id}' was erased "
                "already; nothing was written",
                {"volunteer_id": volunteer_id},
            )
        )
        return
    typer.echo(
        translate(
            "erased the personal data of volunteer '{volunteer_id}' for ever, "
            "recorded at position {position}; their service record stays",
            {"volunteer_id": volunteer_id, "position": result.first_position},
        )
    )
