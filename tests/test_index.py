"""The index persists as plain files, is reused when nothing changed, rebuilt when
something did, and survives a build killed at any moment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa import Assistant, IndexNotBuilt
from qa.answering.assistant import default_answerer
from qa.index.view import load, read_manifest
from qa.index.writer import load_or_build

from .conftest import ROOT


def _generation(settings) -> str:
    return os.readlink(Path(settings.index_dir) / "current")


def test_saved_index_is_plain_files(assistant):
    folder = assistant.index.path
    assert {"manifest.json", "dense.faiss"} <= {p.name for p in folder.iterdir()}
    manifest = json.loads((folder / "manifest.json").read_text())
    [segment] = manifest["segments"]
    segment_folder = folder.parent / "segments" / segment["name"]
    assert {p.name for p in segment_folder.iterdir()} == {
        "articles.json", "texts.bin", "arrays.npz", "sentences.npy", "chunk_terms.npz",
        "sentence_terms.npz"}
    for arrays in segment_folder.glob("*.np[yz]"):  # loadable without pickle
        np.load(arrays, allow_pickle=False)
    assert manifest["format"] == "qa-index/5"
    assert manifest["embedding"]["fingerprint"].startswith("sha256:")
    assert manifest["counts"]["articles"] == 3
    assert manifest["counts"]["chunks"] == assistant.index.store.ntotal
    assert set(manifest["corpus_files"]) >= {"grok-deepfakes-enquete.md"}


def test_loaded_index_equals_built_one(assistant):
    loaded = load(assistant.settings.index_dir)
    assert list(loaded.chunks) == list(assistant.index.chunks)
    assert loaded.articles == assistant.index.articles
    assert list(loaded.sentence_spans) == list(assistant.index.sentence_spans)
    assert np.array_equal(loaded.sentence_vectors[range(len(loaded.sentence_spans))],
                          assistant.index.sentence_vectors[range(len(loaded.sentence_spans))])


def test_reused_when_unchanged_rebuilt_when_corpus_changes(fresh_settings, embedder):
    first, _ = load_or_build(fresh_settings, embedder)
    generation = _generation(fresh_settings)
    _ = load_or_build(fresh_settings, embedder)
    assert _generation(fresh_settings) == generation  # reused, not rebuilt

    new = Path(fresh_settings.corpus_dir) / "nouvel-article.txt"
    new.write_text("Le festival de Cannes\n\nLa Palme d'or a été attribuée à un film "
                   "tourné en Bretagne, selon le jury réuni samedi soir.", encoding="utf-8")
    second, _ = load_or_build(fresh_settings, embedder)
    assert _generation(fresh_settings) != generation
    assert len(second.articles) == len(first.articles) + 1
    assert len(list(Path(fresh_settings.index_dir).glob("gen-*"))) == 1  # old one removed


def test_rebuilt_when_chunk_settings_change(fresh_settings, embedder):
    _ = load_or_build(fresh_settings, embedder)
    generation = _generation(fresh_settings)
    smaller = replace(fresh_settings, chunk_tokens=64, chunk_overlap=8)
    index, _ = load_or_build(smaller, embedder)
    assert _generation(fresh_settings) != generation
    assert index.manifest.shape.chunker.chunk_tokens == 64


def test_broken_files_are_reported_and_skipped(fresh_settings, embedder, caplog):
    corpus = Path(fresh_settings.corpus_dir)
    (corpus / "vide.txt").write_text("")
    (corpus / "latin1.txt").write_bytes("Un été à Noël".encode("latin-1"))
    (corpus / "binaire.md").write_bytes(b"\x00\x01\x02binary")
    (corpus / "lignes.jsonl").write_text(
        '{"id": "ok-1", "title": "Bon", "text": "Un article valide sur la presse."}\n{oops\n',
        encoding="utf-8")
    with caplog.at_level("WARNING"):
        index, _ = load_or_build(fresh_settings, embedder)
    assert "ok-1" in index.articles
    assert len(index.articles) == 4
    logged = caplog.text
    for name in ("vide.txt", "latin1.txt", "binaire.md", "lignes.jsonl:2"):
        assert name in logged


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexNotBuilt, match="qa index"):
        load(tmp_path / "nothing")


_BUILD_SCRIPT = """
import sys
from qa import Assistant, Settings
from pathlib import Path
Assistant.load(Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                        cache_dir=Path(sys.argv[3])))
"""


def _start_build(settings) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _BUILD_SCRIPT, str(settings.corpus_dir),
         str(settings.index_dir), str(settings.cache_dir)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _kill_when(process: subprocess.Popen, condition, timeout: float = 120) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if condition():
            process.send_signal(signal.SIGKILL)
            process.wait()
            return True
        time.sleep(0.005)
    process.wait()
    return False


@pytest.mark.parametrize("moment", ["while embedding", "while writing files"])
def test_killed_build_leaves_a_whole_index(fresh_settings, embedder, moment):
    before, _ = load_or_build(fresh_settings, embedder)
    generation = _generation(fresh_settings)
    extra = Path(fresh_settings.corpus_dir) / "ajout.txt"
    # Long enough that the embedding outlasts the model's loading, even on a fast machine.
    body = " ".join(f"Une phrase nouvelle numéro {i} sur la presse régionale." for i in range(800))
    extra.write_text("Un ajout\n\n" + body, encoding="utf-8")
    index_dir = Path(fresh_settings.index_dir)
    if moment == "while writing files":
        condition = lambda: any(index_dir.glob(".gen-*.tmp"))  # noqa: E731
    else:
        started = time.monotonic()
        condition = lambda: time.monotonic() - started > 6  # noqa: E731
    killed = _kill_when(_start_build(fresh_settings), condition)
    if not killed:
        pytest.skip(f"the build finished before it could be killed {moment}")
    # Whatever the moment, the published index is whole: the previous generation, or
    # (when the kill came after the swap) the new one — never a mix.
    after = load(index_dir)
    if _generation(fresh_settings) == generation:
        assert after.chunks == before.chunks
    else:
        assert "ajout" in after.articles
    assert after.store.ntotal == len(after.chunks)
    assistant = Assistant(fresh_settings, embedder, after, default_answerer(fresh_settings))
    assert assistant.answer("Quelle est la peine prévue ?").answered
    # The next run finishes the job and cleans the leftovers.
    rebuilt, _ = load_or_build(fresh_settings, embedder)
    assert "ajout" in rebuilt.articles
    assert not list(index_dir.glob(".gen-*"))
    assert read_manifest(index_dir).counts.articles == 4
