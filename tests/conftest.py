"""Shared fixtures: the real model (converted once per machine), the real corpus
copied into a temporary folder, and one assistant built over it per session."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from qa import Assistant, Settings

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
EVALS = ROOT / "evals"
# The conversion cache is shared with normal use so that CI converts only once.
_CACHE_DIR = Settings.from_env().cache_dir


@pytest.fixture(autouse=True)
def _clean_qa_environment(monkeypatch):
    """Tests never depend on the developer's QA_* variables."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def settings_for_tests(tmp_path_factory) -> Settings:
    base = tmp_path_factory.mktemp("qa")
    corpus = base / "corpus"
    shutil.copytree(CORPUS, corpus)
    return Settings(corpus_dir=corpus, index_dir=base / "index", cache_dir=_CACHE_DIR)


@pytest.fixture(scope="session")
def converted_model(settings_for_tests) -> Path:
    from qa.embeddings.conversion import ensure_converted

    return ensure_converted(settings_for_tests.cache_dir)


@pytest.fixture(scope="session")
def embedder(settings_for_tests, converted_model):
    """The default embedder (QA_BACKEND's default), which the whole suite runs on."""
    from qa.embeddings.embedder import load_embedder

    return load_embedder(settings_for_tests)


@pytest.fixture(scope="session")
def torch_embedder(settings_for_tests, converted_model):
    """The model in torch fp32, the reference the other backends are measured against."""
    from qa.embeddings.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(settings_for_tests.embedding_model,
                                       settings_for_tests.cache_dir)


@pytest.fixture(scope="session")
def assistant(settings_for_tests, embedder) -> Assistant:
    return Assistant.load(settings_for_tests, embedder=embedder)


@pytest.fixture
def fresh_settings(tmp_path, settings_for_tests) -> Settings:
    """Settings over a private copy of the corpus and an empty index folder."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    return replace(settings_for_tests, corpus_dir=corpus, index_dir=tmp_path / "index")


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium driven by Playwright, one per test module."""
    from .web_support import CHROMIUM_ARGS, chromium_path

    executable = chromium_path()
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright n'est pas installé")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
