"""Scheduled ingestion: one Prefect deployment per configured source, plus an optional landing-directory poll.

``trainguard serve --config trainguard.toml`` registers, for each ``[sources.NAME]``:

- deployment ``trainguard-ingest/NAME``: ingests ``path`` on the ``schedule`` cron (or on demand when no
  schedule is set, e.g. ``prefect deployment run trainguard-ingest/NAME``);
- deployment ``trainguard-landing/NAME-landing`` when ``landing_dir`` is set: every ``poll_seconds`` it ingests
  each file of that local directory whose digest the ledger has not seen yet.

Both are visible in the Prefect UI of the server named by ``PREFECT_API_URL``. Example::

    >>> from pipelines.config import parse_config
    >>> from pipelines.serve import build_deployments
    >>> cfg = parse_config({"sources": {"credit": {"path": "data.csv", "schedule": "0 * * * *"}}})
    >>> [d.name for d in build_deployments(cfg)]
    ['credit']
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow

from pipelines.config import Config, SourceConfig, load_config
from pipelines.errors import PipelineConfigError

__all__ = ["build_deployments", "serve", "poll_landing"]


SETTLE_SECONDS = 10.0  # a landed file this recently modified may still be being written


@flow(name="trainguard-landing", log_prints=False, persist_result=False)
def poll_landing(source: str, landing_dir: str, label_column: str | None = None,
                 source_column: str | None = None, config_path: str | None = None,
                 ledger_url: str | None = None, out_dir: str = "out",
                 settle_seconds: float = SETTLE_SECONDS) -> list[dict[str, Any]]:
    """Ingest every file in ``landing_dir`` that the ledger has no entry for yet (oldest name first); each file's
    outputs go to ``out_dir/<its file name>``, so files that differ only in their suffixes keep theirs.

    A file modified less than ``settle_seconds`` ago is left for the next poll (it may still be being written;
    better still, write under a dot-name and rename). One poll runs at a time per ``out_dir``: a poll that finds
    another one running returns at once, so overlapping scheduled runs never ingest a file twice.
    """
    import fcntl
    import time

    from pipelines.flows import ingest_flow
    from provenance.hashing import file_digest
    from provenance.ledger import open_ledger

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(out_dir) / ".trainguard-landing.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return []  # the previous poll is still ingesting
        results = []
        for path in sorted(p for p in Path(landing_dir).iterdir() if p.is_file() and not p.name.startswith(".")):
            if time.time() - path.stat().st_mtime < settle_seconds:
                continue
            digest = file_digest(path)
            with open_ledger(ledger_url) as ledger:
                seen = ledger.find(digest, verdicts=None)
            if seen:
                continue
            out = Path(out_dir) / path.name
            results.append(ingest_flow(str(path), source=source, label_column=label_column,
                                       source_column=source_column, config_path=config_path,
                                       ledger_url=ledger_url, out_dir=str(out)))
        return results


def _params(cfg: Config, src: SourceConfig, ledger_url: str | None) -> dict[str, Any]:
    return {"source": src.name, "label_column": src.label_column, "source_column": src.source_column,
            "config_path": os.path.abspath(cfg.path) if cfg.path else None,
            "ledger_url": ledger_url or cfg.ledger}


def build_deployments(cfg: Config, *, ledger_url: str | None = None) -> list[Any]:
    """The RunnerDeployments of every configured source (not yet registered)."""
    from pipelines.flows import ingest_flow

    if not cfg.sources:
        raise PipelineConfigError("config:no_sources", f"{cfg.path or 'the config'} has no [sources.NAME] tables")
    deployments = []
    for name, src in sorted(cfg.sources.items()):
        base = _params(cfg, src, ledger_url)
        if src.path:
            out = src.out or str(Path(cfg.out_root) / name)
            deployments.append(ingest_flow.to_deployment(
                name=name, cron=src.schedule, parameters=dict(base, uri=src.path, out_dir=os.path.abspath(out)),
                description=f"trainguard ingestion of {src.path} as source {name!r}", tags=["trainguard", name],
            ))
        if src.landing_dir:
            if not Path(src.landing_dir).is_dir():
                raise PipelineConfigError("config:bad_value", f"[sources.{name}] landing_dir {src.landing_dir!r} "
                                          f"is not a directory (from {os.getcwd()})")
            deployments.append(poll_landing.to_deployment(
                name=f"{name}-landing", interval=src.poll_seconds,
                parameters=dict(base, landing_dir=os.path.abspath(src.landing_dir),
                                out_dir=os.path.abspath(src.out or Path(cfg.out_root) / name)),
                description=f"ingest new files landing in {src.landing_dir}", tags=["trainguard", name],
            ))
        if not src.path and not src.landing_dir:
            raise PipelineConfigError("config:bad_source", f"[sources.{name}] needs a path or a landing_dir")
    return deployments


def serve(config_path: str, *, ledger_url: str | None = None) -> None:
    """Register the deployments with the Prefect server and run them until interrupted."""
    import sys

    import httpx
    from prefect import serve as prefect_serve

    cfg = load_config(config_path)
    deployments = build_deployments(cfg, ledger_url=ledger_url)
    for d in deployments:
        sched = ", ".join(str(s.schedule) for s in (d.schedules or [])) or "on demand"
        sys.stderr.write(f"trainguard serve: deployment {d.flow_name}/{d.name} ({sched})\n")
    sys.stderr.flush()
    try:
        prefect_serve(*deployments, print_starting_message=False)
    except httpx.TransportError as exc:  # no server there: a setting to fix, not a bug
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value() or "Prefect's temporary local server"
        raise PipelineConfigError(
            "config:prefect_unreachable", f"cannot reach the Prefect API at {url} ({type(exc).__name__}: {exc}): "
            "start one with `prefect server start` or set PREFECT_API_URL") from exc
