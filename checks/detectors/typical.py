"""Too-typical rows: a batch holding far more rows at the very centre of the reference than trusted data does.

Outlier detectors look for rows far from the trusted data; rows a mode-collapsed generator made, rows averaged or
interpolated towards the centre, and rows shrunk towards the column medians to slip past outlier detectors sit
closer to the centre than trusted rows ever do. One such row is unremarkable (some trusted row is the most central
one); a batch with a significant excess of them is not. Each row's centrality is its ECOD p-value (the calibrated
``score_ecod``: the share of held-out trusted rows less outlying, by per-feature tail probabilities, which do not
depend on how many rows the model was fitted on, unlike neighbour distances). Under the null (a batch drawn like
the reference) it is about uniform, so the share of batch rows in the central ``zone`` is about ``zone``.

Central rows are the most common rows, so centrality alone is weak evidence for any one row: poison must also
teach the model something, and a central row with a wrong label does. The batch-level test therefore counts the
rows that are central (``p <= zone``) and whose label the label model doubts (calibrated label p >= ``min_doubt``),
and compares their share with the same share among held-out trusted rows (a two-sample binomial z of at least
``z``, and at least ``min_lift`` times the trusted share, since at a million rows a negligible excess is
significant). Without a label column only centrality counts, and the test is stricter (``z_alone``).

When the test holds, each row's evidence is Fisher's combination of its label doubt and its centrality,
``-log(1 - label p) - log(centrality p)`` (the centrality alone without labels), calibrated on the same held-out
trusted rows, so it is a p-value under the null like every other family. It enters the combined score as a family
of its own (``typical``): it counts only where it is beyond its own false-positive budget tail, so rows another
family explains (a random label flip away from the centre) keep their rank. A batch whose central share is
implausibly large (an estimated excess of more than ``max_share`` of the batch, from the zone or from the
deficit of rows in the less central half, Storey's estimate at ``UPPER``) is concentrated as a whole: that is drift, which the drift check reports, not poison, and the detector stays off. So does it without a reference
(the batch cannot be the null of itself) and without the ECOD detector.

Rows it helps flag get ``outlier:too_typical``; ``score_typical`` is the combined evidence's p (0 when off).
Cost: a few vector operations over the batch's per-row columns at ``finalize`` and one sort of the trusted
held-out values; nothing per partition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.base import BaseEstimator

from checks.detectors._base import EmpiricalCalibrator
from checks.detectors._batch import BatchFinding

if TYPE_CHECKING:  # pragma: no cover
    from checks.scoring import RowScorer

__all__ = ["TypicalRows", "TypicalResult", "fit_typical", "typical_result", "REASON"]

REASON = "outlier:too_typical"
UPPER = 0.5  # rows less central than this are the clean part of a slab-poisoned batch (Storey's lambda)
_FLOOR = 1e-6  # centrality p below this counts as this (the calibrated p of the most central trusted row is ~1/2n)


def _tail(p: np.ndarray) -> np.ndarray:
    return np.asarray(-np.log(np.clip(1.0 - p, 1e-12, 1.0)))


@dataclass
class TypicalResult:
    """What ``finalize`` needs: the finding (``score_typical``, reasons) and, when the test holds, the family."""

    finding: BatchFinding
    family: np.ndarray | None = None


class TypicalRows(BaseEstimator):  # type: ignore[misc]
    """Batch-level test for an excess of central (and label-doubted) rows, and the per-row evidence when it holds.

    ``fit(central, doubt)`` takes held-out trusted rows' centrality p (calibrated ECOD score, small = central) and
    label p (or None without labels); ``evaluate(central, doubt)`` the batch's.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = TypicalRows().fit(rng.uniform(size=4000), rng.uniform(size=4000))
    >>> clean = det.evaluate(rng.uniform(size=2000), rng.uniform(size=2000))
    >>> slab = det.evaluate(np.r_[rng.uniform(size=1840), rng.uniform(0, 0.02, 160)],
    ...                     np.r_[rng.uniform(size=1840), rng.uniform(0.9, 1, 160)])
    >>> clean is None, slab is not None and bool(slab[1840:].mean() > 0.99 > slab[:1840].mean())
    (True, True)
    """

    def __init__(
        self, *, zone: float = 0.1, min_doubt: float = 0.5, z: float = 3.0, z_alone: float = 5.0,
        min_lift: float = 1.25, max_share: float = 0.25,
    ) -> None:
        self.zone = zone
        self.min_doubt = min_doubt
        self.z = z
        self.z_alone = z_alone
        self.min_lift = min_lift
        self.max_share = max_share

    def _hits(self, central: np.ndarray, doubt: np.ndarray | None) -> np.ndarray:
        hit = central <= self.zone
        return hit if doubt is None else hit & (doubt >= self.min_doubt)

    def _stat(self, central: np.ndarray, doubt: np.ndarray | None) -> np.ndarray:
        c = -np.log(np.clip(central, _FLOOR, 1.0))
        return np.asarray(c if doubt is None else c + _tail(doubt))

    def fit(self, central: np.ndarray, doubt: np.ndarray | None) -> TypicalRows:
        central = np.asarray(central, dtype=np.float64)
        doubt = None if doubt is None else np.asarray(doubt, dtype=np.float64)
        self.labelled_ = doubt is not None
        self.ref_rows_ = int(len(central))
        self.ref_hits_ = int(self._hits(central, doubt).sum())
        self.ref_central_ = float(np.mean(central <= self.zone)) if len(central) else self.zone
        self.ref_upper_ = float(np.mean(central > UPPER)) if len(central) else 1.0 - UPPER
        stat = self._stat(central, doubt)
        self.calibrator_ = EmpiricalCalibrator().fit(stat)
        self.heldout_ = self.calibrator_.transform(stat)  # the family's values on the trusted rows
        return self

    def test(self, central: np.ndarray, doubt: np.ndarray | None) -> dict[str, float | bool]:
        """The batch-level test: z of the zone excess over the trusted share, the lift, the estimated excess
        share of central rows in the batch, and whether the detector is on."""
        n, n0 = len(central), self.ref_rows_
        k = int(self._hits(central, doubt).sum())
        r, r0 = k / max(n, 1), self.ref_hits_ / max(n0, 1)
        pooled = (k + self.ref_hits_) / max(n + n0, 1)
        se = np.sqrt(max(pooled * (1.0 - pooled), 1e-12) * (1.0 / max(n, 1) + 1.0 / max(n0, 1)))
        z = (r - r0) / se
        # the batch's share in excess, from the zone and (Storey) from the deficit of non-central rows: a slab
        # leaves the other rows as they were, a batch concentrated as a whole empties the upper half too
        excess = max((float(np.mean(central <= self.zone)) - self.ref_central_) / max(1.0 - self.ref_central_, 1e-9),
                     1.0 - float(np.mean(central > UPPER)) / max(self.ref_upper_, 1e-9))
        need = self.z if doubt is not None else self.z_alone
        on = bool(n > 0 and n0 > 0 and z >= need and r >= self.min_lift * max(r0, 1.0 / max(n0, 1))
                  and excess <= self.max_share)
        return {"z": float(z), "lift": float(r / max(r0, 1e-12)), "excess_share": float(excess), "on": on}

    def evaluate(self, central: np.ndarray, doubt: np.ndarray | None) -> np.ndarray | None:
        """The batch's family values (calibrated evidence) when the test holds, else None."""
        central = np.asarray(central, dtype=np.float64)
        doubt = None if doubt is None or not self.labelled_ else np.asarray(doubt, dtype=np.float64)
        if not self.test(central, doubt)["on"]:
            return None
        return np.asarray(self.calibrator_.transform(self._stat(central, doubt)))


def fit_typical(
    scorer: RowScorer, heldout: Mapping[str, np.ndarray], families: Mapping[str, np.ndarray],
) -> TypicalRows | None:
    """The scorer's fitted detector (needs it enabled, a reference and the ECOD detector), from the reference's
    held-out raw ECOD scores and the families' held-out values (the label family's rows when there is one)."""
    if "typical" not in scorer.detectors or not scorer.has_reference_ or "ecod" not in heldout:
        return None
    central = scorer.calibrators_["ecod"].transform(heldout["ecod"])
    model = scorer.label_model_
    if model is not None:
        central = central[model.fit_index_]
    return TypicalRows().fit(central, families.get("label"))


def typical_result(
    scorer: RowScorer, n: int, p_rows: np.ndarray | None, label_p: np.ndarray | None,
) -> TypicalResult:
    """The finding of the scorer's detector on the batch (an all-zero one, same schema, when it is off)."""
    det: Any = getattr(scorer, "typical_", None)
    off = TypicalResult(BatchFinding("typical", np.zeros(n), np.zeros(n, dtype=bool), REASON, calibrated=True))
    if det is None or p_rows is None or n == 0:
        return off
    central = p_rows[:, scorer.row_detectors_.index("ecod")]
    family = det.evaluate(central, label_p)
    if family is None:
        return off
    # the reason goes to the flagged rows (the finding is calibrated: it explains, the family lifts) that are
    # central and whose combined evidence exceeds their label doubt alone (alone: beyond the budget's tail)
    fires = (central <= det.zone) & ((family > scorer.threshold_) if label_p is None else (family > label_p))
    return TypicalResult(BatchFinding("typical", family, fires, REASON, calibrated=True), family)
