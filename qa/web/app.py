"""The web page and the `qa serve` command.

Owns `create_app(assistant, service)`, the Gradio page (its layout, the wiring of each
event to `qa.web.chat` and `qa.web.upload`, its queues, and the checks its handlers
make: the client's requests per minute, the engine's shared slots, the editor session
an upload needs; it does not launch it), and `serve_command` (`qa serve`; `python
app.py` reaches it through `qa.cli`), which hands the settings to `qa.web.server`.
Gradio and FastAPI are imported inside functions only, so that `qa --help` does not
pay for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from qa.answering.assistant import Assistant
from qa.config import Settings
from qa.web.chat import notice_reply, respond
from qa.web.intake import UploadRefused, check_upload, stage
from qa.web.render import APP_TITLE, asset, corpus_summary, header, render_panel
from qa.web.security import EDITOR_COOKIE, WRITES_OFF_MESSAGE, Busy, Writes
from qa.web.service import Service
from qa.web.upload import (
    UPLOAD_FORMATS,
    UPLOAD_HINT,
    add_articles,
    corpus_list,
    file_paths,
    upload_status,
)

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = (
    "Quelle est la peine prévue ?",
    "Pourquoi le gouvernement veut-il suspendre Shein ?",
    "Quelles associations récoltent des contenus signalés ?",
    "Qui a menacé Shein d'interdiction ?",
)
# How many questions the queue answers at once and how many wait are settings
# (QA_ANSWER_CONCURRENCY, QA_QUEUE_SIZE): the engine is CPU-bound and torch already
# spreads one question over every core, so two at a time keeps a slow question from
# holding everyone up without being slower. The API shares the same slots.
# The engine accepts one writer at a time anyway; a queue of its own keeps an upload
# from taking one of the answer slots, so readers are answered while it indexes.
UPLOAD_CONCURRENCY = 1
EDITORS_ONLY_NOTICE = ("L'ajout d'articles est réservé aux éditeurs : "
                       '<a href="/editor">connexion éditeur</a>.')
EDITOR_SESSION_NOTICE = ('Connecté comme éditeur. <form method="post" action="/editor/logout" '
                         'class="qa-logout"><button type="submit">Se déconnecter</button></form>')
# static/chat.js, run as the sources panel loads, defines it.
_FOLLOW_CORPUS_JS = "() => window.__qaFollowCorpus()"


def corpus_examples(assistant: Assistant, candidates: Sequence[str] = EXAMPLE_QUESTIONS,
                    limit: int = 4) -> list[str]:
    """The example questions the loaded articles answer, so that another corpus is not
    offered examples about articles it does not hold (a few milliseconds each)."""
    kept = []
    for question in candidates:
        try:
            if assistant.answer(question).answered:
                kept.append(question)
        except Exception:  # an example is a nicety: never a reason not to start
            log.exception("example question %r failed", question)
        if len(kept) == limit:
            break
    return kept


def _gradio():
    """Gradio, imported on first use with its analytics off (no network at all)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    return gr


def _with_request(handler):
    """Gradio hands a handler the HTTP request when a parameter is annotated `gr.Request`;
    annotations are strings here (PEP 563) naming a module imported lazily, so the
    class itself is set."""
    handler.__annotations__ = {"request": _gradio().Request}
    return handler


def _client(request) -> str:
    client = getattr(request, "client", None)
    return getattr(client, "host", None) or "?"


def _session(request) -> str | None:
    cookies = getattr(request, "cookies", None) or {}
    return cookies.get(EDITOR_COOKIE)


def _write_refusal(service: Service, request) -> str | None:
    """Why this client may not add articles now, in French; None when it may."""
    if service.access.writes is Writes.OFF:
        return WRITES_OFF_MESSAGE
    if not service.access.may_write_on_page(_session(request)):
        log.warning("page upload refused: no editor session from %s", _client(request))
        return "Seuls les éditeurs peuvent ajouter des articles : connectez-vous sur /editor."
    wait = service.limiter.check(_client(request))
    return service.limiter.message(wait) if wait else None


def _upload_section(demo: gr.Blocks, assistant: Assistant, service: Service,
                    page_header: gr.HTML) -> None:
    """« Ajouter des articles »: files, an « Indexer » button, the outcome, the titles;
    or, where writes are off, the reason; or, for editors only, a login link until the
    page sees an editor session."""
    gr = _gradio()
    writes = service.access.writes
    with gr.Accordion("Ajouter des articles", open=False, elem_id="qa-upload"):
        if writes is Writes.OFF:
            gr.HTML(upload_status(WRITES_OFF_MESSAGE, "qa-upload-hint"),
                    elem_id="qa-upload-off", js_on_load=None)
            gr.HTML(corpus_list(assistant), elem_id="qa-corpus-list", js_on_load=None)
            return
        editors = writes is Writes.EDITORS
        login = gr.HTML(f'<p class="qa-upload-status qa-upload-hint">{EDITORS_ONLY_NOTICE}</p>',
                        elem_id="qa-editor-login", visible=editors, js_on_load=None)
        with gr.Group(visible=not editors, elem_id="qa-upload-form") as form:
            session = gr.HTML(f'<p class="qa-upload-status">{EDITOR_SESSION_NOTICE}</p>',
                              elem_id="qa-editor-session", visible=False, js_on_load=None)
            files = gr.File(label=f"Fichiers d'articles ({', '.join(UPLOAD_FORMATS)})",
                            file_count="multiple", file_types=list(UPLOAD_FORMATS),
                            type="filepath", elem_id="qa-upload-files", height=140)
            index_button = gr.Button("Indexer", variant="primary", elem_id="qa-upload-index")
            status = gr.HTML(upload_status(UPLOAD_HINT, "qa-upload-hint"),
                             elem_id="qa-upload-status", js_on_load=None)
        listing = gr.HTML(corpus_list(assistant), elem_id="qa-corpus-list", js_on_load=None)

    # Gradio spots the tracker by its default value and gives each call a fresh one.
    tracker = gr.Progress()

    @_with_request
    def upload(chosen, request, progress=tracker):
        def refused(message: str):
            return (upload_status(message, "qa-upload-error"), header(assistant),
                    corpus_list(assistant), gr.skip())

        refusal = _write_refusal(service, request)
        if refusal:
            return refused(refusal)
        paths = file_paths(chosen)
        settings = service.settings
        try:
            if paths:
                check_upload(len(paths), sum(p.stat().st_size for p in paths if p.exists()),
                             settings.max_upload_files, settings.max_upload_mb)
        except UploadRefused as exc:
            return refused(str(exc))
        with stage((p.name, p) for p in paths) as staged:
            done = add_articles(staged.paths, assistant, progress, refused=staged.refused)
        # Emptied once handled, so that the next click does not send the same files again.
        return done.status, done.header, done.corpus, None if done.done else gr.skip()

    index_button.click(upload, files, [status, page_header, listing, files],
                       api_name="add_articles", concurrency_id="corpus",
                       concurrency_limit=UPLOAD_CONCURRENCY, show_progress="full",
                       show_progress_on=[status]
                       ).then(None, js=_FOLLOW_CORPUS_JS, api_visibility="private", queue=False)
    if editors:
        @_with_request
        def show_for_editors(request):
            editor = service.access.valid_session(_session(request))
            return (gr.update(visible=not editor), gr.update(visible=editor),
                    gr.update(visible=editor))

        demo.load(show_for_editors, None, [login, form, session], api_visibility="private",
                  queue=False)


def create_app(assistant: Assistant, service: Service | None = None) -> gr.Blocks:
    """The chat page over `assistant`, with its queue configured; launch it yourself.
    `service` holds the server's credentials and limits (by default, the assistant's
    settings'), shared with the API when `qa.web.server` mounts the page."""
    gr = _gradio()
    service = service or Service.from_settings(assistant.settings, assistant)
    examples = corpus_examples(assistant)

    def answered(message, history, asked, sections, request):
        wait = service.limiter.check(_client(request))
        try:
            if wait:
                raise Busy(service.limiter.message(wait))
            with service.engine.slot():
                reply = respond(message, history, asked, sections, assistant)
        except Busy as exc:  # too many requests from this client, or the line is full
            reply = notice_reply(str(exc), history, asked, sections)
        return "", reply.history, reply.asked, reply.sections, reply.panel

    @_with_request
    def ask(message, history, asked, sections, request):
        return answered(message, history, asked, sections, request)

    def ask_example(question: str):
        @_with_request
        def run(history, asked, sections, request):
            return answered(question, history, asked, sections, request)
        return run

    def reset():
        return "", [], [], [], render_panel([])

    with gr.Blocks(title=f"{APP_TITLE} — {corpus_summary(assistant)}",
                   analytics_enabled=False) as demo:
        page_header = gr.HTML(header(assistant), elem_id="qa-header", js_on_load=None)
        asked = gr.State([])
        sections = gr.State([])
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=360):
                chatbot = gr.Chatbot(
                    label="Conversation", elem_id="qa-chat", height=520, layout="bubble",
                    latex_delimiters=[], buttons=[], feedback_options=None,
                    group_consecutive_messages=False,
                    placeholder="Posez une question sur les articles : la réponse cite ses "
                                "sources, numérotées [1], [2]…",
                )
                with gr.Row():
                    textbox = gr.Textbox(placeholder="Votre question…", show_label=False,
                                         scale=5, lines=1, max_lines=4, elem_id="qa-input",
                                         autofocus=True)
                    send = gr.Button("Envoyer", variant="primary", scale=1, min_width=90,
                                     elem_id="qa-send")
                gr.HTML('<p class="qa-examples-label">Exemples de questions sur ces articles :</p>',
                        js_on_load=None, visible=bool(examples))
                with gr.Row(elem_id="qa-examples", visible=bool(examples)):
                    example_buttons = [gr.Button(q, size="sm", variant="secondary", scale=0)
                                       for q in examples]
                clear = gr.Button("Nouvelle conversation", size="sm", variant="secondary",
                                  elem_id="qa-clear")
                _upload_section(demo, assistant, service, page_header)
            with gr.Column(scale=2, min_width=320):
                sources = gr.HTML(render_panel([]), elem_id="qa-sources", max_height=640,
                                  js_on_load=asset("chat.js"), padding=True)
        outputs = [textbox, chatbot, asked, sections, sources]
        gr.on([textbox.submit, send.click], ask, [textbox, chatbot, asked, sections], outputs,
              api_name="ask", concurrency_id="engine", show_progress="minimal")
        for question, button in zip(examples, example_buttons, strict=True):
            button.click(ask_example(question), [chatbot, asked, sections], outputs,
                         api_visibility="private", concurrency_id="engine",
                         show_progress="minimal")
        clear.click(reset, None, outputs, api_visibility="private", queue=False)
        # The chat's own bin icon empties the chat only: the session must follow.
        chatbot.clear(reset, None, outputs, api_visibility="private", queue=False)
    demo.queue(default_concurrency_limit=service.settings.answer_concurrency,
               max_size=service.settings.queue_size)
    return demo


@click.command("serve")
@click.option("--host", help="Adresse d'écoute (QA_HOST, défaut 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (QA_PORT, défaut 7860).")
def serve_command(host: str | None, port: int | None) -> None:
    """Serve the web chat and the HTTP API: listen at once, build or refresh the index
    in the background (/healthz says when it is ready)."""
    from qa.web.server import serve  # FastAPI, uvicorn and Gradio: for `qa serve` only

    settings = Settings.from_env(host=host, port=port)

    def load() -> Assistant:
        assistant = Assistant.load(settings, progress=True)
        click.echo(f"Corpus chargé : {corpus_summary(assistant)}.", err=True)
        return assistant

    click.echo(f"Préparation de l'index et du modèle… La page et l'API répondent sur "
               f"http://{settings.host}:{settings.port}/ (documentation de l'API : /docs).",
               err=True)
    serve(settings, load)
