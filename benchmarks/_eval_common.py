"""Helpers shared by the row-score evaluations: environment facts, metrics, the trainguard call, JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
RESULTS = ROOT / "benchmarks" / "results"


def environment() -> dict[str, Any]:
    """Commit of the code under test (and whether checks/ is dirty), load average, versions, time."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    import sklearn

    try:
        import pyod

        pyod_v = pyod.__version__
    except Exception:  # noqa: BLE001
        pyod_v = "absent"
    try:
        import checks

        checks_from = str(Path(checks.__file__).resolve().parent)
    except Exception:  # noqa: BLE001
        checks_from = "not importable"
    return {
        "commit": git("rev-parse", "HEAD"),
        "checks_imported_from": checks_from,
        "checks_commit": git("log", "-1", "--format=%H %cI %s", "--", "checks/"),
        "checks_dirty": bool(git("status", "--porcelain", "--", "checks/")),
        "checks_uncommitted_files": git("status", "--porcelain", "--", "checks/").splitlines(),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sklearn": sklearn.__version__,
        "pyod": pyod_v,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }


def ranking(y_true: np.ndarray, score: np.ndarray) -> dict[str, float | None]:
    """ROC-AUC and average precision of ``score`` against a boolean truth (None when only one class is present)."""
    y_true = np.asarray(y_true, dtype=bool)
    score = np.nan_to_num(np.asarray(score, dtype=float), nan=0.0)
    if y_true.all() or not y_true.any():
        return {"roc_auc": None, "ap": None}
    return {"roc_auc": float(roc_auc_score(y_true, score)), "ap": float(average_precision_score(y_true, score))}


def flags(y_true: np.ndarray, flagged: np.ndarray) -> dict[str, float | int]:
    """Precision, recall, F1 of a boolean flag against a boolean truth, plus how many rows were flagged."""
    p, r, f, _ = precision_recall_fscore_support(
        np.asarray(y_true, dtype=bool), np.asarray(flagged, dtype=bool), average="binary", zero_division=0
    )
    return {"precision": float(p), "recall": float(r), "f1": float(f), "n_flagged": int(np.sum(flagged))}


def trainguard_available() -> str | None:
    """None when ``checks.scoring.RowScorer`` imports, else the reason it does not."""
    try:
        from checks.scoring import RowScorer  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means "not runnable here"
        return f"{type(exc).__name__}: {exc}"
    return None


def run_trainguard(
    reference: pd.DataFrame | None, batch: pd.DataFrame, **params: Any
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Fit trainguard's RowScorer on ``reference`` and score ``batch``; rows come back in batch order.

    Returns the scores table (positional, ``row`` 0..n-1) and the fit / score wall times.
    """
    from checks.scoring import RowScorer

    batch = batch.reset_index(drop=True)
    t0 = time.perf_counter()
    scorer = RowScorer(random_state=0, **params)
    scorer.fit(reference.reset_index(drop=True) if reference is not None else None, batch)
    t1 = time.perf_counter()
    scores = scorer.score(batch)
    t2 = time.perf_counter()
    scores = scores.sort_values("row").reset_index(drop=True)
    if len(scores) != len(batch) or not np.array_equal(scores["row"].to_numpy(), np.arange(len(batch))):
        raise RuntimeError(f"trainguard returned {len(scores)} rows for a batch of {len(batch)}")
    return scores, {"fit_s": t1 - t0, "score_s": t2 - t1}


def detector_columns(scores: pd.DataFrame) -> list[str]:
    return [c for c in scores.columns if c.startswith("score_")]


def reason_counts(reasons: pd.Series, top: int = 6) -> dict[str, int]:
    """The most common reason codes in a column of reason lists."""
    counts: dict[str, int] = {}
    for lst in reasons:
        if lst is None:
            continue
        for r in list(lst):
            key = str(r)
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1])[:top])


def mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))]
    return float(np.mean(vals)) if vals else None


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_json(path: Path, doc: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, default=_default) + "\n")


def _default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


# --------------------------------------------------------------------------- summaries and the markdown report

GOALS = {"roc_auc": 0.95, "f1": 0.8, "acc_drop": 0.005, "asr": 0.10}
METHODS = ("trainguard", "iforest", "cleanlab")


def poisoning_summary(doc: dict[str, Any]) -> dict[str, Any]:
    """Per attack, per method: means over datasets of the ranking, flag and model metrics, and the goals."""
    attacks: list[str] = []
    for d in doc["datasets"].values():
        attacks += [a for a in d["attacks"] if a not in attacks]
    out: dict[str, Any] = {}
    for a in attacks:
        rows = [(d, d["attacks"][a]) for d in doc["datasets"].values() if a in d["attacks"]]
        s: dict[str, Any] = {"datasets": len(rows),
                             "clean_accuracy": mean([d["clean_accuracy"] for d, _ in rows]),
                             "poisoned_accuracy": mean([r["poisoned"]["accuracy"] for _, r in rows])}
        if any("asr" in r["poisoned"] for _, r in rows):
            s["poisoned_asr"] = mean([r["poisoned"].get("asr") for _, r in rows])
            s["clean_model_asr"] = mean([r.get("clean_model_asr") for _, r in rows])
        for m in METHODS:
            ok = [(d, r[m]) for d, r in rows if "error" not in r.get(m, {"error": 1})]
            if not ok:
                s[m] = {"not_run": rows[0][1].get(m, {}).get("error", "not run") if rows else "not run"}
                continue
            ms: dict[str, Any] = {k: mean([b.get(k) for _, b in ok]) for k in ("roc_auc", "ap", "precision", "recall", "f1")}
            ms["datasets"] = len(ok)
            ms["gated_accuracy"] = mean([b["model"]["accuracy"] for _, b in ok])
            drops = [d["clean_accuracy"] - b["model"]["accuracy"] for d, b in ok]
            ms["accuracy_drop_vs_clean"] = mean(drops)
            ms["datasets_within_0.5pt"] = int(sum(x <= GOALS["acc_drop"] for x in drops))
            if any("asr" in b["model"] for _, b in ok):
                ms["gated_asr"] = mean([b["model"].get("asr") for _, b in ok])
            relabel = [b["relabel"] for _, b in ok if "relabel" in b]
            if relabel:  # --relabel: flagged rows released with a corrected label instead of dropped
                ms["relabel"] = {
                    "relabelled": mean([r["relabelled"] for r in relabel]),
                    "restored": mean([r["restored"] for r in relabel if r["restored"] is not None]),
                    "gated_accuracy": mean([r["model"]["accuracy"] for r in relabel]),
                    "wrong_labels_in_clean": mean([r["wrong_labels_in_clean_relabelling"] for r in relabel]),
                    "wrong_labels_in_clean_dropping": mean([r["wrong_labels_in_clean_dropping"] for r in relabel]),
                }
                if any("asr" in r["model"] for r in relabel):
                    ms["relabel"]["gated_asr"] = mean([r["model"].get("asr") for r in relabel])
            s[m] = ms
        tg = s.get("trainguard", {})
        if "roc_auc" in tg:
            s["goals"] = {
                "roc_auc>=0.95": bool((tg["roc_auc"] or 0) >= GOALS["roc_auc"]),
                "f1>=0.8": bool((tg["f1"] or 0) >= GOALS["f1"]),
                "gated_within_0.5pt": bool((tg["accuracy_drop_vs_clean"] or 0) <= GOALS["acc_drop"]),
            }
            if "gated_asr" in tg:
                s["goals"]["asr<=0.10"] = bool((tg["gated_asr"] or 0) <= GOALS["asr"])
        out[a] = s
    return out


def _pick_doc(kind: str) -> dict[str, Any] | None:
    for tag in ("", "_partial", "_quick"):
        p = RESULTS / f"scoring_eval_{kind}{tag}.json"
        if p.exists():
            doc: dict[str, Any] = json.loads(p.read_text())
            doc["_file"] = p.name
            return doc
    return None


def _env_line(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    la = ", ".join(f"{x:.2f}" for x in env["loadavg_start"])
    le = ", ".join(f"{x:.2f}" for x in doc.get("loadavg_end", []))
    files = ", ".join(env.get("checks_uncommitted_files", []))
    dirty = f" (uncommitted in checks/ at start: {files or 'yes'})" if env.get("checks_dirty") else " (checks/ clean)"
    src = env.get("checks_imported_from", "")
    if src and not src.startswith(str(ROOT)):
        dirty = (f" (working tree had uncommitted checks/ files, so `checks` was imported from a `git archive HEAD`"
                 f" export of that commit at {src})")
    return (f"Run `{doc['command'].strip()}` ({doc['run']}, file `{doc['_file']}`), started {env['started_utc']}, "
            f"{doc.get('seconds', 0):.0f} s, load average at start {la} / end {le} on {env['cpus']} cores. "
            f"Code: commit `{env['commit']}`; last checks/ commit `{env['checks_commit']}`{dirty}.")


def _yn(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def _poisoning_md(doc: dict[str, Any]) -> list[str]:
    S = doc["summary"]
    L = ["## (a) Poisoning attacks on PMLB", "", _env_line(doc), ""]
    sub = [f"{n} ({d['rows_original']} -> {d['rows_used']})" for n, d in doc["datasets"].items() if d["subsampled"]]
    L.append(f"Datasets: {', '.join(doc['datasets'])}. Split 40% reference / 40% batch / 20% test (seeded, "
             f"stratified). Subsampled (seeded, stratified) to {doc['max_rows']} rows: {', '.join(sub) or 'none'}.")
    if doc.get("trainguard_error"):
        L.append(f"**trainguard not run**: {doc['trainguard_error']}")
    L += ["", "Means over datasets. TG = trainguard (`RowScorer(label_column='class', random_state=0)`, its own "
          "threshold), IF = PyOD IForest on the reference (1% FP threshold there), CL = cleanlab find_label_issues "
          "(out-of-fold HGB over reference+batch). Accuracy: HGB on reference + batch rows (clean / poisoned / "
          "approved by each gate). ASR: backdoor attack success on triggered non-target test rows.", "",
          "| attack | TG AUC | TG AP | TG P | TG R | TG F1 | IF AUC | IF F1 | CL AUC | CL F1 | acc clean | poisoned "
          "| TG gated | IF gated | CL gated | ASR poisoned | ASR TG | ASR IF | ASR CL |",
          "|" + "---|" * 19]
    for a, s in S.items():
        tg, i_, c_ = (s.get(m, {}) for m in METHODS)
        L.append("| " + " | ".join([a] + [fmt(tg.get(k)) for k in ("roc_auc", "ap", "precision", "recall", "f1")]
                                   + [fmt(i_.get("roc_auc")), fmt(i_.get("f1")), fmt(c_.get("roc_auc")), fmt(c_.get("f1")),
                                      fmt(s["clean_accuracy"]), fmt(s["poisoned_accuracy"]), fmt(tg.get("gated_accuracy")),
                                      fmt(i_.get("gated_accuracy")), fmt(c_.get("gated_accuracy")),
                                      fmt(s.get("poisoned_asr")), fmt(tg.get("gated_asr")), fmt(i_.get("gated_asr")),
                                      fmt(c_.get("gated_asr"))]) + " |")
    L += ["", "### Goals (trainguard, per attack kind, means over datasets)", "",
          "| attack | ROC-AUC >= 0.95 | F1 >= 0.8 | gated within 0.5 pt of clean (datasets within) | ASR after gating <= 0.10 |",
          "|---|---|---|---|---|"]
    for a, s in S.items():
        tg = s.get("trainguard", {})
        if "roc_auc" not in tg:
            L.append(f"| {a} | not run | not run | not run | not run |")
            continue
        g = s["goals"]
        asr = (f"{_yn(g['asr<=0.10'])} ({fmt(tg['gated_asr'])})" if "asr<=0.10" in g else "n/a")
        L.append(f"| {a} | {_yn(g['roc_auc>=0.95'])} ({fmt(tg['roc_auc'])}) | {_yn(g['f1>=0.8'])} ({fmt(tg['f1'])}) | "
                 f"{_yn(g['gated_within_0.5pt'])} (drop {fmt(100 * (tg['accuracy_drop_vs_clean'] or 0), 2)} pt; "
                 f"{tg['datasets_within_0.5pt']}/{tg['datasets']}) | {asr} |")
    L += ["", "### Per dataset", "",
          "| dataset | attack | poison | TG AUC | TG AP | TG F1 | IF AUC | IF F1 | CL AUC | CL F1 | acc clean | poisoned | "
          "TG gated | ASR poisoned | ASR TG | TG fit+score s |", "|" + "---|" * 16]
    for n, d in doc["datasets"].items():
        for a, r in d["attacks"].items():
            tg = r.get("trainguard", {})
            t = tg.get("times")
            L.append("| " + " | ".join([n, a, str(r["n_poison"]), fmt(tg.get("roc_auc")), fmt(tg.get("ap")), fmt(tg.get("f1")),
                                        fmt(r["iforest"].get("roc_auc")), fmt(r["iforest"].get("f1")),
                                        fmt(r["cleanlab"].get("roc_auc")), fmt(r["cleanlab"].get("f1")), fmt(d["clean_accuracy"]), fmt(r["poisoned"]["accuracy"]),
                                        fmt(tg.get("model", {}).get("accuracy")), fmt(r["poisoned"].get("asr")),
                                        fmt(tg.get("model", {}).get("asr")),
                                        fmt(t["fit_s"] + t["score_s"], 1) if t else "n/a"]) + " |")
    return L


def _adbench_md(doc: dict[str, Any]) -> list[str]:
    S = doc["summary"]
    L = ["## (b) ADBench (unsupervised, no reference, no labels)", "", _env_line(doc), "", doc["protocol"], ""]
    dets = list(S["mean_roc_auc"])
    L += ["| detector | mean ROC-AUC (this run) | datasets | paper Table D4 mean |", "|---|---|---|---|"]
    for k in dets:
        L.append(f"| {k} | {fmt(S['mean_roc_auc'][k])} | {S['n'][k]} | {fmt(S['paper'].get(k))} |")
    L += ["", f"Goal (trainguard mean above the best single PyOD detector of this run): **{_yn(S.get('goal_met'))}** "
          f"({S.get('goal_text', '')})", "", "| dataset | rows used (of) | anomalies | " + " | ".join(dets) + " | paper IForest / ECOD |",
          "|" + "---|" * (4 + len(dets))]
    for n, d in doc["datasets"].items():
        paper = d.get("paper", {})
        pp = " / ".join(fmt(paper.get(k), 1) for k in ("iforest", "ecod")) if paper else ""
        L.append(f"| {n} | {d['rows_used']} ({d['rows_original']}) | {d['anomalies']} | "
                 + " | ".join(fmt(d["roc_auc"].get(k)) for k in dets) + f" | {pp} |")
    return L


def render() -> Path:
    """Re-write scoring_eval.md from the newest poisoning and ADBench JSON files (full, else partial, else quick)."""
    L = ["# trainguard row scores: public evaluation (issue 5, item 9)", "",
         "Generated by `python -m benchmarks.eval_poisoning` and `python -m benchmarks.eval_adbench` from the JSON "
         "files beside this one; numbers are copied from those runs only. `n/a` = not applicable or not run.", ""]
    for kind, fn in (("poisoning", _poisoning_md), ("adbench", _adbench_md)):
        doc = _pick_doc(kind)
        L += fn(doc) if doc else [f"## {kind}", "", "not run yet."]
        L.append("")
    path = RESULTS / "scoring_eval.md"
    path.write_text("\n".join(L))
    return path


def findings_tables(doc: dict[str, Any]) -> list[str]:
    """Markdown evidence for the scoring engineer: per-detector AUC per attack, and every failing dataset/attack."""
    dets: list[str] = []
    per: dict[str, dict[str, list[float | None]]] = {}
    fails: list[str] = []
    for n, d in doc["datasets"].items():
        for a, r in d["attacks"].items():
            tg = r.get("trainguard", {})
            if "detectors" not in tg:
                continue
            for c, v in tg["detectors"].items():
                if c not in dets:
                    dets.append(c)
                per.setdefault(a, {}).setdefault(c, []).append(v["roc_auc"])
            if (tg["roc_auc"] or 0) < GOALS["roc_auc"] or tg["f1"] < GOALS["f1"]:
                dg = tg["diagnosis"]
                top = sorted(tg["detectors"].items(), key=lambda kv: -(kv[1]["roc_auc"] or 0))[:3]
                meds = ", ".join(f"{c[6:]} {dg['poison_detector_medians'][c]:.2f}/{dg['clean_detector_medians'][c]:.2f}"
                                 for c, _ in top)
                quart = ", ".join(f"{q:.2f}" for q in dg["poison_score_quartiles"])
                best = ", ".join(f"{c[6:]} {fmt(v['roc_auc'], 2)}" for c, v in top)
                fps = "; ".join(f"{k}:{v}" for k, v in list(dg["reasons_false_positives"].items())[:3])
                fails.append(f"| {a} | {n} | {r['n_poison']} | {fmt(tg['roc_auc'])} | {fmt(tg['precision'])} | "
                             f"{fmt(tg['recall'])} | {dg['n_missed']} | {quart} | {fmt(dg['clean_score_q99'], 2)} | "
                             f"{best} | {meds} | {fps} |")
    L = ["### Mean ROC-AUC of each detector column against the poison mask (per attack, over datasets)", "",
         "| attack | " + " | ".join(c[6:] for c in dets) + " |", "|" + "---|" * (1 + len(dets))]
    for a, cols in per.items():
        L.append(f"| {a} | " + " | ".join(fmt(mean(cols.get(c, []))) for c in dets) + " |")
    L += ["", "### Every dataset/attack below the goals (AUC < 0.95 or F1 < 0.8)", "",
          "| attack | dataset | poison | AUC | P | R | missed | poison score q25/50/75 | clean q99 | best detectors (AUC) "
          "| their median poison/clean | top false-positive reasons |", "|" + "---|" * 12, *fails]
    return L
