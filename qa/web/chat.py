"""One exchange of the chat: a reader's message in, the chat messages and sources out.

Owns `respond()` and the session state it keeps between messages: the reader's earlier
questions (for follow-ups, see `qa.answering.conversation`) and one `Section` of
sources per answer. Nothing here touches Gradio, so the tests call it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qa.answering.assistant import Assistant
from qa.answering.conversation import context_questions, contextualize
from qa.errors import EmptyQuestion, QAError
from qa.schema import Answer
from qa.web.render import (
    format_answer,
    format_notice,
    format_question,
    format_refusal,
    format_sources,
    render_panel,
)

log = logging.getLogger(__name__)

EMPTY_HINT = "Écrivez une question sur les articles, par exemple « Quelle est la peine prévue ? »."
ERROR_MESSAGE = ("Désolé, une erreur est survenue. Réessayez dans un instant ou reformulez "
                 "la question.")


@dataclass(frozen=True)
class Section:
    """The sources of one exchange, as kept in the session between messages."""

    turn: int
    question: str
    context: tuple[str, ...]  # the earlier questions a follow-up was read with
    body: str

    def to_state(self) -> dict[str, Any]:
        return {"turn": self.turn, "question": self.question, "context": list(self.context),
                "body": self.body}


@dataclass(frozen=True)
class Reply:
    """What one message changes: the chat, the session's questions and sources, the panel."""

    history: list[dict[str, Any]]
    asked: list[str]
    sections: list[dict[str, Any]]
    panel: str
    answer: Answer | None = None


def notice_reply(text: str, history: Sequence[dict[str, Any]] | None,
                 asked: Sequence[str] | None, sections: Sequence[dict[str, Any]] | None) -> Reply:
    """The chat with a notice from the assistant added, the session otherwise unchanged
    (a refusal of the server's: too many requests, too many questions waiting)."""
    history, sections = list(history or []), list(sections or [])
    history.append({"role": "assistant", "content": format_notice(text)})
    return Reply(history, list(asked or []), sections, render_panel(sections))


def _bounded(message: str, limit: int) -> tuple[str, bool]:
    """The message cut to what the engine reads, and whether it was cut."""
    return (message[:limit], True) if len(message) > limit else (message, False)


def respond(message: str | None, history: Sequence[dict[str, Any]] | None,
            asked: Sequence[str] | None, sections: Sequence[dict[str, Any]] | None,
            assistant: Assistant) -> Reply:
    """Answer one reader message in the context of the session.

    `history` is the chat (messages format), `asked` the reader's earlier questions,
    `sections` the earlier sources. An empty message gets a hint without calling the
    engine; any failure a short French message (logged here with its traceback), never
    a stack trace in the page.
    """
    history, asked, sections = list(history or []), list(asked or []), list(sections or [])

    def notice(text: str) -> Reply:
        history.append({"role": "assistant", "content": format_notice(text)})
        return Reply(history, asked, sections, render_panel(sections))

    message = message if isinstance(message, str) else ""
    if not message.strip():
        return notice(EMPTY_HINT)
    question, cut = _bounded(message, assistant.settings.max_question_chars)
    history.append({"role": "user", "content": format_question(question)})
    turn = len(sections) + 1
    query = contextualize(question, asked)
    context = tuple(context_questions(asked)) if query != question else ()
    try:
        answer = assistant.answer(query)
    except EmptyQuestion:
        return notice(EMPTY_HINT)
    except QAError as exc:  # written for readers: says what happened and what to do
        log.warning("question not answered: %s", exc)
        return notice(str(exc))
    except Exception:
        log.exception("failed to answer %r", query[:200])
        return notice(ERROR_MESSAGE)
    content = format_answer(answer, turn) if answer.answered else format_refusal(answer)
    if cut:
        content += format_notice(f"(Question tronquée à ses {len(question)} premiers caractères.)")
    history.append({"role": "assistant", "content": content})
    section = Section(turn, question, context,
                      format_sources(answer, assistant.index.articles, turn)).to_state()
    sections.append(section)
    asked.append(question)
    return Reply(history, asked, sections, render_panel(sections), answer)
