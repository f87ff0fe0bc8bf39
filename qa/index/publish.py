"""Publishing an index generation: the write lock, the files, the atomic swap, the clean-up.

A generation folder (manifest and vector store) and the new segments are written
under temporary names, flushed to disk and renamed; then `current` is repointed by
one `os.replace` of a symlink, the only step readers can observe. A process killed
before it leaves the previous generation published; the leftovers are removed by the
next writer. Writers are serialised across processes by an `flock` on `index/.lock`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from qa.errors import IndexLocked
from qa.index.manifest import Manifest
from qa.index.segments import Segment
from qa.index.vector_store import VectorStore
from qa.index.view import CURRENT, SEGMENTS

log = logging.getLogger(__name__)

_LOCK_WAIT_SECONDS = 60.0


@contextmanager
def write_lock(index_dir: Path, wait: float = _LOCK_WAIT_SECONDS) -> Iterator[None]:
    """Serialise writers of one index folder across processes (readers never wait)."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / ".lock", "w") as fh:
        deadline = time.monotonic() + wait
        announced = False
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise IndexLocked(
                        f"L'index {index_dir} est en cours de mise à jour par un autre "
                        "processus ; réessayez quand il aura fini."
                    ) from None
                if not announced:
                    log.warning("Index %s en cours de mise à jour ailleurs : attente…", index_dir)
                    announced = True
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)



def publish(manifest: Manifest, segments: list[Segment], written: list[Segment],
             store: VectorStore, index_dir: Path) -> Path:
    """Write the new segments and a generation, then repoint `current` in one atomic
    step. Must be called with the write lock held."""
    folder = index_dir / SEGMENTS
    folder.mkdir(parents=True, exist_ok=True)
    for segment in written:
        tmp = folder / f".{segment.name}.tmp"
        segment.write(tmp)
        _fsync_tree(tmp)
        os.rename(tmp, folder / segment.name)
    gen = index_dir / f"gen-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = gen.with_name("." + gen.name + ".tmp")
    tmp.mkdir(parents=True)
    store.save(tmp / "dense.faiss")
    manifest.write(tmp)
    _fsync_tree(tmp)
    os.rename(tmp, gen)
    link_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
    os.symlink(gen.name, link_tmp)
    os.replace(link_tmp, index_dir / CURRENT)  # the atomic step
    _remove_stale(index_dir, keep=gen.name, segments={s.name for s in segments})
    return gen


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _remove_stale(index_dir: Path, keep: str, segments: set[str]) -> None:
    """Drop old generations, unused segments and leftovers of killed updates.

    A reader that loaded an old generation keeps its open files and arrays; only
    new loads follow `current`."""
    for path in index_dir.iterdir():
        if path.name != keep and path.name.startswith(("gen-", ".gen-")):
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(f".{CURRENT}."):
            path.unlink(missing_ok=True)
    for path in (index_dir / SEGMENTS).iterdir():
        if path.name not in segments:
            shutil.rmtree(path, ignore_errors=True)
