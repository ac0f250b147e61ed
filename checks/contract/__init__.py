"""Data contracts: infer from a trusted reference, edit as TOML, validate with Great Expectations 1.x.

>>> import pandas as pd
>>> from checks.contract import infer_contract, validate
>>> ref = pd.DataFrame({"age": list(range(20, 60)), "color": ["red", "blue"] * 20})
>>> c = infer_contract(ref)
>>> validate(pd.DataFrame({"age": [30, 500], "color": ["red", "green"]}), c).failures["reason"].tolist()
['expect:in_range:age', 'expect:in_set:color']
"""

from checks._frames import iter_chunks as read_chunks
from checks.contract._infer import infer_contract
from checks.contract._model import ColumnSpec, Contract
from checks.contract._validate import FAILURE_COLUMNS, ValidationResult, validate, validate_chunks

__all__ = [
    "FAILURE_COLUMNS",
    "ColumnSpec",
    "Contract",
    "ValidationResult",
    "infer_contract",
    "read_chunks",
    "validate",
    "validate_chunks",
]
