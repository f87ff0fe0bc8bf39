"""Retrieval: reciprocal rank fusion on its own, and the searches over the real index."""

from __future__ import annotations

import pytest

from qa.answering.retrieval import Ranked, fuse, search


def test_fusion_sums_reciprocal_ranks():
    fused = dict(fuse([Ranked([7, 3], [0.9, 0.8]), Ranked([3, 5], [12.0, 4.0])], rrf_k=60))
    assert fused[3] == pytest.approx(1 / 62 + 1 / 61)
    assert fused[7] == pytest.approx(1 / 61)
    assert fused[5] == pytest.approx(1 / 62)
    assert [c for c, _ in fuse([Ranked([7, 3], []), Ranked([3, 5], [])], 60)] == [3, 7, 5]


def test_fusion_ties_go_to_the_first_ranking():
    # 1 and 2 have the same ranks, swapped: the first retriever's order decides.
    assert [c for c, _ in fuse([Ranked([1, 2], [0, 0]), Ranked([2, 1], [0, 0])], 60)] == [1, 2]
    assert [c for c, _ in fuse([Ranked([2, 1], [0, 0]), Ranked([1, 2], [0, 0])], 60)] == [2, 1]


def test_fusion_with_one_empty_side_keeps_the_other_order():
    only = Ranked([4, 9, 1], [3.0, 2.0, 1.0])
    for rankings in ([only, Ranked([], [])], [Ranked([], []), only]):
        assert [c for c, _ in fuse(rankings, 60)] == [4, 9, 1]
    assert fuse([Ranked([], []), Ranked([], [])], 60) == []


def test_scores_do_not_matter_only_ranks():
    a = fuse([Ranked([1, 2], [100.0, 0.1]), Ranked([2, 1], [1.0, 0.99])], 60)
    b = fuse([Ranked([1, 2], [0.5, 0.4]), Ranked([2, 1], [9.0, 1.0])], 60)
    assert a == b


@pytest.mark.parametrize("retriever", ["hybrid", "dense", "bm25"])
def test_k_larger_than_the_index_returns_every_chunk_once(assistant, retriever):
    index, question = assistant.index, "Quelle est la peine prévue pour les deepfakes ?"
    vector = assistant.embedder.encode([question], "query")[0]
    hits = search(index, question, vector, k=10 * index.n_chunks, retriever=retriever,
                  candidates=5)
    ids = [h.chunk.id for h in hits]
    assert len(ids) == len(set(ids))
    if retriever == "bm25":  # only chunks sharing a stem with the question
        assert 0 < len(ids) <= index.n_chunks
    else:
        assert len(ids) == index.n_chunks


def test_hybrid_hits_carry_both_sides(assistant):
    question = "Qui a saisi le parquet de Paris au sujet des deepfakes de Grok ?"
    hits = assistant.search(question, k=3)
    assert hits[0].dense_rank is not None and hits[0].bm25_rank is not None
    assert hits[0].score == pytest.approx(1 / (60 + hits[0].dense_rank)
                                          + 1 / (60 + hits[0].bm25_rank))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_takes_the_embedding_a_caller_already_has(assistant):
    question = "Qui a saisi le parquet de Paris au sujet des deepfakes de Grok ?"
    vector = assistant.embedder.encode([question], "query")[0]
    given = assistant.search(question, k=5, query_vector=vector)
    assert [h.chunk.id for h in given] == [h.chunk.id for h in assistant.search(question, k=5)]
    # The vector is used, not recomputed: another question's embedding moves the dense side.
    other = assistant.embedder.encode(["Combien coûte une baguette à Lyon ?"], "query")[0]
    moved = assistant.search(question, k=5, query_vector=other)
    assert [h.dense_rank for h in moved] != [h.dense_rank for h in given]


def test_unknown_retriever_is_refused(assistant):
    with pytest.raises(ValueError, match="unknown retriever"):
        search(assistant.index, "x", None, k=3, retriever="sparse")
