"""ADBench evaluation of trainguard's combined row score without reference or labels, PyOD detectors beside.

Run ``python -m benchmarks.eval_adbench [--quick]``. Protocol of the ADBench paper (Table D4): each dataset is split
70% / 30% (seeded, stratified on y); every detector is fitted on the 70% part without labels and scores the 30%
part; ROC-AUC of the score against y (1 = anomaly). trainguard: ``RowScorer(random_state=0).fit(None, part70)`` (no
reference: robust fit on the batch itself) then ``score(part30)["score"]``. Datasets above 50,000 rows are first
subsampled (seeded, stratified) to 50,000. One repeat (the paper averages 3). Writes
``benchmarks/results/scoring_eval_adbench[_quick].json`` and re-renders ``benchmarks/results/scoring_eval.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from benchmarks import _eval_common as common

SEED = 0
MAX_ROWS = 50_000
QUICK = ["6_cardio", "38_thyroid"]
PYOD = ("iforest", "ecod", "copod", "hbos")
# ADBench paper, Table D4 (unsupervised, ROC-AUC x100), as quoted in ../shared/README.md.
PAPER_MEANS = {"iforest": 72.6, "cblof": 71.7, "pca": 70.9, "ecod": 70.9, "copod": 70.9, "hbos": 70.4, "knn": 69.7,
               "lof": 63.7}
PAPER = {"cardio": {"iforest": 93.2, "ecod": 94.4}, "thyroid": {"iforest": 98.3, "ecod": 97.8},
         "satellite": {"iforest": 70.4, "ecod": 75.1}, "shuttle": {"iforest": 99.6, "ecod": 99.4},
         "pendigits": {"iforest": 94.8, "ecod": 91.2}, "mammography": {"iforest": 86.4, "ecod": 90.8},
         "annthyroid": {"iforest": 82.0, "ecod": 78.0}, "vowels": {"iforest": 73.9, "ecod": 45.8, "knn": 97.3},
         "magic.gamma": {"iforest": 73.3, "ecod": 64.4, "knn": 82.4}}


def datasets() -> list[str]:
    d = common.SHARED / "data" / "adbench"
    return sorted((p.name[: -len(".npz")] for p in d.glob("*.npz")), key=lambda s: int(s.split("_")[0]))


def load(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    z = np.load(common.SHARED / "data" / "adbench" / f"{name}.npz", allow_pickle=False)
    X, y = np.asarray(z["X"], dtype=float), np.asarray(z["y"], dtype=int)
    n = len(y)
    if n > MAX_ROWS:
        X, _, y, _ = train_test_split(X, y, train_size=MAX_ROWS, random_state=SEED, stratify=y)
    return X, y, n


def _pyod(name: str) -> Any:
    if name == "iforest":
        from pyod.models.iforest import IForest

        return IForest(random_state=SEED, n_jobs=1)
    if name == "ecod":
        from pyod.models.ecod import ECOD

        return ECOD()
    if name == "copod":
        from pyod.models.copod import COPOD

        return COPOD()
    from pyod.models.hbos import HBOS

    return HBOS()


def run_dataset(name: str, tg_error: str | None) -> dict[str, Any]:
    X, y, n_orig = load(name)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=0.7, random_state=SEED, stratify=y)
    out: dict[str, Any] = {"rows_original": n_orig, "rows_used": len(y), "features": X.shape[1],
                           "anomalies": int(y.sum()), "test_rows": len(yte), "roc_auc": {}, "seconds": {}}
    for det in PYOD:
        t0 = time.perf_counter()
        try:
            m = _pyod(det).fit(Xtr)
            out["roc_auc"][det] = common.ranking(yte, m.decision_function(Xte))["roc_auc"]
        except Exception as exc:  # noqa: BLE001 - recorded as not run
            out.setdefault("errors", {})[det] = f"{type(exc).__name__}: {exc}"
        out["seconds"][det] = time.perf_counter() - t0
    if tg_error is None:
        cols = [f"x{i}" for i in range(X.shape[1])]
        t0 = time.perf_counter()
        try:
            scores, times = _trainguard(pd.DataFrame(Xtr, columns=cols), pd.DataFrame(Xte, columns=cols))
            out["roc_auc"]["trainguard"] = common.ranking(yte, scores["score"].to_numpy())["roc_auc"]
            out["trainguard_detectors"] = {c: common.ranking(yte, scores[c].to_numpy())["roc_auc"]
                                           for c in common.detector_columns(scores)}
            out["trainguard_flagged"] = common.flags(yte, scores["flagged"].to_numpy(dtype=bool))
            out["trainguard_times"] = times
        except Exception as exc:  # noqa: BLE001
            out.setdefault("errors", {})["trainguard"] = f"{type(exc).__name__}: {exc}"
            out["trainguard_traceback"] = traceback.format_exc(limit=4)
        out["seconds"]["trainguard"] = time.perf_counter() - t0
    short = name.split("_", 1)[1]
    if short in PAPER:
        out["paper"] = PAPER[short]
    return out


def _trainguard(train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    """RowScorer fitted with no reference on the 70% part (robustly, as a batch), scoring the 30% part."""
    from checks.scoring import RowScorer

    t0 = time.perf_counter()
    s = RowScorer(random_state=SEED).fit(None, train)
    t1 = time.perf_counter()
    scores = s.score(test.reset_index(drop=True)).sort_values("row").reset_index(drop=True)
    t2 = time.perf_counter()
    if len(scores) != len(test):
        raise RuntimeError(f"trainguard returned {len(scores)} rows for {len(test)}")
    return scores, {"fit_s": t1 - t0, "score_s": t2 - t1}


def summary(doc: dict[str, Any]) -> dict[str, Any]:
    dets = list(PYOD) + (["trainguard"] if doc.get("trainguard_error") is None else [])
    means = {k: common.mean([d["roc_auc"].get(k) for d in doc["datasets"].values()]) for k in dets}
    n = {k: sum(d["roc_auc"].get(k) is not None for d in doc["datasets"].values()) for k in dets}
    paper = {k: PAPER_MEANS[k] / 100 for k in dets if k in PAPER_MEANS}
    s: dict[str, Any] = {"mean_roc_auc": means, "n": n, "paper": paper}
    tg = means.get("trainguard")
    if tg is not None:
        # compare on the datasets where every detector ran
        common_sets = [d for d in doc["datasets"].values() if all(d["roc_auc"].get(k) is not None for k in dets)]
        cm = {k: common.mean([d["roc_auc"][k] for d in common_sets]) for k in dets}
        best = max(PYOD, key=lambda k: cm[k] or 0)
        s["goal_met"] = bool((cm["trainguard"] or 0) > (cm[best] or 0))
        s["goal_text"] = (f"trainguard {common.fmt(cm['trainguard'])} vs best PyOD {best} {common.fmt(cm[best])} "
                          f"on the {len(common_sets)} datasets where all ran")
        s["wins_vs_best"] = int(sum(d["roc_auc"]["trainguard"] > d["roc_auc"][best] for d in common_sets))
    else:
        s["goal_met"] = None
        s["goal_text"] = f"trainguard not run: {doc.get('trainguard_error')}"
    return s


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.eval_adbench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 datasets (cardio, thyroid), a smoke check")
    ap.add_argument("--datasets", nargs="*", help="only these (e.g. 6_cardio)")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/scoring_eval_adbench[_quick].json)")
    args = ap.parse_args(argv)
    if not (common.SHARED / "data" / "adbench").is_dir():
        print(f"../shared/data/adbench is absent ({common.SHARED}); nothing to evaluate", file=sys.stderr)
        return 2
    names = args.datasets or (QUICK if args.quick else datasets())
    tag = "quick" if args.quick else ("partial" if args.datasets else "full")
    tg_error = common.trainguard_available()
    doc: dict[str, Any] = {
        "kind": "adbench", "run": tag, "command": "python -m benchmarks.eval_adbench " + " ".join(argv or sys.argv[1:]),
        "environment": common.environment(), "trainguard_error": tg_error, "datasets": {},
        "protocol": ("Protocol: seeded stratified 70/30 split per dataset, detectors fitted on the 70% part without "
                     "labels, ROC-AUC on the 30% part (paper protocol, 1 repeat instead of 3); trainguard = "
                     "`RowScorer(random_state=0).fit(None, part70).score(part30)['score']`; PyOD defaults "
                     f"(IForest random_state=0). Datasets above {MAX_ROWS} rows subsampled (seeded, stratified) to "
                     f"{MAX_ROWS}."),
    }
    t0 = time.perf_counter()
    for name in names:
        doc["datasets"][name] = d = run_dataset(name, tg_error)
        print(f"  {name:22s} n={d['rows_used']:6d} " + " ".join(f"{k}={common.fmt(v)}" for k, v in d["roc_auc"].items())
              + f" errors={d.get('errors', {})}", flush=True)
    doc["seconds"] = time.perf_counter() - t0
    doc["loadavg_end"] = list(os.getloadavg())
    doc["summary"] = summary(doc)
    suffix = "" if tag == "full" else f"_{tag}"
    path = common.Path(args.out) if args.out else common.RESULTS / f"scoring_eval_adbench{suffix}.json"
    common.write_json(path, doc)
    common.render()
    print(f"wrote {path} in {doc['seconds']:.0f}s; {doc['summary']['goal_text']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
