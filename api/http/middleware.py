"""The shape of the server's own middleware: plain ASGI, for HTTP requests
only. Starlette's ``BaseHTTPMiddleware`` costs a task and a stream per
request; these wrap every request, so they must cost little."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class HttpMiddleware:
    """Passes every scope but an HTTP request straight on (lifespan,
    websockets) and hands HTTP requests to ``handle``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer, or pass on to ``self.app``, one HTTP request."""
        raise NotImplementedError
