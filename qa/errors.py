"""The exceptions of the package, and the French messages users read.

    QAError                    base class: the CLI prints it on one line, the app in the chat
    ├── CorpusError            no usable article in the corpus folder
    ├── IndexNotBuilt          no index on disk where one is required
    ├── IndexMismatch          the index on disk was built with other settings or model
    ├── IndexLocked            another process is writing the index
    ├── ModelError             the embedding model cannot be prepared or loaded
    ├── SettingsError          a `QA_*` variable or option with a value that cannot be used
    └── EmptyQuestion          an empty or blank question (also a ValueError)

Each message says what happened and what to do about it.
"""


class QAError(Exception):
    """Base class of every error the package raises on purpose."""


class CorpusError(QAError):
    """The corpus folder is missing or holds no readable article."""


class IndexNotBuilt(QAError):
    """No index exists where one is required."""


class IndexMismatch(QAError):
    """The index on disk does not match the corpus, the settings or the model."""


class IndexLocked(QAError):
    """Another process holds the index write lock."""


class ModelError(QAError):
    """The embedding model cannot be prepared or loaded."""


class SettingsError(QAError, ValueError):
    """A setting has a value of the wrong type or out of its range."""


class EmptyQuestion(QAError, ValueError):
    """The question is empty or only whitespace."""
