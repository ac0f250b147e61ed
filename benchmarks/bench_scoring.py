"""Speed of row scoring: a 1M x 20 batch against a 200k-row reference, per stage, beside PyOD ECOD and IForest.

One command, results in benchmarks/results/scoring_speed.json (seeded synthetic data, see ``_make``):

    nice -n 10 .venv/bin/python -m benchmarks.bench_scoring [--rows 1000000] [--reference 200000] [--no-pyod]

Stages: fit (preprocessing, detectors, calibration), score_partition per detector (preprocessing, iforest,
ecod, hbos, knn, calibration), finalize (batch-level detectors, combination, threshold, reasons), and the
end-to-end ``score`` of the batch, without and with a label column. Peak memory is the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"


def _make(n: int, seed: int) -> pd.DataFrame:
    """17 numeric columns (correlated Gaussian mixture, one heavy-tailed, one integer), 3 string categories and
    a 3-class label that depends on the features."""
    rng = np.random.default_rng(seed)
    centers = np.random.default_rng(99).normal(scale=3.0, size=(4, 17))
    comp = rng.integers(0, 4, size=n)
    num = centers[comp] + rng.normal(size=(n, 17))
    num[:, 3] = np.exp(num[:, 3] / 2)
    num[:, 5] = np.round(num[:, 5] * 3)
    frame = pd.DataFrame(num, columns=[f"x{j}" for j in range(17)])
    cats = np.array(["a", "b", "c", "d", "e", "f", "g", "h"])
    for k in range(3):
        frame[f"c{k}"] = pd.array(cats[(comp * (k + 1) + rng.integers(0, 3, size=n)) % len(cats)], dtype="str")
    logits = num[:, 0] - num[:, 1] + (comp == 2) * 2.0
    frame["label"] = np.digitize(logits + rng.normal(scale=0.5, size=n), [-2.0, 2.0])
    return frame


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


CPU: dict[str, float] = {}


def _timed(fn: Any, name: str | None = None) -> tuple[Any, float]:
    """(result, wall seconds); the process CPU seconds (all threads) go to ``CPU[name]``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    if name:
        CPU[name] = time.process_time() - c
    return out, time.perf_counter() - t


def run(rows: int, reference_rows: int, pyod: bool) -> dict[str, Any]:
    from checks.scoring import RowScorer

    load_start = os.getloadavg()
    ref = _make(reference_rows, 1)
    batch = _make(rows, 2)
    features = batch.drop(columns=["label"])
    doc: dict[str, Any] = {
        "rows": rows, "reference_rows": reference_rows, "columns": int(features.shape[1]),
        "cpu_count": os.cpu_count(), "python": platform.python_version(), "load_average_start": load_start,
        "command": f"nice -n 10 .venv/bin/python -m benchmarks.bench_scoring --rows {rows} --reference {reference_rows}"
        + ("" if pyod else " --no-pyod"),
    }
    for mode, label in (("no_label", None), ("with_label", "label")):
        frame = features if label is None else batch
        ref_m = ref.drop(columns=["label"]) if label is None else ref
        # fitted as the ingest flow fits: the reference, and the batch for the density detector's seeded pool
        scorer, t_fit = _timed(lambda label=label, ref_m=ref_m, frame=frame: RowScorer(label_column=label).fit(
            ref_m, frame), "fit")
        stages: dict[str, float] = {"fit": t_fit}
        X, stages["preprocess"] = _timed(lambda frame=frame, scorer=scorer: scorer.preprocessor_.transform(frame), "preprocess")
        for d in scorer.row_detectors_:
            raw, stages[d] = _timed(lambda d=d, X=X, scorer=scorer: scorer.models_[d].score_samples(X), d)
            _, stages[f"{d}_calibrate"] = _timed(lambda d=d, raw=raw, scorer=scorer: scorer.calibrators_[d].transform(raw))
        del X
        parts, stages["score_partition"] = _timed(
            lambda frame=frame, scorer=scorer: scorer.score_partition(frame), "score_partition")
        out, stages["finalize"] = _timed(
            lambda frame=frame, parts=parts, scorer=scorer: scorer.finalize(frame, parts), "finalize")
        _, stages["score_end_to_end"] = _timed(lambda frame=frame, scorer=scorer: scorer.score(frame), "score")
        doc[mode] = {
            "stages_s": {k: round(v, 3) for k, v in stages.items()},
            "score_end_to_end_cpu_s": round(CPU["score"], 3),
            "cpu_s": {k: round(v, 3) for k, v in CPU.items()},
            "flag_rate": float(out["flagged"].mean()),
            "peak_rss_mb": round(_peak_mb(), 1),
            "goal_15s_met": bool(stages["score_end_to_end"] <= 15.0),
        }
        print(mode, doc[mode], flush=True)
        CPU.clear()
        del parts, out, scorer
    if pyod:
        from pyod.models.ecod import ECOD
        from pyod.models.iforest import IForest

        from checks._preprocess import TabularPreprocessor

        pre = TabularPreprocessor(exclude=("label",)).fit(ref)
        Xr, Xb = pre.transform(ref), pre.transform(features)
        ecod, t_fit = _timed(lambda: ECOD().fit(Xr))
        _, t_score = _timed(lambda: ecod.decision_function(Xb), "pyod_ecod")
        doc["pyod_ecod"] = {"fit_s": round(t_fit, 3), "score_s": round(t_score, 3), "score_cpu_s": round(CPU["pyod_ecod"], 3)}
        forest, t_fit = _timed(lambda: IForest(random_state=0).fit(Xr))
        _, t_score = _timed(lambda: forest.decision_function(Xb), "pyod_iforest")
        doc["pyod_iforest"] = {
            "fit_s": round(t_fit, 3), "score_s": round(t_score, 3), "score_cpu_s": round(CPU["pyod_iforest"], 3)}
        print("pyod", doc["pyod_ecod"], doc["pyod_iforest"], flush=True)
    doc["load_average_end"] = os.getloadavg()
    doc["peak_rss_mb"] = round(_peak_mb(), 1)
    return doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reference", type=int, default=200_000)
    parser.add_argument("--no-pyod", action="store_true", help="skip PyOD ECOD/IForest on the same data")
    parser.add_argument("--out", type=Path, default=RESULTS / "scoring_speed.json")
    args = parser.parse_args()
    doc = run(args.rows, args.reference, not args.no_pyod)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
