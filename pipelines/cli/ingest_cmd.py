"""CLI commands of the ingestion side: ``ingest``, ``serve``, ``report``.

Heavy imports (pandas, Prefect, Great Expectations) live inside the handlers. Prefect's own log lines are kept
off the terminal unless ``TRAINGUARD_DEBUG`` is set; trainguard prints progress on stderr and results on stdout.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import click

from pipelines.cli import _console
from pipelines.cli._click import Args, argument, command, option

__all__ = ["register", "quiet_prefect"]


def quiet_prefect() -> None:
    """Keep Prefect's logs off stdout and out of the way (set before Prefect is imported)."""
    if not os.environ.get("TRAINGUARD_DEBUG"):
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # --runner dask: no cluster chatter
    # Prefect's temporary API server migrates a fresh database on first start: allow for a slow, busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_UI_ENABLED", "false")
    os.environ.setdefault("PREFECT_TASKS_REFRESH_CACHE", "false")


def register(root: click.Group) -> None:
    """Add ``ingest``, ``serve`` and ``report`` to the ``trainguard`` command group."""
    command(root, "ingest", _ingest,
            summary="Check, score and decide on one dataset; write outputs and a ledger entry.",
            description="Run the ingest flow on one dataset (CSV, TSV, Parquet or JSON lines; a path or an fsspec "
                        "URL).",
            example="trainguard ingest data_samples/credit/batch_poisoned.csv --source credit --label-column class "
                    "--out out/credit",
            params=[
                argument("path", "PATH", "dataset path or fsspec URL (file://, memory://, s3://...)"),
                option("--source", metavar="NAME", help="source name (default: the file name's stem)"),
                option("--reference", metavar="PATH", help="trusted reference data (default: the source's recent "
                       "approved data, found through the ledger: the last approved batch, with older ones when it "
                       "has fewer than 1/fp_budget rows)"),
                option("--label-column", metavar="COL", help="label column (enables label-consistency checks)"),
                option("--source-column", metavar="COL", help="column naming each row's upstream source"),
                option("--relabel", is_flag=True, default=None,
                       help="release rows quarantined only for their label with the label the trusted model is "
                            "confident of, instead of dropping them (needs --label-column; [policy] relabel)"),
                option("--config", metavar="FILE", help="TOML config (policy, allowed roots, sources)"),
                option("--ledger", metavar="URL", help="ledger URL (default $TRAINGUARD_LEDGER or "
                                                       "sqlite:///.trainguard/ledger.db)"),
                option("--out", metavar="DIR", help="output directory (default out/<source>)"),
                option("--runner", type=click.Choice(["local", "dask"]), default="local",
                       help="where row scoring runs"),
                option("--dask-address", metavar="ADDR", help="Dask scheduler address (default: a LocalCluster)"),
                option("--json", is_flag=True, help="print one JSON document on stdout"),
            ])
    command(root, "serve", _serve,
            summary="Serve one scheduled Prefect deployment per configured source (and landing-dir polls).",
            description="Register a deployment per [sources.NAME] of the config with its cron schedule, plus a "
                        "landing-directory poll when landing_dir is set, and run them until interrupted.",
            example="trainguard serve --config trainguard.toml",
            params=[
                option("--config", metavar="FILE", required=True, help="TOML config with [sources.NAME] tables"),
                option("--ledger", metavar="URL", help="ledger URL (overrides the config)"),
            ])
    command(root, "report", _report,
            summary="Re-render report.html from an ingest output directory.",
            description="Rebuild OUT/report.html from OUT/summary.json, scores.parquet and quarantine.parquet.",
            example="trainguard report out/credit",
            params=[
                argument("out_dir", "OUT", "an ingest output directory"),
                option("--json", is_flag=True, help="print one JSON document on stdout"),
            ])


def _ingest(args: Args) -> int:
    from pipelines._memory import bound_allocator_caches

    bound_allocator_caches()  # before any thread of the run starts (see its docstring)
    quiet_prefect()
    from pipelines.config import load_config

    os.environ.setdefault("TRAINGUARD_PROGRESS", "1")
    load_config(args.config)  # fail fast on a bad config, before Prefect starts
    from pipelines._api_server import TemporaryAPIServer

    TemporaryAPIServer.launch_early()  # boots on the other core while Prefect and the checks are imported
    server = TemporaryAPIServer.start_if_needed()
    from pipelines import _preload
    from pipelines.flows import ingest

    _preload.start()  # the tasks wait for it before importing the same modules
    from pipelines._uris import shown

    _console.log(f"trainguard: ingesting {shown(args.path)} ...")  # credentials redacted, one line
    with server.serving() if server is not None else contextlib.nullcontext():
        result = ingest(args.path, source=args.source, reference=args.reference, label_column=args.label_column,
                        source_column=args.source_column, config_path=args.config, ledger_url=args.ledger,
                        out_dir=args.out, runner=args.runner, dask_address=args.dask_address, relabel=args.relabel)
    for warning in result.get("warnings", []):
        _console.log(f"trainguard: warning: {warning}")
    if args.json:
        _console.print_json(result)
    else:
        _print_result(result)
    return int(result["exit_code"])


def _print_result(result: dict[str, Any]) -> None:
    counts = result.get("counts", {})
    verdict = str(result["verdict"])
    color = "green" if verdict == "approved" else "red"
    from rich.text import Text

    from pipelines._uris import shown

    line = Text(verdict.upper(), style=f"bold {color}")  # the name is text, never markup: "[b]x[/b].csv" stays
    line.append(f" {shown(str(result['source']['uri']))} ({result['source']['digest']})")
    _console.stdout.print(line)
    relabelled = f", relabelled {counts['relabelled']}" if counts.get("relabelled") else ""
    _console.stdout.print(f"  rows {counts.get('rows')}, flagged {counts.get('flagged')}, "
                          f"quarantined {counts.get('quarantined')}{relabelled}, clean {counts.get('clean')}")
    for reason in result.get("reasons", [])[:8]:
        _console.stdout.print(f"  - {reason}", markup=False)
    out = Path(result["out_dir"])
    names = ["clean.parquet", "quarantine.parquet", "scores.parquet", "summary.json", "report.html"]
    present = [n for n in names if (out / n).exists()]
    _console.stdout.print(f"  outputs: {out}/{{{','.join(present)}}}", markup=False)
    _console.stdout.print("  ledger entries: " + ", ".join(f"#{e['index']} {e['verdict']}"
                                                           for e in result.get("ledger", [])), markup=False)


def _serve(args: Args) -> int:
    from pipelines._memory import bound_allocator_caches

    bound_allocator_caches()
    quiet_prefect()
    from pipelines.serve import serve

    serve(args.config, ledger_url=args.ledger)
    return 0


def _report(args: Args) -> int:
    from pipelines.errors import PipelineInputError
    from pipelines.report import render_report

    out = Path(args.out_dir)
    if not (out / "summary.json").is_file():
        raise PipelineInputError("data:not_an_output_dir", f"{out} has no summary.json; is it an ingest --out dir?")
    path = render_report(out)
    if args.json:
        _console.print_ok({"report": str(path)})
    else:
        _console.stdout.print(str(path), markup=False)
    return 0
