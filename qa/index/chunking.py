"""Articles → chunks with exact character offsets.

Splitting is done by langchain-text-splitters on French sentence boundaries first,
measuring length in model tokens (not characters), so that no chunk is ever longer
than the embedding model can read. Offsets are recovered exactly: for every chunk,
`article.text[chunk.start:chunk.end] == chunk.text`. Embedding is left to others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from qa.schema import Article, Chunk

# Paragraphs, then lines, then sentence ends (after . ! ? … and a closing quote),
# then clause marks, then words: the splitter only falls back to a finer one when a
# piece is still too long.
_SEPARATORS = [
    r"\n\n",
    r"\n",
    r"(?<=[.!?…][»”\"')])\s+",
    r"(?<=[.!?…])\s+",
    r"(?<=[;:])\s+",
    r"(?<=,)\s+",
    r"\s+",
    "",
]


def make_splitter(length_function: Callable[[str], int], chunk_tokens: int, overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if overlap >= chunk_tokens:
        raise ValueError(
            f"chunk overlap ({overlap}) must be smaller than chunk size ({chunk_tokens})"
        )
    return RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_tokens,
        chunk_overlap=overlap,
        length_function=length_function,
        strip_whitespace=True,
    )


def chunk_id(article_id: str, start: int, text: str) -> str:
    digest = hashlib.sha256(f"{article_id}\x00{start}\x00{text}".encode()).hexdigest()
    return digest[:20]


def chunk_article(article: Article, splitter) -> list[Chunk]:
    """Split one article; each piece is located in the text to get its offsets."""
    chunks: list[Chunk] = []
    cursor = 0
    for piece in splitter.split_text(article.text):
        # Pieces come in order and may overlap, so search from the previous start.
        start = article.text.find(piece, cursor)
        if start < 0:
            raise RuntimeError(f"chunk not found in article {article.id!r}: {piece[:60]!r}")
        end = start + len(piece)
        chunks.append(Chunk(chunk_id(article.id, start, piece), article.id, start, end, piece))
        cursor = start + 1
    return chunks


def chunk_articles(
    articles: Iterable[Article],
    length_function: Callable[[str], int],
    chunk_tokens: int,
    overlap: int,
) -> list[Chunk]:
    splitter = make_splitter(length_function, chunk_tokens, overlap)
    return [chunk for article in articles for chunk in chunk_article(article, splitter)]
