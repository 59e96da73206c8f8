"""No request body over 64 KiB is read (CONTRACT §1.3): 413 ``body_too_large``."""

from __future__ import annotations

from starlette.types import Message, Receive, Scope, Send

from ledger.api.http.middleware import HttpMiddleware
from ledger.api.http.problems import problem_response
from ledger.application.commands import LONGEST_COMMAND_BYTES
from ledger.domain.messages import translate


class RefuseLargeBodies(HttpMiddleware):
    """Counts a request's body as it arrives and refuses it, before anything
    parses it, once it passes 64 KiB: at once when Content-Length
    says so, otherwise (a chunked body) as soon as the count does. A body
    within the limit is handed on whole, from memory; FastAPI reads it whole
    before parsing anyway."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _declared_length(scope) > LONGEST_COMMAND_BYTES:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away: there is no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > LONGEST_COMMAND_BYTES:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message | None = {
            "type": "http.request",
            "body": b"".join(chunks),
            "more_body": False,
        }

        async def replay() -> Message:
            nonlocal whole
            if whole is None:
                return await receive()  # after the body: the disconnect
            message, whole = whole, None
            return message

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = problem_response(
            413,
            "body_too_large",
            "The request body is too large",
            translate(
                "a request body may be at most {most} bytes (64 KiB), as one "
                "command may; send one command per request",
                {"most": f"{LONGEST_COMMAND_BYTES:,}"},
            ),
        )
        await refusal(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    """The Content-Length the request declares (0 without a usable one:
    then the count decides)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
