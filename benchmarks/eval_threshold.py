"""How much of an F1 miss is the threshold's: trainguard's own cut against the best cut chosen with the truth.

For each (dataset, attack) of the poisoning evaluation (same data, split and seeds as ``eval_poisoning``), scores
the poisoned batch with ``RowScorer`` and reports the contaminated share it estimated, its cut, its F1, and the
best F1 any cut on the same scores reaches (an oracle that looks at ``is_poison``). Writes
``results/scoring_threshold.json``.

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.eval_threshold [--datasets adult krkopt] [--attacks label_flip]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as eval_poisoning: 2 shared cores

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from benchmarks import _eval_common as common  # noqa: E402
from benchmarks import eval_poisoning as ev  # noqa: E402
from benchmarks.attacks import ATTACKS  # noqa: E402

DEFAULT_DATASETS = ["adult", "krkopt", "letter", "spambase"]
DEFAULT_ATTACKS = ["label_flip", "targeted_flip", "rescaled_slab"]


def _f1(truth: np.ndarray, flagged: np.ndarray) -> float:
    return float(2 * (truth & flagged).sum() / max(flagged.sum() + truth.sum(), 1))


def run(name: str, attack: str) -> dict[str, float | str]:
    from checks._adaptive import adaptive_cut, contaminated_share
    from checks.scoring import RowScorer

    X, y, _ = ev.load(name, 4000)
    parts = ev.split(X, y)
    (Xr, yr), (Xb, yb) = parts["reference"], parts["batch"]
    rng = np.random.default_rng([ev.SEED, ev.DATASETS.index(name), list(ATTACKS).index(attack)])
    p = ATTACKS[attack](Xb, yb, rng)
    truth = p.is_poison.to_numpy(dtype=bool)
    out = RowScorer(label_column="target", random_state=0).fit(Xr.assign(target=yr.to_numpy())).score(
        p.X.assign(target=p.y.to_numpy()))
    pv = 1.0 - out["score"].to_numpy()
    cuts = np.unique(pv[pv < 0.3])
    best = max(((_f1(truth, pv <= t), float(t)) for t in cuts), default=(0.0, 0.0))
    return {"dataset": name, "attack": attack, "poison_share": float(truth.mean()),
            "estimated_share": contaminated_share(pv), "cut": adaptive_cut(pv, 0.01),
            "f1": _f1(truth, out["flagged"].to_numpy(dtype=bool)), "best_f1": best[0], "best_cut": best[1],
            "roc_auc": float(roc_auc_score(truth, out["score"]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=DEFAULT_DATASETS)
    ap.add_argument("--attacks", nargs="*", default=DEFAULT_ATTACKS, choices=list(ATTACKS))
    ap.add_argument("--out", help="JSON path (default benchmarks/results/scoring_threshold.json)")
    args = ap.parse_args()
    rows = []
    for name in args.datasets:
        for attack in args.attacks:
            rows.append(run(name, attack))
            r = rows[-1]
            print(f"{name:10s} {attack:16s} share {r['poison_share']:.3f} est {r['estimated_share']:.3f} "
                  f"cut {r['cut']:.4f} F1 {r['f1']:.3f} best F1 {r['best_f1']:.3f} at {r['best_cut']:.4f} "
                  f"AUC {r['roc_auc']:.3f}", flush=True)
    path = Path(args.out) if args.out else common.RESULTS / "scoring_threshold.json"
    doc = {"command": "OMP_NUM_THREADS=1 python -m benchmarks.eval_threshold", "environment": common.environment(),
           "rows": rows}
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
