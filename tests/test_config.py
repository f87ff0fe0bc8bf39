"""Settings from the environment: every QA_* field, and a clear error naming a bad one."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from qa import Settings
from qa.errors import QAError, SettingsError


def test_defaults_without_environment():
    assert Settings.from_env({}) == Settings()


def test_each_field_is_read_from_its_variable(tmp_path):
    env = {"QA_CORPUS_DIR": str(tmp_path / "c"), "QA_TOP_K": "9", "QA_ANSWER_THRESHOLD": "0.5",
           "QA_RETRIEVER": "bm25", "QA_PORT": "8080", "QA_HOST": "0.0.0.0"}
    settings = Settings.from_env(env)
    assert settings.corpus_dir == tmp_path / "c" and isinstance(settings.corpus_dir, Path)
    assert (settings.top_k, settings.answer_threshold, settings.retriever) == (9, 0.5, "bm25")
    assert (settings.port, settings.host) == (8080, "0.0.0.0")


def test_reader_fusion_is_three_weights():
    assert Settings.from_env({"QA_READER_FUSION": "1, 0.2,0"}).reader_fusion == (1.0, 0.2, 0.0)


def test_every_numeric_field_has_a_variable():
    for f in fields(Settings):
        value = getattr(Settings(), f.name)
        if type(value) in (int, float):
            # Halving keeps a probability a probability; adding 1 keeps a count a count.
            other = value / 2 if isinstance(value, float) else value + 1
            env = {f"QA_{f.name.upper()}": str(other)}
            assert getattr(Settings.from_env(env), f.name) == other, f.name


def test_overrides_win_and_none_leaves_the_environment():
    env = {"QA_TOP_K": "9"}
    assert Settings.from_env(env, top_k=3).top_k == 3
    assert Settings.from_env(env, top_k=None).top_k == 9


def test_blank_variable_is_ignored():
    assert Settings.from_env({"QA_TOP_K": "  "}).top_k == Settings().top_k


@pytest.mark.parametrize(("variable", "raw", "says"), [
    ("QA_TOP_K", "beaucoup", "entier"),
    ("QA_ANSWER_THRESHOLD", "haut", "nombre"),
    ("QA_PORT", "99999", "port"),
    ("QA_TOP_K", "0", "au moins"),
    ("QA_RETRIEVER", "sparse", "hybrid, dense, bm25"),
    ("QA_CHUNK_OVERLAP", "600", "QA_CHUNK_TOKENS"),
    ("QA_READER_FUSION", "3,0", "trois nombres"),
    ("QA_READER_FUSION", "3,nan,1", "trois nombres"),
])
def test_bad_values_name_the_variable(variable, raw, says):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: raw})
    message = str(caught.value)
    assert variable in message and says in message
    assert isinstance(caught.value, QAError) and isinstance(caught.value, ValueError)
