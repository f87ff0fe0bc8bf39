"""The sentence answerer on the real index: which sentences it quotes, and when it refuses."""

from __future__ import annotations

import pytest

from qa.answering.base import NOT_FOUND
from qa.answering.sentence import ExtractiveAnswerer


def _draft(assistant, answerer, question):
    vector = assistant.embedder.encode([question], "query")[0]
    hits = assistant.search(question)
    return answerer.answer(assistant.index, question, hits, vector)


def test_a_question_asking_for_a_number_gets_a_sentence_with_one(assistant):
    draft = _draft(assistant, ExtractiveAnswerer(0.0, 2), "Quelle est la peine prévue ?")
    assert draft.answered and any(any(ch.isdigit() for ch in c.quote) for c in draft.citations)
    assert "60 000 euros" in draft.text


def test_citations_quote_the_article_in_reading_order(assistant):
    draft = _draft(assistant, ExtractiveAnswerer(0.0, 2),
                   "Pourquoi le gouvernement a-t-il engagé une procédure de suspension de Shein ?")
    assert 1 <= len(draft.citations) <= 2
    for n, c in enumerate(draft.citations, start=1):
        article = assistant.index.articles[c.article_id]
        assert c.n == n and article.text[c.start:c.end] == c.quote and f"[{n}]" in draft.text
    starts = [(c.article_id, c.start) for c in draft.citations]
    assert starts == sorted(starts)


def test_max_citations_bounds_the_quotes(assistant):
    draft = _draft(assistant, ExtractiveAnswerer(0.0, 1),
                   "Qui a saisi le parquet de Paris au sujet des deepfakes de Grok ?")
    assert len(draft.citations) == 1


@pytest.mark.parametrize("question", ["Quelle est la peine prévue ?",
                                      "Quelle est la capitale de l'Australie ?"])
def test_refuses_below_the_threshold_and_says_so(assistant, question):
    eager = _draft(assistant, ExtractiveAnswerer(0.0, 2), question)
    strict = _draft(assistant, ExtractiveAnswerer(eager.confidence + 1e-3, 2), question)
    assert eager.answered
    assert not strict.answered and strict.text == NOT_FOUND and strict.citations == ()
    assert strict.confidence == pytest.approx(eager.confidence)


def test_an_off_topic_question_is_refused_at_the_calibrated_threshold(assistant):
    calibrated = ExtractiveAnswerer(assistant.settings.answer_threshold, 2)
    assert not _draft(assistant, calibrated, "Quelle est la capitale de l'Australie ?").answered


def test_no_hits_is_a_refusal(assistant):
    vector = assistant.embedder.encode(["x"], "query")[0]
    draft = ExtractiveAnswerer(0.0, 2).answer(assistant.index, "x", [], vector)
    assert not draft.answered and draft.text == NOT_FOUND


def test_needs_the_question_vector(assistant):
    with pytest.raises(ValueError, match="embedding"):
        ExtractiveAnswerer(0.0, 2).answer(assistant.index, "x", [], None)
