"""The index in Qdrant (QA_STORE=qdrant): the same index and the same answers as the
local store, updates by content hash, rebuilds behind an alias, and killed updates that
the next run finishes.

Every test runs against the client's local mode in a temporary folder, and again
against the server at QA_QDRANT_URL when it is set (marker `qdrant_server`, each test
in its own collection, dropped afterwards)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

pytest.importorskip("qdrant_client", reason="qdrant-client n'est pas installé "
                                            "(pip install 'qa-fr[qdrant]')")

from qa import Assistant  # noqa: E402
from qa.index.qdrant import engine as eng  # noqa: E402
from qa.index.qdrant import writer as qwriter  # noqa: E402
from qa.index.qdrant.view import scroll  # noqa: E402

from .conftest import EVALS, ROOT  # noqa: E402

# Read at import: the autouse fixture of conftest clears QA_* variables for each test.
SERVER_URL = os.environ.get("QA_QDRANT_URL", "")
SERVER_KEY = os.environ.get("QA_QDRANT_API_KEY", "")
TARGETS = [
    "local",
    pytest.param("server", marks=[pytest.mark.qdrant_server, pytest.mark.skipif(
        not SERVER_URL, reason="QA_QDRANT_URL n'est pas défini : pas de serveur Qdrant")]),
]
PRESSE = ("La presse régionale en Bretagne\n\n" + " ".join(
    f"Le quotidien numéro {n} de Bretagne a publié {n * 7} articles sur la pêche, "
    f"les ports et les élections municipales de l'année {1990 + n}." for n in range(40)) + "\n")
CANNES = ("Palme d'or à Cannes\n\nLe jury du festival de Cannes a attribué samedi la Palme "
          "d'or au film « Les Marées de Bretagne », tourné à Douarnenez par Anne Le Goff.\n")


def _questions() -> list[str]:
    rows = []
    for name in ("seed_qa_dev.jsonl", "unanswerable_fr.jsonl"):
        rows += [json.loads(line) for line in (EVALS / name).read_text("utf-8").splitlines()
                 if line.strip()]
    return [row["question"] for row in rows]


def _on_qdrant(settings, target: str, folder: Path):
    if target == "server":
        return replace(settings, store="qdrant", qdrant_url=SERVER_URL, qdrant_api_key=SERVER_KEY,
                       qdrant_collection=f"qa-test-{uuid.uuid4().hex[:8]}")
    return replace(settings, store="qdrant", qdrant_path=str(folder))


def _drop(settings) -> None:
    if settings.qdrant_url:
        engine = eng.engine_for(settings)
        alias = settings.qdrant_collection
        current = eng.aliased(engine, alias)
        for name in [*eng.leftovers(engine, alias), *([current] if current else [])]:
            eng.drop(engine, name)
    eng.close_engines()


@pytest.fixture(scope="module", params=TARGETS)
def built(request, settings_for_tests, embedder, tmp_path_factory):
    """The seed corpus indexed once in Qdrant: its settings and its store folder."""
    base = tmp_path_factory.mktemp("qdrant")
    shutil.copytree(Path(settings_for_tests.corpus_dir), base / "corpus")
    settings = _on_qdrant(replace(settings_for_tests, corpus_dir=base / "corpus",
                                  index_dir=base / "index"), request.param, base / "store")
    Assistant.load(settings, embedder=embedder)
    eng.close_engines()
    yield settings
    _drop(settings)


@pytest.fixture
def store(built, embedder, tmp_path):
    """A private copy of the built store (local mode copies the folder; a server builds)."""
    shutil.copytree(Path(built.corpus_dir), tmp_path / "corpus")
    settings = replace(built, corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    if built.qdrant_url:
        settings = replace(settings, qdrant_collection=f"qa-test-{uuid.uuid4().hex[:8]}")
    else:
        eng.close_engines()
        shutil.copytree(built.qdrant_path, tmp_path / "store")
        settings = replace(settings, qdrant_path=str(tmp_path / "store"))
    yield settings
    _drop(settings)


def points(settings) -> dict[str, dict]:
    """Every article, chunk and sentence point behind the alias: id → payload."""
    engine = eng.engine_for(settings)
    return {kind: {str(p.id): p.payload for p in scroll(engine, settings.qdrant_collection,
                                                        kind, True)}
            for kind in (eng.ARTICLE, eng.CHUNK, eng.SENTENCE_KIND)}


# ---------------------------------------------------------------- same index, same answers


def test_store_round_trip_matches_the_local_index(built, assistant, embedder):
    qdrant = Assistant.load(built, embedder=embedder)
    local, remote = assistant.index, qdrant.index
    assert remote.manifest.counts == local.manifest.counts
    assert remote.article_hashes == local.article_hashes
    assert remote.passage_counts == local.passage_counts
    assert dict(remote.articles.items()) == dict(local.articles)
    assert list(remote.chunks) == list(local.chunks)
    for chunk in remote.chunks:  # exact offsets
        assert remote.articles[chunk.article_id].text[chunk.start:chunk.end] == chunk.text
    assert qdrant.last_update is None  # the corpus did not change: nothing re-embedded


@pytest.mark.parametrize("retriever", ["hybrid", "dense", "bm25"])
def test_retrievers_rank_as_the_local_store(built, assistant, embedder, retriever):
    qdrant = Assistant.load(built, embedder=embedder)
    for question in _questions():
        local = assistant.search(question, k=4, retriever=retriever)
        remote = qdrant.search(question, k=4, retriever=retriever)
        assert [h.chunk for h in remote] == [h.chunk for h in local], question
        assert [h.score for h in remote] == pytest.approx([h.score for h in local], abs=1e-4)


def test_seed_questions_are_answered_the_same(built, assistant, embedder):
    qdrant = Assistant.load(built, embedder=embedder)
    for question in _questions():
        local, remote = assistant.answer(question), qdrant.answer(question)
        assert (remote.text, remote.answered, remote.citations) == (
            local.text, local.answered, local.citations), question
        assert remote.confidence == pytest.approx(local.confidence, abs=1e-3)


def test_the_reader_answers_the_same_on_both_stores(built, assistant, embedder):
    from qa.answering.assistant import default_answerer

    settings = replace(assistant.settings, answerer="reader")
    reader = default_answerer(settings)
    local = Assistant(settings, embedder, assistant.index, reader)
    remote = Assistant(replace(built, answerer="reader"), embedder,
                       Assistant.load(built, embedder=embedder).index, reader)
    for question in _questions()[:6]:
        a, b = local.answer(question), remote.answer(question)
        assert (b.text, b.answered, b.citations, b.short_answer) == (
            a.text, a.answered, a.citations, a.short_answer), question
        assert [p.article_id for p in b.passages] == [p.article_id for p in a.passages]


# ---------------------------------------------------------------- the lifecycle


def test_add_update_remove(store, embedder, tmp_path):
    live = Assistant.load(store, embedder=embedder)
    source = tmp_path / "cannes.txt"
    source.write_text(CANNES, encoding="utf-8")
    result = live.add([source])
    assert result.report.added == ("cannes",) and result.report.unchanged == 3
    answer = live.answer("Quel film a reçu la Palme d'or ?")
    assert answer.answered and answer.citations[0].article_id == "cannes"
    assert "Marées de Bretagne" in answer.text

    copy = tmp_path / "cannes-bis.txt"  # the same content again: stored once
    copy.write_text(CANNES, encoding="utf-8")
    assert live.add([copy]).report is None

    edited = Path(store.corpus_dir) / "cannes.txt"  # edited by hand: re-embedded alone
    edited.write_text(CANNES.replace("samedi", "dimanche"), encoding="utf-8")
    report = live.refresh()
    assert report.updated == ("cannes",) and report.unchanged == 3 and not report.added
    stored = points(store)
    assert {p["article_hash"] for p in stored[eng.CHUNK].values()
            if p["article_id"] == "cannes"} == {live.index.article_hashes["cannes"]}

    report = live.remove(["cannes"])
    assert report.removed == ("cannes",)
    assert "cannes" not in live.index.articles
    stored = points(store)
    assert all(p["article_id"] != "cannes" for kind in stored.values() for p in kind.values())
    assert live.index.manifest.counts.articles == 3
    after = live.answer("Quel film a reçu la Palme d'or ?")
    assert all(p.article_id != "cannes" for p in after.passages)


def test_a_rebuild_switches_the_alias_and_readers_never_see_it_half_built(store, embedder):
    reader = Assistant.load(store, embedder=embedder)
    engine = eng.engine_for(store)
    before = eng.aliased(engine, store.qdrant_collection)
    question = "Qui a saisi le parquet de Paris au sujet des deepfakes de Grok ?"
    expected = reader.answer(question).text
    seen = []

    def meanwhile(done, total):  # called while the new collection fills
        seen.append((eng.aliased(engine, store.qdrant_collection),
                     len(reader.index.articles), reader.answer(question).text))

    writer = Assistant.load(store, embedder=embedder)
    report = qwriter.load_or_build(store, embedder, rebuild=True, on_progress=meanwhile)[1]
    assert report.rebuilt and seen
    assert all(alias == before and n == 3 and text == expected for alias, n, text in seen)
    after = eng.aliased(engine, store.qdrant_collection)
    assert after != before and eng.leftovers(engine, store.qdrant_collection) == []
    assert reader.answer(question).text == expected  # the same alias, the new collection
    assert writer.index.manifest.counts == reader.index.manifest.counts


def test_a_read_replica_without_a_corpus_folder_serves_the_index(built, embedder, tmp_path):
    replica = Assistant.load(replace(built, corpus_dir=tmp_path / "absent"), embedder=embedder)
    assert replica.last_update is None and len(replica.index.articles) == 3
    assert replica.answer("Quelle est la peine prévue ?").answered


def test_missing_client_gives_the_install_line(monkeypatch, store):
    from qa.errors import SettingsError

    monkeypatch.setattr(eng, "QdrantClient", None)
    with pytest.raises(SettingsError, match=r"pip install 'qa-fr\[qdrant\]'"):
        eng.engine_for(store)


# ---------------------------------------------------------------- the kill drill

_DYING = """
import os, signal, sys
import importlib
module, name, at = sys.argv[1], sys.argv[2], int(sys.argv[3])
owner = importlib.import_module(module)
original, calls = getattr(owner, name), [0]
def dying(*args, **kwargs):
    calls[0] += 1
    if calls[0] == at:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
setattr(owner, name, dying)
from qa.cli import main
main(sys.argv[4:])
"""
W = "qa.index.qdrant.writer"


def _run_dying(settings, where: tuple[str, str, int], *command: str) -> int:
    eng.close_engines()  # local mode: one process at a time holds the folder
    env = os.environ | {"QA_STORE": "qdrant", "QA_CORPUS_DIR": str(settings.corpus_dir),
                        "QA_INDEX_DIR": str(settings.index_dir),
                        "QA_CACHE_DIR": str(settings.cache_dir),
                        "QA_QDRANT_COLLECTION": settings.qdrant_collection}
    env |= ({"QA_QDRANT_URL": settings.qdrant_url, "QA_QDRANT_API_KEY": SERVER_KEY}
            if settings.qdrant_url else {"QA_QDRANT_PATH": settings.qdrant_path})
    module, name, at = where
    done = subprocess.run([sys.executable, "-c", _DYING, module, name, str(at), *command],
                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]  # killed where asked, not failed
    return done.returncode


# The writes of `qa add` on an index of the seed: 1 the state with the pending
# article, 2 its chunks and sentences, 3 its article point (the commit), then the
# sweep of older versions (delete 1), then 4 the final state.
KILLS = {
    "chunks written, article not committed": (W, "_upsert", 3),
    "committed, older versions not swept": (W, "_delete", 1),
    "everything but the final state": (W, "_upsert", 4),
}


@pytest.fixture(scope="module")
def clean_after_add(built, embedder, tmp_path_factory):
    """The points, counts and corpus hashes of a clean build of the seed plus PRESSE."""
    base = tmp_path_factory.mktemp("clean")
    shutil.copytree(built.corpus_dir, base / "corpus")
    (base / "corpus" / "presse.txt").write_text(PRESSE, encoding="utf-8")
    clean = replace(built, corpus_dir=base / "corpus", index_dir=base / "index")
    clean = replace(clean, qdrant_collection=f"qa-test-{uuid.uuid4().hex[:8]}") if (
        built.qdrant_url) else replace(clean, qdrant_path=str(base / "store"))
    manifest = Assistant.load(clean, embedder=embedder).index.manifest
    found = points(clean)
    _drop(clean)
    return found, manifest.counts, manifest.corpus_files


@pytest.mark.parametrize("moment", list(KILLS))
def test_a_killed_add_is_finished_by_running_it_again(store, embedder, tmp_path, moment,
                                                      clean_after_add):
    seed = set(Assistant.load(store, embedder=embedder).index.articles)
    source = tmp_path / "presse.txt"
    source.write_text(PRESSE, encoding="utf-8")
    assert _run_dying(store, KILLS[moment], "add", str(source)) == -9
    live = Assistant.load(store, embedder=embedder)  # readers: the old or the new state
    assert set(live.index.articles) in (seed, seed | {"presse"})
    live.add([source])  # the same command again finishes the job
    assert len(list(Path(store.corpus_dir).glob("presse*.txt"))) == 1
    found, counts, corpus_files = clean_after_add
    assert points(store) == found
    assert live.index.manifest.counts == counts
    assert live.index.manifest.corpus_files == corpus_files


def test_a_killed_remove_and_rebuild_are_finished_by_running_them_again(store, embedder):
    before = points(store)
    assert _run_dying(store, (W, "_delete", 2), "remove", "shein-menace-interdiction") == -9
    live = Assistant.load(store, embedder=embedder)
    assert "shein-menace-interdiction" not in live.index.articles  # its point went first
    assert all(h.article.id != "shein-menace-interdiction"
               for h in live.search("Shein menace interdiction", retriever="bm25"))
    live.refresh()  # the corpus file is already in the trash: the next run sweeps the rest
    expected = {kind: {i: p for i, p in found.items()
                       if p["article_id"] != "shein-menace-interdiction"}
                for kind, found in before.items()}
    assert points(store) == expected

    engine = eng.engine_for(store)
    current = eng.aliased(engine, store.qdrant_collection)
    assert _run_dying(store, ("qa.index.qdrant.engine", "switch_alias", 1), "index",
                      "--rebuild") == -9
    engine = eng.engine_for(store)
    assert eng.aliased(engine, store.qdrant_collection) == current  # readers unaffected
    assert len(eng.leftovers(engine, store.qdrant_collection)) == 1  # the half-done one
    assert points(store) == expected
    qwriter.load_or_build(store, embedder, rebuild=True)
    assert eng.leftovers(engine, store.qdrant_collection) == []
    assert eng.aliased(engine, store.qdrant_collection) != current
    assert points(store) == expected
