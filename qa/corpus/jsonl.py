"""The JSON Lines reader: many articles per `.jsonl` file, one JSON object a line.

A bad line is reported on its own, so that the file's other articles still load.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from qa.corpus.source import (
    FIX_HINT,
    CorpusFileError,
    Located,
    SourceFile,
    clean_body,
    decode_text,
    make_article,
    meta_value,
    require_text,
    slugify,
)

__all__ = ["read_jsonl"]


def read_jsonl(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """One article per line: {"id", "title", "text", "url", "date", "source", "tag", "language"}."""
    text = decode_text(source.data)
    require_text(text)
    articles: list[Located] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report(
                CorpusFileError(
                    f"ligne JSON invalide ({exc.msg}) — {FIX_HINT} cette ligne", number
                )
            )
            continue
        if not isinstance(obj, dict):
            report(
                CorpusFileError(
                    f"la ligne n'est pas un objet JSON (reçu : {type(obj).__name__}) — "
                    'attendu {"id": …, "title": …, "text": …}',
                    number,
                )
            )
            continue
        body = obj.get("text")
        body = clean_body(body) if isinstance(body, str) else ""
        if not body:
            report(
                CorpusFileError(
                    'champ "text" absent ou vide — ajoutez le texte de l\'article ou '
                    f"{FIX_HINT} cette ligne",
                    number,
                )
            )
            continue
        raw_id = meta_value(obj.get("id"))
        article = make_article(
            source,
            id=raw_id if slugify(raw_id) else f"{source.stem}-{number}",
            title=meta_value(obj.get("title")),
            text=body,
            meta=obj,
        )
        articles.append((article, number))
    return articles
