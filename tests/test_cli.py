"""The `qa` command, run as a user would: exit codes, output, JSON."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from qa.cli import cli

from .conftest import ROOT


@pytest.fixture
def run(settings_for_tests, assistant, monkeypatch):
    """Invoke the CLI against the session's corpus and (already built) index."""
    monkeypatch.setenv("QA_CORPUS_DIR", str(settings_for_tests.corpus_dir))
    monkeypatch.setenv("QA_INDEX_DIR", str(settings_for_tests.index_dir))
    monkeypatch.setenv("QA_CACHE_DIR", str(settings_for_tests.cache_dir))

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_index_prints_counts(run):
    result = run("index")
    assert result.exit_code == 0, result.output
    assert "3 articles" in result.output and "passages" in result.output


def test_ask_prints_answer_and_sources(run):
    result = run("ask", "Quelle est la peine prévue ?")
    assert result.exit_code == 0
    assert "60 000 euros d’amende. [1]" in result.output
    assert "Sources :" in result.output
    assert "[1] La justice enquête sur les deepfakes" in result.output


def test_ask_json_is_the_answer(run):
    result = run("ask", "--json", "Quelle est la peine prévue ?")
    data = json.loads(result.output)
    assert data["answered"] is True
    citation = data["citations"][0]
    assert {"n", "article_id", "title", "start", "end", "quote"} <= set(citation)
    assert citation["article_id"] == "grok-deepfakes-enquete"
    assert data["passages"] and "score" in data["passages"][0]


def test_ask_refusal_shows_closest_passages(run):
    result = run("ask", "Quelle est la capitale de l'Australie ?")
    assert "Je ne trouve pas la réponse" in result.output
    assert "Passages les plus proches" in result.output


def test_search_lists_scored_passages(run):
    result = run("search", "-k", "2", "Roland Lescure BFM TV")
    assert result.exit_code == 0
    assert result.output.startswith("1. ") and "\n2. " in result.output


def test_empty_question_is_one_line_and_exit_1(run):
    result = CliRunner().invoke(cli, ["ask", "   "])
    assert result.exit_code == 1
    assert result.output.strip().startswith("Erreur : La question est vide")
    assert "Traceback" not in result.output


def test_missing_corpus_is_one_line_and_exit_1(tmp_path):
    env = {"QA_CORPUS_DIR": str(tmp_path / "absent"), "QA_INDEX_DIR": str(tmp_path / "i")}
    result = CliRunner().invoke(cli, ["index"], env=env)
    assert result.exit_code == 1
    assert "absent" in result.output and "Traceback" not in result.output


def test_bad_setting_is_a_usage_error():
    result = CliRunner().invoke(cli, ["ask", "x"], env={"QA_TOP_K": "beaucoup"})
    assert result.exit_code == 2
    assert "QA_TOP_K" in result.output


def test_python_dash_m_qa_help():
    out = subprocess.run([sys.executable, "-m", "qa", "--help"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    assert "qa ask" in out and "index" in out
