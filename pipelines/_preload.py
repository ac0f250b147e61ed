"""Import Great Expectations and the scorer on a side thread while Prefect starts (internal to the CLI).

A cold ``trainguard ingest`` spends seconds waiting for Prefect's temporary API server; importing the checks
meanwhile starts the flow that much sooner. The flow's tasks call ``wait()`` before they import the same modules:
two threads importing Great Expectations at once can meet a partially initialised module (an ImportError that
crashed runs against a running Prefect server, where the flow starts at once).
"""

from __future__ import annotations

import threading

__all__ = ["start", "wait"]

_thread: threading.Thread | None = None


def _load() -> None:
    try:
        import great_expectations  # noqa: F401

        import checks.contract  # noqa: F401
        import checks.scoring  # noqa: F401
    except Exception:  # noqa: BLE001, S110 - the flow imports them again and reports any failure itself
        pass


def start() -> None:
    """Begin the imports on a daemon thread (once)."""
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_load, name="trainguard-preload", daemon=True)
        _thread.start()


def wait() -> None:
    """Block until the side thread's imports are done (at once when none was started)."""
    if _thread is not None:
        _thread.join()
