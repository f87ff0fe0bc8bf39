"""Incremental updates: only new or changed articles are embedded, duplicates are
stored once, removals are complete, and a killed update never loses the index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from qa import Assistant, IndexLocked
from qa.index.publish import write_lock
from qa.index.view import load

from .conftest import ROOT

CANNES = ("Palme d'or à Cannes\n\nLe jury du festival de Cannes a attribué samedi la Palme "
          "d'or au film « Les Marées de Bretagne », tourné à Douarnenez par Anne Le Goff.\n")
QUESTION = "Quel film a reçu la Palme d'or ?"


class CountingEmbedder:
    """The real embedder, counting the passages it is asked to encode."""

    def __init__(self, embedder):
        self._embedder = embedder
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self._embedder, name)

    def encode(self, texts, kind, progress=False):
        self.encoded += len(texts)
        return self._embedder.encode(texts, kind, progress)


@pytest.fixture
def live(fresh_settings, embedder):
    counting = CountingEmbedder(embedder)
    assistant = Assistant.load(fresh_settings, embedder=counting)
    counting.encoded = 0
    return assistant


def test_add_ask_remove(live, tmp_path):
    source = tmp_path / "cannes.txt"
    source.write_text(CANNES, encoding="utf-8")
    result = live.add([source])
    assert result.report.added == ("cannes",) and result.report.unchanged == 3
    assert live.embedder.encoded < 20  # only the new article's passages and sentences
    answer = live.answer(QUESTION)
    assert answer.answered and "Marées de Bretagne" in answer.text
    assert answer.citations[0].article_id == "cannes"

    report = live.remove(["cannes"])
    assert report.removed == ("cannes",)
    assert "cannes" not in live.index.articles
    assert all(c.article_id != "cannes" for c in live.index.chunks)
    assert live.index.store.ntotal == len(live.index.chunks)
    after = live.answer(QUESTION)
    assert all(c.article_id != "cannes" for c in after.citations)
    assert all(p.article_id != "cannes" for p in after.passages)
    trash = Path(live.settings.corpus_dir) / ".trash"
    assert any(p.name.endswith("cannes.txt") for p in trash.iterdir())  # nothing is lost


def test_same_content_twice_is_stored_once(live, tmp_path):
    first = tmp_path / "cannes.txt"
    first.write_text(CANNES, encoding="utf-8")
    live.add([first])
    copy = tmp_path / "autre-nom.txt"
    copy.write_text(CANNES, encoding="utf-8")
    result = live.add([copy])
    assert result.copied == ()
    assert "déjà dans le corpus" in result.skipped[0] and "cannes" in result.skipped[0]
    seed = next(Path(live.settings.corpus_dir).glob("grok*.md"))
    result = live.add([seed])
    assert result.copied == () and "grok-deepfakes-enquete" in result.skipped[0]
    assert len(live.index.articles) == 4


def test_changed_article_is_re_embedded_alone(live):
    path = Path(live.settings.corpus_dir) / "shein-procedure-suspension.md"
    path.write_text(path.read_text("utf-8").replace("48", "72"), encoding="utf-8")
    report = live.refresh()
    assert report.updated == ("shein-procedure-suspension",)
    assert report.unchanged == 2 and not report.added and not report.removed
    assert "72 prochaines heures" in live.answer(
        "Dans quel délai un premier point d'étape doit-il être fait ?").text


def test_duplicate_files_in_the_corpus_are_indexed_once(live):
    corpus = Path(live.settings.corpus_dir)
    text = (corpus / "grok-deepfakes-enquete.md").read_text("utf-8")
    (corpus / "copie.md").write_text(text.replace("id: grok-deepfakes-enquete", "id: copie"),
                                     encoding="utf-8")
    report = live.refresh()
    assert not report.added and report.duplicates
    assert "copie" not in live.index.articles


def test_jsonl_removal_drops_only_that_line(live):
    corpus = Path(live.settings.corpus_dir)
    rows = [{"id": "breve-1", "title": "Brève 1", "text": "Une brève sur le cinéma breton."},
            {"id": "breve-2", "title": "Brève 2", "text": "Une brève sur la voile à Brest."}]
    (corpus / "breves.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    live.refresh()
    live.remove(["breve-1"])
    assert "breve-2" in live.index.articles and "breve-1" not in live.index.articles
    assert "breve-2" in (corpus / "breves.jsonl").read_text("utf-8")


def test_readers_keep_the_previous_state_during_an_update(live, tmp_path):
    before = live.index
    source = tmp_path / "cannes.txt"
    source.write_text(CANNES, encoding="utf-8")
    answers = []
    worker = threading.Thread(target=lambda: answers.extend(
        live.answer("Quelle est la peine prévue ?") for _ in range(5)))
    worker.start()
    live.add([source])
    worker.join()
    assert all(a.answered and "60 000 euros" in a.text for a in answers)
    assert live.index is not before and "cannes" in live.index.articles


def test_a_second_writer_gets_a_clear_message(fresh_settings):
    index_dir = Path(fresh_settings.index_dir)
    with write_lock(index_dir), pytest.raises(IndexLocked, match="autre processus"), \
            write_lock(index_dir, wait=0.3):
        pass


def test_two_processes_adding_at_once_are_serialised(live, tmp_path):
    sources = []
    for i in range(2):
        path = tmp_path / f"article-{i}.txt"
        path.write_text(f"Article {i}\n\nUn texte unique numéro {i} sur la pêche en Bretagne.",
                        encoding="utf-8")
        sources.append(path)
    procs = [_qa(live.settings, "add", str(p)) for p in sources]
    for proc in procs:
        assert proc.wait(timeout=240) == 0, proc.stderr.read()
    index = load(live.settings.index_dir)
    assert {"article-0", "article-1"} <= set(index.articles)
    assert index.store.ntotal == len(index.chunks)


def _qa(settings, *args: str) -> subprocess.Popen:
    env = os.environ | {"QA_CORPUS_DIR": str(settings.corpus_dir),
                        "QA_INDEX_DIR": str(settings.index_dir),
                        "QA_CACHE_DIR": str(settings.cache_dir)}
    return subprocess.Popen([sys.executable, "-m", "qa", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _state(index) -> tuple:
    return tuple(sorted(index.articles)), len(index.chunks), index.store.ntotal


@pytest.mark.parametrize("delay", [0.5, 4.0, 7.0, "publishing"])
def test_killed_add_leaves_old_or_new_state(live, tmp_path, delay):
    old_state = _state(live.index)
    source = tmp_path / "long.txt"
    source.write_text("Un long article\n\n" + "Une phrase sur la presse régionale. " * 300,
                      encoding="utf-8")
    proc = _qa(live.settings, "add", str(source))
    index_dir = Path(live.settings.index_dir)
    deadline = time.monotonic() + 120
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() < deadline:
        if (any(index_dir.glob(".gen-*.tmp")) if delay == "publishing"
                else time.monotonic() - started > delay):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait()
    state = _state(load(index_dir))
    assert state == old_state or "long" in state[0]
    assert state[1] == state[2]  # vectors and chunks agree
    # Running the same command again finishes the job, without a second copy.
    live.add([source])
    assert "long" in live.index.articles
    assert len(list(Path(live.settings.corpus_dir).glob("long*.txt"))) == 1
    assert not list(index_dir.glob(".gen-*"))


def test_an_id_already_taken_is_refused_up_front(live, tmp_path):
    source = tmp_path / "grok-deepfakes-enquete.txt"
    source.write_text("Autre texte\n\nUn tout autre article, sur la météo.", encoding="utf-8")
    result = live.add([source])
    assert result.copied == ()
    assert "déjà utilisé" in result.skipped[0]
    assert not (Path(live.settings.corpus_dir) / source.name).exists()


class RecordingAnswerer:
    """A custom answerer: names the first hit's article and remembers the indexes it got."""

    def __init__(self):
        self.indexes = []

    def answer(self, index, question, hits, query_vector):
        from qa.answering.base import Draft

        self.indexes.append(index)
        return Draft(f"réponse maison : {hits[0].article.id}", True, (), 1.0)


def test_a_custom_answerer_survives_every_update(fresh_settings, embedder, tmp_path):
    custom = RecordingAnswerer()
    assistant = Assistant.load(fresh_settings, embedder=embedder, answerer=custom)
    source = tmp_path / "cannes.txt"
    source.write_text(CANNES, encoding="utf-8")
    assistant.add([source])
    assert assistant.answerer is custom
    assert assistant.answer(QUESTION).text == "réponse maison : cannes"
    assert "cannes" in custom.indexes[-1].articles  # handed the index after the add
    assistant.remove(["cannes"])
    assistant.refresh()
    result = assistant.answer(QUESTION)
    assert result.text.startswith("réponse maison : ") and "cannes" not in result.text
    assert custom.indexes[-1] is assistant.index
