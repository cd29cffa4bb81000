"""The web app's outer layer: security headers on every response, a cap on request bodies."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipeline.errors import RequestTooLarge

MAX_BODY = 64 * 1024  # every form fits in a few KB
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class Guard:
    """Security headers on every response; request bodies over ``MAX_BODY`` get 413."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"0")
        if not length.isdigit() or int(length) > MAX_BODY:
            await _too_large(send)
            return
        static = str(scope.get("path", "")).startswith("/static/")
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY:
                    raise RequestTooLarge(f"the request body is over {MAX_BODY} bytes")
            return message

        async def with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                out = list(message.get("headers") or [])
                present = {k.lower() for k, _ in out}
                extra = {
                    b"content-security-policy": PAGE_CSP.encode(),
                    b"x-content-type-options": b"nosniff",
                    b"referrer-policy": b"no-referrer",
                    b"x-frame-options": b"DENY",
                    b"cache-control": b"public, max-age=3600" if static else b"no-store",
                }
                out.extend((k, v) for k, v in extra.items() if k not in present)
                message = {**message, "headers": out}
            await send(message)

        try:
            await self.app(scope, counted, with_headers)
        except RequestTooLarge:
            if not started:
                await _too_large(send)


async def _too_large(send: Send) -> None:
    body = b"Request too large."
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": body})
