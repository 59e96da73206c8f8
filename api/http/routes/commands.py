"""Writes: one POST path per command of the interchange format (CONTRACT §1).

Each takes the command as its body, with an optional ``Idempotency-Key``
header, and records it through the same application code as the importer:
requests arriving together share one append transaction (group commit).
"""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# the routes are made in a loop, and FastAPI reads each body's type from them.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import LedgerDep, WriterDep, forbid, get_caller
from ledger.api.http.problems import PROBLEM_RESPONSES, ProblemError
from ledger.api.http.schemas import CommandAccepted
from ledger.application import commands as c
from ledger.application.ledger import Outcome, Submission
from ledger.store.event_store import Envelope

router = APIRouter(prefix="/commands", tags=["commands"])

CommandSet = frozenset[type[c.BaseCommand]]

EVERY_COMMAND: CommandSet = frozenset(c.COMMAND_TYPES.values())
ORDER_COMMANDS: CommandSet = frozenset(
    {
        c.PostOrder,
        c.DispatchOrder,
        c.AcceptOrder,
        c.FulfilOrder,
        c.WithdrawOrder,
        c.RejectOrder,
        c.ExpireOrder,
    }
)
VOLUNTEER_COMMANDS: CommandSet = frozenset(
    {c.SignUp, c.CancelSignUp, c.CheckIn, c.CheckOut, c.RequestCorrection, c.Rate}
)
ADMIN_ONLY_COMMANDS: CommandSet = frozenset(
    {c.RegisterTeam, c.RecordHonours, c.ForgetVolunteer}
)
# Commands that concern no venue (volunteers belong to no venue) but that
# venue staff may send, e.g. registering a volunteer on the spot.
UNSCOPED_STAFF_COMMANDS: CommandSet = frozenset({c.RegisterVolunteer})

# Which roles may send which commands (scope is checked separately); the
# roles not named here send none.
WRITES_BY_ROLE: dict[Role, CommandSet] = {
    Role.ADMIN: EVERY_COMMAND,
    Role.DISPATCHER: ORDER_COMMANDS | {c.Rate},
    Role.VENUE_STAFF: EVERY_COMMAND - ADMIN_ONLY_COMMANDS,
    Role.VOLUNTEER: VOLUNTEER_COMMANDS,
}


def may_write(caller: Caller, command: type[c.BaseCommand]) -> bool:
    """Whether the caller's role may send ``command``."""
    return command in WRITES_BY_ROLE.get(caller.role, frozenset())


def _ensure_in_scope(caller: Caller, command: c.BaseCommand, ledger: LedgerDep) -> None:
    """Volunteer keys act for their own volunteer; venue_staff keys inside
    their venue's subtree, judged on the ledger itself (not a projection,
    which may lag): the command's venue, and a dispatch's target venue."""
    if caller.role not in (Role.VENUE_STAFF, Role.VOLUNTEER):
        return
    scope = ledger.scope_of(command)
    if caller.role is Role.VOLUNTEER:
        if scope.volunteer_id != caller.volunteer_id:
            raise forbid("a volunteer key acts only for its own volunteer")
        return
    if scope.venue_id is None:
        if type(command) not in UNSCOPED_STAFF_COMMANDS:
            raise forbid(
                "{command} is outside a venue's subtree",
                command=command.type,  # type: ignore[attr-defined]
            )
        return
    venues = [scope.venue_id]
    if isinstance(command, c.DispatchOrder) and command.venue_id is not None:
        venues.append(command.venue_id)
    for venue_id in venues:
        if caller.venue_id not in ledger.venue_ancestry(venue_id):
            raise forbid(
                "venue '{venue_id}' is outside the subtree of '{scope}'",
                venue_id=venue_id,
                scope=caller.venue_id,
            )


def _make_route(command_type: str, model: type[c.BaseCommand]) -> None:
    def record(
        command: Any,
        response: Response,
        ledger: LedgerDep,
        writer: WriterDep,
        caller: Annotated[Caller, Depends(get_caller)],
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=200,
                description="Retrying with the same key and the same command "
                "returns the first answer and writes nothing new; the same key "
                "with another command is refused (422 idempotency_key_reused). "
                "Each API key has its own keys.",
            ),
        ] = None,
    ) -> CommandAccepted:
        if not may_write(caller, model):
            raise ProblemError(
                403,
                "forbidden",
                "Not allowed for this role",
                "a {role} key may not send {command}",
                role=caller.role.value,
                command=command_type,
            )
        _ensure_in_scope(caller, command, ledger)
        key = idempotency_key or command.key
        result = writer.execute(
            Submission(
                command,
                Envelope(
                    actor_id=command.actor.id,
                    actor_role=command.actor.role,
                    at=command.at,
                    source="api",
                    # Nothing of the caller's key: the events outlive it.
                    correlation_id=f"api-{uuid.uuid4().hex}",
                    caller=caller.key_space,
                    idempotency_key=key,
                ),
            )
        )
        if result.outcome is Outcome.REJECTED:
            assert result.error is not None
            raise result.error
        if result.outcome is Outcome.DUPLICATE:
            response.headers["Idempotent-Replayed"] = "true"
        if result.outcome is Outcome.UNCHANGED:
            response.status_code = 200
            return CommandAccepted(
                outcome="unchanged",
                first_position=None,
                last_position=None,
                idempotency_key=key,
            )
        assert result.first_position is not None and result.last_position is not None
        return CommandAccepted(
            first_position=result.first_position,
            last_position=result.last_position,
            idempotency_key=key,
        )

    record.__annotations__["command"] = model
    router.add_api_route(
        f"/{command_type}",
        record,
        methods=["POST"],
        status_code=201,
        response_model=CommandAccepted,
        responses=PROBLEM_RESPONSES,
        summary=(model.__doc__ or command_type.replace("_", " "))
        .strip()
        .splitlines()[0],
        operation_id=command_type,
    )


for _type, _model in sorted(c.COMMAND_TYPES.items()):
    _make_route(_type, _model)
