"""report.html: one self-contained page (no scripts, no external files) rendered from an output directory.

It is rebuilt from ``summary.json``, ``scores.parquet`` and ``quarantine.parquet`` alone, so
``trainguard report OUT`` can re-render it at any time. The page is the Jinja2 template
``pipelines/templates/report.html.j2`` rendered with autoescape on: this module only gathers plain values
(strings, numbers, tables of strings) and every one of them is escaped where the template outputs it. The only
markup that is not the templates' own text is that of ``svg_histogram``, which renders the ``histogram`` macro
of ``macros.html.j2`` (so its title is escaped there too). Example::

    >>> from pipelines.report import svg_histogram
    >>> svg_histogram([0.1, 0.2, 0.9], [False, False, True], title="score").startswith("<svg")
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

__all__ = ["render_report", "render_report_html", "svg_histogram"]


@cache
def _env() -> Environment:
    """The templates of ``pipelines/templates``, autoescaped; an undefined name is an error, not a blank."""
    return Environment(loader=PackageLoader("pipelines", "templates"), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, auto_reload=False)


class _Bar(NamedTuple):
    """One bin of a histogram: its x, its range of scores, its counts and the heights of its two stacks."""

    x: float
    lo: float
    hi: float
    ok: int
    bad: int
    y_ok: float
    h_ok: float
    h_bad: float


class _Histogram(NamedTuple):
    """What the ``histogram`` macro draws (all numbers but ``title``)."""

    title: str
    width: int
    height: int
    left: int
    right: int
    base: int
    top: int
    top_y: int
    bar_width: float
    bars: list[_Bar]
    ticks: list[tuple[float, float]]


def svg_histogram(values: Sequence[float] | np.ndarray, flagged: Sequence[bool] | np.ndarray, *,
                  title: str, bins: int = 20, width: int = 320, height: int = 150) -> str:
    """An inline SVG histogram of scores in [0, 1], flagged rows stacked in red over the others.

    The SVG is a ``markupsafe.Markup`` (a ``str``): ``render_report_html`` puts it in the page as it is, while a
    plain string passed as a histogram would be escaped like any other value.
    """
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), 0.0, 1.0)
    f = np.asarray(flagged, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ok, _ = np.histogram(v[~f], bins=edges)
    bad, _ = np.histogram(v[f], bins=edges)
    top = max(1, int((ok + bad).max()))
    pad_l, pad_b, pad_t = 34, 18, 18
    w, h = width - pad_l - 6, height - pad_b - pad_t
    bw = w / bins
    bars = []
    for i in range(bins):
        h_ok = float(h * ok[i] / top)
        bars.append(_Bar(x=pad_l + i * bw, lo=float(edges[i]), hi=float(edges[i + 1]), ok=int(ok[i]), bad=int(bad[i]),
                         y_ok=pad_t + h - h_ok, h_ok=h_ok, h_bad=float(h * bad[i] / top)))
    hist = _Histogram(title=title, width=width, height=height, left=pad_l, right=pad_l + w, base=pad_t + h, top=top,
                      top_y=pad_t + 8, bar_width=bw - 1, bars=bars, ticks=[(pad_l + t * w, t) for t in (0.0, 0.5, 1.0)])
    svg: str = _env().get_template("macros.html.j2").module.histogram(hist)  # type: ignore[attr-defined]  # Markup
    return svg


class _Cell(NamedTuple):
    text: str
    num: bool  # right-aligned


class _Table(NamedTuple):
    """A table for the ``table`` macro: column names, rows of cells, and how many rows were left out."""

    columns: list[str]
    rows: list[list[_Cell]]
    more: int


def _table(df: pd.DataFrame, *, max_rows: int = 200) -> _Table | None:
    """The first ``max_rows`` rows of ``df`` as text (None when it is empty: the page says "none")."""
    if df.empty:
        return None
    rows = [[_cell(val) for val in rec] for rec in df.head(max_rows).itertuples(index=False)]
    return _Table([str(c) for c in df.columns], rows, max(0, len(df) - max_rows))


def _cell(val: Any) -> _Cell:
    num = isinstance(val, int | float | np.integer | np.floating) and not isinstance(val, bool)
    return _Cell(f"{val:.4g}" if isinstance(val, float | np.floating) else _fmt(val), num)


def _fmt(val: Any) -> str:
    if val is None or (isinstance(val, float) and np.isnan(val)):
        return ""
    if isinstance(val, list | tuple | np.ndarray):
        return ", ".join(str(v) for v in val)
    return str(val)


def render_report_html(summary: dict[str, Any], scores: pd.DataFrame, quarantine: pd.DataFrame,
                       reasons: dict[int, list[str]] | None = None, *, histograms: Sequence[str] | None = None,
                       ) -> str:
    """The report page as a string (deterministic for the same inputs).

    ``scores`` may leave out its ``reasons`` column when ``reasons`` maps the most suspicious rows to theirs.
    With ``histograms`` (the SVGs of ``svg_histogram`` for ``score`` and each ``score_*`` column) ``scores`` only
    needs the most suspicious rows: ``row``, ``score`` and ``flagged``. Only ``svg_histogram``'s SVGs are put in as
    markup; any other string given as a histogram is escaped and shown as text, like every value of the data.
    """
    src = summary.get("source", {})
    counts = summary.get("counts", {})
    facts = [("source", src.get("uri")), ("digest", src.get("digest")), ("format", src.get("format")),
             ("rows", counts.get("rows")), ("flagged", counts.get("flagged")),
             ("quarantined", counts.get("quarantined")),
             *([("relabelled", counts["relabelled"])] if counts.get("relabelled") else []),
             ("clean rows", counts.get("clean")),
             ("reference", (summary.get("reference") or {}).get("digest") or "none (scored on the batch itself)"),
             *([("threshold", _threshold_text(summary["threshold"]))] if summary.get("threshold") else []),
             ("contract", (summary.get("contract") or {}).get("digest")), ("config", summary.get("config_digest")),
             ("code version", summary.get("code_version"))]
    err = summary.get("error")
    checks = summary.get("checks", {})
    failures = summary.get("failures", {})
    drift = pd.DataFrame(summary.get("drift", []))
    if "drifted" in drift.columns:  # drifted columns first, then the table's own order
        drift = drift.sort_values("drifted", ascending=False, kind="stable")
    if histograms is None:
        histograms = [] if scores.empty else [
            svg_histogram(scores[col].to_numpy(dtype=float), scores["flagged"].to_numpy(dtype=bool), title=col)
            for col in _histogram_columns(scores.columns)]
    page = _env().get_template("report.html.j2").render(
        name=str(src.get("name", "")), verdict=str(summary.get("verdict", "rejected")),
        quarantine_note=_quarantine_note(counts), warnings=[str(w) for w in summary.get("warnings") or []],
        facts=[(k, _fmt(v)) for k, v in facts],
        error={"message": str(err.get("message")), "code": str(err.get("code"))} if err else None,
        reasons=[str(r) for r in summary.get("reasons", [])],
        checks=_table(pd.DataFrame([{"check": k, "passed": bool(v.get("passed")),
                                     "details": ", ".join(f"{a}={b}" for a, b in v.items() if a != "passed")}
                                    for k, v in checks.items()])),
        failures_total=str(failures.get("total", 0)), failures=_table(pd.DataFrame(failures.get("by_check", []))),
        drifted=int(drift["drifted"].astype(bool).sum()) if "drifted" in drift.columns else 0,
        drift_tests=len(drift), drift=_table(drift), labels=_labels(summary.get("labels")),
        histograms=list(histograms), scored=not scores.empty, suspicious=_suspicious(scores, quarantine, reasons))
    return page


_TOP_K = 25


def _histogram_columns(columns: Sequence[str]) -> list[str]:
    return ["score"] + sorted(c for c in columns if c.startswith("score_"))


def _top_positions(score: np.ndarray, row: np.ndarray, k: int = _TOP_K) -> np.ndarray:
    """Positions of the ``k`` highest scores, ties by row number (the order of the report's table)."""
    return np.lexsort((row, -score))[:k]


def _top_rows(scores: pd.DataFrame, k: int = _TOP_K) -> pd.DataFrame:
    return scores.iloc[_top_positions(scores["score"].to_numpy(dtype=float), scores["row"].to_numpy(), k)]


def _suspicious(scores: pd.DataFrame, quarantine: pd.DataFrame, reasons: dict[int, list[str]] | None,
                k: int = _TOP_K) -> _Table | None:
    """The ``k`` most suspicious rows with their reasons and, when quarantined, their values."""
    if scores.empty:
        return None
    top = _top_rows(scores, k)
    table = top[["row", "score", "flagged"]].copy()
    table["reasons"] = top["reasons"] if "reasons" in top.columns else [
        (reasons or {}).get(int(r), []) for r in top["row"]]
    added = list(quarantine.attrs.get("trainguard_columns") or [])
    if not added and len(quarantine.columns) >= 3:  # written before the file named its columns: the last three
        added = [str(c) for c in quarantine.columns[-3:]]
    if not quarantine.empty and added:
        data_cols = [str(c) for c in quarantine.columns if str(c) not in added]  # the data's own columns
        values = quarantine.set_index(added[0])[data_cols]
        table["values"] = [
            "; ".join(f"{c}={_fmt(v)}" for c, v in values.loc[r].items()) if r in values.index else ""
            for r in table["row"]
        ]
    return _table(table.reset_index(drop=True), max_rows=k)


def _quarantine_note(counts: dict[str, Any]) -> list[str]:
    """'N of M rows quarantined' and 'K relabelled', said next to an approved verdict."""
    quarantined, relabelled = int(counts.get("quarantined") or 0), int(counts.get("relabelled") or 0)
    rows = int(counts.get("rows") or 0)
    return ([f"{quarantined} of {rows} rows quarantined"] if quarantined else []) + (
        [f"{relabelled} relabelled"] if relabelled else [])


def _threshold_text(record: dict[str, Any]) -> str:
    """One line on how the batch's cut was set (``RowScorer.finalize``'s threshold record)."""
    budget = float(record.get("fp_budget", 0.0))
    mode = str(record.get("mode"))
    why = {"budget": f"the false-positive budget's ({budget:g} of trusted rows)",
           "widened": "widened from the budget's: the batch is significantly contaminated (expected-F1 optimum)",
           "narrowed": "stricter than the budget's: poison is concentrated at the smallest p-values "
                       "(expected-F1 optimum; clean rows are flagged at a lower rate)"}.get(mode, mode)
    text = f"score > {float(record.get('cut', 0.0)):.6g}, {why}"
    if "label_accuracy_heldout" in record:
        text += (f"; the trusted model predicts {float(record['label_accuracy_heldout']):.1%} of held-out trusted "
                 "labels, and label doubts are calibrated against that")
    return text


def _labels(labels: dict[str, Any] | None) -> dict[str, Any] | None:
    """The labels section: the class-confusion table (which labels the trusted model reads as which) and what
    was relabelled (None: no label column)."""
    if not labels:
        return None
    done = labels.get("relabelled")
    return {"column": str(labels.get("column")), "suggested": int(labels.get("suggested") or 0),
            "confusion": _table(pd.DataFrame(labels.get("confusion") or [],
                                             columns=["given", "suggested", "rows", "flagged"]), max_rows=50),
            "done": bool(done), "relabelled": int(done["rows"]) if done else 0,
            "changes": _table(pd.DataFrame(done.get("changes") or [], columns=["from", "to", "rows"])) if done else None,
            "relabel": bool(labels.get("relabel"))}


def render_report(out_dir: str | Path) -> Path:
    """Re-render ``OUT/report.html`` from ``OUT/summary.json`` and the Parquet outputs; returns its path."""
    from pipelines.errors import PipelineInputError
    from pipelines.outputs import atomic_write_bytes

    out = Path(out_dir)
    name = "summary.json"
    try:
        summary = json.loads((out / name).read_text(encoding="utf-8"))
        if not isinstance(summary, dict):
            raise ValueError(f"expected a JSON object, got {type(summary).__name__}")
        name = "scores.parquet"
        scores, reasons, histograms = _read_scores(out / name)
        name = "quarantine.parquet"
        quarantine = _read_quarantine(out / name)
    except (OSError, ValueError, KeyError) as exc:  # JSON and Arrow errors are ValueErrors
        raise PipelineInputError("data:bad_output_dir", f"cannot re-render the report of {out}: {out / name} is "
                                 f"not a trainguard output ({type(exc).__name__}: {exc})") from exc
    target = out / "report.html"
    atomic_write_bytes(target, render_report_html(summary, scores, quarantine, reasons, histograms=histograms).encode("utf-8"))
    return target


def _read_quarantine(path: Path) -> pd.DataFrame:
    """quarantine.parquet, with the names of the columns trainguard added (``attrs["trainguard_columns"]``)."""
    if not path.exists():
        return pd.DataFrame()
    import pyarrow.parquet as pq

    from pipelines.outputs import ADDED_COLUMNS_KEY

    table = pq.read_table(path)
    frame = table.to_pandas()
    meta = (table.schema.metadata or {}).get(ADDED_COLUMNS_KEY)
    if meta:
        frame.attrs["trainguard_columns"] = json.loads(meta)
    return frame


def _read_scores(path: Path) -> tuple[pd.DataFrame, dict[int, list[str]] | None, list[str] | None]:
    """The most suspicious rows, their reasons and the histograms, reading scores.parquet one column at a time so
    the report never holds the whole table (nothing when the file is absent: a run that failed early)."""
    if not path.exists():
        return pd.DataFrame(), None, None
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)

    def column(name: str) -> np.ndarray:
        return np.asarray(pf.read(columns=[name]).column(0).to_numpy(zero_copy_only=False))

    flagged = column("flagged")
    histograms = [svg_histogram(column(c), flagged, title=c) for c in _histogram_columns(pf.schema_arrow.names)]
    row, score = column("row"), column("score")
    top = _top_positions(score, row)
    scores = pd.DataFrame({"row": row[top], "score": score[top], "flagged": flagged[top]})
    del flagged, row, score
    reasons = None
    if len(top):
        rows_reasons = pf.read(columns=["reasons"]).column(0).take(top).to_pylist()
        reasons = {int(r): list(v or []) for r, v in zip(scores["row"], rows_reasons, strict=True)}
    return scores, reasons, histograms
