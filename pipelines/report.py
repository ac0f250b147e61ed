"""report.html: one self-contained page (no scripts, no external files) rendered from an output directory.

It is rebuilt from ``summary.json``, ``scores.parquet`` and ``quarantine.parquet`` alone, so
``trainguard report OUT`` can re-render it at any time. Example::

    >>> from pipelines.report import svg_histogram
    >>> svg_histogram([0.1, 0.2, 0.9], [False, False, True], title="score").startswith("<svg")
    True
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["render_report", "render_report_html", "svg_histogram"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#1b1f24;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:.35em .9em;border-radius:6px;font-weight:700;color:#fff;font-size:1.1em}
.approved{background:#1a7f37}.rejected{background:#cf222e}.override{background:#9a6700}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:12px;background:#f6f8fa;padding:1px 4px;border-radius:3px;word-break:break-all}
.hists{display:flex;flex-wrap:wrap;gap:12px} .muted{color:#57606a} .bad{color:#cf222e;font-weight:600}
"""


def svg_histogram(values: Sequence[float] | np.ndarray, flagged: Sequence[bool] | np.ndarray, *,
                  title: str, bins: int = 20, width: int = 320, height: int = 150) -> str:
    """An inline SVG histogram of scores in [0, 1], flagged rows stacked in red over the others."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=float), nan=0.0), 0.0, 1.0)
    f = np.asarray(flagged, dtype=bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ok, _ = np.histogram(v[~f], bins=edges)
    bad, _ = np.histogram(v[f], bins=edges)
    top = max(1, int((ok + bad).max()))
    pad_l, pad_b, pad_t = 34, 18, 18
    w, h = width - pad_l - 6, height - pad_b - pad_t
    bw = w / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{escape(title)} histogram">',
             f'<text x="{pad_l}" y="12" font-size="12" font-weight="600">{escape(title)}</text>']
    for i in range(bins):
        x = pad_l + i * bw
        h_ok = h * ok[i] / top
        h_bad = h * bad[i] / top
        y_ok = pad_t + h - h_ok
        if ok[i]:
            parts.append(f'<rect x="{x:.1f}" y="{y_ok:.1f}" width="{bw - 1:.1f}" height="{h_ok:.1f}" fill="#8c959f">'
                         f'<title>{edges[i]:.2f}-{edges[i + 1]:.2f}: {ok[i]} rows</title></rect>')
        if bad[i]:
            parts.append(f'<rect x="{x:.1f}" y="{y_ok - h_bad:.1f}" width="{bw - 1:.1f}" height="{h_bad:.1f}" '
                         f'fill="#cf222e"><title>{edges[i]:.2f}-{edges[i + 1]:.2f}: {bad[i]} flagged</title></rect>')
    base = pad_t + h
    parts.append(f'<line x1="{pad_l}" y1="{base}" x2="{pad_l + w}" y2="{base}" stroke="#57606a"/>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + 8}" font-size="10" text-anchor="end">{top}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{base}" font-size="10" text-anchor="end">0</text>')
    for t in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{pad_l + t * w:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">{t:g}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(df: pd.DataFrame, *, max_rows: int = 200) -> str:
    if df.empty:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{escape(str(c))}</th>" for c in df.columns)
    body = []
    for rec in df.head(max_rows).itertuples(index=False):
        cells = []
        for val in rec:
            num = isinstance(val, int | float | np.integer | np.floating) and not isinstance(val, bool)
            text = f"{val:.4g}" if isinstance(val, float | np.floating) else _fmt(val)
            cells.append(f'<td class="num">{escape(text)}</td>' if num else f"<td>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="muted">... {len(df) - max_rows} more</p>' if len(df) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


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
    needs the most suspicious rows: ``row``, ``score`` and ``flagged``.
    """
    src = summary.get("source", {})
    verdict = str(summary.get("verdict", "rejected"))
    counts = summary.get("counts", {})
    out: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>trainguard: {escape(str(src.get('name', '')))} {escape(verdict)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>trainguard ingestion report: {escape(str(src.get('name', '')))}</h1>",
        f'<p><span class="verdict {escape(verdict)}">{escape(verdict.upper())}</span>{_quarantine_note(counts)}</p>',
        *(f'<p class="warning">warning: {escape(str(w))}</p>' for w in summary.get("warnings") or []),
        "<table>",
    ]
    facts = [("source", src.get("uri")), ("digest", src.get("digest")), ("format", src.get("format")),
             ("rows", counts.get("rows")), ("flagged", counts.get("flagged")),
             ("quarantined", counts.get("quarantined")),
             *([("relabelled", counts["relabelled"])] if counts.get("relabelled") else []),
             ("clean rows", counts.get("clean")),
             ("reference", (summary.get("reference") or {}).get("digest") or "none (scored on the batch itself)"),
             *([("threshold", _threshold_text(summary["threshold"]))] if summary.get("threshold") else []),
             ("contract", (summary.get("contract") or {}).get("digest")), ("config", summary.get("config_digest")),
             ("code version", summary.get("code_version"))]
    out += [f"<tr><th>{escape(k)}</th><td><code>{escape(_fmt(v))}</code></td></tr>" for k, v in facts]
    out.append("</table>")
    if summary.get("error"):
        err = summary["error"]
        out.append(f'<p class="bad">Input refused: {escape(str(err.get("message")))} '
                   f'(<code>{escape(str(err.get("code")))}</code>)</p>')
    out.append("<h2>Reasons</h2><ul>" + "".join(f"<li>{escape(str(r))}</li>" for r in summary.get("reasons", []))
               + "</ul>")
    checks = summary.get("checks", {})
    out.append("<h2>Policy checks</h2>")
    out.append(_table(pd.DataFrame([{"check": k, "passed": bool(v.get("passed")),
                                     "details": ", ".join(f"{a}={b}" for a, b in v.items() if a != "passed")}
                                    for k, v in checks.items()])))
    failures = summary.get("failures", {})
    out.append(f"<h2>Contract failures ({failures.get('total', 0)})</h2>")
    out.append(_table(pd.DataFrame(failures.get("by_check", []))))
    drift = pd.DataFrame(summary.get("drift", []))
    if "drifted" in drift.columns:  # drifted columns first, then the table's own order
        drift = drift.sort_values("drifted", ascending=False, kind="stable")
    n_drifted = int(drift["drifted"].astype(bool).sum()) if "drifted" in drift.columns else 0
    out.append(f"<h2>Drift against the reference ({n_drifted} of {len(drift)} tests drifted)</h2>")
    out.append(_table(drift))
    out += _labels_section(summary.get("labels"))
    out.append("<h2>Score histograms</h2><p class='muted'>grey: kept rows, red: flagged rows</p><div class='hists'>")
    if histograms is not None:
        out += list(histograms)
    elif not scores.empty:
        flagged = scores["flagged"].to_numpy(dtype=bool)
        for col in _histogram_columns(scores.columns):
            out.append(svg_histogram(scores[col].to_numpy(dtype=float), flagged, title=col))
    out.append("</div>")
    out.append("<h2>Most suspicious rows</h2>")
    out.append(_suspicious(scores, quarantine, reasons))
    out.append("<p class='muted'>Row numbers are 0-based positions in the source file. "
               "Verify this run with <code>trainguard ledger show DIGEST</code>.</p></body></html>")
    return "\n".join(out)


_TOP_K = 25


def _histogram_columns(columns: Sequence[str]) -> list[str]:
    return ["score"] + sorted(c for c in columns if c.startswith("score_"))


def _top_positions(score: np.ndarray, row: np.ndarray, k: int = _TOP_K) -> np.ndarray:
    """Positions of the ``k`` highest scores, ties by row number (the order of the report's table)."""
    return np.lexsort((row, -score))[:k]


def _top_rows(scores: pd.DataFrame, k: int = _TOP_K) -> pd.DataFrame:
    return scores.iloc[_top_positions(scores["score"].to_numpy(dtype=float), scores["row"].to_numpy(), k)]


def _suspicious(scores: pd.DataFrame, quarantine: pd.DataFrame, reasons: dict[int, list[str]] | None,
                k: int = _TOP_K) -> str:
    if scores.empty:
        return '<p class="muted">no rows were scored</p>'
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


def _quarantine_note(counts: dict[str, Any]) -> str:
    """' with N of M rows quarantined' next to an approved verdict, so the badge is not read as 'all clean'."""
    quarantined, relabelled = int(counts.get("quarantined") or 0), int(counts.get("relabelled") or 0)
    rows = int(counts.get("rows") or 0)
    parts = ([f"{quarantined} of {rows} rows quarantined"] if quarantined else []) + (
        [f"{relabelled} relabelled"] if relabelled else [])
    return f" &nbsp;with {' and '.join(parts)}" if parts else ""


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


def _labels_section(labels: dict[str, Any] | None) -> list[str]:
    """Which labels the trusted model reads as which (the class-confusion table) and what was relabelled."""
    if not labels:
        return []
    column = escape(str(labels.get("column")))
    out = [f"<h2>Labels of <code>{column}</code>: {int(labels.get('suggested') or 0)} rows the trusted model "
           "confidently reads as another class</h2>",
           "<p class='muted'>Each row: the label a batch row carries, the class the model trained on the trusted "
           "reference is confident of instead, how many rows, and how many of them were flagged. "
           "<code>scores.parquet</code> and <code>quarantine.parquet</code> hold every row's "
           "<code>label_quality</code> (the model's probability of its label) and <code>suggested_label</code>.</p>"]
    table = pd.DataFrame(labels.get("confusion") or [], columns=["given", "suggested", "rows", "flagged"])
    out.append(_table(table, max_rows=50))
    done = labels.get("relabelled")
    if done:
        out.append(f"<p>Relabelled {int(done['rows'])} quarantined rows in <code>clean.parquet</code> "
                   "(their only reasons were about the label):</p>")
        out.append(_table(pd.DataFrame(done.get("changes") or [], columns=["from", "to", "rows"])))
    elif labels.get("relabel"):
        out.append("<p class='muted'>Relabelling was on; no quarantined row qualified.</p>")
    else:
        out.append("<p class='muted'>Flagged rows were dropped, not relabelled (<code>--relabel</code> or "
                   "<code>[policy] relabel = true</code> corrects confidently flipped labels instead).</p>")
    return out


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
