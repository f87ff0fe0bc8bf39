"""One server for a team: the chat page, the HTTP API and the editor login, on one port.

Owns `create_server()` (the FastAPI application: the API of `qa.web.api`, `/docs`,
`/editor`, and the Gradio page of `qa.web.app` mounted at `/`, all behind the `Guard`
of `qa.web.guard`) and `serve()`, which `qa serve` calls: it listens at once, loads
the index in the background (`/healthz` and the API answer 503 meanwhile, the page
says it is loading), then mounts the page.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

import qa
from qa.answering.assistant import Assistant
from qa.config import Settings
from qa.errors import QAError
from qa.web import api
from qa.web.api_docs import docs_page
from qa.web.app import create_app
from qa.web.guard import Guard
from qa.web.render import APP_TITLE, render_template
from qa.web.security import EDITOR_COOKIE, SESSION_SECONDS, Writes
from qa.web.service import FAILED_MESSAGE, LOADING_MESSAGE, Service

log = logging.getLogger(__name__)

API_DESCRIPTION = """Questions-réponses en français sur les articles indexés, avec citations.

Lecture : ouverte, sauf si le serveur définit `QA_READ_TOKEN` (en-tête
`Authorization: Bearer <jeton>`). Écriture (`POST` et `DELETE /api/v1/articles`) : jeton
d'éditeur `QA_EDITOR_TOKEN`. Chaque erreur est un JSON `{"error": code, "message": texte}`.
"""


class DeferredPage:
    """The chat page once the index is loaded, a French « chargement » page before."""

    def __init__(self, service: Service):
        self.service = service
        self.app: ASGIApp | None = None
        self.demo: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is not None:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return  # no websocket before the page exists
        message = FAILED_MESSAGE if self.service.failed else LOADING_MESSAGE
        if scope["path"].startswith("/gradio_api"):
            response: Response = api.error_response(503, self.service.state, message,
                                                    {"Retry-After": "5"})
        else:
            html = render_template("loading.html", title=APP_TITLE, message=message,
                                   failed=self.service.failed)
            response = HTMLResponse(html, status_code=503, headers={"Retry-After": "5"})
        await response(scope, receive, send)

    async def start(self, assistant: Assistant) -> None:
        """Build the page (in a worker thread: it asks the engine for its examples),
        mount it, and start its queue, in the server's event loop."""
        import gradio as gr

        service = self.service
        demo = await asyncio.to_thread(create_app, assistant, service)
        auth = None
        if service.access.reads_protected:
            def auth(username: str, password: str) -> bool:  # the name is free
                return service.access.may_read(password)
        holder = FastAPI()
        gr.mount_gradio_app(holder, demo, path="/", footer_links=[], run_history=False,
                            show_error=False, max_file_size=f"{service.settings.max_upload_mb}mb",
                            auth=auth, auth_message=(
                                "Ce serveur est réservé à ses lecteurs : entrez le jeton de "
                                "lecture comme mot de passe (le nom d'utilisateur est libre)."))
        demo.run_startup_events()
        await demo.run_extra_startup_events()
        self.demo, self.app = demo, holder.router.routes[-1].app
        service.loaded(assistant)

    def close(self) -> None:
        if self.demo is not None:
            try:
                self.demo.close(verbose=False)
            except Exception:  # closing at exit: nothing left to save
                log.debug("page close", exc_info=True)


def create_server(settings: Settings, assistant: Assistant | None = None, *,
                  load: Callable[[], Assistant] | None = None,
                  on_failure: Callable[[BaseException], None] | None = None) -> FastAPI:
    """The whole server over `assistant`, or over what `load()` returns, called in a
    background thread once the server listens (`/healthz` says « loading » till then;
    `on_failure(exc)` is called if it raises)."""
    if (assistant is None) == (load is None):
        raise ValueError("give either an assistant or a load function")
    service = Service.from_settings(settings)
    page = DeferredPage(service)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if assistant is not None:
            await page.start(assistant)
        else:
            loop = asyncio.get_running_loop()
            threading.Thread(target=_load_in_background, args=(page, load, loop, on_failure),
                             name="qa-load", daemon=True).start()
            # Gradio's import (3 s warm, more on a first start that compiles its modules)
            # runs while the index loads, instead of after it, when the page is built.
            threading.Thread(target=importlib.import_module, args=("gradio",),
                             name="qa-import-gradio", daemon=True).start()
        yield
        page.close()

    app = FastAPI(title=f"{APP_TITLE} — API", version=qa.__version__,
                  description=API_DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json", lifespan=lifespan)
    app.state.service = service
    app.include_router(api.health_router)
    app.include_router(api.router)
    app.add_exception_handler(RequestValidationError, api.on_validation_error)
    app.add_exception_handler(HTTPException, api.on_http_error)
    app.add_exception_handler(Exception, api.on_crash)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                   include_in_schema=False)
    def unknown(rest: str, request: Request) -> Response:
        # Routes are tried in order: an address that exists for other methods matched
        # partially before this one matched fully.
        if any(route.matches(request.scope)[0] is Match.PARTIAL for route in app.routes
               if getattr(route, "path", "") != "/api/{rest:path}"):
            return api.error_response(405, "method_not_allowed", "Méthode non permise pour "
                                      "cette adresse : voyez /docs.")
        return api.error_response(404, "not_found", "Adresse inconnue : la liste des "
                                  "adresses de l'API est sur /docs.")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_422(get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    _editor_routes(app, service)
    app.mount("/", page)
    app.add_middleware(Guard, service=service)
    return app


def _without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents its 422 for invalid requests; this API answers them with 400."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            operation.get("responses", {}).pop("422", None)
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return schema


def _load_in_background(page: DeferredPage, load: Callable[[], Assistant],
                        loop: asyncio.AbstractEventLoop,
                        on_failure: Callable[[BaseException], None] | None) -> None:
    try:
        assistant = load()
        asyncio.run_coroutine_threadsafe(page.start(assistant), loop).result()
    except Exception as exc:
        if not isinstance(exc, QAError):  # a QAError says it all in its message
            log.exception("the index could not be loaded")
        page.service.failed = True
        if on_failure is not None:
            on_failure(exc)
        return
    log.info("index loaded: the page and the API answer")


def _editor_routes(app: FastAPI, service: Service) -> None:
    """« Connexion éditeur »: a form that trades the editor token for a session cookie,
    which the page's upload then requires. The API wants the token itself."""
    access = service.access

    def page(message: str = "", status: int = 200) -> HTMLResponse:
        html = render_template("editor_login.html", title=APP_TITLE,
                               writes=access.writes.value, message=message)
        return HTMLResponse(html, status_code=status,
                            headers={"Cache-Control": "no-store"})

    @app.get("/editor", include_in_schema=False)
    def login_form() -> HTMLResponse:
        return page()

    @app.post("/editor", include_in_schema=False)
    async def login(request: Request) -> Response:
        if access.writes is not Writes.EDITORS:
            return page(status=403)
        form = await request.form(max_files=0, max_fields=4)
        token = form.get("token")
        if not isinstance(token, str) or not access.is_editor(token):
            log.warning("editor login refused from %s",
                        request.client.host if request.client else "?")
            return page("Jeton refusé : vérifiez le jeton d'éditeur.", status=401)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(EDITOR_COOKIE, access.new_session(), max_age=SESSION_SECONDS,
                            httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @app.post("/editor/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(EDITOR_COOKIE)
        return response


def serve(settings: Settings, load: Callable[[], Assistant]) -> None:
    """Listen on `settings.host:settings.port` until interrupted (`qa serve`). If the
    index cannot be loaded, the server stops and the error is raised here, so that
    `qa serve` prints it and exits with status 1."""
    import uvicorn

    if Service.from_settings(settings).access.writes is Writes.OFF:
        log.warning("writes are off: %s listens on a shared address without QA_EDITOR_TOKEN",
                    settings.host)
    failures: list[BaseException] = []

    def stop(exc: BaseException) -> None:
        failures.append(exc)
        server.should_exit = True

    trusted = settings.trusted_proxies.strip()
    app = create_server(settings, load=load, on_failure=stop)
    server = uvicorn.Server(uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", access_log=False,
        proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=5))
    server.run()
    if failures:
        raise failures[0]
