"""Errors as RFC 9457 problem details (``application/problem+json``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger.application.commands import refusal_code
from ledger.application.ledger import ConcurrencyConflictError
from ledger.application.refusals import describe_problem, describe_problems
from ledger.domain.errors import DomainError
from ledger.domain.messages import Message, translate
from ledger.reads.queries import InvalidReadError, NotFoundError
from ledger.store.event_store import (
    DatabaseUnavailableError,
    LedgerBusyError,
    MasterKeyError,
)

PROBLEM_TYPE_BASE = "https://wenming-ledger.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class InvalidInput(BaseModel):
    """One part of a request that is not well formed, and why."""

    loc: list[str | int] = Field(description='Where, e.g. ["query", "from"].')
    msg: str
    type: str


class Problem(BaseModel):
    """What went wrong: ``type`` names the rule broken, ``detail`` says how.
    ``title`` and ``detail`` are in the language ``Accept-Language`` asks for
    (``language.AnswerInRequestedLanguage``); ``code`` and ``type`` never
    change."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[InvalidInput] | None = None


class ProblemError(Exception):
    """Raised by routes to answer with a problem. ``detail`` is a message
    template, its ``{names}`` filled from ``params``, or a ``Message``: it
    renders in the request's language when the answer is made."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | Message,
        /,
        **params: object,
    ) -> None:
        message = detail if isinstance(detail, Message) else Message(detail, **params)
        super().__init__(message.template)
        self.status, self.code, self.title = status, code, title
        self.detail = message


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    errors: list[InvalidInput] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=translate(title),
        status=status,
        detail=detail,
        code=code,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def on_problem(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ProblemError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem_response(
        error.status, error.code, error.title, str(error.detail), headers=headers
    )


async def on_domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    return problem_response(error.http_status, error.code, error.title, str(error))


async def on_conflict(_: Request, error: Exception) -> JSONResponse:
    return problem_response(
        409,
        "concurrency_conflict",
        "Another writer changed the same record first",
        f"{error} Retry with the same Idempotency-Key.",
    )


# Seconds a client should wait before sending again: a busy ledger frees
# its lock within the lock wait; an unreachable database takes longer.
RETRY_BUSY_AFTER = "2"
RETRY_UNAVAILABLE_AFTER = "10"


async def on_busy(_: Request, error: Exception) -> JSONResponse:
    return problem_response(
        503,
        "ledger_busy",
        "The ledger is busy",
        translate("{reason} (with the same Idempotency-Key).", {"reason": error}),
        headers={"Retry-After": RETRY_BUSY_AFTER},
    )


async def on_unavailable(_: Request, error: Exception) -> JSONResponse:
    return problem_response(
        503,
        "database_unavailable",
        "The ledger's database cannot be used now",
        str(error),
        headers={"Retry-After": RETRY_UNAVAILABLE_AFTER},
    )


async def on_master_key(_: Request, error: Exception) -> JSONResponse:
    return problem_response(
        503,
        "master_key_unavailable",
        "The ledger's master key cannot be used",
        str(error),
    )


async def on_not_found(_: Request, error: Exception) -> JSONResponse:
    return problem_response(404, "not_found", "Not found", str(error))


async def on_invalid_read(_: Request, error: Exception) -> JSONResponse:
    return problem_response(400, "invalid_read", "Invalid read parameters", str(error))


async def on_http_error(_: Request, error: Exception) -> JSONResponse:
    """Starlette's own errors (unknown path, wrong method, unreadable body)."""
    assert isinstance(error, StarletteHTTPException)
    code = {404: "no_such_path", 405: "method_not_allowed"}.get(
        error.status_code, "bad_request"
    )
    return problem_response(
        error.status_code,
        code,
        "The request cannot be served",
        str(error.detail),
        headers=dict(error.headers) if error.headers else None,
    )


async def on_validation_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = error.errors()
    errors = [
        InvalidInput(loc=list(e["loc"]), msg=describe_problem(e), type=e["type"])
        for e in problems
    ]
    detail = describe_problems(problems)
    in_body = any(e.loc[:1] == ["body"] for e in errors)
    code = refusal_code(e.type for e in errors) if in_body else "invalid_read"
    return problem_response(422, code, "The request is not well formed", detail, errors)


HANDLERS = {
    ProblemError: on_problem,
    DomainError: on_domain_error,
    ConcurrencyConflictError: on_conflict,
    LedgerBusyError: on_busy,
    DatabaseUnavailableError: on_unavailable,
    MasterKeyError: on_master_key,
    NotFoundError: on_not_found,
    InvalidReadError: on_invalid_read,
    RequestValidationError: on_validation_error,
    StarletteHTTPException: on_http_error,
}

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "description": description,
        "content": {PROBLEM_MEDIA_TYPE: {}},
    }
    for status, description in (
        (400, "Malformed read parameters"),
        (401, "Missing or unknown API key"),
        (403, "The key's role or scope does not allow this"),
        (404, "Unknown volunteer, venue or session"),
        (409, "Concurrent change, or a rule about uniqueness or order"),
        (422, "The command is malformed or breaks a rule"),
        (503, "The ledger is busy or its database cannot be used: retry later"),
    )
}
