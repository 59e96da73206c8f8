"""Writes: one POST path per command of the interchange format (CONTRACT §1).

Each takes the command as its body, with an optional ``Idempotency-Key``
header, and records it through the same application code as the importer.
"""

# Annotations are evaluated here (no ``from __future__ import annotations``):
# the routes are made in a loop, and FastAPI reads each body's type from them.

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import LedgerDep, forbid, get_caller
from ledger.api.http.problems import PROBLEM_RESPONSES
from ledger.api.http.schemas import CommandAccepted
from ledger.application.commands import COMMAND_TYPES, BaseCommand, DispatchOrder
from ledger.application.ledger import Outcome, Submission
from ledger.store.event_store import Envelope

router = APIRouter(prefix="/commands", tags=["commands"])

ORDER_COMMANDS = frozenset(
    {
        "post_order",
        "dispatch_order",
        "accept_order",
        "fulfil_order",
        "withdraw_order",
        "reject_order",
        "expire_order",
    }
)
VOLUNTEER_COMMANDS = frozenset(
    {"sign_up", "cancel_sign_up", "check_in", "check_out", "request_correction", "rate"}
)
ADMIN_ONLY_COMMANDS = frozenset({"register_team", "record_honours"})
# Commands that concern no venue (volunteers belong to no venue) but that
# venue staff may send, e.g. registering a volunteer on the spot.
UNSCOPED_STAFF_COMMANDS = frozenset({"register_volunteer"})


def may_write(caller: Caller, command_type: str) -> bool:
    """Which roles may send which commands (scope is checked separately)."""
    if caller.role is Role.ADMIN:
        return True
    if caller.role is Role.DISPATCHER:
        return command_type in ORDER_COMMANDS or command_type == "rate"
    if caller.role is Role.VENUE_STAFF:
        return command_type not in ADMIN_ONLY_COMMANDS
    if caller.role is Role.VOLUNTEER:
        return command_type in VOLUNTEER_COMMANDS
    return False


def _ensure_in_scope(caller: Caller, command: BaseCommand, ledger: LedgerDep) -> None:
    """Volunteer keys act for their own volunteer; venue_staff keys inside
    their venue's subtree, judged on the ledger itself (not a projection,
    which may lag): the command's venue, and a dispatch's target venue."""
    if caller.role not in (Role.VENUE_STAFF, Role.VOLUNTEER):
        return
    scope = ledger.scope_of(command)  # type: ignore[arg-type]
    if caller.role is Role.VOLUNTEER:
        if scope.volunteer_id != caller.volunteer_id:
            raise forbid("a volunteer key acts only for its own volunteer")
        return
    if scope.venue_id is None:
        if command.type not in UNSCOPED_STAFF_COMMANDS:  # type: ignore[attr-defined]
            raise forbid(f"{command.type} is outside a venue's subtree")  # type: ignore[attr-defined]
        return
    venues = [scope.venue_id]
    if isinstance(command, DispatchOrder) and command.venue_id is not None:
        venues.append(command.venue_id)
    for venue_id in venues:
        if caller.venue_id not in ledger.venue_ancestry(venue_id):
            raise forbid(
                f"venue '{venue_id}' is outside the subtree of '{caller.venue_id}'"
            )


def _make_route(command_type: str, model: type[BaseCommand]) -> None:
    def record(
        command: Any,
        response: Response,
        ledger: LedgerDep,
        caller: Annotated[Caller, Depends(get_caller)],
        idempotency_key: Annotated[
            str | None,
            Header(
                max_length=200,
                description="Retrying with the same key returns the first answer "
                "and writes nothing new.",
            ),
        ] = None,
    ) -> CommandAccepted:
        if not may_write(caller, command_type):
            raise forbid(f"a {caller.role.value} key may not send {command_type}")
        _ensure_in_scope(caller, command, ledger)
        key = idempotency_key or command.key
        result = ledger.execute(
            Submission(
                command,
                Envelope(
                    actor_id=command.actor.id,
                    actor_role=command.actor.role,
                    at=command.at,
                    source="api",
                    correlation_id=f"api-{caller.key_prefix}-{uuid.uuid4().hex}",
                    idempotency_key=key,
                ),
            )
        )
        if result.outcome is Outcome.REJECTED:
            assert result.error is not None
            raise result.error
        if result.outcome is Outcome.DUPLICATE:
            response.headers["Idempotent-Replayed"] = "true"
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


for _type, _model in sorted(COMMAND_TYPES.items()):
    _make_route(_type, _model)
