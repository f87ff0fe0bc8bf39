"""The reader answerer over the seed corpus, with the committed weights: exact short
answers inside exactly quoted sentences, reranked passages, refusal, the choice of
answerer by setting, and the short answer in the CLI and the web page."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from qa import Assistant, Settings
from qa.answering.assistant import default_answerer
from qa.answering.reader import Candidate, Fusion, ReaderAnswerer
from qa.answering.sentence import ExtractiveAnswerer
from qa.cli import cli
from qa.errors import SettingsError
from qa.reader import Reading
from qa.web.render import format_answer, format_sources


@pytest.fixture(scope="module")
def reader_assistant(assistant) -> Assistant:
    """The session's model and index, answered by the trained reader."""
    settings = replace(assistant.settings, answerer="reader")
    return Assistant(settings, assistant.embedder, assistant.index, default_answerer(settings))


QUESTIONS = [
    ("Qui a saisi le parquet de Paris au sujet des deepfakes de Grok ?", "Delaporte"),
    ("Sur quelle chaîne Roland Lescure était-il interrogé ?", "BFM TV"),
    ("Sur quel article du code pénal se fonde l'enquête sur X ?", "226-8-1"),
]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_short_answer_is_the_articles_words_inside_the_quoted_sentence(
        reader_assistant, question, expected):
    answer = reader_assistant.answer(question)
    assert answer.answered and answer.short_answer is not None
    short = answer.short_answer
    article = reader_assistant.index.articles[short.article_id]
    assert article.text[short.start:short.end] == short.text
    assert expected in short.text and len(short.text) < 60
    cited = answer.citations[short.n - 1]
    assert cited.article_id == short.article_id
    assert cited.start <= short.start < short.end <= cited.end
    for c in answer.citations:
        assert reader_assistant.index.articles[c.article_id].text[c.start:c.end] == c.quote
    assert answer.text.startswith(short.text + " — ")
    assert answer.text.endswith("[1]")


def test_passages_are_reranked_from_the_retrieved_candidates(reader_assistant):
    question = "Qui était à l'origine du déréférencement de Wish ?"
    answer = reader_assistant.answer(question, k=3)
    retrieved = reader_assistant.search(question, k=reader_assistant.answerer.depth)
    keys = {(h.chunk.article_id, h.chunk.start) for h in retrieved}
    assert len(answer.passages) == 3
    assert {(p.article_id, p.start) for p in answer.passages} <= keys
    assert answer.short_answer.text == "Bruno Le Maire"
    assert answer.passages[0].article_id == answer.short_answer.article_id


class _CountingReader:
    """The real reader, counting the passages it is asked to read."""

    def __init__(self, reader):
        self._reader, self.passages_read = reader, 0

    def read(self, question, passages):
        self.passages_read += len(passages)
        return self._reader.read(question, passages)

    def __getattr__(self, name):
        return getattr(self._reader, name)


@pytest.mark.parametrize(("sure", "read"), [(0.0, 4), (1.0, 2)])
def test_a_sure_answer_in_the_first_two_passages_spares_reading_the_rest(
        reader_assistant, sure, read):
    counting = _CountingReader(reader_assistant.answerer.reader)
    answerer = ReaderAnswerer(counting, reader_assistant.answerer.threshold, 4, sure)
    assistant = Assistant(reader_assistant.settings, reader_assistant.embedder,
                          reader_assistant.index, answerer)
    answer = assistant.answer("Qui était à l'origine du déréférencement de Wish ?", k=4)
    assert counting.passages_read == read
    assert answer.short_answer.text == "Bruno Le Maire"
    assert len(answer.passages) == 4


def test_the_fusion_weighs_the_retrieval_rank_against_what_the_reader_says():
    def read(hit, relevance, no_answer=0.5, span_score=0.0):
        return Candidate(hit, 0, Reading(relevance, no_answer, 0, 1, span_score))

    first, second = read("first", 1.0), read("second", 2.0)
    # 2.0 - 2.5 × ln 2 < 1.0: the second passage must be clearly better to move up.
    assert [c.hit for c in Fusion(2.5, 0.0, 0.0).ranked([first, second])] == ["first", "second"]
    assert [c.hit for c in Fusion(0.0, 0.0, 0.0).ranked([first, second])] == ["second", "first"]
    assert [c.hit for c in Fusion(2.5, 0.0, 0.0).ranked([first, read("x", 9.0)])][0] == "x"
    sure = read("sure", 1.0, no_answer=0.01)
    assert Fusion(0.0, 0.0, 1.0).ranked([first, sure])[0].hit == "sure"
    spanned = read("spanned", 1.0, span_score=10.0)
    assert Fusion(0.0, 0.2, 0.0).ranked([first, spanned])[0].hit == "spanned"


@pytest.mark.parametrize("question", ["Quelle est la capitale de l'Australie ?",
                                      "Qui a écrit « Les Misérables » ?"])
def test_off_topic_questions_are_refused(reader_assistant, question):
    answer = reader_assistant.answer(question)
    assert not answer.answered and answer.short_answer is None and not answer.citations
    assert answer.passages  # the closest passages are still shown


def test_the_answerer_follows_the_setting(settings_for_tests):
    reader = default_answerer(replace(settings_for_tests, answerer="reader"))
    assert isinstance(reader, ReaderAnswerer) and reader.fusion == Fusion()
    tuned = default_answerer(replace(settings_for_tests, answerer="reader",
                                     reader_fusion=(1.0, 0.2, 0.0)))
    assert tuned.fusion == Fusion(1.0, 0.2, 0.0)
    assert isinstance(default_answerer(replace(settings_for_tests, answerer="sentence")),
                      ExtractiveAnswerer)
    assert Settings.from_env({"QA_ANSWERER": "sentence"}).answerer == "sentence"
    with pytest.raises(SettingsError, match="QA_ANSWERER"):
        Settings.from_env({"QA_ANSWERER": "llm"})
    with pytest.raises(SettingsError, match="QA_RERANK_DEPTH"):
        Settings.from_env({"QA_RERANK_DEPTH": "0"})


def test_the_sentence_answerer_stays_available(assistant):
    settings = replace(assistant.settings, answerer="sentence")
    sentence = Assistant(settings, assistant.embedder, assistant.index,
                         default_answerer(settings))
    answer = sentence.answer("Quelle est la peine prévue ?")
    assert answer.answered and answer.short_answer is None
    assert "deux ans" in answer.text


def test_ask_shows_the_short_answer(settings_for_tests, monkeypatch):
    for name, value in (("QA_CORPUS_DIR", settings_for_tests.corpus_dir),
                        ("QA_INDEX_DIR", settings_for_tests.index_dir),
                        ("QA_CACHE_DIR", settings_for_tests.cache_dir)):
        monkeypatch.setenv(name, str(value))
    question = "Sur quelle chaîne Roland Lescure était-il interrogé ?"
    plain = CliRunner().invoke(cli, ["ask", "--answerer", "reader", question],
                               catch_exceptions=False)
    assert plain.exit_code == 0 and plain.output.startswith("BFM TV — ")
    as_json = CliRunner().invoke(cli, ["ask", "--json", "--answerer", "reader", question],
                                 catch_exceptions=False)
    short = json.loads(as_json.output)["short_answer"]
    assert short["text"] == "BFM TV" and short["end"] - short["start"] == len("BFM TV")


def test_the_page_sets_the_short_answer_apart_and_marks_it_in_the_sentence(reader_assistant):
    answer = reader_assistant.answer("Sur quelle chaîne Roland Lescure était-il interrogé ?")
    chat = format_answer(answer, turn=1)
    assert '<p class="qa-short-answer"><strong>BFM TV</strong></p>' in chat
    assert chat.count("BFM TV") == 2  # set apart, then inside the quoted sentence
    panel = format_sources(answer, reader_assistant.index.articles, turn=1)
    assert 'class="qa-mark qa-exact" data-n="1">BFM TV</mark>' in panel
    assert 'id="cite-1-1"' in panel  # the [1] link still finds its sentence


def test_a_follow_up_is_read_by_the_reader_too(reader_assistant):
    from qa.web.chat import respond

    first = respond("Pourquoi le gouvernement veut-il suspendre Shein ?", [], [], [],
                    reader_assistant)
    second = respond("Et qui l'a annoncé ?", first.history, first.asked, first.sections,
                     reader_assistant)
    assert second.answer is not None and second.answer.answered
    assert second.answer.short_answer is not None
    # Read with the first question's context: the ministry announced it, named as such
    # (« … a annoncé le ministère de l’Economie et des finances », v5 answers
    # « l’Economie et des finances ») or by its seat, Bercy (« Le communiqué de Bercy
    # indique… », v4); reader v3 answered « Premier ministre ».
    short = second.answer.short_answer.text
    assert "Bercy" in short or "l’Economie" in short, short
    assert short in second.answer.text
