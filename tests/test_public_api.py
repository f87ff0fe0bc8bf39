"""The public API is small, explicit and documented."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import qa


def test_all_lists_exactly_the_public_names():
    # The names load on first use (PEP 562): the ones the package resolves are exactly
    # those of __all__, each resolves, and dir() shows them.
    assert set(qa._HOMES) | {"__version__"} == set(qa.__all__)
    for name in qa.__all__:
        assert getattr(qa, name) is not None
    assert set(qa.__all__) <= set(dir(qa))
    with pytest.raises(AttributeError, match="no attribute 'Anwser'"):
        qa.Anwser  # noqa: B018


def test_a_stage_imports_without_the_stages_after_it():
    # `python -m qa.embeddings` runs while pip is still installing the web stack.
    code = ("import sys, qa.embeddings; "
            "print(sorted(m for m in ('gradio', 'faiss', 'fastapi', 'qa.answering') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_front_door_imports():
    from qa import Answer, Citation, answer  # noqa: F401

    assert callable(answer)


def test_public_callables_are_documented_and_typed():
    for name in qa.__all__:
        obj = getattr(qa, name)
        if callable(obj) and not isinstance(obj, type(Exception)):
            assert inspect.getdoc(obj), f"qa.{name} has no docstring"
    signature = inspect.signature(qa.answer)
    assert signature.return_annotation in (qa.Answer, "Answer")
