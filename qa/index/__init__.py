"""Stage 3, the index: articles → a searchable, incrementally updated folder.

Owns chunking with exact offsets, the typed manifest, segments, BM25 postings, the
vector store, the writer (updates under a lock, atomic publishing, merges), the
corpus-side updates of `qa add` / `qa remove`, and the loaded `Index` that searches
read. Does not own the embedding model (it is handed an `Embedder`), ranking fusion or
answers (`qa.answering`).
"""

from qa.index.updates import AddResult, add_paths, remove_articles
from qa.index.view import Index, load
from qa.index.writer import UpdateReport, apply_changes, load_or_build, update

__all__ = ["AddResult", "Index", "UpdateReport", "add_paths", "apply_changes", "load",
           "load_or_build", "remove_articles", "update"]
