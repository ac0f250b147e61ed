"""The versions constraints.txt pins, for tests that guard code written against one version's internals."""

from __future__ import annotations

import re
from pathlib import Path

CONSTRAINTS = Path(__file__).resolve().parents[1] / "constraints.txt"


def pinned(package: str) -> str:
    """The version ``package`` is pinned to in constraints.txt (the test fails when it is not pinned)."""
    found = re.search(rf"^{re.escape(package)}==(\S+)", CONSTRAINTS.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, f"{package} is not pinned in constraints.txt"
    return found.group(1)
