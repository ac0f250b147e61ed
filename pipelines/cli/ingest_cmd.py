"""CLI commands of the ingestion side: ``ingest``, ``serve``, ``report`` (filled in by the pipelines work)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this module's commands to the ``trainguard`` parser."""
