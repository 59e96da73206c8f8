"""Answers in the language the caller asks for with ``Accept-Language``.

Sets the language of ``ledger.domain.messages`` for the whole request, so a
domain error, a malformed body and a problem's title all render in it,
wherever they are raised (the routes run in a thread pool that copies the
context). ``Content-Language`` says which language was chosen, and
``Vary: Accept-Language`` tells caches that the answer depends on it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from ledger.api.http.middleware import HttpMiddleware
from ledger.domain.messages import language_from_accept_language, use_language

CONTENT_LANGUAGE = {"zh_CN": b"zh-CN", "en": b"en"}


class AnswerInRequestedLanguage(HttpMiddleware):
    """Renders each request's messages in the language it asks for."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = Headers(scope=scope).get("accept-language")
        language = language_from_accept_language(header)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-language", CONTENT_LANGUAGE[language]))
                headers.append((b"vary", b"Accept-Language"))
                message = {**message, "headers": headers}
            await send(message)

        with use_language(language):
            await self.app(scope, receive, send_with_language)
