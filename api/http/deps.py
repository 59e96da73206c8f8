"""Dependencies of the routes: the ledger, the reads, and who is calling."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ledger.api.http.access import Caller, CallerCache, KeyRefusal, Role
from ledger.api.http.problems import ProblemError
from ledger.application.group_commit import RecordsCommands
from ledger.application.ledger import Ledger
from ledger.reads.queries import LedgerReads

bearer = HTTPBearer(
    auto_error=False, description="An API key from `ledger keys create`."
)


async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_writer(request: Request) -> RecordsCommands:
    """What records a command: the server's group commit, or the ledger
    itself when group commit is off."""
    writer: RecordsCommands = request.app.state.writer
    return writer


async def get_reads(request: Request) -> LedgerReads:
    reads: LedgerReads = request.app.state.reads
    return reads


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ReadsDep = Annotated[LedgerReads, Depends(get_reads)]
WriterDep = Annotated[RecordsCommands, Depends(get_writer)]


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None:
        raise ProblemError(
            401,
            "unauthenticated",
            "An API key is needed",
            "send Authorization: Bearer KEY",
        )
    callers: CallerCache = request.app.state.callers
    key = credentials.credentials
    caller = callers.recent(key)
    if caller is None:
        # Off the event loop: a lookup may note the key's use, a write that
        # can wait for the lock.
        database = request.app.state.ledger.database
        caller = await run_in_threadpool(callers.find, database, key)
    if isinstance(caller, KeyRefusal):
        raise ProblemError(caller.status, caller.code, caller.title, caller.detail)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


def allow(*roles: Role) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency admitting only callers of ``roles`` (and admin)."""
    admitted = {Role.ADMIN, *roles}

    async def admit(caller: CallerDep) -> Caller:
        if caller.role not in admitted:
            raise ProblemError(
                403,
                "forbidden",
                "Not allowed for this role",
                "a {role} key may not use this route",
                role=caller.role.value,
            )
        return caller

    return admit


def forbid(detail: str, /, **params: object) -> ProblemError:
    """403 ``out_of_scope``: ``detail`` a message template, ``params`` its
    parameters."""
    return ProblemError(
        403, "out_of_scope", "Outside this key's scope", detail, **params
    )


def ensure_venue_in_scope(caller: Caller, reads: LedgerReads, venue_id: str) -> None:
    """A venue_staff key reads and writes only inside its venue's subtree."""
    if caller.role is Role.VENUE_STAFF:
        assert caller.venue_id is not None
        if venue_id not in reads.venue_subtree(caller.venue_id):
            raise forbid(
                "venue '{venue_id}' is outside the subtree of '{scope}'",
                venue_id=venue_id,
                scope=caller.venue_id,
            )


def ensure_own_volunteer(caller: Caller, volunteer_id: str) -> None:
    """A volunteer key reads only its own record."""
    if caller.role is Role.VOLUNTEER and caller.volunteer_id != volunteer_id:
        raise forbid("a volunteer key reads only its own record")
