"""Stage 1, the corpus: files of the corpus folder → `Article`s, and a report of every file
it cannot use.

Owns one reader per format (Markdown with front matter, plain text, JSON Lines, HTML,
PDF), the scan of the corpus folder with its file hashes, the problems found on the
way, and the naming of corpus files (manifest keys and the paths shown to users). Does
not own chunking, embedding or the index: an `Article` is where it stops.
"""

from qa.corpus.formats import READERS
from qa.corpus.paths import corpus_key, key_of_shown, shown_path
from qa.corpus.scan import (
    CorpusLoad,
    CorpusProblem,
    corpus_file_hashes,
    file_hash,
    id_taken_message,
    load_corpus,
    read_articles,
)
from qa.corpus.source import CorpusFileError, SourceFile

__all__ = ["READERS", "CorpusFileError", "CorpusLoad", "CorpusProblem", "SourceFile",
           "corpus_file_hashes", "corpus_key", "file_hash", "id_taken_message",
           "key_of_shown", "load_corpus", "read_articles", "shown_path"]
