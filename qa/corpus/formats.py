"""Which reader reads which file: the registry of formats by file suffix, and the list
of accepted formats that messages show to users."""

from __future__ import annotations

from qa.corpus.html import read_html
from qa.corpus.jsonl import read_jsonl
from qa.corpus.markdown import read_markdown
from qa.corpus.pdf import read_pdf
from qa.corpus.plaintext import read_text
from qa.corpus.source import Reader

__all__ = ["ACCEPTED_FORMATS", "READERS"]

READERS: dict[str, Reader] = {
    ".md": read_markdown,
    ".txt": read_text,
    ".jsonl": read_jsonl,
    ".html": read_html,
    ".htm": read_html,
    ".pdf": read_pdf,
}

# In READERS order, which groups the formats by kind: text, then web page, then PDF.
ACCEPTED_FORMATS = ", ".join(READERS)
