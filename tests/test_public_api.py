"""The public API is small, explicit and documented."""

from __future__ import annotations

import inspect

import qa


def test_all_lists_exactly_the_public_names():
    public = {name for name in vars(qa) if not name.startswith("_")} - {
        # submodules that importing the package loads as attributes
        name for name, value in vars(qa).items() if inspect.ismodule(value)
    }
    assert public | {"__version__"} == set(qa.__all__)


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
