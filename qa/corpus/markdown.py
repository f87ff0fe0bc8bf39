"""The Markdown reader: one article per `.md` file, with optional YAML front matter
(id, title, source, date, tag, language, url) and an optional `# Title` heading."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from qa.corpus.source import (
    CorpusFileError,
    Located,
    SourceFile,
    clean_body,
    decode_text,
    make_article,
    meta_value,
    require_text,
)
from qa.text import fold, nfc

__all__ = ["read_markdown"]

_FRONT_MATTER_END = re.compile(r"^(?:---|\.\.\.)[ \t]*$", re.MULTILINE)
_HEADING = re.compile(r"\A\s*#[ \t]+(.+?)[ \t#]*(?:\n|\Z)")


def read_markdown(source: SourceFile, report: Callable[[CorpusFileError], None]) -> list[Located]:
    """A Markdown article, with optional YAML front matter and `# Title` heading."""
    text = decode_text(source.data)
    require_text(text)
    meta: dict[str, Any] = {}
    body = text
    body_line = 1
    if text.startswith("---\n") or text.rstrip() == "---":
        end = _FRONT_MATTER_END.search(text, 4)
        if end is None:
            raise CorpusFileError(
                "en-tête YAML non fermé — ajoutez une ligne `---` après les métadonnées", 1
            )
        try:
            loaded = yaml.safe_load(text[4 : end.start()])
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise CorpusFileError(
                f"en-tête YAML invalide ({reason}) — corrigez la syntaxe `clé: valeur`", line
            ) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise CorpusFileError(
                "l'en-tête YAML doit être une liste de `clé: valeur` (id, title, source, "
                "date, tag, language, url)",
                2,
            )
        meta = {str(key).lower(): value for key, value in loaded.items()}
        body = text[end.end() :]
        body_line = text[: end.end() + 1].count("\n") + 1
    title = meta_value(meta.get("title"))
    heading = _HEADING.match(body)
    # The heading is the title when the front matter has none; a heading that repeats
    # the front-matter title would only duplicate it in the text.
    if heading and (not title or fold(heading.group(1)) == fold(title)):
        title = title or nfc(heading.group(1).strip())
        body = body[heading.end() :]
    body = clean_body(body)
    if not body:
        raise CorpusFileError(
            "aucun texte d'article après l'en-tête — ajoutez le texte sous l'en-tête ou "
            "supprimez le fichier",
            body_line,
        )
    article = make_article(
        source,
        id=meta_value(meta.get("id")) or source.stem,
        title=title or source.stem,
        text=body,
        meta=meta,
    )
    return [(article, None)]
