"""The examples in provenance's docstrings run (``make test`` does not collect doctests: pytest's testpaths are
``tests`` and no ``--doctest-modules``), so a stale example fails here (found by review, F7: merkle's example)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import provenance

MODULES = sorted(m.name for m in pkgutil.walk_packages(provenance.__path__, "provenance."))


@pytest.mark.parametrize("name", ["provenance", *MODULES])
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_the_merkle_example_is_run() -> None:
    import provenance.merkle

    assert doctest.testmod(provenance.merkle).attempted >= 6
