"""Poisoning evaluation of trainguard's row scores on the PMLB datasets, with PyOD IForest and cleanlab beside.

Run ``python -m benchmarks.eval_poisoning [--quick]``: each dataset is split (seeded, stratified) into a trusted 40%
reference, a 40% incoming batch and a 20% clean test set; the batch is poisoned by every attack of
``benchmarks.attacks``; trainguard, IForest and cleanlab score it; a HistGradientBoosting model is trained on the
reference plus the clean, the poisoned and each gate's approved batch rows. Writes
``benchmarks/results/scoring_eval_poisoning[_quick].json`` and re-renders ``benchmarks/results/scoring_eval.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor
from functools import partial as partial_fn
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: OpenMP spin-waiting makes HGB 10x slower

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, cross_val_predict, train_test_split

from benchmarks import _eval_common as common
from benchmarks.attacks import ATTACKS, Poisoned, Trigger, stamp_trigger

DATASETS = ["adult", "credit-g", "krkopt", "letter", "nursery", "optdigits", "pendigits", "spambase"]
QUICK = ["credit-g", "pendigits"]
HEAVY = ["letter", "optdigits", "krkopt", "pendigits", "nursery", "spambase", "adult", "credit-g"]
LABEL = "class"
SEED = 0


SKLEARN = ("sklearn:digits", "sklearn:breast_cancer")  # bundled with scikit-learn: datasets outside ../shared


def _frame(name: str) -> pd.DataFrame:
    """A PMLB dataset from ../shared, or ``sklearn:<name>``, one of scikit-learn's bundled datasets (offline)."""
    if name.startswith("sklearn:"):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name.split(':', 1)[1]}")(as_frame=True)
        return bunch.frame.rename(columns={"target": LABEL})
    return pd.read_csv(common.SHARED / "data" / "pmlb" / f"{name}.csv.gz", sep="\t")


def _dataset_seed(name: str) -> int:
    return DATASETS.index(name) if name in DATASETS else len(DATASETS) + SKLEARN.index(name)


def load(name: str, max_rows: int) -> tuple[pd.DataFrame, pd.Series, int]:
    """Features, 0..K-1 encoded labels and the original row count; above ``max_rows`` a seeded stratified sample."""
    df = _frame(name)
    n_orig = len(df)
    if len(df) > max_rows:
        df, _ = _split(df, max_rows / len(df), SEED)
    df = df.reset_index(drop=True)
    y = pd.Series(pd.factorize(df[LABEL], sort=True)[0], name=LABEL)
    return df.drop(columns=[LABEL]), y, n_orig


def _split(df: pd.DataFrame, frac: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    try:
        a, b = train_test_split(df, train_size=frac, random_state=seed, stratify=df[LABEL])
    except ValueError:  # a class too small to stratify
        a, b = train_test_split(df, train_size=frac, random_state=seed)
    return a, b


def split(X: pd.DataFrame, y: pd.Series) -> dict[str, tuple[pd.DataFrame, pd.Series]]:
    """Reference 40% / batch 40% / test 20%, seeded and stratified where the classes allow."""
    df = X.assign(**{LABEL: y})
    rest, test = _split(df, 0.8, SEED)
    ref, batch = _split(rest, 0.5, SEED + 1)
    out = {}
    for k, part in (("reference", ref), ("batch", batch), ("test", test)):
        part = part.reset_index(drop=True)
        out[k] = (part.drop(columns=[LABEL]), part[LABEL])
    return out


def _model(max_iter: int = 100) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(max_iter=max_iter, random_state=SEED)


class Evaluator:
    """Trains the downstream model and measures test accuracy and backdoor attack success."""

    def __init__(self, Xr: pd.DataFrame, yr: pd.Series, Xt: pd.DataFrame, yt: pd.Series) -> None:
        self.Xr, self.yr, self.Xt, self.yt = Xr, yr, Xt, yt

    def run(self, Xb: pd.DataFrame, yb: pd.Series, keep: np.ndarray, trigger: Trigger | None) -> dict[str, Any]:
        X = pd.concat([self.Xr, Xb[keep]], ignore_index=True)
        y = pd.concat([self.yr, yb[keep]], ignore_index=True)
        m = _model().fit(X, y)
        out: dict[str, Any] = {"accuracy": float((m.predict(self.Xt) == self.yt.to_numpy()).mean())}
        if trigger is not None:
            victims = self.Xt[self.yt.to_numpy() != trigger.target]
            pred = m.predict(stamp_trigger(victims, trigger))
            out["asr"] = float(np.mean(pred == trigger.target))
        return out


def iforest_gate(Xr: pd.DataFrame) -> Any:
    """PyOD IForest fitted on the reference features; threshold = its 99th percentile there (1% FP budget)."""
    from pyod.models.iforest import IForest

    det = IForest(random_state=SEED, n_jobs=1).fit(Xr.to_numpy(dtype=float))
    thr = float(np.quantile(det.decision_scores_, 0.99))
    return det, thr


def cleanlab_gate(Xr: pd.DataFrame, yr: pd.Series, Xb: pd.DataFrame, yb: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """cleanlab ``find_label_issues`` on out-of-fold HistGradientBoosting probabilities over reference + batch.

    Returns the batch rows' suspicion (1 - out-of-fold probability of the given label) and issue flags.
    """
    from cleanlab.filter import find_label_issues

    X = pd.concat([Xr, Xb], ignore_index=True)
    y = pd.concat([yr, yb], ignore_index=True).to_numpy()
    k = len(np.unique(y))
    n_splits = int(min(5, max(2, np.bincount(y).min())))
    cv = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=SEED) if n_splits >= 2 else 3
    proba = np.zeros((len(y), k))
    p = cross_val_predict(_model(max_iter=50), X, y, cv=cv, method="predict_proba")
    proba[:, : p.shape[1]] = p
    proba = np.clip(proba, 1e-6, None)
    proba /= proba.sum(axis=1, keepdims=True)
    issues = find_label_issues(labels=y, pred_probs=proba)
    nb = len(Xb)
    score = 1.0 - proba[np.arange(len(y)), y]
    return score[-nb:], np.asarray(issues[-nb:], dtype=bool)


def _gate_block(truth: np.ndarray, score: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    return {**common.ranking(truth, score), **common.flags(truth, flagged)}


def _relabel_block(scores: pd.DataFrame, flagged: np.ndarray, p: Poisoned, y_clean: pd.Series, truth: np.ndarray,
                   ev: Evaluator) -> dict[str, Any]:
    """``--relabel``: the flagged rows trainguard would release with a corrected label (``pipelines._relabel``), how
    many of them get their original label back, and the model trained with them instead of without them."""
    import pyarrow as pa

    from pipelines._relabel import plan_relabel

    y = p.y.reset_index(drop=True).copy()
    plan = plan_relabel(scores, np.flatnonzero(flagged), pa.array(y.to_numpy()), LABEL)
    rows = plan.rows if plan is not None else np.zeros(0, dtype=np.int64)
    if plan is not None:
        y.iloc[rows] = np.asarray(plan.values.to_pylist(), dtype=y.dtype)
    keep = ~flagged
    keep[rows] = True
    original = y_clean.reset_index(drop=True).to_numpy()
    return {"relabelled": int(len(rows)), "poison_relabelled": int(truth[rows].sum()),
            "restored": float(np.mean(y.to_numpy()[rows] == original[rows])) if len(rows) else None,
            "wrong_labels_in_clean_dropping": int((p.y.to_numpy() != original)[~flagged].sum()),
            "wrong_labels_in_clean_relabelling": int((y.to_numpy() != original)[keep].sum()),
            "model": ev.run(p.X, y, keep, p.trigger)}


def _trainguard_block(
    p: Poisoned, Xr: pd.DataFrame, yr: pd.Series, truth: np.ndarray
) -> tuple[dict[str, Any], np.ndarray, pd.DataFrame]:
    ref = Xr.assign(**{LABEL: yr.to_numpy()})
    batch = p.X.assign(**{LABEL: p.y.to_numpy()})
    params: dict[str, Any] = {"label_column": LABEL}
    if p.source is not None:
        batch = batch.assign(source=p.source.to_numpy())
        ref = ref.assign(source="reference")
        params["source_column"] = "source"
    scores, times = common.run_trainguard(ref, batch, **params)
    flagged = scores["flagged"].to_numpy(dtype=bool)
    block = _gate_block(truth, scores["score"].to_numpy(dtype=float), flagged)
    block["times"] = times
    block["detectors"] = {
        c: common.ranking(truth, scores[c].to_numpy(dtype=float)) for c in common.detector_columns(scores)
    }
    poison, clean = scores[truth], scores[~truth]
    missed = scores[truth & ~flagged]
    block["diagnosis"] = {
        "poison_score_quartiles": np.quantile(poison["score"], [0.25, 0.5, 0.75]).tolist() if len(poison) else [],
        "clean_score_q99": float(np.quantile(clean["score"], 0.99)) if len(clean) else None,
        "poison_detector_medians": {c: float(poison[c].median()) for c in common.detector_columns(scores)},
        "clean_detector_medians": {c: float(clean[c].median()) for c in common.detector_columns(scores)},
        "n_missed": int(len(missed)),
        "reasons_caught_poison": common.reason_counts(scores[truth & flagged]["reasons"]),
        "reasons_false_positives": common.reason_counts(scores[~truth & flagged]["reasons"]),
    }
    return block, flagged, scores


def run_dataset(
    name: str, max_rows: int, attacks: list[str], tg_error: str | None, baselines: bool = True
) -> dict[str, Any]:
    print(f"{name}: start", flush=True)
    X, y, n_orig = load(name, max_rows)
    parts = split(X, y)
    Xr, yr = parts["reference"]
    Xb, yb = parts["batch"]
    Xt, yt = parts["test"]
    ev = Evaluator(Xr, yr, Xt, yt)
    all_rows = np.ones(len(Xb), dtype=bool)
    t0 = time.perf_counter()
    clean = ev.run(Xb, yb, all_rows, None)
    det, thr = iforest_gate(Xr)
    out: dict[str, Any] = {
        "rows_original": n_orig, "rows_used": len(X), "subsampled": len(X) < n_orig, "features": X.shape[1],
        "classes": int(y.nunique()), "sizes": {k: len(v[0]) for k, v in parts.items()},
        "clean_accuracy": clean["accuracy"], "attacks": {},
    }
    for attack in attacks:
        rng = np.random.default_rng([SEED, _dataset_seed(name), list(ATTACKS).index(attack)])
        p = ATTACKS[attack](Xb, yb, rng)
        truth = p.is_poison.to_numpy(dtype=bool)
        trig = p.trigger
        res: dict[str, Any] = {"n_poison": int(truth.sum()), "poison_rate": float(truth.mean())}
        if trig is not None:
            res["trigger"] = {"features": trig.features, "target": trig.target}
            res["clean_model_asr"] = ev.run(Xb, yb, all_rows, trig)["asr"]
        res["poisoned"] = ev.run(p.X, p.y, all_rows, trig)
        if baselines:
            ifs = det.decision_function(p.X.to_numpy(dtype=float))
            res["iforest"] = _gate_block(truth, ifs, ifs > thr)
            res["iforest"]["model"] = ev.run(p.X, p.y, ~(ifs > thr), trig)
            cl_score, cl_flag = cleanlab_gate(Xr, yr, p.X, p.y)
            res["cleanlab"] = _gate_block(truth, cl_score, cl_flag)
            res["cleanlab"]["model"] = ev.run(p.X, p.y, ~cl_flag, trig)
        else:
            res["iforest"] = {"error": "not run (--no-baselines)"}
            res["cleanlab"] = {"error": "not run (--no-baselines)"}
        if tg_error is None:
            try:
                block, tg_flag, tg_scores = _trainguard_block(p, Xr, yr, truth)
                block["model"] = ev.run(p.X, p.y, ~tg_flag, trig)
                block["relabel"] = _relabel_block(tg_scores, tg_flag, p, yb, truth, ev)
                res["trainguard"] = block
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                res["trainguard"] = {"error": f"{type(exc).__name__}: {exc}",
                                     "traceback": traceback.format_exc(limit=4)}
        else:
            res["trainguard"] = {"error": f"not run: {tg_error}"}
        out["attacks"][attack] = res
        tg = res["trainguard"]
        print(f"  {name:10s} {attack:18s} poison={truth.sum():5d} "
              f"TG auc={common.fmt(tg.get('roc_auc'))} f1={common.fmt(tg.get('f1'))} | "
              f"IF auc={common.fmt(res['iforest'].get('roc_auc'))} | CL auc={common.fmt(res['cleanlab'].get('roc_auc'))} "
              f"| {time.perf_counter() - t0:.0f}s", flush=True)
    out["seconds"] = time.perf_counter() - t0
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.eval_poisoning", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="2 datasets (credit-g, pendigits), a smoke check")
    ap.add_argument("--datasets", nargs="*", help=f"only these datasets: PMLB names, or {', '.join(SKLEARN)} (bundled with scikit-learn)")
    ap.add_argument("--attacks", nargs="*", choices=list(ATTACKS), help="only these attacks")
    ap.add_argument("--max-rows", type=int, default=4000, help="seeded stratified subsample above this (default 4000)")
    ap.add_argument("--no-baselines", action="store_true", help="skip IForest and cleanlab (faster feedback runs)")
    ap.add_argument("--jobs", type=int, default=1, help="datasets evaluated in parallel processes (default 1)")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/scoring_eval_poisoning[_quick].json)")
    args = ap.parse_args(argv)
    if not (common.SHARED / "data" / "pmlb").is_dir():
        print(f"../shared/data/pmlb is absent ({common.SHARED}); nothing to evaluate", file=sys.stderr)
        return 2
    names = args.datasets or (QUICK if args.quick else DATASETS)
    attacks = args.attacks or list(ATTACKS)
    partial = bool(args.datasets or args.attacks or args.no_baselines)
    tag = "quick" if args.quick else ("partial" if partial else "full")
    tg_error = common.trainguard_available()
    doc: dict[str, Any] = {
        "kind": "poisoning", "run": tag, "command": "python -m benchmarks.eval_poisoning " + " ".join(argv or sys.argv[1:]),
        "environment": common.environment(), "max_rows": args.max_rows, "trainguard_error": tg_error,
        "datasets": {},
    }
    if tg_error:
        print(f"trainguard not runnable ({tg_error}); baselines only", file=sys.stderr)
    t0 = time.perf_counter()
    run = partial_fn(run_dataset, max_rows=args.max_rows, attacks=attacks, tg_error=tg_error,
                     baselines=not args.no_baselines)
    if args.jobs > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            order = sorted(names, key=lambda n: HEAVY.index(n) if n in HEAVY else len(HEAVY))  # longest first
            results = dict(zip(order, pool.map(run, order), strict=True))
    else:
        results = {name: run(name) for name in names}
    doc["datasets"] = {name: results[name] for name in names}
    doc["jobs"] = args.jobs
    doc["seconds"] = time.perf_counter() - t0
    doc["loadavg_end"] = list(os.getloadavg())
    doc["summary"] = common.poisoning_summary(doc)
    suffix = "" if tag == "full" else f"_{tag}"
    path = common.Path(args.out) if args.out else common.RESULTS / f"scoring_eval_poisoning{suffix}.json"
    common.write_json(path, doc)
    common.render()
    print(f"wrote {path} in {doc['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
