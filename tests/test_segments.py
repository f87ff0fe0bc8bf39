"""Segments: an update writes only its own articles, merges keep the count of
segments logarithmic without re-embedding, and nothing of a removed article is
found any more."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant
from qa.index.segments import MAX_DEAD_SHARE, MERGE_FACTOR, TIER_BASE_CHUNKS, merge_plan
from qa.index.view import load
from qa.index.writer import load_or_build

from .test_updates import CountingEmbedder

TOPICS = ["la voile à Brest", "le cidre de Cornouaille", "le port de Lorient",
          "les crêpes de Quimper", "le phare d'Eckmühl", "la forêt de Brocéliande",
          "les îles du Ponant", "le festival de Lorient", "les marais de Guérande",
          "le pont de Saint-Nazaire"]


def _article(folder: Path, i: int) -> Path:
    path = folder / f"breve-{i}.txt"
    path.write_text(f"Brève numéro {i} sur {TOPICS[i]}\n\nLa rédaction consacre la brève "
                    f"numéro {i} à {TOPICS[i]}. Le sujet a été choisi par les lecteurs.\n",
                    encoding="utf-8")
    return path


@pytest.fixture
def live(fresh_settings, embedder) -> Assistant:
    counting = CountingEmbedder(embedder)
    assistant = Assistant.load(fresh_settings, embedder=counting)
    counting.encoded = 0
    return assistant


# --------------------------------------------------------------------------- policy

def test_small_segments_of_one_tier_are_merged():
    assert merge_plan([50_000] + [400] * (MERGE_FACTOR - 1), [50_000] + [400] * 7) == []
    assert merge_plan([50_000] + [400] * MERGE_FACTOR, [50_000] + [400] * 8) == [
        list(range(1, MERGE_FACTOR + 1))]


def test_a_big_segment_is_left_alone_by_small_additions():
    live = [TIER_BASE_CHUNKS * MERGE_FACTOR ** 2, 3_000, 3_000, 500]
    assert merge_plan(live, live) == []


def test_a_mostly_dead_segment_is_rewritten_alone():
    share = MAX_DEAD_SHARE + 0.1
    assert merge_plan([10_000, 5_000], [10_000, int(5_000 / (1 - share))]) == [[1]]


# --------------------------------------------------------------------------- index

def test_an_add_writes_one_segment_and_leaves_the_others_untouched(live, tmp_path):
    segments = Path(live.settings.index_dir) / "segments"
    before = {p.name: os.stat(p / "arrays.npz").st_mtime_ns for p in segments.iterdir()}
    live.add([_article(tmp_path, 0)])
    after = {p.name: os.stat(p / "arrays.npz").st_mtime_ns for p in segments.iterdir()}
    assert len(after) == len(before) + 1
    assert {name: after[name] for name in before} == before
    assert live.embedder.encoded < 10  # the brief's chunk and sentences, nothing else


def test_many_adds_are_merged_without_re_embedding(live, tmp_path):
    for i in range(MERGE_FACTOR + 1):
        live.add([_article(tmp_path, i)])
    encoded_by_adds = live.embedder.encoded
    index = live.index
    # 1 seed segment + 9 one-article segments: the 8 smallest merged into one.
    assert len(index.segments) <= 3
    assert encoded_by_adds <= (MERGE_FACTOR + 1) * 4  # each brief encoded once, when added
    assert index.store.ntotal == index.n_chunks == len(set(index.store.ids()))
    for position, chunk in enumerate(index.chunks):
        [row] = [r for r in index.chunk_rows_of(chunk.article_id)
                 if index.chunk_position(int(r)) == position]
        assert index.chunk_position(int(row)) == position
    reloaded = load(live.settings.index_dir)
    assert list(reloaded.chunks) == list(index.chunks)
    answer = live.answer("Quel sujet la brève numéro 7 traite-t-elle ?")
    assert answer.citations and answer.citations[0].article_id == "breve-7"


def test_a_removed_article_leaves_every_search(live, tmp_path):
    live.add([_article(tmp_path, 3)])
    assert live.search("crêpes de Quimper", retriever="bm25")[0].article.id == "breve-3"
    live.remove(["breve-3"])
    for retriever in ("bm25", "dense", "hybrid"):
        hits = live.search("Brève numéro 3 sur les crêpes de Quimper", retriever=retriever)
        assert all(h.article.id != "breve-3" for h in hits), retriever
    assert live.index.sentence_terms.documents_with("quimp").size == 0
    # The emptied segment is gone; the seed segment was never rewritten.
    assert len(live.index.segments) == 1


def test_an_old_index_still_answers_after_its_files_are_gone(live, tmp_path):
    old = live.index
    live.add([_article(tmp_path, 1)])
    live.add([_article(tmp_path, 2)])
    live.remove(["breve-1", "breve-2", "grok-deepfakes-enquete"])  # seed segment rewritten
    gone = Path(live.settings.index_dir) / "segments" / old.segments[0].name
    assert not gone.exists()
    # A reader holding the previous generation keeps its arrays and open files.
    reader = Assistant(live.settings, live.embedder, old, live.answerer)
    answer = reader.answer("Quelle est la peine prévue ?")
    assert answer.answered and "grok" in answer.citations[0].article_id


def test_a_renamed_file_is_not_re_embedded(live):
    corpus = Path(live.settings.corpus_dir)
    (corpus / "shein-procedure-suspension.md").rename(corpus / "shein.md")
    live.embedder.encoded = 0
    report = live.refresh()
    assert report is not None and not report.changed and live.embedder.encoded == 0
    assert live.index.articles["shein-procedure-suspension"].path.endswith("shein.md")
    live.add([_article(corpus.parent, 4)])  # a later update keeps the new path
    again = load(live.settings.index_dir)
    assert again.articles["shein-procedure-suspension"].path.endswith("shein.md")
    assert np.isfinite(live.index.sentence_vectors[[0]]).all()


def test_a_refresh_reads_only_the_files_that_changed(live, monkeypatch):
    import qa.corpus.scan

    corpus = Path(live.settings.corpus_dir)
    _article(corpus, 5)
    (corpus / "vide.txt").write_text("   ", encoding="utf-8")
    read = []
    real_read = qa.corpus.scan._read
    monkeypatch.setattr(qa.corpus.scan, "_read", lambda path, *a: read.append(path.name)
                        or real_read(path, *a))
    report = live.refresh()
    assert sorted(read) == ["breve-5.txt", "vide.txt"]
    assert report.added == ("breve-5",) and report.unchanged == 3
    # The broken file is remembered and reported again at the next start, unread.
    read.clear()
    index, again = load_or_build(live.settings, live.embedder)
    assert again is None and read == []
    assert any(p.path.endswith("vide.txt") for p in index.manifest.corpus_problems)


def test_updates_through_a_graph_store(live, tmp_path, monkeypatch):
    import qa.index.vector_store

    # A tiny exact-search limit puts the store past it with a few briefs: the same
    # code paths as a corpus of more than 40,000 chunks, in seconds.
    monkeypatch.setattr(qa.index.vector_store, "FLAT_LIMIT", 6)
    live.add([_article(tmp_path, i) for i in range(6)])
    index = live.index
    assert index.store.kind == qa.index.vector_store.HNSW
    assert index.store.ntotal == index.n_chunks
    live.remove(["breve-2"])
    assert live.index.store.kind == qa.index.vector_store.HNSW
    hits = live.search("Brève numéro 2 sur le port de Lorient", retriever="dense", k=20)
    assert hits and all(h.article.id != "breve-2" for h in hits)
    reloaded = load(live.settings.index_dir)
    assert reloaded.store.kind == qa.index.vector_store.HNSW
    assert sorted(reloaded.store.ids()) == sorted(live.index.store.ids())
    answer = Assistant(live.settings, live.embedder, reloaded, live.answerer).answer(
        "Quel sujet la brève numéro 5 traite-t-elle ?")
    assert answer.citations and answer.citations[0].article_id == "breve-5"
