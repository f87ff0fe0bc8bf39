"""Chunks carry exact offsets and never exceed the model's window."""

from __future__ import annotations

import pytest

from qa.corpus import load_corpus
from qa.index.chunking import chunk_articles
from qa.schema import Article

from .conftest import CORPUS


@pytest.fixture(scope="module")
def count_tokens(embedder):
    return embedder.count_tokens


def _check(articles, chunks, count_tokens, limit):
    texts = {a.id: a.text for a in articles}
    for chunk in chunks:
        assert texts[chunk.article_id][chunk.start : chunk.end] == chunk.text
        assert chunk.text == chunk.text.strip()
        assert count_tokens(chunk.text) <= limit


@pytest.mark.parametrize("size,overlap", [(256, 48), (64, 16), (32, 8)])
def test_seed_corpus_offsets_are_exact(count_tokens, size, overlap):
    articles = load_corpus(CORPUS).articles
    chunks = chunk_articles(articles, count_tokens, size, overlap)
    _check(articles, chunks, count_tokens, size)
    # Every character of every article is covered by some chunk (no text lost).
    for article in articles:
        covered = set()
        for c in (c for c in chunks if c.article_id == article.id):
            covered.update(range(c.start, c.end))
        missing = [i for i in range(len(article.text)) if i not in covered]
        assert all(article.text[i].isspace() for i in missing)


def test_long_unpunctuated_text_is_still_bounded(count_tokens):
    words = " ".join(f"mot{i} élément" for i in range(3000))
    article = Article("long", "Long", words + " " + "x" * 5000)
    chunks = chunk_articles([article], count_tokens, 128, 16)
    assert len(chunks) > 10
    _check([article], chunks, count_tokens, 128)


def test_repeated_paragraphs_get_distinct_offsets(count_tokens):
    paragraph = "La même phrase revient. Elle revient encore."
    article = Article("rep", "Rep", "\n\n".join([paragraph] * 40))
    chunks = chunk_articles([article], count_tokens, 32, 0)
    _check([article], chunks, count_tokens, 32)
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))
    assert len({c.id for c in chunks}) == len(chunks)


def test_overlap_must_be_smaller_than_size(count_tokens):
    with pytest.raises(ValueError, match="overlap"):
        chunk_articles([Article("a", "A", "texte")], count_tokens, 16, 16)
