"""checks._adaptive: the threshold widens only for a significantly contaminated batch, never tightens."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from checks._adaptive import MAX_CUT, adaptive_cut, contaminated_share


def test_clean_batches_keep_the_budget() -> None:
    widened = [adaptive_cut(np.random.default_rng(seed).uniform(size=2000), 0.01) > 0.01 for seed in range(200)]
    assert sum(widened) <= 2  # the share must be 3 standard errors above zero


def test_drifted_clean_batch_keeps_the_budget() -> None:
    # every p-value a little lower (up to 1.8x the budget's share under its cut): a share shows, but spread over
    # all of [0, 1]. A stronger drift (power 1.2: 2.4x) can widen the cut; the drift check reports such batches.
    for power in (1.05, 1.1):
        for seed in range(5):
            p = np.random.default_rng(seed).uniform(size=3000) ** power
            assert adaptive_cut(p, 0.01) == 0.01, (power, seed)


def test_contaminated_batch_widens_towards_the_best_f1() -> None:
    rng = np.random.default_rng(2)
    clean, poison = rng.uniform(size=1800), rng.beta(0.3, 30.0, size=200)  # poison p-values crowd near 0
    p = np.concatenate([clean, poison])
    truth = np.r_[np.zeros(1800, bool), np.ones(200, bool)]
    share = contaminated_share(p)
    assert 0.07 < share < 0.13
    cut = adaptive_cut(p, 0.01)

    def f1(t: float) -> float:
        flag = p <= t
        return 2 * (flag & truth).sum() / (flag.sum() + truth.sum())

    assert cut > 0.01 and f1(cut) > f1(0.01) and f1(cut) >= 0.9 * max(f1(t) for t in np.unique(p[p < 0.2]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=0, max_size=400), st.floats(0.001, 0.1))
def test_cut_is_never_stricter_than_the_budget(values: list[float], budget: float) -> None:
    cut = adaptive_cut(np.asarray(values, dtype=float), budget)
    assert budget <= cut <= max(budget, MAX_CUT)
