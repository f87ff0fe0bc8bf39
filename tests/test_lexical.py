"""BM25 over segments: the scores of one index over all documents, whatever the
split into segments, and removed documents neither found nor counted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qa.index.lexical import K1, B, LexicalIndex, Postings

DOCS = [
    ["amend", "plateform", "suspens"],
    ["amend", "amend", "ministr"],
    ["tribunal", "enquet", "parquet", "enquet"],
    ["plateform", "reseau", "social", "reseau", "contenu"],
    [],
    ["ministr", "economi", "suspens", "plateform"],
]


def reference_scores(docs: list[list[str]], query: list[str]) -> dict[int, float]:
    """Textbook Lucene BM25, written independently of the module."""
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    scores = {}
    for i, doc in enumerate(docs):
        total = 0.0
        for term in query:
            df = sum(term in d for d in docs)
            tf = doc.count(term)
            if tf:
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                total += idf * tf / (tf + K1 * (1 - B + B * len(doc) / avgdl))
        if total:
            scores[i] = total
    return scores


def one_part(docs: list[list[str]]) -> LexicalIndex:
    return LexicalIndex([(Postings.build(docs), np.arange(len(docs)))])


def split(docs: list[list[str]], at: int) -> LexicalIndex:
    return LexicalIndex([(Postings.build(docs[:at]), np.arange(at)),
                         (Postings.build(docs[at:]), np.arange(at, len(docs)))])


@pytest.mark.parametrize("query", [["amend"], ["plateform", "suspens"], ["enquet", "reseau"],
                                   ["amend", "amend"]])
def test_scores_are_bm25(query):
    positions, scores = one_part(DOCS).search(query, 10)
    expected = reference_scores(DOCS, query)
    assert dict(zip(positions.tolist(), scores.tolist(), strict=True)) == pytest.approx(expected)
    assert list(scores) == sorted(scores, reverse=True)


@pytest.mark.parametrize("at", [1, 3, 5])
def test_segments_share_the_corpus_statistics(at):
    query = ["plateform", "ministr", "enquet"]
    whole = one_part(DOCS).search(query, 10)
    parts = split(DOCS, at).search(query, 10)
    assert parts[0].tolist() == whole[0].tolist()
    assert parts[1] == pytest.approx(whole[1])


def test_removed_documents_are_neither_found_nor_counted():
    alive = [0, 2, 3, 5]  # documents 1 and 4 removed
    where = np.full(len(DOCS), -1)
    where[alive] = np.arange(len(alive))
    index = LexicalIndex([(Postings.build(DOCS), where)])
    positions, scores = index.search(["amend", "ministr"], 10)
    survivors = [DOCS[i] for i in alive]
    assert dict(zip(positions.tolist(), scores.tolist(), strict=True)) == pytest.approx(
        reference_scores(survivors, ["amend", "ministr"]))
    assert index.n_docs == 4
    assert index.documents_with("amend").tolist() == [0]


def test_top_k_and_unknown_terms():
    index = one_part(DOCS)
    assert len(index.search(["plateform"], 2)[0]) == 2
    assert len(index.search(["inconnu"], 5)[0]) == 0
    assert len(index.search([], 5)[0]) == 0


def test_concat_keeps_the_chosen_documents(tmp_path):
    a, b = Postings.build(DOCS[:3]), Postings.build(DOCS[3:])
    merged = Postings.concat([(a, np.array([0, 2])), (b, np.array([0, 2]))])
    expected = Postings.build([DOCS[0], DOCS[2], DOCS[3], DOCS[5]])
    merged.save(tmp_path / "p.npz")
    loaded = Postings.load(tmp_path / "p.npz")  # no pickle needed
    for field in ("terms", "starts", "docs", "freqs", "lengths"):
        assert np.array_equal(getattr(loaded, field), getattr(expected, field)), field


FRENCH = [
    "Le gouvernement a engagé une procédure de suspension de la plateforme Shein.",
    "La plateforme risque une amende de 60 000 euros et deux ans d'emprisonnement.",
    "Le parquet de Paris a ouvert une enquête sur les deepfakes générés par Grok.",
    "Les députés ont saisi la justice ; l'enquête vise le réseau social X.",
    "Une amende, une suspension, une enquête : le ministre détaille les sanctions prévues.",
]


@pytest.mark.parametrize("question", ["Quelle amende pour la plateforme ?",
                                      "Qui a ouvert une enquête sur Grok ?",
                                      "suspension enquête ministre sanctions"])
def test_scores_match_the_bm25s_reference(question):
    """As bm25s checks itself against rank_bm25: same tokens, same Lucene BM25 scores."""
    bm25s = pytest.importorskip("bm25s")
    from qa.text import bm25_tokenize, bm25_tokens

    docs = bm25_tokenize(FRENCH)
    reference = bm25s.BM25(method="lucene", k1=K1, b=B)
    reference.index(docs, show_progress=False)  # our tokens as they are: only scoring differs
    query = bm25_tokens(question)
    expected = reference.get_scores(query)
    positions, scores = one_part(docs).search(query, k=len(docs))
    ours = dict(zip(positions.tolist(), scores.tolist(), strict=True))
    assert ours, "the question shares no stem with the fixture"
    for i, score in enumerate(expected):
        assert ours.get(i, 0.0) == pytest.approx(score, rel=1e-5, abs=1e-6)
