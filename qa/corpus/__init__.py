"""Stage 1, the corpus: files of the corpus folder → `Article`s, and a report of every file
it cannot use.

Owns one reader per format (Markdown with front matter, plain text, JSON Lines, HTML,
PDF), the scan of the corpus folder with its file hashes, and the problems found on the
way. Does not own chunking, embedding or the index: an `Article` is where it stops.
"""

from qa.corpus.readers import (
    READERS,
    CorpusFileError,
    CorpusLoad,
    CorpusProblem,
    corpus_file_hashes,
    file_hash,
    load_corpus,
    read_articles,
)

__all__ = ["READERS", "CorpusFileError", "CorpusLoad", "CorpusProblem", "corpus_file_hashes",
           "file_hash", "load_corpus", "read_articles"]
