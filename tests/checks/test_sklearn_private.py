"""``checks._sklearn_private``: pinned to the scikit-learn version of constraints.txt, and the same numbers as the
public API (a new scikit-learn version must be checked here before the pin moves)."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from sklearn.linear_model import LogisticRegression

from checks._sklearn_private import predict_proba_binned
from tests._pins import pinned


def test_installed_scikit_learn_is_the_pinned_one() -> None:
    assert sklearn.__version__ == pinned("scikit-learn")


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_binned_fast_path_equals_predict_proba(n_classes: int, early_stopping: bool) -> None:
    rng = np.random.default_rng(10 * n_classes + early_stopping)
    X = rng.normal(size=(3000, 5))
    X[rng.random(X.shape) < 0.02] = np.nan  # the missing-values bin as well
    y = np.digitize(X[:, 0] + 0.3 * rng.normal(size=3000), [-0.5, 0.5][: n_classes - 1])
    model = HistGradientBoostingClassifier(max_iter=30, early_stopping=early_stopping, random_state=0).fit(X, y)
    assert hasattr(model, "_bin_mapper") and hasattr(model, "_predictors")  # the fast path, not the fallback
    unseen = np.vstack([rng.normal(scale=3.0, size=(2000, 5)), X[:50]])  # beyond every bin edge as well
    np.testing.assert_array_equal(predict_proba_binned(model, unseen), model.predict_proba(unseen))


def test_falls_back_to_predict_proba_on_another_layout() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)  # no _bin_mapper: the public path
    np.testing.assert_array_equal(predict_proba_binned(model, X), model.predict_proba(X))


def test_isolation_forest_public_max_samples() -> None:
    """``FastIForest`` reads the public ``max_samples_`` (the private ``_max_samples`` it replaced is the same)."""
    X = np.random.default_rng(0).normal(size=(500, 3))
    for max_samples in (256, 0.5, "auto"):
        forest = IsolationForest(n_estimators=5, max_samples=max_samples, random_state=0).fit(X)
        assert forest.max_samples_ == forest._max_samples
