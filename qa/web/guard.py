"""The door of the server: every HTTP request passes here before any route.

Owns `Guard`, an ASGI middleware that, before a request body is read:
- counts the client's requests that cost something (API calls, the page's file
  uploads, editor logins) against `QA_RATE_LIMIT`, answering 429 beyond;
- checks the API's credentials: `Authorization: Bearer` with the editor token for
  writes, with the read token (or the editor's) for reads when `QA_READ_TOKEN` is set;
- keeps the page's raw file upload (`/gradio_api/upload`) to editors when writes need
  them, and shut when writes are off;
- bounds request bodies (413), also when they come without a Content-Length;
- says « saturé » in French where Gradio's queue is full, and adds `nosniff`.
The page's questions are counted in its handlers (`qa.web.app`), so that a reader
reads the refusal in the chat.
"""

from __future__ import annotations

import json
import logging

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qa.web.api import API_PREFIX, ApiError, SafeJSON, error_response
from qa.web.security import (
    BAD_TOKEN_MESSAGE,
    BUSY_MESSAGE,
    EDITOR_COOKIE,
    EDITOR_ONLY_MESSAGE,
    READ_TOKEN_MESSAGE,
    WRITES_OFF_MESSAGE,
    Writes,
    bearer,
)
from qa.web.service import Service

log = logging.getLogger(__name__)

# A question with its earlier turns is a few kilobytes: a megabyte is generous.
MAX_JSON_BYTES = 1024 * 1024
# The multipart framing around the files themselves.
MULTIPART_OVERHEAD = 256 * 1024
BODY_TOO_LARGE = "Requête trop volumineuse : au plus {limit} Mo. Rien n'a été traité."
GRADIO_UPLOAD = "/gradio_api/upload"
GRADIO_JOIN = "/gradio_api/queue/join"


class BodyTooLarge(ApiError):
    def __init__(self, limit: int):
        megabytes = f"{limit / 1024 / 1024:.1f}".replace(".", ",")
        super().__init__(413, "too_large", BODY_TOO_LARGE.format(limit=megabytes))


def _kind(method: str, path: str) -> str:
    """What a request is, for the checks: write, read, upload, login or other."""
    if path.startswith(API_PREFIX + "/"):
        articles = path.rstrip("/") == f"{API_PREFIX}/articles"
        if (method == "POST" and articles) or (
                method == "DELETE" and path.startswith(f"{API_PREFIX}/articles/")):
            return "write"
        return "read"
    if path.rstrip("/") == GRADIO_UPLOAD and method == "POST":
        return "upload"
    if path.rstrip("/") == "/editor" and method == "POST":
        return "login"
    return "other"


def _client(scope: Scope) -> str:
    # After uvicorn's proxy-headers middleware, when QA_TRUSTED_PROXIES names the proxy,
    # this is the address the proxy saw; otherwise the TCP peer.
    client = scope.get("client")
    return client[0] if client else "?"


class Guard:
    """See the module's docstring. `service` holds the limits and the credentials."""

    def __init__(self, app: ASGIApp, service: Service):
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        kind = _kind(scope["method"], scope["path"])
        refusal = self._refusal(kind, scope) if kind != "other" else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self._body_limit(kind, scope["method"])
        if limit is not None:
            length = Headers(scope=scope).get("content-length")
            if length is not None and length.isdigit() and int(length) > limit:
                exc = BodyTooLarge(limit)
                await error_response(413, exc.code, exc.detail)(scope, receive, send)
                return
            receive = _capped(receive, limit)
        await self.app(scope, receive, _secured(send, scope["path"]))

    def _refusal(self, kind: str, scope: Scope) -> SafeJSON | None:
        service, access = self.service, self.service.access
        wait = service.limiter.check(_client(scope))
        if wait:
            return error_response(429, "rate_limited", service.limiter.message(wait),
                                  {"Retry-After": str(max(1, round(wait + 0.5)))})
        headers = Headers(scope=scope)
        if kind == "upload":
            if access.writes is Writes.OFF:
                return error_response(403, "writes_off", WRITES_OFF_MESSAGE)
            session = _cookie(headers, EDITOR_COOKIE)
            if not access.may_write_on_page(session):
                return error_response(403, "editors_only", EDITOR_ONLY_MESSAGE)
            return None
        token = bearer(headers.get("authorization"))
        challenge = {"WWW-Authenticate": 'Bearer realm="qa"'}
        if kind == "write":
            if access.writes is Writes.OFF or (access.writes is Writes.OPEN and token is None):
                # Open writes are the page's, on one person's machine: the API wants a token.
                message = WRITES_OFF_MESSAGE if access.writes is Writes.OFF else (
                    "Écrire par l'API demande un jeton d'éditeur : définissez "
                    "QA_EDITOR_TOKEN au démarrage du serveur.")
                return error_response(403, "writes_off", message)
            if token is None:
                return error_response(401, "missing_token", EDITOR_ONLY_MESSAGE, challenge)
            if access.may_write_by_api(token):
                return None
            if access.known(token):  # the read token: a reader, not an editor
                return error_response(403, "editors_only", EDITOR_ONLY_MESSAGE)
            log.warning("API write refused: wrong token from %s", _client(scope))
            return error_response(401, "bad_token", BAD_TOKEN_MESSAGE, challenge)
        if kind == "read" and not access.may_read(token):
            message = READ_TOKEN_MESSAGE if token is None else BAD_TOKEN_MESSAGE
            code = "missing_token" if token is None else "bad_token"
            return error_response(401, code, message, challenge)
        return None

    def _body_limit(self, kind: str, method: str) -> int | None:
        if method not in ("POST", "PUT", "PATCH"):
            return None
        if kind == "write":
            return self.service.max_upload_bytes + MULTIPART_OVERHEAD
        if kind == "read":
            return MAX_JSON_BYTES
        return None  # the page's own routes: Gradio bounds its uploads (max_file_size)


def _cookie(headers: Headers, name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def _capped(receive: Receive, limit: int) -> Receive:
    """`receive` that fails with 413 once the body passes `limit` bytes: a chunked body
    announces no length, and must not be read whole before being refused."""
    seen = 0

    async def capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return capped


def _secured(send: Send, path: str) -> Send:
    """`send` that adds `nosniff` to every response, and puts Gradio's « queue is full »
    (an English 503) in French."""
    rewrite = path.rstrip("/") == GRADIO_JOIN
    held: dict[str, Message] = {}

    async def secured(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", [])
                       if k.lower() != b"x-content-type-options"]
            headers.append((b"x-content-type-options", b"nosniff"))
            message = {**message, "headers": headers}
            if rewrite and message["status"] == 503:
                held["start"] = message
                return
        elif message["type"] == "http.response.body" and "start" in held:
            if message.get("more_body"):
                return
            body = json.dumps({"detail": BUSY_MESSAGE}, ensure_ascii=False).encode("utf-8")
            start = held.pop("start")
            headers = [(k, v) for k, v in start["headers"]
                       if k.lower() not in (b"content-length", b"content-type")]
            headers += [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]
            await send({**start, "headers": headers})
            message = {"type": "http.response.body", "body": body}
        await send(message)

    return secured
