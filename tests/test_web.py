"""The web chat without a browser: escaping, rendering, `respond()`, follow-ups, `qa serve`."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import qa.web.app as web
from qa import Answer, Citation, EmptyQuestion, Passage, QAError, Settings
from qa.answering.conversation import context_questions, contextualize, is_follow_up
from qa.index.manifest import Counts
from qa.web.chat import EMPTY_HINT, ERROR_MESSAGE, respond
from qa.web.render import (
    CLOSEST_HEADING,
    Mark,
    Segment,
    cite_anchor,
    context_span,
    format_answer,
    format_notice,
    format_question,
    format_refusal,
    format_sources,
    french_date,
    header,
    inert,
    paragraphs,
    render_panel,
)

ROOT = Path(__file__).resolve().parents[1]
GROK_TITLE = "La justice enquête sur les deepfakes sexuels générés par Grok sur X"
PENALTY = re.compile(r"deux ans d.emprisonnement et 60[\s\u00a0\u202f]?000 euros d.amende")
INJECTION = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script>'
SHEIN_QUESTION = "Pourquoi le gouvernement veut-il suspendre Shein ?"
FOLLOW_UP = "Et qui l'a annoncé ?"


class StubAssistant:
    """Stands in for the engine: records the questions, answers with `reply`."""

    def __init__(self, reply=None, articles=None):
        self.settings = Settings()
        self.index = SimpleNamespace(articles=articles or {},
                                     manifest=SimpleNamespace(counts=Counts()))
        self.asked: list[str] = []
        self.reply = reply

    def answer(self, question: str, k=None, retriever=None) -> Answer:
        self.asked.append(question)
        if isinstance(self.reply, Exception):
            raise self.reply
        return self.reply or Answer(question=question, text="Je ne trouve pas.", answered=False)


def _contents(reply) -> str:
    return "\n".join(m["content"] for m in reply.history)


# --------------------------------------------------------------------------- escaping


def test_inert_makes_markup_and_template_syntax_inert():
    out = inert('<b a="1">&\'{{x}} ${y}</b>')
    assert "<" not in out and ">" not in out and '"' not in out and "'" not in out
    assert "{" not in out and "}" not in out and "$" not in out
    assert "&lt;b" in out and "&amp;" in out


def test_format_question_shows_tags_as_text():
    out = format_question(INJECTION + "\nligne 2")
    assert "<img" not in out and "<script" not in out
    assert "&lt;script&gt;" in out and "<br>" in out


def test_french_date():
    assert french_date("2026-01-02") == "2 janvier 2026"
    assert french_date("2025-11-01") == "1er novembre 2025"
    assert french_date("") == ""
    assert french_date("hier") == "hier"


# --------------------------------------------------------------------------- formatting

def _citation(n: int, start: int, end: int, text: str, article_id: str = "a") -> Citation:
    return Citation(n=n, article_id=article_id, title="Titre <i>", source="Journal",
                    date="2026-01-02", start=start, end=end, quote=text[start:end])


def test_format_answer_links_each_marker_and_escapes_text():
    text = "Une <b>phrase</b> [1] et une autre [2], mais pas [9]."
    answer = Answer(question="q", text=text, answered=True,
                    citations=(_citation(1, 0, 3, "abc"), _citation(2, 0, 3, "abc")))
    out = format_answer(answer, turn=3)
    assert out.count('class="qa-cite-ref"') == 2
    assert f'href="#{cite_anchor(3, 1)}"' in out and 'href="#cite-3-2"' in out
    assert "&lt;b&gt;phrase&lt;/b&gt;" in out and "<b>" not in out
    assert "[9]" in out  # a marker without citation stays plain text


def test_paragraphs_hold_the_cited_spans_as_marked_segments():
    text = "Premier <paragraphe>.\n\nUne phrase citée. Une autre."
    start = text.index("Une phrase")
    end = start + len("Une phrase citée.")
    assert paragraphs(text, [Mark(start, end, 1, "cite-1-1")]) == [
        [Segment("Premier <paragraphe>.")],
        [Segment("Une phrase citée.", 1, "cite-1-1"), Segment(" Une autre.")],
    ]
    # marks count in the article, where `text` starts at `offset`
    assert paragraphs("Un. Deux. Trois.", [Mark(104, 109, 2)], offset=100) == [
        [Segment("Un. "), Segment("Deux.", 2), Segment(" Trois.")]]
    # were a mark to cross a paragraph break, both halves stay marked, one holds the id
    assert paragraphs("Un.\n\nDeux.", [Mark(0, 10, 3, "cite-1-3")]) == [
        [Segment("Un.", 3, "cite-1-3")], [Segment("Deux.", 3)]]


def test_context_span_adds_the_sentences_around_the_quote():
    text = "Avant. Citée ici. Après. Loin."
    article = SimpleNamespace(text=text)
    start = text.index("Citée")
    start_ctx, end_ctx = context_span(article, start, start + len("Citée ici."))
    assert text[start_ctx:end_ctx] == "Avant. Citée ici. Après."


def test_format_sources_cards_with_highlight_and_full_article():
    from qa import Article

    text = "Intro <x> <script>alert(1)</script> {{y}}.\n\nLe délit est puni de deux ans. Fin."
    start = text.index("Le délit")
    end = start + len("Le délit est puni de deux ans.")
    article = Article(id="a", title="Titre <i>", text=text, source="Journal", date="2026-01-02")
    answer = Answer(question="q", text="Le délit est puni de deux ans. [1]", answered=True,
                    citations=(_citation(1, start, end, text),))
    out = format_sources(answer, {"a": article}, turn=2)
    assert "Titre &lt;i&gt;" in out and "Journal" in out and "2 janvier 2026" in out
    assert 'id="cite-2-1"' in out and out.count('id="cite-2-1"') == 1
    assert ('<mark class="qa-mark" data-n="1" id="cite-2-1" tabindex="-1">'
            "Le délit est puni de deux ans.</mark>") in out
    assert "Lire l'article complet" in out and out.count("<mark") == 2  # excerpt + full text
    assert "<script" not in out and "{{" not in out
    assert inert("Intro <x> <script>alert(1)</script> {{y}}.") in out


def test_refusal_shows_closest_passages_never_an_answer():
    passages = tuple(Passage(article_id="a", title=f"T{i} <b>", start=0, end=5, text="<i>texte</i>",
                             score=0.1) for i in range(5))
    answer = Answer(question="q", text="Je ne trouve pas la réponse dans les articles indexés.",
                    answered=False, passages=passages)
    chat = format_refusal(answer)
    assert CLOSEST_HEADING in chat and chat.count("<li>") == 3
    assert "qa-cite-ref" not in chat and "<i>" not in chat and "<b>" not in chat
    panel = format_sources(answer, {}, turn=1)
    assert CLOSEST_HEADING in panel and "cite-" not in panel


def test_render_panel_opens_only_the_latest_exchange():
    assert "Sources" in render_panel([])
    sections = [{"turn": 1, "question": "q1", "context": [], "body": "b1"},
                {"turn": 2, "question": "<q2>", "context": ["q1"], "body": "b2"}]
    out = render_panel(sections)
    assert '<details class="qa-turn" id="turn-2" open>' in out
    assert '<details class="qa-turn" id="turn-1">' in out
    assert out.index("turn-2") < out.index("turn-1")
    assert "&lt;q2&gt;" in out and "Comprise comme la suite de « q1 »" in out


# ------------------------------------------------------------------ respond, stubbed engine

@pytest.mark.parametrize("message", ["", "   \n\t", None])
def test_empty_message_gets_a_hint_without_calling_the_engine(message):
    stub = StubAssistant()
    reply = respond(message, [], [], [], stub)
    assert stub.asked == []
    assert reply.history == [{"role": "assistant", "content": format_notice(EMPTY_HINT)}]
    assert reply.asked == [] and reply.sections == []


def test_blank_after_cleaning_gets_the_hint():
    stub = StubAssistant(reply=EmptyQuestion("vide"))
    reply = respond("\u200b\u0000", [], [], [], stub)
    assert "Écrivez une question" in _contents(reply)


def test_long_message_is_bounded_and_said_so():
    stub = StubAssistant()
    reply = respond("a" * 100_000, [], [], [], stub)
    limit = stub.settings.max_question_chars
    assert len(stub.asked[0]) == limit
    assert "tronquée" in _contents(reply)
    assert len(reply.history[0]["content"]) < limit + 200


def test_engine_failure_is_a_short_french_message_and_is_logged(caplog):
    stub = StubAssistant(reply=RuntimeError("boom: secret internals"))
    with caplog.at_level(logging.ERROR, logger="qa.web.chat"):
        reply = respond("Quelle est la peine prévue ?", [], [], [], stub)
    shown = _contents(reply)
    assert inert(ERROR_MESSAGE) in shown
    assert "Traceback" not in shown and "boom" not in shown
    assert any("boom" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert reply.sections == []


def test_package_errors_are_shown_as_written():
    stub = StubAssistant(reply=QAError("L'index est en cours d'écriture : réessayez."))
    reply = respond("Quelle est la peine prévue ?", [], [], [], stub)
    assert inert("L'index est en cours d'écriture : réessayez.") in _contents(reply)


def test_history_from_the_chat_is_kept():
    stub = StubAssistant()
    earlier = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    reply = respond("Quelle est la peine prévue ?", earlier, ["x"], [], stub)
    assert reply.history[:2] == earlier and len(reply.history) == 4
    assert reply.asked == ["x", "Quelle est la peine prévue ?"]


# ------------------------------------------------------------------ respond, real engine

def test_answer_with_citation_link_and_source_card(assistant):
    reply = respond("Quelle est la peine prévue ?", [], [], [], assistant)
    assert reply.answer.answered
    answer_html = reply.history[-1]["content"]
    assert PENALTY.search(answer_html)
    assert 'href="#cite-1-1"' in answer_html
    assert inert(GROK_TITLE) in reply.panel
    cited = re.search(r'<mark class="qa-mark" data-n="1" id="cite-1-1"[^>]*>(.*?)</mark>',
                      reply.panel)
    assert cited and PENALTY.search(cited.group(1))
    assert "Lire l'article complet" in reply.panel


def test_unanswerable_question_is_refused_with_closest_passages(assistant):
    reply = respond("Quelle est la capitale de l'Australie ?", [], [], [], assistant)
    assert not reply.answer.answered
    chat = reply.history[-1]["content"]
    assert "Je ne trouve pas la réponse dans les articles indexés." in chat
    assert CLOSEST_HEADING in chat and CLOSEST_HEADING in reply.panel
    assert "qa-cite-ref" not in chat


@pytest.mark.parametrize("message", [
    INJECTION,
    INJECTION + " Quelle est la peine prévue ?",
    "Quelle est la peine prévue ? 🤔🙏🏽",
    "{{constructor.constructor('alert(1)')()}} ${alert(1)} *gras* $$x^2$$",
])
def test_whatever_a_reader_types_stays_text(assistant, message):
    reply = respond(message, [], [], [], assistant)
    shown = _contents(reply) + reply.panel
    assert "<img" not in shown and "<script" not in shown
    assert "{{" not in shown and "${" not in shown
    assert inert(message)[:40] in reply.history[0]["content"]


# --------------------------------------------------------------------------- follow-ups

@pytest.mark.parametrize("question", [
    "Et qui l'a annoncé ?", "Qui l'a annoncé ?", "Et Wish ?", "Pourquoi ?",
    "Combien de temps durera-t-elle ?", "Qui les a saisis ?", "Comment ça ?",
])
def test_follow_ups_are_recognised(question):
    assert is_follow_up(question)


@pytest.mark.parametrize("question", [
    "Quelle est la peine prévue ?", "Quelle est la capitale de l'Australie ?",
    SHEIN_QUESTION, "Quelles associations récoltent des contenus signalés ?",
    "Que s'est-il passé avec Wish en 2021 ?", "Qui a saisi le parquet ?",
])
def test_standalone_questions_are_left_alone(question):
    assert not is_follow_up(question)
    assert contextualize(question, [SHEIN_QUESTION]) == question


def test_contextualize_puts_the_topic_before_the_follow_up():
    query = contextualize(FOLLOW_UP, [SHEIN_QUESTION])
    assert "Shein" in query and "suspendre" in query and query.endswith(FOLLOW_UP)
    # the earlier question word would make the engine look for a cause again
    assert not query.startswith("Pourquoi")
    assert contextualize(FOLLOW_UP, []) == FOLLOW_UP
    assert contextualize("", [SHEIN_QUESTION]) == ""


def test_chained_follow_ups_keep_the_question_that_set_the_topic():
    history = [SHEIN_QUESTION, FOLLOW_UP, "Et quand ?"]
    assert context_questions(history) == [SHEIN_QUESTION, "Et quand ?"]
    assert "Shein" in contextualize("Et pourquoi ?", history)
    assert context_questions(["Quelle est la peine prévue ?", SHEIN_QUESTION]) == [SHEIN_QUESTION]


def test_follow_up_is_answered_in_context_but_shown_as_typed(assistant):
    first = respond(SHEIN_QUESTION, [], [], [], assistant)
    second = respond(FOLLOW_UP, first.history, first.asked, first.sections, assistant)
    assert second.history[-2]["content"] == format_question(FOLLOW_UP)
    assert "Shein" in second.answer.question and "suspendre" in second.answer.question
    assert second.answer.answered
    cited = {c.article_id for c in second.answer.citations}
    assert cited == {"shein-procedure-suspension"}
    assert any("a annoncé le ministère de l’Economie et des finances" in c.quote
               for c in second.answer.citations)
    assert 'href="#cite-2-1"' in second.history[-1]["content"]
    assert "Comprise comme la suite de" in second.panel
    assert second.asked == [SHEIN_QUESTION, FOLLOW_UP]


# --------------------------------------------------------------------------- app and command

def test_create_app_builds_a_french_page_without_analytics(assistant):
    demo = web.create_app(assistant)
    assert demo.analytics_enabled is False
    assert "3 articles" in demo.title
    config = demo.get_config_file()
    names = [d.get("api_name") for d in config["dependencies"]]
    assert "ask" in names
    page_header = header(assistant)
    assert "3 articles, " in page_header and " passages" in page_header
    examples = web.corpus_examples(assistant)
    assert "Quelle est la peine prévue ?" in examples


def test_qa_help_does_not_import_gradio():
    code = "import sys, qa.cli; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.fixture
def fake_serve(monkeypatch):
    """`qa serve` with the serving recorded instead of done: the settings it would
    listen with, and whether its loader builds the index with progress shown."""
    import qa.web.server as server

    launched, loaded = {}, {}
    fake = SimpleNamespace(index=SimpleNamespace(manifest=SimpleNamespace(counts=Counts(3, 7)),
                                                 articles={}, n_chunks=7))

    def load(settings, progress=False):
        loaded.update(settings=settings, progress=progress)
        return fake

    def serve(settings, load_assistant):
        launched.update(settings=settings, assistant=load_assistant())

    monkeypatch.setattr(web.Assistant, "load", staticmethod(load))
    monkeypatch.setattr(server, "serve", serve)
    return launched, loaded


def test_serve_builds_the_index_then_launches_on_the_configured_address(fake_serve, monkeypatch):
    from qa.cli import cli

    launched, loaded = fake_serve
    monkeypatch.setenv("QA_PORT", "7999")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    assert loaded["progress"] is True and launched["assistant"] is not None
    assert launched["settings"].host == "127.0.0.1" and launched["settings"].port == 7999
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert launched["settings"].host == "0.0.0.0" and launched["settings"].port == 8123


def test_serve_reports_package_errors_on_one_line(monkeypatch):
    from qa.cli import cli

    from .web_support import free_port

    def fail(settings, progress=False):
        raise QAError("Aucun article dans corpus/.")

    monkeypatch.setattr(web.Assistant, "load", staticmethod(fail))
    monkeypatch.setenv("QA_PORT", str(free_port()))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1 and "Aucun article" in result.output


def test_serve_refuses_a_short_token_without_repeating_it(monkeypatch):
    from qa.cli import cli

    monkeypatch.setenv("QA_EDITOR_TOKEN", "court")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 2 and "QA_EDITOR_TOKEN" in result.output
    assert "court" not in result.output  # a credential is never repeated


def test_app_py_is_a_thin_launcher():
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    assert "from qa.cli import main" in source and 'if __name__ == "__main__":' in source
