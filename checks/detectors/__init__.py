"""Row detectors in the scikit-learn estimator style (``fit`` on trusted rows, ``score_samples``, seeded).

Feature-space: ``FastIForest``, ``FastECOD``, ``FastHBOS``, ``KNNDetector`` (fast stand-ins scoring like PyOD's
IForest, ECOD, HBOS and KNN); label consistency: ``LabelModel``; calibration: ``EmpiricalCalibrator``.
"""

from checks.detectors._base import EmpiricalCalibrator, OutlierDetector
from checks.detectors.ecod import FastECOD
from checks.detectors.hbos import FastHBOS
from checks.detectors.iforest import FastIForest
from checks.detectors.knn import KNNDetector
from checks.detectors.label import LabelModel

__all__ = [
    "EmpiricalCalibrator", "FastECOD", "FastHBOS", "FastIForest", "KNNDetector", "LabelModel", "OutlierDetector",
]
