"""The ``ingest`` Prefect flow: read, digest, contract, drift, row scores, policy, outputs, ledger, artifacts.

Every attempt, also a rejected or unreadable one, leaves a ledger entry. Outputs are staged, the ledger entry is
appended, and only then are the outputs renamed into ``out_dir`` (``clean.parquet`` last, approved runs only).

Example::

    >>> from pipelines.flows import ingest  # doctest: +SKIP
    >>> ingest("data_samples/credit/batch_clean.csv", source="credit", label_column="class",
    ...        out_dir="out/credit")["verdict"]  # doctest: +SKIP
    'approved'
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from pipelines import outputs, tasks
from pipelines._anchor import AnchorCheck, check_against_anchor, find_anchor, window_of
from pipelines._memory import bound_allocator_caches, release_freed_memory
from pipelines._record import (
    ERROR_EXIT,
    artifacts,
    error_summary,
    record_attempt,
    run_summary,
)
from pipelines._reference import resolve_reference
from pipelines._relabel import Relabel, confusion, plan_relabel, suggestions
from pipelines._sticky import already_approved, prior_refusal, refuse_again
from pipelines._uris import redact_uri, shown
from pipelines.config import Config, load_config
from pipelines.errors import PipelineConfigError, PipelineError, PipelineInputError
from pipelines.policy import Decision, decide, release_relabelled
from pipelines.state import SourceState, state_dir_for
from provenance.hashing import file_digest

__all__ = ["ingest_flow", "ingest"]

# redacted URI -> the URI with its credentials, for runs started by ``ingest``: the flow run's parameters (which
# Prefect stores and shows) get the redacted URI, and the flow reads with the real one
_READ_URIS: dict[str, dict[str, str]] = {}  # per run (a random key): redacted URI -> URI with credentials


def _require_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast, with one line, when nothing listens at a Dask scheduler's ``tcp://host:port``."""
    import socket
    from urllib.parse import urlparse

    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls", "ws", "wss"):
        return  # other transports (ucx, inproc): distributed itself reports what it cannot reach
    try:
        port = parsed.port
    except ValueError:
        port = None
    if not parsed.hostname or not port:
        raise PipelineConfigError("config:dask_address", f"--dask-address {address!r} is not scheme://host:port")
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise PipelineConfigError("config:dask_unreachable",
                                  f"no Dask scheduler answers at {address} ({exc.strerror or exc})") from exc


def _runner(name: str, address: str | None) -> Any:
    if name == "dask":
        import logging

        from prefect_dask import DaskTaskRunner

        if os.environ.get("DASK_LOGGING__DISTRIBUTED") and not os.environ.get("TRAINGUARD_DEBUG"):
            logging.getLogger("distributed").setLevel(logging.ERROR)

        if address:
            _require_reachable(address)
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True,
                                                  "dashboard_address": None})
    from prefect.task_runners import ThreadPoolTaskRunner

    return ThreadPoolTaskRunner(max_workers=2)


@flow(name="trainguard-ingest", log_prints=False, persist_result=False, validate_parameters=False)
def ingest_flow(uri: str, source: str | None = None, reference: str | None = None,
                label_column: str | None = None, source_column: str | None = None,
                config_path: str | None = None, ledger_url: str | None = None, out_dir: str | None = None,
                runner: str = "local", read_key: str | None = None, relabel: bool | None = None) -> dict[str, Any]:
    """Ingest one dataset; returns the run's summary (``summary.json``) plus where things were written.
    ``relabel``: overrides the config's ``[policy] relabel``."""
    from dataclasses import replace

    from provenance.config import ledger_url as resolve_ledger_url

    bound_allocator_caches()  # also where `trainguard serve`'s runner starts the flow in a process of its own
    config = load_config(config_path)
    if relabel is not None:  # before anything reads it: the recorded config digest includes it
        config = replace(config, policy=replace(config.policy, relabel=bool(relabel)))
    shown_uri = redact_uri(uri)  # recorded and printed; the URI with its credentials is only read
    real = _READ_URIS.get(read_key or "", {})
    uri = real.get(uri, uri)
    if reference:
        reference = real.get(reference, reference)
    source = source or _default_source(shown_uri)
    src_cfg = config.source(source)
    label_column = label_column if label_column is not None else src_cfg.label_column
    source_column = source_column if source_column is not None else src_cfg.source_column
    if relabel and not label_column:
        raise PipelineInputError("usage:relabel_without_label", "--relabel needs a label column (--label-column, "
                                 f"or label_column in the config's [sources.{source}])")
    url = resolve_ledger_url(ledger_url or config.ledger)
    state = SourceState(state_dir_for(url, config.state_dir), source)
    out = Path(out_dir or src_cfg.out or Path(config.out_root) / source)
    try:  # absolute: Dask workers in another working directory read and write the same files
        outputs.cleanup_stale_staging(out)
        staging = outputs.new_staging(out).absolute()
        work = staging / "work"
        work.mkdir()
    except OSError as exc:  # nowhere to write even the summary: refused before the attempt begins
        raise PipelineConfigError("config:bad_out", f"cannot write outputs under {shown(str(out))}: "
                                  f"{exc.strerror or type(exc).__name__} ({shown(str(exc.filename or out))})") from exc
    # ctx["uri"] is what is recorded and printed (redacted once, here); ctx["read_uri"] only reads the data
    ctx: dict[str, Any] = {"uri": shown_uri, "read_uri": uri, "source": source, "config": config,
                           "ledger_url": url, "out": out,
                           "staging": staging, "runner": runner, "label_column": label_column,
                           "source_column": source_column, "digest": None}
    try:
        _require_recordable(url)
        return _run(ctx, state, work, reference)
    except PipelineInputError as exc:
        return _record_error(ctx, exc)
    except Exception as exc:
        from checks.errors import ChecksDataError

        if isinstance(exc, ChecksDataError):
            return _record_error(ctx, exc)
        _record_crash(ctx, exc)
        raise
    finally:
        outputs.release_staging(staging)


def _require_recordable(url: str) -> None:
    """Refuse, before any work, a ledger this attempt could not be recorded in: one that cannot be opened
    (``ledger:unreachable``) or written (``ledger:read_only``), that has entries but no signing key here
    (``ledger:no_signing_key``), or whose latest checkpoint another key signed (``ledger:key_mismatch``). An empty
    ledger gets its key now, as its first append would."""
    from provenance.ledger import open_ledger

    with open_ledger(url) as ledger:
        ledger.require_appendable()


def _default_source(uri: str) -> str:
    stem = Path(uri.rstrip("/")).name.split(".")[0]
    name = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "_-" else "-" for ch in stem)
    return name.lstrip("_-")[:128] or "default"  # always a valid source name (state.SourceState)


@contextmanager
def _stage(ctx: dict[str, Any], name: str) -> Iterator[None]:
    """Time a stage (``result["timings"]``) and print a progress line on stderr when asked."""
    t0 = time.time()
    yield
    release_freed_memory()
    t1 = time.time()
    ctx.setdefault("timings", []).append({"stage": name, "start": t0, "end": t1})
    if os.environ.get("TRAINGUARD_PROGRESS") == "1":
        sys.stderr.write(f"trainguard: {name:<9s} {t1 - t0:7.2f} s\n")
        sys.stderr.flush()


def _run(ctx: dict[str, Any], state: SourceState, work: Path, reference: str | None) -> dict[str, Any]:
    config: Config = ctx["config"]
    logger = get_run_logger()
    with _stage(ctx, "digest"):  # relative allowed_roots were taken from the working directory, as paths are
        staged = tasks.stage_or_refuse(ctx["read_uri"], str(work), config.allowed_roots, os.getcwd())
    ctx["digest"] = staged["digest"]
    prior = prior_refusal(ctx["ledger_url"], staged["digest"])
    if prior is not None:  # said at once, before the work: the run cannot release these bytes
        logger.warning("%s", prior.warning(staged["digest"]))
    block = config.chunk_mb << 20
    with _stage(ctx, "read"):
        batch = tasks.read_batch(staged["path"], ctx["uri"], str(work / "batch.parquet"), config.partition_rows,
                                 block)
    ctx["format"], ctx["rows"], ctx["columns"] = batch["format"], batch["rows"], batch["columns"]
    if ctx["label_column"] and ctx["label_column"] == ctx["source_column"]:  # found by review: was reported as
        raise PipelineInputError(  # "label column 'class' is not a column" (the scorer had set it aside)
            "usage:same_column", f"--label-column and --source-column both name {ctx['label_column']!r}: a row's "
            "label and the source it came from must be different columns")
    for what, col in (("label", ctx["label_column"]), ("source", ctx["source_column"])):
        if col and col not in batch["columns"]:
            raise PipelineInputError(
                f"data:unknown_{what}_column",
                f"{ctx['uri']} has no {what} column {col!r} (columns: {', '.join(batch['columns'][:30])})",
            )
    with _stage(ctx, "reference"):
        ref = resolve_reference(ctx, state, reference, work)
        ref_path = None
        if ref is not None:
            ref_path = tasks.read_batch(ref["path"], ref["uri"] or ref["path"], str(work / "reference.parquet"),
                                        config.partition_rows, block)["path"]
    ctx["reference"] = ref
    logger.info("read %s rows from %s (%s)", batch["rows"], ctx["uri"], staged["digest"])

    params = {"label_column": ctx["label_column"], "source_column": ctx["source_column"],
              "fp_budget": config.fp_budget, "random_state": config.random_state}
    campaign: dict[int, list[str]] = {}
    if ref is not None and ref_path is not None and ref["origin"] != "argument" and config.anchor:
        with _stage(ctx, "anchor"):  # a rolling reference: checked, with the batch, against the source's anchor
            checked = _against_anchor(ctx, state, ref, batch["path"], params, work)
            if checked is not None:
                ref_path, campaign = checked.path, checked.batch_reasons
                ref["anchor"] = checked.record()
                logger.info("reference and batch checked against the anchor (ledger entry %s): %s reference rows "
                            "left out, %s batch rows flagged across batches", checked.anchor.index, checked.dropped,
                            len(campaign))
    with _stage(ctx, "checks"):
        contract, drift_path, fitted = _check_and_fit(ctx, state, batch["path"], ref, ref_path, params, work)
    scorer = fitted["path"]
    from threadpoolctl import threadpool_limits

    # partitions run in parallel (threads here, processes on Dask): BLAS/OpenMP inside each one stays single
    with _stage(ctx, "score"), threadpool_limits(limits=1):
        futures = [tasks.score_partition.submit(scorer, batch["path"], g, str(work))
                   for g in range(tasks.partition_count(batch["path"]))]
        parts = [f.result() for f in futures]
    with _stage(ctx, "finalize"):
        row_reasons = contract["row_reasons"] if not campaign else tasks.merge_row_reasons(
            contract["row_reasons"], campaign, str(work))
        scores_path = tasks.finalize_scores(scorer, batch["path"], parts, row_reasons, str(work))

    import pandas as pd

    with _stage(ctx, "decide"):
        scores = outputs.read_scores(Path(scores_path))
        failures = pd.read_parquet(contract["failures"])
        drift = pd.read_parquet(drift_path) if drift_path else None
        decision = decide(scores, config.policy, failures=failures, drift=drift)
        relabel = None
        if ctx["label_column"] and "suggested_label" in scores.columns:
            decision, relabel = _labels(ctx, scores, decision, batch["path"], config.policy.relabel)
    staging: Path = ctx["staging"]
    with _stage(ctx, "write"):
        outputs.write_outputs(staging, batch_path=Path(batch["path"]), scores=scores,
                              quarantined=decision.quarantined, approved=decision.approved,
                              scores_file=Path(scores_path), relabel=relabel)
        if prior is not None and decision.approved and not already_approved(
                ctx["ledger_url"], file_digest(staging / "clean.parquet")):
            decision = refuse_again(decision, prior)
            (staging / "clean.parquet").unlink()
            ctx["prior_refusal"] = prior.warning(staged["digest"])  # in summary.json and the report too
        for src in (staged, ref):  # files read in place (not copies in the work dir) must still be those bytes
            if src is not None and not Path(src["path"]).resolve().is_relative_to(work.resolve()):
                tasks.check_unchanged(src["path"], src["digest"], src["uri"])
        summary = run_summary(ctx, decision, scores, failures, drift, contract, fitted["detectors"])
        contract_text = Path(contract["toml"]).read_text(encoding="utf-8")
        del scores  # the report reads scores.parquet a column at a time; this table is not needed again
        if decision.approved:  # kept before the entry is appended: a run killed between the two must not leave
            # an approved reference that the state directory lacks (copies are by digest; an unrecorded one is inert)
            state.keep_approved(staging / "clean.parquet", summary["outputs"]["clean.parquet"])
    with _stage(ctx, "ledger"):
        entries = record_attempt(ctx, summary, staging)
    with _stage(ctx, "publish"):
        if decision.approved and contract["origin"] != "state":
            state.save_contract_text(contract_text)
        outputs.publish(staging, ctx["out"])
    result = dict(summary, ok=decision.approved, ledger=entries, out_dir=str(ctx["out"]),
                  exit_code=0 if decision.approved else 1, timings=ctx.get("timings", []))
    if not decision.approved:  # the failure fields every --json refusal carries
        result.update(code="policy:rejected", message=f"{ctx['uri']} was rejected: "
                      + "; ".join(summary["reasons"][:3]))
    for warning in summary["warnings"]:
        logger.warning("%s", warning)
    artifacts(result)
    logger.info("verdict %s: %s", summary["verdict"], "; ".join(summary["reasons"]) or "no findings")
    return result


def _labels(ctx: dict[str, Any], scores: Any, decision: Decision, batch_path: str, relabel: bool,
            ) -> tuple[Decision, Relabel | None]:
    """The batch's class-confusion table (``ctx["labels"]``, for summary.json and the report) and, with
    ``relabel``, the quarantined rows released with corrected labels (``pipelines._relabel``)."""
    import pyarrow.parquet as pq

    column = ctx["label_column"]
    labels = pq.read_table(batch_path, columns=[column]).column(0).combine_chunks()
    ctx["labels"] = {"column": column, "suggested": int(len(suggestions(scores))),
                     "confusion": confusion(scores, labels), "relabel": relabel, "relabelled": None}
    plan = plan_relabel(scores, decision.quarantined, labels, column) if relabel and decision.approved else None
    if plan is None:
        return decision, None
    ctx["labels"]["relabelled"] = plan.record()
    changes = ", ".join(f"{c['from']} -> {c['to']} x{c['rows']}" for c in plan.changes[:3])
    return release_relabelled(decision, plan.rows, scores, changes), plan


def _against_anchor(ctx: dict[str, Any], state: SourceState, ref: dict[str, Any], batch_path: str,
                    params: dict[str, Any], work: Path) -> AnchorCheck | None:
    """The reference and batch checked against the source's anchor (``pipelines._anchor``); a re-run replays the
    window its entry recorded. None when it does not apply."""
    anchor = find_anchor(ctx["ledger_url"], ctx["source"], state, work)
    if anchor is None or anchor.digest == ref["digest"]:
        return None
    recorded = ref.get("anchor_record")
    if "anchor_record" in ref and not recorded:
        return None  # the entry re-run was judged without it
    window = window_of(ctx["ledger_url"], ctx["source"], state, work, anchor,
                       indices=recorded.get("window") if recorded else None)
    return check_against_anchor(anchor, window, batch_path, params, work)


def _check_and_fit(ctx: dict[str, Any], state: SourceState, batch_path: str, ref: dict[str, Any] | None,
                   ref_path: str | None, params: dict[str, Any], work: Path,
                   ) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """The contract, drift and the fitted scorer: independent, so with the local runner the contract and drift
    tasks run on the task runner's threads while the scorer is fitted in the flow's (on two cores, the stage
    takes about as long as its longest part). All three have ended when it returns or raises, and a failure is
    reported as when they ran in turn: the contract's first, then drift's, then the fit's."""
    c_args = (batch_path, state.load_contract_text(), ref_path, ctx["label_column"], str(work), ctx["source_column"])
    d_args = None  # no drift without a reference; a joined reference's profile is built in the work dir, never kept
    if ref is not None and ref_path is not None:
        profile = ref.get("profile") or str(state.profile_path(ref["digest"]))
        d_args = (batch_path, ref_path, ref["digest"], profile, str(work), ctx["source_column"])
    if ctx["runner"] != "local":  # on Dask these would be sent to workers that import Great Expectations first
        contract = tasks.check_contract(*c_args)
        drift_path = tasks.check_drift(*d_args) if d_args is not None else None
        return contract, drift_path, tasks.fit_scorer(batch_path, ref_path, params, str(work))
    from pipelines import _preload

    _preload.start()  # one thread imports the checks while the three tasks wait for it (never two at once)
    contract_f = tasks.check_contract.submit(*c_args)
    drift_f = tasks.check_drift.submit(*d_args) if d_args is not None else None
    fitted: dict[str, Any] = {}
    fit_error: Exception | None = None
    try:
        fitted = tasks.fit_scorer(batch_path, ref_path, params, str(work))
    except Exception as exc:  # noqa: BLE001 - raised below, after the contract's and drift's own failures
        fit_error = exc
    for f in (contract_f, drift_f):
        if f is not None:
            f.wait()  # nothing of this stage is still running (writing to the work dir) when it returns or raises
    contract = contract_f.result()
    drift_path = drift_f.result() if drift_f is not None else None
    if fit_error is not None:
        raise fit_error
    return contract, drift_path, fitted


def _record_error(ctx: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """Bad input: write summary.json and report.html, record an ``error`` entry, and publish nothing else (Parquet
    outputs a failed run may have staged are removed: none of them is a result, and the out dir's clean.parquet
    goes too)."""
    summary = error_summary(ctx, exc)
    staging: Path = ctx["staging"]
    for name in ("clean.parquet", "quarantine.parquet", "scores.parquet"):
        (staging / name).unlink(missing_ok=True)
    entries = record_attempt(ctx, summary, staging)
    outputs.publish(staging, ctx["out"])
    result = dict(summary, ledger=entries, out_dir=str(ctx["out"]),
                  exit_code=int(getattr(exc, "exit_code", ERROR_EXIT)))
    artifacts(result)
    return result


def _record_crash(ctx: dict[str, Any], exc: Exception) -> None:
    """Nothing lost: an unexpected failure still leaves an ``error`` entry when the ledger can take one."""
    from provenance.errors import ProvenanceError, ProvenanceInputError

    if isinstance(exc, ProvenanceError) and not isinstance(exc, ProvenanceInputError):
        return  # the ledger itself (or its keys) is the problem: do not append to it
    code = str(getattr(exc, "code", f"internal:{type(exc).__name__}"))
    wrapped = PipelineError(code, f"ingestion of {ctx['uri']} failed: {str(exc).splitlines()[0] if str(exc) else code}")
    try:
        _record_error(ctx, wrapped)
    except Exception as again:  # noqa: BLE001 - keep the original error; say why it could not be recorded
        sys.stderr.write(f"trainguard: could not record the failed attempt in the ledger: {again}\n")


def ingest(uri: str, *, source: str | None = None, reference: str | None = None, label_column: str | None = None,
           source_column: str | None = None, config_path: str | None = None, ledger_url: str | None = None,
           out_dir: str | None = None, runner: str = "local", dask_address: str | None = None,
           relabel: bool | None = None) -> dict[str, Any]:
    """Run the ingest flow and return its result; raise ``PipelineInputError`` for bad input (after recording it).

    The result's ``exit_code`` is 0 for approved and 1 for rejected (docs/design.md exit codes).
    """
    if runner not in ("local", "dask"):
        raise PipelineError("usage:runner", f"--runner must be 'local' or 'dask', not {runner!r}")
    bound_allocator_caches()
    flow_obj = ingest_flow.with_options(task_runner=_runner(runner, dask_address))
    import secrets

    read_key = secrets.token_hex(16)  # this run's own map: concurrent runs never read each other's URIs
    _READ_URIS[read_key] = {redact_uri(u): u for u in (uri, reference) if u and redact_uri(u) != u}
    try:
        result: dict[str, Any] = flow_obj(redact_uri(uri), source=source,
                                          reference=redact_uri(reference) if reference else None,
                                          label_column=label_column, source_column=source_column,
                                          config_path=config_path, ledger_url=ledger_url, out_dir=out_dir,
                                          runner=runner, read_key=read_key, relabel=relabel)
    finally:
        _READ_URIS.pop(read_key, None)
    err = result.get("error")
    if err:
        raise PipelineInputError(err["code"], err["message"])
    return result
