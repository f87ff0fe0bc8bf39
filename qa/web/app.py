"""The web page and the `qa serve` command.

Owns `create_app(assistant)`, the Gradio page (its layout, the wiring of each event to
`qa.web.chat` and `qa.web.upload`, its queues; it does not launch it), and
`serve_command` (`qa serve`; `python app.py` reaches it through `qa.cli`), which loads
the assistant, building the index first, then launches the page. Gradio is imported
inside functions only, so that `qa --help` does not pay for it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from qa.answering.assistant import Assistant
from qa.config import Settings
from qa.web.chat import respond
from qa.web.render import APP_TITLE, asset, corpus_summary, header, render_panel
from qa.web.upload import UPLOAD_FORMATS, UPLOAD_HINT, add_articles, corpus_list, upload_status

if TYPE_CHECKING:
    import gradio as gr

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = (
    "Quelle est la peine prévue ?",
    "Pourquoi le gouvernement veut-il suspendre Shein ?",
    "Quelles associations récoltent des contenus signalés ?",
    "Qui a menacé Shein d'interdiction ?",
)
# The engine is CPU-bound and torch already spreads one question over every core:
# answering many at once would not be faster, so the queue answers two at a time (a
# slow question does not hold everyone up) and keeps the others waiting in order.
ANSWER_CONCURRENCY = 2
QUEUE_MAX_SIZE = 64
# The engine accepts one writer at a time anyway; a queue of its own keeps an upload
# from taking one of the answer slots, so readers are answered while it indexes.
UPLOAD_CONCURRENCY = 1
# News articles are small, even as PDF: a bigger upload is a mistake or an abuse.
MAX_UPLOAD_SIZE = "25mb"
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


def _upload_section(assistant: Assistant, page_header: gr.HTML) -> None:
    """« Ajouter des articles »: files, an « Indexer » button, the outcome, the titles."""
    gr = _gradio()
    with gr.Accordion("Ajouter des articles", open=False, elem_id="qa-upload"):
        files = gr.File(label=f"Fichiers d'articles ({', '.join(UPLOAD_FORMATS)})",
                        file_count="multiple", file_types=list(UPLOAD_FORMATS),
                        type="filepath", elem_id="qa-upload-files", height=140)
        index_button = gr.Button("Indexer", variant="primary", elem_id="qa-upload-index")
        status = gr.HTML(upload_status(UPLOAD_HINT, "qa-upload-hint"),
                         elem_id="qa-upload-status", js_on_load=None)
        listing = gr.HTML(corpus_list(assistant), elem_id="qa-corpus-list", js_on_load=None)

    # Gradio spots the tracker by its default value and gives each call a fresh one.
    tracker = gr.Progress()

    def upload(chosen, progress=tracker):
        done = add_articles(chosen, assistant, progress)
        # Emptied once handled, so that the next click does not send the same files again.
        return done.status, done.header, done.corpus, None if done.done else gr.skip()

    index_button.click(upload, files, [status, page_header, listing, files],
                       api_name="add_articles", concurrency_id="corpus",
                       concurrency_limit=UPLOAD_CONCURRENCY, show_progress="full",
                       show_progress_on=[status]
                       ).then(None, js=_FOLLOW_CORPUS_JS, api_visibility="private", queue=False)


def create_app(assistant: Assistant) -> gr.Blocks:
    """The chat page over `assistant`, with its queue configured; launch it yourself."""
    gr = _gradio()
    examples = corpus_examples(assistant)

    def ask(message, history, asked, sections):
        reply = respond(message, history, asked, sections, assistant)
        return "", reply.history, reply.asked, reply.sections, reply.panel

    def ask_example(question: str):
        def run(history, asked, sections):
            return ask(question, history, asked, sections)
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
                _upload_section(assistant, page_header)
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
    demo.queue(default_concurrency_limit=ANSWER_CONCURRENCY, max_size=QUEUE_MAX_SIZE)
    return demo


@click.command("serve")
@click.option("--host", help="Adresse d'écoute (QA_HOST, défaut 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (QA_PORT, défaut 7860).")
def serve_command(host: str | None, port: int | None) -> None:
    """Open the web chat: build or refresh the index, then serve the page."""
    settings = Settings.from_env(host=host, port=port)
    click.echo("Préparation de l'index et du modèle…", err=True)
    assistant = Assistant.load(settings, progress=True)
    click.echo(f"Corpus chargé : {corpus_summary(assistant)}. "
               f"Ouvrez http://{settings.host}:{settings.port}/ dans un navigateur.", err=True)
    create_app(assistant).launch(server_name=settings.host, server_port=settings.port,
                                 show_error=False, footer_links=[], quiet=True,
                                 max_file_size=MAX_UPLOAD_SIZE)
