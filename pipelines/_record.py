"""Summaries, ledger entries and Prefect artifacts of an ingest run (internal to ``flows``; its reference is
``pipelines._reference``).

Ledger entries of one attempt (the verdict of an entry applies to every subject it names):

- approved, nothing quarantined: one ``approved`` entry naming the source and every output;
- approved with quarantined or relabelled rows: an ``approved`` entry naming clean.parquet, scores.parquet,
  summary.json and report.html, and a ``quarantined`` entry naming the raw source and quarantine.parquet (so the
  gate accepts the cleaned data and refuses the raw file); the predicate's ``labels`` lists every relabelling;
- rejected: one ``rejected`` entry naming the source and the outputs (no clean.parquet is written);
- bad input: one ``error`` entry naming the source bytes (or, when there are none, the URI's text) and the
  summary and report.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import platform
import re
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines._uris import one_line, redact_uri, scrub
from pipelines.policy import Decision

__all__ = ["ERROR_EXIT", "describe_detectors", "run_summary", "error_summary", "record_attempt", "artifacts"]

ERROR_EXIT = 2


def _code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"trainguard {version('trainguard')}"
    except PackageNotFoundError:
        return "trainguard (source tree)"


def _actor() -> str:
    if os.environ.get("TRAINGUARD_ACTOR"):
        return os.environ["TRAINGUARD_ACTOR"]
    try:
        user = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        user = "unknown"
    return f"{user}@{platform.node()}"


def _failure_summary(failures: pd.DataFrame) -> dict[str, Any]:
    if failures.empty:
        return {"total": 0, "by_check": []}
    f = failures.copy()
    f["column"] = f["column"].astype("string").fillna("")
    rows = []
    for (check, column), grp in f.groupby(["check", "column"], sort=True, dropna=False):
        examples = grp["row"].dropna().astype("int64").head(5).tolist()
        values = grp["value"].dropna().astype(str).head(3).tolist()
        rows.append({"check": str(check), "column": str(column), "rows": int(grp["row"].notna().sum()),
                     "example_rows": ", ".join(map(str, examples)), "example_values": ", ".join(values),
                     "reason": str(grp["reason"].iloc[0])})
    return {"total": int(len(failures)), "by_check": rows}


def describe_detectors(scorer: Any) -> Any:
    """JSON-able description of a fitted scorer's detectors (names, versions, parameters) for the ledger."""
    if hasattr(scorer, "describe"):
        return scorer.describe()
    params = scorer.get_params() if hasattr(scorer, "get_params") else {}
    return {"class": type(scorer).__name__, "params": {k: repr(v) for k, v in sorted(params.items())}}


def _records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
    if df is None or df.empty:
        return []
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in rec.items()} for rec in df.to_dict("records")]


def run_summary(ctx: dict[str, Any], decision: Decision, scores: pd.DataFrame, failures: pd.DataFrame,
                drift: pd.DataFrame | None, contract: dict[str, Any], detectors: Any) -> dict[str, Any]:
    """The deterministic summary.json of a scored run (no times, no run ids)."""
    from provenance.hashing import file_digest

    staging: Path = ctx["staging"]
    ref = ctx.get("reference")
    flagged = int(scores["flagged"].astype(bool).sum())
    outs = {n: file_digest(staging / n) for n in ("clean.parquet", "quarantine.parquet", "scores.parquet")
            if (staging / n).exists()}
    return {
        "source": {"name": ctx["source"], "uri": ctx["uri"], "digest": ctx["digest"],
                   "format": ctx["format"], "rows": ctx["rows"], "columns": ctx["columns"]},
        "label_column": ctx["label_column"], "source_column": ctx["source_column"],
        "verdict": decision.verdict, "reasons": decision.reasons, "checks": decision.checks,
        "counts": {"rows": int(len(scores)), "flagged": flagged, "quarantined": int(len(decision.quarantined)),
                   "relabelled": int(len(decision.relabelled)),
                   "clean": int(len(scores) - len(decision.quarantined)) if decision.approved else 0},
        "labels": ctx.get("labels"), "threshold": scores.attrs.get("threshold"),
        "reference": _reference_summary(ref),
        "contract": {"digest": contract["digest"], "origin": contract["origin"]},
        "config_digest": ctx["config"].digest(), "code_version": _code_version(),
        "detectors": detectors, "drift": _records(drift), "failures": _failure_summary(failures),
        "outputs": outs, "warnings": _warnings(ctx, contract),
    }


def _reference_summary(ref: dict[str, Any] | None) -> dict[str, Any] | None:
    """The reference as summary.json and the ledger record it; ``parts`` only for one joining approved sets."""
    if not ref:
        return None
    parts = [{"index": int(p["index"]), "digest": str(p["digest"]), "rows": int(p["rows"])} for p in ref.get("parts")
             or []]
    return {"uri": redact_uri(str(ref["uri"])) if ref["uri"] is not None else None, "digest": ref["digest"],
            "origin": ref["origin"], **({"parts": parts} if parts else {}),
            **({"anchor": dict(ref["anchor"])} if ref.get("anchor") else {})}


def _warnings(ctx: dict[str, Any], contract: dict[str, Any]) -> list[str]:
    """What a reader of the verdict must know about its footing (empty when nothing)."""
    prior = [str(ctx["prior_refusal"])] if ctx.get("prior_refusal") else []
    if ctx.get("reference") is not None:
        return prior
    what = "its own contract and " if contract["origin"] == "batch" else ""
    return [f"no trusted reference for source {ctx['source']!r}: the batch was scored against {what}itself, so "
            "poison it carries can pass as normal; if approved it becomes the reference of the next batches "
            "(pass --reference with trusted data for a source's first batch)", *prior]


def error_summary(ctx: dict[str, Any], exc: Exception) -> dict[str, Any]:
    """summary.json of an attempt whose input could not be ingested (the message on one line, without the
    credentials of the URI it may quote)."""
    code = str(getattr(exc, "code", "data:error"))
    message = one_line(scrub(str(exc), str(ctx.get("read_uri") or ctx["uri"])))
    return {
        "source": {"name": ctx["source"], "uri": ctx["uri"], "digest": ctx.get("digest")},
        "verdict": "error", "reasons": [code], "checks": {}, "counts": {},
        "error": {"code": code, "message": message, "exit_code": int(getattr(exc, "exit_code", ERROR_EXIT))},
        "config_digest": ctx["config"].digest(), "code_version": _code_version(), "outputs": {},
    }


def _entry_plan(summary: dict[str, Any], digests: dict[str, str], out: Path) -> list[tuple[str, list[str]]]:
    """(verdict, subject output names) of each entry; ``"<source>"`` stands for the source data."""
    verdict = summary["verdict"]
    present = [n for n in ("clean.parquet", "quarantine.parquet", "scores.parquet", "summary.json", "report.html")
               if n in digests]
    counts = summary["counts"]
    if verdict == "approved" and (counts["quarantined"] or counts.get("relabelled")):  # the raw file is not clean
        return [("approved", [n for n in present if n != "quarantine.parquet"]),
                ("quarantined", ["<source>", "quarantine.parquet"])]
    return [(verdict, ["<source>", *present])]


def record_attempt(ctx: dict[str, Any], summary: dict[str, Any], staging: Path) -> list[dict[str, Any]]:
    """Write summary.json and report.html into ``staging``, then append this attempt's ledger entries."""
    from pipelines.outputs import write_json
    from pipelines.report import render_report
    from provenance.entries import make_statement
    from provenance.hashing import file_digest
    from provenance.ledger import open_ledger

    write_json(staging / "summary.json", summary)
    render_report(staging)
    out: Path = ctx["out"]
    digests = {p.name: file_digest(p) for p in sorted(staging.iterdir()) if p.is_file()}
    src_digest = ctx.get("digest")
    uri = ctx["uri"]  # redacted by the flow: the ledger never holds a URL's credentials (nor a digest of them)
    src_name = uri
    if src_digest is None:  # no bytes to name (missing file, refused root): name the URI's text instead
        src_digest = "sha256:" + hashlib.sha256(uri.encode("utf-8")).hexdigest()
        src_name = f"uri:{uri}"
    ref = summary.get("reference")
    predicate_base: dict[str, Any] = {
        "source": {"name": ctx["source"], "uri": uri, "digest": ctx.get("digest")},
        "run": {"flow_run_id": _flow_run_id(), "runner": ctx["runner"]},
        "config_digest": summary["config_digest"],
        "contract_digest": (summary.get("contract") or {}).get("digest"),
        "reference": ref, "reference_digest": ref["digest"] if ref else None,
        # a reference joining approved sets: they are parents too (its own digest names no ledger entry)
        "parents": [ref["digest"], *(p["digest"] for p in ref.get("parts", []))] if ref else [],
        "detectors": summary.get("detectors"), "counts": summary.get("counts", {}),
        "checks": summary.get("checks", {}), "reasons": summary.get("reasons", []),
        "outputs": {n: {"uri": str(out / n), "digest": d} for n, d in digests.items()},
        "code_version": summary["code_version"], "actor": _actor(),
    }
    if summary.get("labels"):  # the confusion table, and every label a relabelling changed
        predicate_base["labels"] = summary["labels"]
    if "clean.parquet" in digests:
        predicate_base["approved_data"] = {"uri": str(out / "clean.parquet"), "digest": digests["clean.parquet"],
                                           "rows": summary["counts"]["clean"]}
    if summary.get("error"):
        predicate_base["error"] = summary["error"]
    results = []
    with open_ledger(ctx["ledger_url"]) as ledger:
        for verdict, names in _entry_plan(summary, digests, out):
            subjects = [(src_name, src_digest) if n == "<source>" else (str(out / n), digests[n]) for n in names]
            statement = make_statement(subjects=subjects, predicate=dict(predicate_base, verdict=verdict))
            res = ledger.append(statement)
            results.append({"index": res.index, "entry_hash": res.entry_hash, "verdict": verdict})
    return results


def _flow_run_id() -> str | None:
    try:
        from prefect.runtime import flow_run

        return str(flow_run.id) if flow_run.id else None
    except Exception:  # noqa: BLE001 - outside a flow run
        return None


def artifacts(result: dict[str, Any]) -> None:
    """A summary table and a markdown verdict with the top reasons, attached to the flow run."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    src = result.get("source", {})
    key = re.sub(r"[^a-z0-9-]+", "-", f"trainguard-{src.get('name', 'source')}".lower()).strip("-")
    counts = result.get("counts", {})
    table = [{"item": k, "value": str(v)} for k, v in (
        ("source", src.get("uri")), ("digest", src.get("digest")), ("verdict", result.get("verdict")),
        ("rows", counts.get("rows")), ("flagged", counts.get("flagged")),
        ("quarantined", counts.get("quarantined")), ("out", result.get("out_dir")),
        ("ledger entries", ", ".join(str(e["index"]) for e in result.get("ledger", []))))]
    create_table_artifact(table=table, key=f"{key}-summary", description="trainguard ingestion summary")
    reasons = "\n".join(f"- {r}" for r in result.get("reasons", [])[:10]) or "- no findings"
    md = (f"# {str(result.get('verdict', '')).upper()}: {src.get('name')}\n\n`{src.get('uri')}` "
          f"({src.get('digest')})\n\n## Top reasons\n{reasons}\n\nReport: `{result.get('out_dir')}/report.html`\n")
    create_markdown_artifact(markdown=md, key=f"{key}-verdict", description="trainguard verdict")
