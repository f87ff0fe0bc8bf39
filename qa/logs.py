"""Console logging for the commands: our messages, and libraries' only when they matter."""

from __future__ import annotations

import logging
import sys

_NOISY_LOGGERS = ("httpx", "sentence_transformers", "transformers", "urllib3", "faiss")


def _not_noise(record: logging.LogRecord) -> bool:
    # A filter on the handler rather than logger levels: a library may reset its own
    # logger's level when it is imported, after this ran.
    return record.levelno >= logging.WARNING or not record.name.startswith(_NOISY_LOGGERS)


def configure_logging(verbose: bool = False) -> None:
    """Our messages at INFO on stderr; libraries' chatter only from WARNING up."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="qa: %(message)s", stream=sys.stderr, force=True)
    if not verbose:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_noise)
