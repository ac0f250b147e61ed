"""CLI commands of the provenance side: ``gate``, ``approve``, ``ledger ...``, ``keys`` (filled in by the ledger work)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this module's commands to the ``trainguard`` parser."""
