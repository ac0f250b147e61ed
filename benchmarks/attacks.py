"""Seeded data-poisoning attack generators for the row-score evaluation.

Every attack is a pure function ``attack(X, y, rng, **params) -> Poisoned``: it never mutates its inputs, returns a
batch with the same index and columns as ``X`` (poison rows *replace* randomly chosen batch rows, so the batch size
and the poison rate are exact), a boolean ``is_poison`` mask aligned with that index, and, for backdoors, the
trigger (``{feature: value}`` plus the target class). Integer-valued (label-encoded) features stay integer and
every injected value except the out-of-distribution attack's stays inside the column's observed range.

>>> import numpy as np, pandas as pd
>>> X = pd.DataFrame({"a": np.arange(100) % 7, "b": np.linspace(0, 1, 100)})
>>> y = pd.Series(np.arange(100) % 2, name="class")
>>> p = label_flip(X, y, np.random.default_rng(0), rate=0.1)
>>> int(p.is_poison.sum()), bool((p.y[p.is_poison] != y[p.is_poison]).all())
(10, True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = [
    "ATTACKS",
    "Poisoned",
    "Trigger",
    "backdoor",
    "compromised_source",
    "duplicate_flood",
    "feature_collision",
    "label_flip",
    "mixed",
    "ood_injection",
    "rescaled_slab",
    "stamp_trigger",
    "targeted_flip",
]


@dataclass(frozen=True)
class Trigger:
    """A backdoor trigger: these feature values stamped on a row should make a poisoned model predict ``target``."""

    features: dict[str, float]
    target: object


@dataclass
class Poisoned:
    """A poisoned batch: features, labels, which rows are poison, the trigger (backdoors) and sources (if any)."""

    X: pd.DataFrame
    y: pd.Series
    is_poison: pd.Series
    trigger: Trigger | None = None
    source: pd.Series | None = None
    info: dict[str, object] = field(default_factory=dict)


def _is_int_col(s: pd.Series) -> bool:
    v = s.to_numpy(dtype=float)
    return bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)))


def _pick(n: int, k: int, rng: np.random.Generator, pool: np.ndarray | None = None) -> np.ndarray:
    """``k`` distinct positions out of ``pool`` (default ``range(n)``), sorted."""
    pool = np.arange(n) if pool is None else pool
    k = int(min(max(k, 0), len(pool)))
    return np.sort(rng.choice(pool, size=k, replace=False))


def _other_label(labels: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each label, a uniformly random *different* class."""
    out = labels.copy()
    for i, lab in enumerate(labels):
        choices = classes[classes != lab]
        out[i] = rng.choice(choices)
    return out


def _mask(X: pd.DataFrame, pos: np.ndarray) -> pd.Series:
    m = np.zeros(len(X), dtype=bool)
    m[pos] = True
    return pd.Series(m, index=X.index, name="is_poison")


def _assign(X: pd.DataFrame, pos: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    """Copy of ``X`` with rows at positions ``pos`` replaced by ``values`` (rounded where a column is integer)."""
    out = X.copy()
    for j, c in enumerate(X.columns):
        col = values[:, j]
        if _is_int_col(X[c]):
            col = np.round(col)
        new = out[c].to_numpy(dtype=float, copy=True)
        new[pos] = col
        out[c] = new.astype(X[c].dtype) if _is_int_col(X[c]) else new
    return out


def _clip(values: np.ndarray, X: pd.DataFrame) -> np.ndarray:
    lo = X.min().to_numpy(dtype=float)
    hi = X.max().to_numpy(dtype=float)
    return np.clip(values, lo, hi)


def label_flip(X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.10) -> Poisoned:
    """Random label flips: ``rate`` of the rows get a uniformly random different class; features untouched."""
    pos = _pick(len(X), round(rate * len(X)), rng)
    classes = np.unique(y.to_numpy())
    yv = y.to_numpy().copy()
    yv[pos] = _other_label(yv[pos], classes, rng)
    return Poisoned(X.copy(), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos))


def targeted_flip(
    X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.15, max_class_share: float = 0.6
) -> Poisoned:
    """Targeted class flip: rows of the largest class relabelled as the second largest class.

    ``rate`` of the batch is flipped, capped at ``max_class_share`` of the source class (on many-class data such as
    letter one class is only 4% of the rows); the rate actually reached is in ``info["rate"]``.
    """
    counts = y.value_counts()
    source, target = counts.index[0], counts.index[1]
    pool = np.flatnonzero(y.to_numpy() == source)
    k = min(round(rate * len(X)), int(max_class_share * len(pool)))
    pos = _pick(len(X), k, rng, pool)
    yv = y.to_numpy().copy()
    yv[pos] = target
    info: dict[str, object] = {"source": source, "target": target, "rate": k / len(X)}
    return Poisoned(X.copy(), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos), info=info)


def _trigger_value(s: pd.Series, rng: np.random.Generator) -> float:
    """A value inside the observed range of ``s`` that is rare there (an uncommon code, a sparse histogram bin)."""
    v = s.to_numpy(dtype=float)
    uniq, cnt = np.unique(v, return_counts=True)
    if len(uniq) <= 32:  # categorical / label-encoded: the rarest code that occurs at all
        rare = uniq[cnt == cnt.min()]
        return float(rng.choice(rare))
    hist, edges = np.histogram(v, bins=20)
    inner = np.arange(1, 19)  # avoid the extreme bins: the trigger stays well inside the range
    b = inner[np.argmin(hist[inner])]
    val = float((edges[b] + edges[b + 1]) / 2)
    return float(np.round(val)) if _is_int_col(s) else val


def _trigger_features(X: pd.DataFrame, rng: np.random.Generator, k: int = 2) -> list[str]:
    cand = [c for c in X.columns if X[c].nunique() >= 3] or [c for c in X.columns if X[c].nunique() >= 2]
    return [str(c) for c in rng.choice(np.array(cand, dtype=object), size=min(k, len(cand)), replace=False)]


def stamp_trigger(X: pd.DataFrame, trigger: Trigger) -> pd.DataFrame:
    """Copy of ``X`` with the trigger's feature values written into every row (keeps column dtypes)."""
    out = X.copy()
    for c, val in trigger.features.items():
        out[c] = np.full(len(out), val).astype(X[c].dtype)
    return out


def backdoor(
    X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.05, n_features: int = 2
) -> Poisoned:
    """Backdoor: ``rate`` of the rows, taken from non-target classes, get a two-feature in-range trigger and the
    target label (the smallest class that has at least 2% of the rows)."""
    counts = y.value_counts()
    big = counts[counts >= 0.02 * len(y)]
    target = big.index[-1] if len(big) else counts.index[-1]
    feats = _trigger_features(X, rng, n_features)
    trig = Trigger({c: _trigger_value(X[c], rng) for c in feats}, target)
    pool = np.flatnonzero(y.to_numpy() != target)
    pos = _pick(len(X), round(rate * len(X)), rng, pool)
    out = X.copy()
    stamped = stamp_trigger(X.iloc[pos], trig)
    for c in feats:
        col = out[c].to_numpy(copy=True)
        col[pos] = stamped[c].to_numpy()
        out[c] = col
    yv = y.to_numpy().copy()
    yv[pos] = target
    return Poisoned(out, pd.Series(yv, index=y.index, name=y.name), _mask(X, pos), trigger=trig)


def duplicate_flood(
    X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.05, jitter: float = 0.01
) -> Poisoned:
    """A flood of near-duplicates of one batch row with a flipped label: ``rate`` of the rows are replaced by copies
    of a single seed row (continuous features jittered by ``jitter`` standard deviations, integer ones exact)."""
    seed = int(rng.integers(len(X)))
    others = np.setdiff1d(np.arange(len(X)), [seed])
    pos = _pick(len(X), round(rate * len(X)), rng, others)
    base = np.repeat(X.iloc[[seed]].to_numpy(dtype=float), len(pos), axis=0)
    sd = X.std().to_numpy(dtype=float)
    noise = rng.normal(0.0, jitter, size=base.shape) * sd
    ints = np.array([_is_int_col(X[c]) for c in X.columns])
    noise[:, ints] = 0.0
    vals = _clip(base + noise, X)
    classes = np.unique(y.to_numpy())
    flipped = _other_label(y.to_numpy()[[seed]], classes, rng)[0]
    yv = y.to_numpy().copy()
    yv[pos] = flipped
    info: dict[str, object] = {"seed_row": int(seed), "label": flipped}
    return Poisoned(_assign(X, pos, vals), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos), info=info)


def ood_injection(X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.03) -> Poisoned:
    """Out-of-distribution rows: every feature drawn 0.5-2 ranges beyond the observed minimum or maximum; random
    labels."""
    pos = _pick(len(X), round(rate * len(X)), rng)
    lo = X.min().to_numpy(dtype=float)
    hi = X.max().to_numpy(dtype=float)
    span = np.where(hi > lo, hi - lo, 1.0)
    shape = (len(pos), X.shape[1])
    side = rng.random(shape) < 0.5
    far = rng.uniform(0.5, 2.0, size=shape) * span
    vals = np.where(side, hi + far, lo - far)
    yv = y.to_numpy().copy()
    yv[pos] = rng.choice(np.unique(yv), size=len(pos))
    return Poisoned(_assign(X, pos, vals), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos))


def rescaled_slab(
    X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.08, factor: float = 0.5
) -> Poisoned:
    """A slab of rescaled in-range rows with flipped labels: ``rate`` of the rows have every feature's deviation
    from the column median multiplied by ``factor`` (so they stay in range) and a different random label."""
    pos = _pick(len(X), round(rate * len(X)), rng)
    med = X.median().to_numpy(dtype=float)
    vals = _clip(med + factor * (X.iloc[pos].to_numpy(dtype=float) - med), X)
    classes = np.unique(y.to_numpy())
    yv = y.to_numpy().copy()
    yv[pos] = _other_label(yv[pos], classes, rng)
    return Poisoned(_assign(X, pos, vals), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos))


def compromised_source(
    X: pd.DataFrame,
    y: pd.Series,
    rng: np.random.Generator,
    *,
    rate: float = 0.08,
    n_sources: int = 5,
    shift: float = 0.5,
    flip: float = 0.3,
) -> Poisoned:
    """A compromised source (own design): the batch arrives from ``n_sources`` sources; one of them (``rate`` of
    the rows, all marked poison) shifts three features of one class by ``shift`` standard deviations (clipped to
    range) and relabels ``flip`` of its rows. Returns the ``source`` column; the other sources are clean."""
    n = len(X)
    pos = _pick(n, round(rate * n), rng)
    src = rng.integers(1, n_sources, size=n).astype(object)
    src[pos] = 0
    source = pd.Series([f"s{int(s)}" for s in src], index=X.index, name="source")
    feats = rng.choice(np.arange(X.shape[1]), size=min(3, X.shape[1]), replace=False)
    cls = y.iloc[pos].value_counts().index[0]
    vals = X.iloc[pos].to_numpy(dtype=float, copy=True)  # a frame of one dtype gives a read-only view
    is_cls = y.iloc[pos].to_numpy() == cls
    sd = X.std().to_numpy(dtype=float)
    for f in feats:
        vals[is_cls, f] += shift * max(sd[f], 1.0 if _is_int_col(X.iloc[:, f]) else 0.0)
    vals = _clip(vals, X)
    yv = y.to_numpy().copy()
    flip_pos = _pick(n, round(flip * len(pos)), rng, pos)
    yv[flip_pos] = _other_label(yv[flip_pos], np.unique(yv), rng)
    info: dict[str, object] = {"class": cls, "features": [str(X.columns[f]) for f in feats]}
    return Poisoned(_assign(X, pos, vals), pd.Series(yv, index=y.index, name=y.name), _mask(X, pos),
                    source=source, info=info)


def feature_collision(
    X: pd.DataFrame, y: pd.Series, rng: np.random.Generator, *, rate: float = 0.05, alpha: float = 0.8
) -> Poisoned:
    """Clean-label feature collision (own design, after Shafahi et al. 2018): ``rate`` of the rows keep their
    correct target-class label but have their features moved ``alpha`` of the way towards one base row of
    another class, so a model learns to put that base region into the target class."""
    yv = y.to_numpy()
    counts = y.value_counts()
    target = counts.index[0]
    base = int(rng.choice(np.flatnonzero(yv != target)))
    pool = np.flatnonzero(yv == target)
    pos = _pick(len(X), round(rate * len(X)), rng, pool)
    xb = X.iloc[base].to_numpy(dtype=float)
    vals = X.iloc[pos].to_numpy(dtype=float)
    vals = _clip(vals + alpha * (xb - vals), X)
    info: dict[str, object] = {"base_row": base, "target": target}
    return Poisoned(_assign(X, pos, vals), y.copy(), _mask(X, pos), info=info)


def mixed(X: pd.DataFrame, y: pd.Series, rng: np.random.Generator) -> Poisoned:
    """All six attacks at once on disjoint rows (own design): flips 3%, targeted 3%, backdoor 3%, flood 2%,
    OOD 1%, slab 2% (14% in all); keeps the backdoor's trigger."""
    steps: list[tuple[Callable[..., Poisoned], float]] = [
        (label_flip, 0.03), (targeted_flip, 0.03), (backdoor, 0.03),
        (duplicate_flood, 0.02), (ood_injection, 0.01), (rescaled_slab, 0.02),
    ]
    Xc, yc = X.copy(), y.copy()
    mask = np.zeros(len(X), dtype=bool)
    trigger: Trigger | None = None
    for fn, rate in steps:
        free = np.flatnonzero(~mask)
        sub = fn(Xc.iloc[free], yc.iloc[free], rng, rate=rate * len(X) / len(free))
        for j in range(X.shape[1]):
            Xc.iloc[free, j] = sub.X.iloc[:, j].to_numpy()
        yc.iloc[free] = sub.y.to_numpy()
        mask[free[sub.is_poison.to_numpy()]] = True
        trigger = sub.trigger or trigger
    return Poisoned(Xc, yc, pd.Series(mask, index=X.index, name="is_poison"), trigger=trigger)


ATTACKS: dict[str, Callable[..., Poisoned]] = {
    "label_flip": label_flip,
    "targeted_flip": targeted_flip,
    "backdoor": backdoor,
    "duplicate_flood": duplicate_flood,
    "ood_injection": ood_injection,
    "rescaled_slab": rescaled_slab,
    "compromised_source": compromised_source,
    "feature_collision": feature_collision,
    "mixed": mixed,
}
"""The attacks of the evaluation, in report order: the issue's six, then three of our own."""
