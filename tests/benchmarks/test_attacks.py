"""The poisoning attack generators: shapes, masks, seeds, ranges and triggers on tiny seeded data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.attacks import (
    ATTACKS,
    Poisoned,
    backdoor,
    label_flip,
    ood_injection,
    stamp_trigger,
    targeted_flip,
)

IN_RANGE = [a for a in ATTACKS if a not in ("ood_injection", "mixed")]


def tiny(seed: int, n: int = 200, classes: int = 3) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "cat": rng.integers(0, 5, n),  # label-encoded categorical
        "cont": rng.normal(10.0, 2.0, n),
        "cnt": rng.poisson(20, n),
    })
    y = pd.Series(rng.choice(classes, n, p=np.linspace(1, 2, classes) / np.linspace(1, 2, classes).sum()), name="class")
    return X, y


@pytest.mark.parametrize("name", list(ATTACKS))
def test_shape_dtypes_mask_and_no_mutation(name: str) -> None:
    X, y = tiny(0)
    X0, y0 = X.copy(), y.copy()
    p = ATTACKS[name](X, y, np.random.default_rng(1))
    assert isinstance(p, Poisoned)
    pd.testing.assert_frame_equal(X, X0)
    pd.testing.assert_series_equal(y, y0)
    assert p.X.shape == X.shape and list(p.X.columns) == list(X.columns)
    assert (p.X.dtypes == X.dtypes).all()
    assert p.X.index.equals(X.index) and p.is_poison.index.equals(X.index) and p.y.index.equals(y.index)
    assert p.is_poison.dtype == bool and 0 < p.is_poison.sum() < len(X)
    # clean rows are untouched
    clean = ~p.is_poison
    pd.testing.assert_frame_equal(p.X[clean], X[clean])
    assert (p.y[clean] == y[clean]).all()
    # poison rows are changed (a compromised source also ships some untouched rows, all marked poison)
    changed = (p.X != X).any(axis=1) | (p.y != y)
    assert changed[p.is_poison].mean() > (0.3 if name == "compromised_source" else 0.9)


@pytest.mark.parametrize("name", list(ATTACKS))
def test_same_seed_same_poison_other_seed_differs(name: str) -> None:
    X, y = tiny(2)
    a = ATTACKS[name](X, y, np.random.default_rng(7))
    b = ATTACKS[name](X, y, np.random.default_rng(7))
    c = ATTACKS[name](X, y, np.random.default_rng(8))
    pd.testing.assert_frame_equal(a.X, b.X)
    assert (a.is_poison == b.is_poison).all() and (a.y == b.y).all()
    assert not ((a.is_poison == c.is_poison).all() and a.X.equals(c.X))


@pytest.mark.parametrize("name", IN_RANGE)
def test_in_range_attacks_stay_in_range(name: str) -> None:
    X, y = tiny(3)
    p = ATTACKS[name](X, y, np.random.default_rng(0))
    assert (p.X.min() >= X.min()).all() and (p.X.max() <= X.max()).all()


def test_ood_rows_are_out_of_range() -> None:
    X, y = tiny(4)
    p = ood_injection(X, y, np.random.default_rng(0), rate=0.05)
    bad = p.X[p.is_poison]
    assert ((bad < X.min()) | (bad > X.max())).all(axis=None)
    assert p.is_poison.sum() == 10


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), rate=st.floats(0.02, 0.4), classes=st.integers(2, 5))
def test_label_flip_rate_and_flips(seed: int, rate: float, classes: int) -> None:
    X, y = tiny(seed, n=120, classes=classes)
    p = label_flip(X, y, np.random.default_rng(seed), rate=rate)
    assert p.is_poison.sum() == round(rate * len(X))
    assert (p.y[p.is_poison] != y[p.is_poison]).all()
    assert set(p.y.unique()) <= set(y.unique())


def test_targeted_flip_moves_largest_class_to_second() -> None:
    X, y = tiny(5)
    p = targeted_flip(X, y, np.random.default_rng(0))
    src, dst = y.value_counts().index[:2]
    assert (y[p.is_poison] == src).all() and (p.y[p.is_poison] == dst).all()
    assert p.info["rate"] == p.is_poison.mean()


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_backdoor_trigger_is_in_range_rare_and_labelled(seed: int) -> None:
    X, y = tiny(seed)
    p = backdoor(X, y, np.random.default_rng(seed))
    trig = p.trigger
    assert trig is not None and len(trig.features) == 2
    for col, val in trig.features.items():
        assert X[col].min() <= val <= X[col].max()
        share = (X[col] == val).mean() if X[col].nunique() <= 32 else 0.0
        assert share <= 1 / X[col].nunique() + 1e-9  # the rarest code (or a sparse bin of a continuous column)
        assert (p.X.loc[p.is_poison, col] == val).all()
    assert (p.y[p.is_poison] == trig.target).all() and (y[p.is_poison] != trig.target).all()
    stamped = stamp_trigger(X.head(5), trig)
    assert all((stamped[c] == v).all() for c, v in trig.features.items()) and (stamped.dtypes == X.dtypes).all()


def test_compromised_source_marks_exactly_one_source() -> None:
    X, y = tiny(6)
    p = ATTACKS["compromised_source"](X, y, np.random.default_rng(0))
    assert p.source is not None
    assert set(p.source[p.is_poison]) == {"s0"} and "s0" not in set(p.source[~p.is_poison])


def test_feature_collision_keeps_labels() -> None:
    X, y = tiny(7)
    p = ATTACKS["feature_collision"](X, y, np.random.default_rng(0))
    assert (p.y == y).all() and (p.X[p.is_poison] != X[p.is_poison]).any(axis=None)


def test_mixed_keeps_a_trigger_and_disjoint_rates() -> None:
    X, y = tiny(8, n=400)
    p = ATTACKS["mixed"](X, y, np.random.default_rng(0))
    assert p.trigger is not None
    assert 0.08 <= p.is_poison.mean() <= 0.15
