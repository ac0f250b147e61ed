"""Multi-batch poisoning campaigns through the real ingest flow (issue "Multi-batch campaigns").

A source's first batch is trusted and clean; then ``--batches`` (default 8) later batches of the same source
are ingested with the default settings of scheduled ingestion: no ``reference`` after the first, so each run's
reference is the source's newest approved data from the ledger (``pipelines._reference``) and every approved
batch becomes the next batch's reference. Each later batch carries a small share (``--rate``, default 2%) of
the same poison:

- ``backdoor``: one trigger (``benchmarks.attacks.backdoor``'s: two in-range feature values plus a target
  label), drawn once per campaign from the trusted batch, stamped on ``rate`` of each batch's rows, taken from
  the non-target classes and relabelled to the target;
- ``region_flip``: one feature and a narrow band of its values holding about 10% of the trusted rows; ``rate``
  of each batch, taken from the band's rows of other classes, relabelled to one target class (the band's
  second most common class);
- ``slow_shift``: ``rate`` of each batch, taken from the non-target classes, has one feature moved by
  k * 0.5 standard deviations in batch k (towards the side of the range with more room, clipped to the trusted
  batch's observed range) and is relabelled to the target class: the poisoning variant (the labels are
  flipped), not a mere covariate shift;
- ``control_drift`` (no poison): one feature's mean drifts by k * 0.1 standard deviations in batch k, for
  every row (whole-number columns stochastically rounded, so the mean drift is exact in expectation);
  legitimate slow change that must keep passing.

Each poisoned campaign is also ingested two other ways, in the same run, for comparison: every later batch
checked against the trusted batch (``reference=`` the trusted batch file, ``vs_trusted``), and all later
batches, so all the campaign's poison rows, in one single batch checked against the trusted batch
(``single_batch``). The control is ingested sequentially and against the trusted batch.

Poison is tracked by row position: batch files keep the generated row order, the flow's ``quarantine.parquet``
names the quarantined source rows, a rejected (or failed) batch admits nothing, and every approved
``clean.parquet`` is checked to be exactly the batch's rows that were not quarantined. The downstream model (a
RandomForest) is trained on the union of all approved ``clean.parquet`` data and evaluated on a held-out clean
test set: clean accuracy and the attack's success on held-out rows (backdoor: non-target rows stamped with the
trigger predicted as the target; region flip: non-target rows in the band predicted as the target; slow shift:
non-target rows with the final shift applied predicted as the target), beside the same figures for a model
trained on the clean batches and one trained on everything ungated.

Run ``nice -n 10 .venv/bin/python -m benchmarks.eval_campaign`` (3 datasets, about 12 minutes on 2 cores) or
``--quick`` (1 dataset, 4 batches of 500 rows, about 2 minutes). Writes ``benchmarks/results/campaign.json``
(``campaign_quick.json``; ``campaign_partial.json`` with ``--datasets``/``--batches``/``--rate``/
``--batch-size``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 shared cores: OpenMP spin-waiting slows everything down

import numpy as np
import pandas as pd

from benchmarks import _eval_common as common

LABEL = "class"
SEED = 0
DATASETS = ["adult", "pendigits", "spambase"]  # letter's 26 classes make each flow run 13 s: 18 min alone
QUICK_DATASETS = ["pendigits"]
CAMPAIGNS = ("backdoor", "region_flip", "slow_shift")
CONTROL = "control_drift"
MODES = ("sequential", "vs_trusted", "single_batch")
GOALS = {"admitted_share": 0.10, "asr": 0.10}
SHIFT_STEP = 0.5  # slow shift: batch k moves the poisoned rows' feature by k * SHIFT_STEP standard deviations
DRIFT_STEP = 0.1  # control: batch k moves every row's feature by k * DRIFT_STEP standard deviations
REGION_SHARE = 0.10  # region flip: the band holds about this share of the trusted rows


# ------------------------------------------------------------------------------------------ data and attacks

@dataclass
class Batch:
    """One batch as ingested: features, labels (after poisoning) and which rows are poison (by position)."""

    X: pd.DataFrame
    y: pd.Series
    poison: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        return self.X.assign(**{LABEL: self.y.to_numpy()}).reset_index(drop=True)


@dataclass
class Probe:
    """Held-out rows an attack wants classified as ``target`` (its success is the share that are)."""

    X: pd.DataFrame
    target: Any


@dataclass
class Campaign:
    name: str
    batches: list[Batch]  # index 0 is the trusted batch (clean)
    info: dict[str, Any]
    probe: Probe | None


def sizes(n: int, batches: int, batch_size: int, max_test: int) -> tuple[int, int]:
    """(rows per batch, test rows) for ``n`` rows split into ``batches + 1`` batches and a test set.

    The test set takes ``max_test`` rows when the batches leave them, and at least ``max(n // 10, 1000)`` (at
    most ``max_test``); batches shrink below ``batch_size`` when the dataset is too small for both.

    >>> sizes(48842, 8, 2000, 5000), sizes(10992, 8, 2000, 5000)
    ((2000, 5000), (1099, 1099))
    """
    total = batches + 1
    min_test = min(max_test, max(n // 10, 1000))
    test = min(max_test, n - total * batch_size)
    if test >= min_test:
        return batch_size, test
    rows = (n - min_test) // total
    return rows, min_test


def split_batches(X: pd.DataFrame, y: pd.Series, batches: int, batch_size: int, max_test: int,
                  seed: int) -> tuple[list[tuple[pd.DataFrame, pd.Series]], tuple[pd.DataFrame, pd.Series]]:
    """A seeded permutation cut into a held-out test set and ``batches + 1`` disjoint equal batches."""
    rows, test = sizes(len(X), batches, batch_size, max_test)
    if rows < 50:
        raise ValueError(f"{len(X)} rows are too few for {batches + 1} batches and a test set")
    order = np.random.default_rng(seed).permutation(len(X))

    def take(idx: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
        return X.iloc[idx].reset_index(drop=True), y.iloc[idx].reset_index(drop=True)

    parts = [take(order[test + k * rows: test + (k + 1) * rows]) for k in range(batches + 1)]
    return parts, take(order[:test])


def _pick(pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    k = int(min(max(k, 0), len(pool)))
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else np.empty(0, dtype=np.int64)


def _mask(n: int, pos: np.ndarray) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[pos] = True
    return m


def _integral(s: pd.Series) -> bool:
    """Every value a whole number (an integer dtype, or floats such as pendigits' 0..100): the contract infers
    such a column as integer, so moved values must stay whole numbers."""
    v = s.to_numpy(dtype=float)
    whole = bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)))
    return bool(pd.api.types.is_integer_dtype(s.dtype)) or whole


def _with_values(X: pd.DataFrame, col: str, pos: np.ndarray, values: np.ndarray,
                 rng: np.random.Generator) -> pd.DataFrame:
    """Copy of ``X`` with ``X[col]`` at positions ``pos`` set to ``values``, keeping the column's dtype; a
    column of whole numbers keeps whole numbers (values stochastically rounded, so a shift keeps its mean)."""
    out = X.copy()
    new = out[col].to_numpy(dtype=float, copy=True)
    vals = np.asarray(values, dtype=float)
    if _integral(X[col]):
        vals = np.floor(vals + rng.random(len(vals)))
    new[pos] = vals
    out[col] = new.astype(X[col].dtype)
    return out


def _target_class(y: pd.Series) -> Any:
    """The smallest class with at least 2% of the rows (as ``benchmarks.attacks.backdoor`` picks it)."""
    counts = y.value_counts()
    big = counts[counts >= 0.02 * len(y)]
    return big.index[-1] if len(big) else counts.index[-1]


def _moving_feature(X: pd.DataFrame) -> str:
    """The feature with the most distinct values (ties: the first): one a shift or drift moves smoothly."""
    nun = X.nunique()
    return str(nun.idxmax())


def backdoor_campaign(parts: list[tuple[pd.DataFrame, pd.Series]], test: tuple[pd.DataFrame, pd.Series],
                      rate: float, seed: list[int]) -> Campaign:
    """One trigger for the whole campaign, stamped on ``rate`` of every later batch (non-target rows)."""
    from benchmarks.attacks import backdoor, stamp_trigger

    X0, y0 = parts[0]
    trig = backdoor(X0, y0, np.random.default_rng([*seed, 0]), rate=rate).trigger
    assert trig is not None
    batches = [Batch(X0, y0, np.zeros(len(X0), dtype=bool))]
    for k in range(1, len(parts)):
        Xk, yk = parts[k]
        rng = np.random.default_rng([*seed, k])
        pos = _pick(np.flatnonzero(yk.to_numpy() != trig.target), round(rate * len(Xk)), rng)
        X = Xk.copy()
        stamped = stamp_trigger(Xk.iloc[pos], trig)
        for c in trig.features:
            col = X[c].to_numpy(copy=True)
            col[pos] = stamped[c].to_numpy()
            X[c] = col
        yv = yk.to_numpy().copy()
        yv[pos] = trig.target
        batches.append(Batch(X, pd.Series(yv, name=LABEL), _mask(len(Xk), pos)))
    Xt, yt = test
    victims = Xt[yt.to_numpy() != trig.target]
    info = {"trigger": {"features": trig.features, "target": trig.target}}
    return Campaign("backdoor", batches, info, Probe(stamp_trigger(victims, trig), trig.target))


def choose_region(X: pd.DataFrame, y: pd.Series, rng: np.random.Generator,
                  share: float = REGION_SHARE) -> dict[str, Any]:
    """A feature and a value band ``[lo, hi]`` holding about ``share`` of the rows (a quantile band; the first
    feature, in a seeded order, with a band holding 7-13% of the rows and at least two classes, else the
    closest), and the target class: the band's second most common class."""
    cands = [str(c) for c in X.columns if X[c].nunique() >= 5] or [str(c) for c in X.columns]
    best: dict[str, Any] | None = None
    for c in rng.permutation(np.array(cands, dtype=object)):
        v = X[c].to_numpy(dtype=float)
        for a in (0.45, 0.30, 0.60, 0.15, 0.75):
            lo, hi = (float(q) for q in np.quantile(v, [a, a + share]))
            inside = (v >= lo) & (v <= hi)
            counts = y[inside].value_counts()
            got = float(inside.mean())
            if len(counts) < 2:
                continue
            cand = {"feature": str(c), "lo": lo, "hi": hi, "share": got, "majority": counts.index[0],
                    "target": counts.index[1]}
            if best is None or abs(got - share) < abs(best["share"] - share):
                best = cand
            if 0.07 <= got <= 0.13:
                return cand
    if best is None:
        raise ValueError("no feature has a value band holding two classes")
    return best


def _in_band(X: pd.DataFrame, region: dict[str, Any]) -> np.ndarray:
    v = X[region["feature"]].to_numpy(dtype=float)
    return np.asarray((v >= region["lo"]) & (v <= region["hi"]))


def region_flip_campaign(parts: list[tuple[pd.DataFrame, pd.Series]], test: tuple[pd.DataFrame, pd.Series],
                         rate: float, seed: list[int]) -> Campaign:
    """Label flips to one target class, all in one narrow band of one feature: ``rate`` of each batch."""
    X0, y0 = parts[0]
    region = choose_region(X0, y0, np.random.default_rng([*seed, 0]))
    target = region["target"]
    batches = [Batch(X0, y0, np.zeros(len(X0), dtype=bool))]
    for k in range(1, len(parts)):
        Xk, yk = parts[k]
        rng = np.random.default_rng([*seed, k])
        pool = np.flatnonzero(_in_band(Xk, region) & (yk.to_numpy() != target))
        pos = _pick(pool, round(rate * len(Xk)), rng)
        yv = yk.to_numpy().copy()
        yv[pos] = target
        batches.append(Batch(Xk.copy(), pd.Series(yv, name=LABEL), _mask(len(Xk), pos),
                             {"band_rows": int(_in_band(Xk, region).sum())}))
    Xt, yt = test
    victims = Xt[_in_band(Xt, region) & (yt.to_numpy() != target)]
    return Campaign("region_flip", batches, {"region": region}, Probe(victims, target))


def slow_shift_campaign(parts: list[tuple[pd.DataFrame, pd.Series]], test: tuple[pd.DataFrame, pd.Series],
                        rate: float, seed: list[int], step: float = SHIFT_STEP) -> Campaign:
    """``rate`` of batch k (non-target rows): one feature moved by ``k * step`` std (clipped to the trusted
    range) and the label flipped to the target class."""
    X0, y0 = parts[0]
    feat = _moving_feature(X0)
    target = _target_class(y0)
    v0 = X0[feat].to_numpy(dtype=float)
    lo, hi, med, sd = float(v0.min()), float(v0.max()), float(np.median(v0)), float(v0.std())
    direction = 1.0 if hi - med >= med - lo else -1.0
    batches = [Batch(X0, y0, np.zeros(len(X0), dtype=bool))]
    for k in range(1, len(parts)):
        Xk, yk = parts[k]
        rng = np.random.default_rng([*seed, k])
        pos = _pick(np.flatnonzero(yk.to_numpy() != target), round(rate * len(Xk)), rng)
        raw = Xk[feat].to_numpy(dtype=float)[pos] + direction * k * step * sd
        vals = np.clip(raw, lo, hi)
        X = _with_values(Xk, feat, pos, vals, rng)
        yv = yk.to_numpy().copy()
        yv[pos] = target
        batches.append(Batch(X, pd.Series(yv, name=LABEL), _mask(len(Xk), pos),
                             {"shift_std": k * step * direction,
                              "clipped_share": float(np.mean(raw != vals)) if len(pos) else 0.0}))
    Xt, yt = test
    victims = Xt[yt.to_numpy() != target]
    final = np.clip(victims[feat].to_numpy(dtype=float) + direction * (len(parts) - 1) * step * sd, lo, hi)
    probe_X = _with_values(victims, feat, np.arange(len(victims)), final, np.random.default_rng([*seed, 99]))
    info = {"feature": feat, "target": target, "std": sd, "direction": direction, "step_std": step,
            "range": [lo, hi], "labels": "flipped to the target class"}
    return Campaign("slow_shift", batches, info, Probe(probe_X, target))


def control_campaign(parts: list[tuple[pd.DataFrame, pd.Series]], seed: list[int],
                     step: float = DRIFT_STEP) -> Campaign:
    """No poison: one feature of every row of batch k moved by ``k * step`` std (legitimate slow drift)."""
    X0, y0 = parts[0]
    feat = _moving_feature(X0)
    sd = float(X0[feat].to_numpy(dtype=float).std())
    batches = [Batch(X0, y0, np.zeros(len(X0), dtype=bool))]
    for k in range(1, len(parts)):
        Xk, yk = parts[k]
        rng = np.random.default_rng([*seed, k])
        vals = Xk[feat].to_numpy(dtype=float) + k * step * sd
        X = _with_values(Xk, feat, np.arange(len(Xk)), vals, rng)
        batches.append(Batch(X, yk.copy(), np.zeros(len(Xk), dtype=bool), {"drift_std": k * step}))
    return Campaign(CONTROL, batches, {"feature": feat, "std": sd, "step_std": step}, None)


BUILDERS = {"backdoor": backdoor_campaign, "region_flip": region_flip_campaign,
            "slow_shift": slow_shift_campaign}


# ------------------------------------------------------------------------------------------ the flow runs

def _ingest(path: Path, root: Path, source: str, out: Path, reference: Path | None) -> dict[str, Any]:
    """One run of the real ingest flow (default config, SQLite ledger under ``root``); a refused input is a
    result with verdict ``error``."""
    from pipelines.errors import PipelineError
    from pipelines.flows import ingest

    t0 = time.perf_counter()
    try:
        res = ingest(str(path), source=source, label_column=LABEL,
                     ledger_url=f"sqlite:///{root / 'ledger.db'}", out_dir=str(out),
                     reference=str(reference) if reference is not None else None)
    except PipelineError as exc:
        res = {"verdict": "error", "reasons": [exc.code], "error": {"code": exc.code, "message": str(exc)}}
    res["_seconds"] = time.perf_counter() - t0
    return res


def _quarantined(out: Path, n: int, columns: list[str]) -> np.ndarray:
    from pipelines.outputs import quarantine_columns

    q = _mask(n, np.empty(0, dtype=np.int64))
    path = out / "quarantine.parquet"
    if path.exists():
        row_col = quarantine_columns(columns)[0]
        q[pd.read_parquet(path, columns=[row_col])[row_col].to_numpy(dtype=np.int64)] = True
    return q


def judge(batch: Batch, res: dict[str, Any], out: Path, digests: dict[str, str],
          label: str) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """What happened to one batch's rows (counts that add up), why, and its approved clean rows (None when not
    approved). ``digests`` maps approved clean.parquet digests to the batch's ``label``, to say what a later
    reference was."""
    frame = batch.frame()
    n, poison = len(frame), batch.poison
    verdict = str(res.get("verdict"))
    approved = verdict == "approved"
    ref = res.get("reference") or None
    rec: dict[str, Any] = {
        "rows": n, "poison": int(poison.sum()), "verdict": verdict,
        "reasons": list(res.get("reasons") or [])[:4],
        "seconds": round(float(res["_seconds"]), 2), **batch.info,
        "reference": None if ref is None else (
            "argument" if ref.get("origin") == "argument" else
            digests.get(str(ref.get("digest")), "joined" if ref.get("parts") else str(ref.get("digest")))),
    }
    if ref is not None and ref.get("anchor"):  # the rolling reference was cleaned against the source's anchor
        rec["reference_anchor"] = ref["anchor"]
    if verdict == "error":
        rec["error"] = res.get("error")
    scores = pd.read_parquet(out / "scores.parquet") if (out / "scores.parquet").exists() else None
    q = _quarantined(out, n, list(frame.columns))
    if scores is not None:
        scores = scores.sort_values("row").reset_index(drop=True)
        flagged = scores["flagged"].to_numpy(dtype=bool)
        if approved and not np.array_equal(flagged, q):
            raise RuntimeError(f"{out}: quarantine.parquet is not the flagged rows of scores.parquet")
    admitted = ~q & approved
    rec.update({
        "quarantined": int(q.sum()),
        "poison_quarantined": int((poison & q).sum()),
        "poison_admitted": int((poison & admitted).sum()),
        "poison_refused_with_batch": int((poison & ~q).sum()) if not approved else 0,
        "clean_rows": int((~poison).sum()),
        "clean_quarantined": int((~poison & q).sum()),
        "clean_admitted": int((~poison & admitted).sum()),
    })
    if res.get("checks"):
        d = res["checks"].get("drift", {})
        drifted = sorted({str(r["column"]) for r in res.get("drift") or [] if r.get("drifted")})
        rec["drift"] = {"drifted": d.get("drifted"), "compared": d.get("compared"), "passed": d.get("passed"),
                        "columns": drifted}
    if scores is not None:
        reasons = scores["reasons"]
        contract = np.array([any(str(r).startswith(("expect:", "schema:")) for r in lst)
                             if lst is not None else False for lst in reasons])
        rec["contract_quarantined"] = int((contract & q).sum())
        rec["clean_reasons"] = common.reason_counts(reasons[~poison & q], top=4)
        if poison.any():
            rec["poison_reasons"] = common.reason_counts(reasons[poison & q], top=8)
            dets = common.detector_columns(scores)
            rec["score_auc"] = common.ranking(poison, scores["score"].to_numpy(dtype=float))["roc_auc"]
            rec["detector_auc"] = {c.removeprefix("score_"): common.ranking(
                poison, scores[c].to_numpy(dtype=float))["roc_auc"] for c in dets}
            rec["poison_score_median"] = float(scores.loc[poison, "score"].median())
            rec["clean_score_q99"] = float(np.quantile(scores.loc[~poison, "score"], 0.99))
    clean = None
    if approved:
        clean = pd.read_parquet(out / "clean.parquet")
        want = frame[~q].reset_index(drop=True)
        if list(clean.columns) != list(want.columns) or not np.array_equal(
                clean.to_numpy(dtype=float), want.to_numpy(dtype=float)):
            raise RuntimeError(f"{out}: clean.parquet is not the batch's rows that were not quarantined")
        digests[str(res["outputs"]["clean.parquet"])] = label
    return rec, clean


def totals(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums over a mode's later batches (the trusted batch 0 is not counted)."""
    later = [r for r in records if r["batch"] != 0]
    inj = sum(r["poison"] for r in later)
    adm = sum(r["poison_admitted"] for r in later)
    clean = sum(r["clean_rows"] for r in later)
    cq = sum(r["clean_quarantined"] for r in later)
    rejected = [r["batch"] for r in later if r["verdict"] != "approved"]
    return {
        "batches": len(later), "injected": inj, "admitted": adm,
        "admitted_share": adm / inj if inj else None,
        "poison_quarantined": sum(r["poison_quarantined"] for r in later),
        "poison_refused_with_batch": sum(r["poison_refused_with_batch"] for r in later),
        "admitted_per_batch": [r["poison_admitted"] for r in later],
        "clean_rows": clean, "clean_quarantined": cq,
        "clean_quarantined_share": cq / clean if clean else None,
        "clean_lost_to_rejection": sum(r["clean_rows"] - r["clean_quarantined"] for r in later
                                       if r["verdict"] != "approved"),
        "batches_rejected": len(rejected), "rejected": rejected,
        "batches_drift_flagged": sum(bool((r.get("drift") or {}).get("columns")) for r in later),
        "flow_seconds": round(sum(r["seconds"] for r in later), 1),
    }


# ------------------------------------------------------------------------------------------ the model

def _model() -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=SEED)


def evaluate(train: list[pd.DataFrame], test: tuple[pd.DataFrame, pd.Series],
             probe: Probe | None) -> dict[str, Any]:
    """Train on the union of ``train`` frames; clean test accuracy and the attack's success on its probe."""
    data = pd.concat(train, ignore_index=True)
    Xt, yt = test
    feats = [c for c in data.columns if c != LABEL]
    m = _model().fit(data[feats], data[LABEL].to_numpy())
    out: dict[str, Any] = {"train_rows": len(data),
                           "accuracy": float(np.mean(m.predict(Xt[feats]) == yt.to_numpy()))}
    if probe is not None:
        out["asr"] = float(np.mean(m.predict(probe.X[feats]) == probe.target)) if len(probe.X) else None
        out["probe_rows"] = len(probe.X)
    return out


# ------------------------------------------------------------------------------------------ one dataset

class DatasetRun:
    """All campaigns of one dataset: batch files, flow runs, tracking, models."""

    def __init__(self, name: str, work: Path, batches: int, rate: float, batch_size: int, max_test: int,
                 modes: tuple[str, ...] = MODES, campaigns: tuple[str, ...] = CAMPAIGNS) -> None:
        self.name, self.work, self.batches, self.rate = name, work / name, batches, rate
        self.batch_size, self.max_test, self.modes, self.campaigns = batch_size, max_test, modes, campaigns
        self.key = zlib.crc32(name.encode())

    def _write(self, batch: Batch, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        batch.frame().to_parquet(path, index=False)
        return path

    def _mode(self, camp: Campaign, mode: str,
              trusted: Path) -> tuple[list[dict[str, Any]], list[pd.DataFrame], pd.DataFrame | None]:
        """Ingest ``camp`` in one mode; returns the per-batch records, the later batches' approved clean
        frames and (sequential only) batch 0's approved clean frame."""
        root = self.work / camp.name / mode
        source = f"{self.name}-{camp.name}"
        digests: dict[str, str] = {}
        admitted_of: dict[str, int] = {}  # batch label -> poison rows its approved clean.parquet holds
        records: list[dict[str, Any]] = []
        approved: list[pd.DataFrame] = []
        clean0: pd.DataFrame | None = None
        if mode == "single_batch":
            later = camp.batches[1:]
            one = Batch(pd.concat([b.X for b in later], ignore_index=True),
                        pd.concat([b.y for b in later], ignore_index=True),
                        np.concatenate([b.poison for b in later]))
            jobs = [(1, one)]
        else:
            jobs = list(enumerate(camp.batches))[0 if mode == "sequential" else 1:]
        for k, batch in jobs:
            path = self._write(batch, root / "batches" / f"b{k}.parquet")
            out = root / "out" / f"b{k}"
            ref = None if mode == "sequential" else trusted
            res = _ingest(path, root, source, out, ref)
            rec, clean = judge(batch, res, out, digests, f"batch {k}")
            rec["batch"] = k
            ref_name = str(rec["reference"])
            rec["reference_poison"] = 0 if ref_name == "argument" else admitted_of.get(ref_name)
            if rec["verdict"] == "approved":
                admitted_of[f"batch {k}"] = rec["poison_admitted"]
            records.append(rec)
            if clean is not None and k == 0:
                clean0 = clean
            elif clean is not None:
                approved.append(clean)
            reasons = ", ".join(f"{r} x{c}" for r, c in list(rec.get("poison_reasons", {}).items())[:3])
            print(f"  {self.name:9s} {camp.name:13s} {mode:12s} batch {k}: {rec['verdict']:8s} "
                  f"ref={rec['reference']} poison {rec['poison_admitted']}/{rec['poison']} admitted, clean "
                  f"quarantined {rec['clean_quarantined']}/{rec['clean_rows']} ({rec['seconds']:.1f}s) "
                  f"{reasons}", flush=True)
        return records, approved, clean0

    def run(self) -> dict[str, Any]:
        from benchmarks.eval_poisoning import load

        t0 = time.perf_counter()
        X, y, n_orig = load(self.name, 10**9)
        parts, test = split_batches(X, y, self.batches, self.batch_size, self.max_test, SEED)
        trusted = self.work / "trusted.parquet"
        self._write(Batch(*parts[0], np.zeros(len(parts[0][0]), dtype=bool)), trusted)
        clean_union = [Batch(Xk, yk, np.zeros(len(Xk), dtype=bool)).frame() for Xk, yk in parts]
        out: dict[str, Any] = {
            "rows_original": n_orig, "features": X.shape[1], "classes": int(y.nunique()),
            "batch_rows": len(parts[0][0]), "test_rows": len(test[0]), "later_batches": self.batches,
            "clean_model": evaluate(clean_union, test, None), "campaigns": {},
        }
        print(f"{self.name}: {len(parts)} batches of {out['batch_rows']} rows, {out['test_rows']} test rows, "
              f"clean accuracy {out['clean_model']['accuracy']:.3f}", flush=True)
        for ci, cname in enumerate((*self.campaigns, CONTROL)):
            seed = [SEED, self.key % 2**31, ci]
            if cname == CONTROL:
                camp = control_campaign(parts, seed)
                modes = tuple(m for m in self.modes if m != "single_batch")
            else:
                camp = BUILDERS[cname](parts, test, self.rate, seed)
                modes = self.modes
            res: dict[str, Any] = {"info": camp.info}
            if camp.probe is not None:
                res["clean_model_asr"] = evaluate(clean_union, test, camp.probe)["asr"]
                res["ungated_model"] = evaluate([b.frame() for b in camp.batches], test, camp.probe)
            clean0: pd.DataFrame | None = None
            for mode in modes:
                records, approved, c0 = self._mode(camp, mode, trusted)
                clean0 = c0 if c0 is not None else clean0
                block: dict[str, Any] = {"batches": records, "totals": totals(records)}
                if clean0 is None:  # the trusted batch was not approved: the model has only the later batches
                    base: list[pd.DataFrame] = []
                    block["note"] = "the trusted batch 0 was not approved"
                else:
                    base = [clean0]
                if base or approved:
                    block["model"] = evaluate(base + approved, test, camp.probe)
                if mode == "sequential":
                    block["trusted_batch"] = next((r for r in records if r["batch"] == 0), None)
                res[mode] = block
            out["campaigns"][cname] = res
            shutil.rmtree(self.work / cname, ignore_errors=True)  # the work dir stays small
        out["seconds"] = time.perf_counter() - t0
        return out


# ------------------------------------------------------------------------------------------ report

def summary(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per dataset and campaign with the headline figures and the goals."""
    rows = []
    for dname, d in doc["datasets"].items():
        for cname, c in d["campaigns"].items():
            row: dict[str, Any] = {"dataset": dname, "campaign": cname,
                                   "clean_accuracy": d["clean_model"]["accuracy"]}
            for mode in MODES:
                if mode not in c:
                    continue
                t, m = c[mode]["totals"], c[mode].get("model", {})
                row[mode] = {k: t[k] for k in ("injected", "admitted", "admitted_share", "admitted_per_batch",
                                               "clean_quarantined_share", "batches_rejected",
                                               "batches_drift_flagged")}
                row[mode].update(accuracy=m.get("accuracy"), asr=m.get("asr"))
            if "ungated_model" in c:
                row["ungated_asr"] = c["ungated_model"]["asr"]
                row["clean_model_asr"] = c["clean_model_asr"]
                seq = row["sequential"]
                share = seq["admitted_share"] or 0
                row["goals"] = {"admitted_share<=0.10": bool(share <= GOALS["admitted_share"])}
                if cname == "backdoor":
                    row["goals"]["asr<=0.10"] = bool((seq["asr"] or 0) <= GOALS["asr"])
            rows.append(row)
    return rows


def _auc(rec: dict[str, Any], which: str) -> float | None:
    """A batch record's ROC-AUC of the label detector (``label``) or of its best row outlier detector."""
    aucs = rec.get("detector_auc") or {}
    if which == "label":
        return aucs.get("label")
    vals = [v for k, v in aucs.items() if k in ("iforest", "ecod", "hbos", "knn") and v is not None]
    return max(vals) if vals else None


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def markdown(doc: dict[str, Any]) -> str:
    f = common.fmt
    sizes_ = "; ".join(f"{n}: {d['later_batches'] + 1} batches of {d['batch_rows']} rows, {d['test_rows']} "
                       "test rows" for n, d in doc["datasets"].items())
    L = [f"## Multi-batch campaigns ({doc['run']}): {doc['settings']['batches']} later batches, poison rate "
         f"{doc['settings']['rate']:.0%}", "",
         f"Run `{doc['command'].strip()}`, {doc.get('seconds', 0):.0f} s; commit "
         f"`{doc['environment']['commit'][:10]}`. {sizes_}.", "",
         "Admitted = poison rows that reached an approved clean.parquet / injected. FP = clean rows of the "
         "later batches quarantined. ASR = attack success of a RandomForest trained on all approved "
         "clean.parquet data (clean model / ungated / sequential / vs trusted / single batch).", "",
         "| dataset | campaign | injected | admitted seq | per batch (seq) | FP seq / vs trusted "
         "| rejected seq | admitted vs trusted | admitted single | acc clean / seq | ASR clean | ASR ungated "
         "| ASR seq | ASR vs trusted | ASR single |", "|" + "---|" * 15]
    for r in doc["summary"]:
        if r["campaign"] == CONTROL:
            continue
        s, v, o = r["sequential"], r.get("vs_trusted", {}), r.get("single_batch", {})
        L.append(f"| {r['dataset']} | {r['campaign']} | {s['injected']} | {s['admitted']} "
                 f"({_pct(s['admitted_share'])}) "
                 f"| {' '.join(map(str, s['admitted_per_batch']))} | {_pct(s['clean_quarantined_share'])} / "
                 f"{_pct(v.get('clean_quarantined_share'))} "
                 f"| {s['batches_rejected']} | {v.get('admitted', 'n/a')} ({_pct(v.get('admitted_share'))}) "
                 f"| {o.get('admitted', 'n/a')} ({_pct(o.get('admitted_share'))}) "
                 f"| {f(r['clean_accuracy'])} / "
                 f"{f(s['accuracy'])} | {f(r['clean_model_asr'])} | {f(r['ungated_asr'])} | {f(s['asr'])} "
                 f"| {f(v.get('asr'))} | {f(o.get('asr'))} |")
    L += ["", "Control (no poison, one feature drifting by 0.1 std per batch):", "",
          "| dataset | mode | clean rows quarantined (per batch) | batches rejected "
          "| batches with drift flagged | accuracy |", "|---|---|---|---|---|---|"]
    for r in doc["summary"]:
        if r["campaign"] != CONTROL:
            continue
        for mode in ("sequential", "vs_trusted"):
            if mode in r:
                s = r[mode]
                per = " ".join(str(x["clean_quarantined"]) for x in doc["datasets"][r["dataset"]]["campaigns"]
                               [CONTROL][mode]["batches"] if x["batch"] != 0)
                L.append(f"| {r['dataset']} | {mode} | {_pct(s['clean_quarantined_share'])} ({per}) | "
                         f"{s['batches_rejected']} | {s['batches_drift_flagged']} | {f(s['accuracy'])} |")
    L += ["", "Why poison gets through: per batch, the poison rows the batch's reference already holds "
          "(sequential: those the previous approved batch admitted), poison quarantined, the ROC-AUC of "
          "the label detector and of the best outlier detector (iforest/ecod/hbos/knn) against the poison "
          "mask, the clean rows' 99th percentile score (seq / vs trusted), and the sequential run's reasons "
          "on the poison it quarantined:", "",
          "| dataset | campaign | batch | poison in ref (seq) | caught seq / vs trusted | label AUC "
          "| best outlier AUC | clean q99 score | top reasons (seq) |", "|" + "---|" * 9]
    for dname, d in doc["datasets"].items():
        for cname, c in d["campaigns"].items():
            if cname == CONTROL or "sequential" not in c:
                continue
            seq = {r["batch"]: r for r in c["sequential"]["batches"]}
            vst = {r["batch"]: r for r in c.get("vs_trusted", {}).get("batches", [])}
            last = max(seq)
            for k in sorted({1, min(5, last), last}):
                a, b = seq[k], vst.get(k, {})
                top = ", ".join(f"{r} x{n}" for r, n in list(a.get("poison_reasons", {}).items())[:3])
                L.append(f"| {dname} | {cname} | {k} | {a.get('reference_poison')} | "
                         f"{a['poison_quarantined']} / "
                         f"{b.get('poison_quarantined', 'n/a')} of {a['poison']} | {f(_auc(a, 'label'))} / "
                         f"{f(_auc(b, 'label'))} | {f(_auc(a, 'outlier'))} / {f(_auc(b, 'outlier'))} | "
                         f"{f(a.get('clean_score_q99'))} / {f(b.get('clean_score_q99'))} | {top} |")
    return "\n".join(L)


# ------------------------------------------------------------------------------------------ main

def _imported_from(package: str) -> str:
    import importlib.util

    spec = importlib.util.find_spec(package)
    return str(Path(spec.origin).resolve().parent) if spec is not None and spec.origin else "not importable"


@contextlib.contextmanager
def prefect_api(work: Path) -> Iterator[None]:
    """Prefect's temporary API server, as ``trainguard ingest`` starts it, with its own PREFECT_HOME under
    ``work`` (unless Prefect is already imported or an API is configured); the ledger witness under
    ``work``."""
    saved = {k: os.environ.get(k) for k in ("TRAINGUARD_WITNESS", "PREFECT_HOME")}
    os.environ["TRAINGUARD_WITNESS"] = str(work / "witness")  # throwaway ledgers: never the user's witness
    if "prefect" not in sys.modules and not os.environ.get("PREFECT_API_URL"):
        os.environ["PREFECT_HOME"] = str(work / "prefect")
        (work / "prefect").mkdir(parents=True, exist_ok=True)
    from pipelines.cli.ingest_cmd import quiet_prefect

    quiet_prefect()
    from pipelines._api_server import TemporaryAPIServer

    TemporaryAPIServer.launch_early()
    server = TemporaryAPIServer.start_if_needed()
    try:
        with server.serving() if server is not None else contextlib.nullcontext():
            yield
    finally:
        if server is not None:
            server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.eval_campaign", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 dataset (pendigits), 4 batches of 500 rows")
    ap.add_argument("--datasets", nargs="*", help=f"PMLB datasets (default {' '.join(DATASETS)})")
    ap.add_argument("--batches", type=int, help="later batches after the trusted one (default 8; quick 3)")
    ap.add_argument("--rate", type=float, help="poison share of each later batch (default 0.02)")
    ap.add_argument("--batch-size", type=int,
                    help="rows per batch (default 2000, smaller for small datasets; quick 500)")
    ap.add_argument("--modes", nargs="*", choices=MODES, help="ingestion modes (default all three)")
    ap.add_argument("--campaigns", nargs="*", choices=CAMPAIGNS,
                    help="poisoned campaigns (default all three; the control always runs)")
    ap.add_argument("--work", help="work directory (default a new temporary directory, removed at the end)")
    ap.add_argument("--out", help="JSON path (default benchmarks/results/campaign[_quick|_partial].json)")
    ap.add_argument("--note", help="a free-text note kept in the JSON (e.g. which code was measured)")
    args = ap.parse_args(argv)
    if not (common.SHARED / "data" / "pmlb").is_dir():
        print(f"../shared/data/pmlb is absent ({common.SHARED}); nothing to evaluate", file=sys.stderr)
        return 2
    batches = args.batches if args.batches is not None else (3 if args.quick else 8)
    rate = args.rate if args.rate is not None else 0.02
    batch_size = args.batch_size or (500 if args.quick else 2000)
    if batches < 1 or not 0.0 < rate < 0.5 or batch_size < 100:
        ap.error("--batches must be >= 1, --rate in (0, 0.5), --batch-size >= 100")
    names = args.datasets or (QUICK_DATASETS if args.quick else DATASETS)
    partial = bool(args.datasets or args.batches is not None or args.rate is not None or args.batch_size
                   or args.modes or args.campaigns)
    tag = "quick" if args.quick else ("partial" if partial else "full")
    doc: dict[str, Any] = {
        "kind": "campaign", "run": tag,
        "command": "python -m benchmarks.eval_campaign " + " ".join(sys.argv[1:] if argv is None else argv),
        "environment": common.environment(), "note": args.note,
        "pipelines_imported_from": _imported_from("pipelines"),
        "settings": {"batches": batches, "rate": rate, "batch_size": batch_size, "seed": SEED,
                     "max_test": 1500 if args.quick else 5000, "modes": list(args.modes or MODES),
                     "campaigns": list(args.campaigns or CAMPAIGNS) + [CONTROL],
                     "shift_step_std": SHIFT_STEP, "drift_step_std": DRIFT_STEP, "region_share": REGION_SHARE,
                     "model": "RandomForestClassifier(n_estimators=100, random_state=0)",
                     "flow": "pipelines.flows.ingest, default config, a SQLite ledger per dataset, campaign "
                             "and mode"},
        "goals": GOALS, "datasets": {},
    }
    t0 = time.perf_counter()
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="tg-campaign-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with prefect_api(work):
            for name in names:
                run = DatasetRun(name, work, batches, rate, batch_size, doc["settings"]["max_test"],
                                 tuple(args.modes or MODES), tuple(args.campaigns or CAMPAIGNS))
                doc["datasets"][name] = run.run()
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    doc["seconds"] = time.perf_counter() - t0
    doc["loadavg_end"] = list(os.getloadavg())
    doc["summary"] = summary(doc)
    suffix = "" if tag == "full" else f"_{tag}"
    path = Path(args.out) if args.out else common.RESULTS / f"campaign{suffix}.json"
    common.write_json(path, doc)
    print()
    print(markdown(doc))
    print(f"\nwrote {path} in {doc['seconds']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
