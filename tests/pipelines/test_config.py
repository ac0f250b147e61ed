"""pipelines.config: defaults, validation (fail closed on unknown keys and bad values), digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Config, load_config, parse_config
from pipelines.errors import PipelineConfigError


def test_defaults() -> None:
    cfg = load_config(None)
    assert cfg.policy.max_quarantined_share == 0.30
    assert cfg.allowed_roots == ()
    assert cfg.digest().startswith("sha256:")


def test_full_config(tmp_path: Path) -> None:
    p = tmp_path / "tg.toml"
    p.write_text(
        """
[trainguard]
allowed_roots = ["data"]
partition_rows = 1000
[trainguard.policy]
max_quarantined_share = 0.1
max_drift_share = 0.2
reject_on_contract = ["expect:not_null"]
[trainguard.scoring]
fp_budget = 0.02
[trainguard.sources.credit]
path = "data/credit.csv"
label_column = "class"
schedule = "*/5 * * * *"
landing_dir = "landing"
poll_seconds = 30
""",
        encoding="utf-8",
    )
    cfg = load_config(p)
    assert cfg.allowed_roots == ("data",)
    assert cfg.partition_rows == 1000
    assert cfg.policy.reject_on_contract == ("expect:not_null",)
    assert cfg.fp_budget == 0.02
    src = cfg.source("credit")
    assert (src.schedule, src.landing_dir, src.poll_seconds, src.label_column) == ("*/5 * * * *", "landing", 30, "class")
    assert cfg.source("other").path == ""
    assert cfg.path == str(p)


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"polcy": {}}, "config:unknown_key"),
        ({"policy": {"max_quarantined_share": 1.5}}, "config:bad_value"),
        ({"policy": {"max_drift_share": "high"}}, "config:bad_value"),
        ({"policy": {"oops": 1}}, "config:unknown_key"),
        ({"scoring": {"fp_budget": 0}}, "config:bad_value"),
        ({"partition_rows": 0}, "config:bad_value"),
        ({"allowed_roots": "data"}, "config:bad_value"),
        ({"sources": {"a": {"cron": "x"}}}, "config:unknown_key"),
        ({"sources": {"a": {"path": "a.csv", "schedule": "every hour"}}}, "config:bad_value"),
        ({"sources": {"a": {"path": "a.csv", "schedule": 5}}}, "config:bad_value"),
    ],
)
def test_bad_config_is_refused(doc: dict, code: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_config(doc)
    assert info.value.code == code


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(PipelineConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy\n", encoding="utf-8")
    with pytest.raises(PipelineConfigError) as info:
        load_config(bad)
    assert info.value.code == "config:bad_toml"


@given(q=st.floats(0, 1), d=st.floats(0, 1))
def test_digest_tracks_decision_settings(q: float, d: float) -> None:
    a = parse_config({"policy": {"max_quarantined_share": q, "max_drift_share": d}})
    b = parse_config({"policy": {"max_quarantined_share": q, "max_drift_share": d}})
    assert a.digest() == b.digest()
    c = parse_config({"policy": {"max_quarantined_share": q, "max_drift_share": d}, "partition_rows": 7})
    assert c.digest() != a.digest()
    assert isinstance(a, Config)
