"""pipelines.config: defaults, validation (fail closed on unknown keys and bad values), digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.config import Config, Policy, load_config, parse_config
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
    assert cfg.allowed_roots == (str(Path.cwd() / "data"),)  # relative: from the working directory
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
        ({"policy": {"relabel": "yes"}}, "config:bad_value"),
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


# --- strict, typed parsing (found by review: a string reject_on_contract silently disabled contract rejection,
# "false" was read as true, true as 1.0, and wrong types crashed with exit 70) --------------------------------
@pytest.mark.parametrize(
    ("doc", "place", "found"),
    [
        ({"policy": {"reject_on_contract": "expect:not_null"}}, "[policy] reject_on_contract",
         'the string "expect:not_null"'),
        ({"policy": {"reject_on_contract": ["expect:not_null:age"]}}, "[policy] reject_on_contract", "an array"),
        ({"policy": {"quarantine_flagged": "false"}}, "[policy] quarantine_flagged", 'the string "false"'),
        ({"policy": {"max_quarantined_share": True}}, "[policy] max_quarantined_share", "the boolean true"),
        ({"policy": {"max_drift_share": float("nan")}}, "[policy] max_drift_share", "the float nan"),
        ({"policy": {"min_rows": "x"}}, "[policy] min_rows", 'the string "x"'),
        ({"policy": {"min_rows": -5}}, "[policy] min_rows", "the integer -5"),
        ({"scoring": {"random_state": "x"}}, "[scoring] random_state", 'the string "x"'),
        ({"scoring": {"random_state": -1}}, "[scoring] random_state", "the integer -1"),
        ({"scoring": {"fp_budget": True}}, "[scoring] fp_budget", "the boolean true"),
        ({"scoring": {"fp_budget": 0.6}}, "[scoring] fp_budget", "the float 0.6"),  # the scorer refuses >= 0.5
        ({"policy": 5}, "policy", "the integer 5"),
        ({"sources": 5}, "sources", "the integer 5"),
        ({"sources": {"a": {"path": 5}}}, "[sources.a] path", "the integer 5"),
        ({"sources": {"a": {"path": "a.csv", "label_column": ["y"]}}}, "[sources.a] label_column", "an array"),
        ({"ledger": 5}, "ledger", "the integer 5"),
        # found by review: Prefect refused this name at serve (exit 70); "my source" failed every poll, unrecorded
        ({"sources": {"bad name/../x": {"path": "a.csv"}}}, "[sources] table name", 'the string "bad name/../x"'),
        ({"sources": {"my source": {"path": "a.csv"}}}, "[sources] table name", 'the string "my source"'),
        ({"sources": {".hidden": {"path": "a.csv"}}}, "[sources] table name", 'the string ".hidden"'),
        ({"out_root": ""}, "out_root", 'the string ""'),
        ({"chunk_mb": 1.5}, "chunk_mb", "the float 1.5"),
        ({"trainguard": {"partition_rows": True}}, "[trainguard] partition_rows", "the boolean true"),
    ],
)
def test_wrong_types_and_ranges_are_one_line_bad_value(doc: dict, place: str, found: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_config(doc, origin="tg.toml")
    err = info.value
    assert err.code == "config:bad_value" and err.exit_code == 2
    message = str(err)
    assert message.startswith(f"tg.toml: {place} must be ") and f", not {found}" in message and "\n" not in message


def test_a_table_beside_trainguard_is_refused_not_ignored() -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_config({"trainguard": {}, "policy": {"max_quarantined_share": 0.0}}, origin="tg.toml")
    assert info.value.code == "config:unknown_key" and "policy" in str(info.value)


def test_a_string_reject_on_contract_no_longer_disables_contract_rejection(tmp_path: Path) -> None:
    """The review's reproduction: as a string it became a tuple of characters, so nothing matched."""
    import pandas as pd

    from pipelines.policy import decide

    p = tmp_path / "tg.toml"
    p.write_text('[policy]\nreject_on_contract = "expect:not_null"\n', encoding="utf-8")
    with pytest.raises(PipelineConfigError, match=r"tg\.toml: \[policy\] reject_on_contract must be an array"):
        load_config(p)
    p.write_text('[policy]\nreject_on_contract = ["expect:not_null"]\n', encoding="utf-8")
    scores = pd.DataFrame({"row": range(10), "score": [0.1] * 10, "flagged": [False] * 9 + [True],
                           "reasons": [[]] * 9 + [["expect:not_null:age"]]})
    failures = pd.DataFrame({"check": ["not_null"], "column": ["age"], "row": pd.array([9], dtype="Int64"),
                             "value": [None], "reason": ["expect:not_null:age"]})
    assert decide(scores, load_config(p).policy, failures=failures).verdict == "rejected"


@pytest.mark.parametrize("kwargs", [{"reject_on_contract": "expect:not_null"}, {"quarantine_flagged": "false"},
                                    {"max_quarantined_share": True}, {"max_drift_share": 2}, {"min_rows": -1},
                                    {"min_rows": 1.0}])
def test_policy_built_in_python_is_checked_too(kwargs: dict) -> None:
    with pytest.raises(PipelineConfigError) as info:
        Policy(**kwargs)
    assert info.value.code == "config:bad_value" and str(info.value).startswith("Policy ")
    assert Policy(reject_on_contract=["expect:not_null"]).reject_on_contract == ("expect:not_null",)


# every key with a value of the right type, and values of every TOML type
_VALID: dict[tuple[str, ...], object] = {
    ("ledger",): "sqlite:///l.db", ("state_dir",): "state", ("out_root",): "out", ("allowed_roots",): ["data"],
    ("chunk_mb",): 64, ("partition_rows",): 1000,
    ("policy", "quarantine_flagged"): False, ("policy", "max_quarantined_share"): 0.5,
    ("policy", "max_drift_share"): 1, ("policy", "reject_on_contract"): ["expect:not_null"],
    ("policy", "min_rows"): 0, ("scoring", "fp_budget"): 0.05, ("scoring", "random_state"): 7,
    ("sources", "s", "path"): "a.csv", ("sources", "s", "label_column"): "y", ("sources", "s", "source_column"): "v",
    ("sources", "s", "schedule"): "0 * * * *", ("sources", "s", "landing_dir"): "landing",
    ("sources", "s", "poll_seconds"): 30, ("sources", "s", "out"): "out/s",
}
_TOML_VALUES = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.datetimes(), st.dates(), st.times(),
    st.lists(st.one_of(st.integers(), st.text(max_size=5), st.booleans()), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _doc(path: tuple[str, ...], value: object) -> dict:
    doc: dict = {}
    node = doc
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    if path[0] == "sources" and path[-1] != "path":
        node.setdefault("path", "a.csv")
    return doc


@pytest.mark.parametrize("path", list(_VALID), ids=".".join)
def test_every_key_accepts_its_type(path: tuple[str, ...]) -> None:
    cfg = parse_config(_doc(path, _VALID[path]))
    assert isinstance(cfg, Config)


@pytest.mark.parametrize("path", list(_VALID), ids=".".join)
@given(value=_TOML_VALUES)
def test_any_value_is_accepted_or_a_config_error_never_a_crash(path: tuple[str, ...], value: object) -> None:
    """Property: whatever TOML value a key holds, parsing either accepts it with the documented type or raises
    PipelineConfigError (exit 2); never another exception (exit 70)."""
    try:
        cfg = parse_config(_doc(path, value), origin="tg.toml")
    except PipelineConfigError as exc:
        assert exc.exit_code == 2 and exc.code == "config:bad_value" and str(exc).startswith("tg.toml: ")
        return
    expected = type(_VALID[path])
    if expected is int and path[-1] == "max_drift_share":
        expected = float
    if path[0] == "sources":
        field = getattr(cfg.sources["s"], path[-1])
    elif path[0] == "policy":
        field = getattr(cfg.policy, path[-1])
    else:
        field = getattr(cfg, path[-1])
    if expected is list:
        assert isinstance(field, tuple) and all(isinstance(v, str) and v for v in field)
    elif expected is float:
        assert isinstance(field, float) and field == field and not isinstance(value, bool)
    else:
        assert isinstance(field, expected) and not (expected is int and isinstance(field, bool))


def test_relative_allowed_roots_are_taken_from_the_working_directory(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by review: relative roots were taken from the config's directory, every other path from the working
    directory, so the README's example config worked only when run from the config's own directory."""
    from pipelines.reading import check_allowed

    cfg_dir, work = tmp_path / "cfgdir", tmp_path / "work"
    (work / "data" / "landing").mkdir(parents=True)
    cfg_dir.mkdir()
    (cfg_dir / "tg.toml").write_text('allowed_roots = ["data/landing", "s3://bucket/in", "/abs/root"]\n',
                                     encoding="utf-8")
    monkeypatch.chdir(work)
    cfg = load_config(cfg_dir / "tg.toml")
    assert cfg.allowed_roots == (str(work / "data" / "landing"), "s3://bucket/in", "/abs/root")
    monkeypatch.chdir(tmp_path)  # resolved when parsed: a later chdir does not move them
    check_allowed(str(work / "data" / "landing" / "x.csv"), cfg.allowed_roots, base=cfg_dir)


def test_relabel_is_off_unless_asked() -> None:
    assert parse_config({}).policy.relabel is False
    assert parse_config({"policy": {"relabel": True}}).policy.relabel is True
    assert parse_config({"policy": {"relabel": True}}).digest() != parse_config({}).digest()  # recorded



# --- pydantic v2 validation (issue #16): the same digests, the same one-line messages, no pydantic text ---------
# digests computed by the hand-written validator before pydantic: ledgers record them, the same settings keep them
@pytest.mark.parametrize(("doc", "digest"), [
    ({}, "1d5356737c08f5a89502c966c265b9d72324d975356d026bc7060f13228a1fb5"),
    ({"policy": {"max_drift_share": 1, "max_quarantined_share": 0, "min_rows": 0}},  # integers stored as floats
     "fbbb10f33984e0d2821f6e06a575e95d8d6219be5085f61ace592905c4280998"),
    ({"policy": {"relabel": True}}, "f2b312a5fb1c35baf374e54717d78b343cc463f362456eacc0db4e30a25dc8f3"),
    ({"scoring": {"fp_budget": 0.2, "random_state": 4294967295, "anchor": False}},
     "fd593ae4c606e694d270146099c399389e6bdc78bd7aa57f33aa09978f184a72"),
    ({"trainguard": {"ledger": "sqlite:///l.db", "state_dir": "st", "out_root": "o",
                     "allowed_roots": ["/abs", "s3://b/x"], "chunk_mb": 64, "partition_rows": 1000,
                     "policy": {"quarantine_flagged": False, "reject_on_contract": []},
                     "sources": {"a": {"path": "a.csv", "schedule": "0 3 * * *"}}}},
     "fab25c3c0ba8a73257e7eb944e05355ef09e796dbbe3c13f529bef0ed2196a22"),
])
def test_digests_are_the_ones_recorded_before(doc: dict, digest: str) -> None:
    assert parse_config(doc, origin="tg.toml").digest() == f"sha256:{digest}"


def test_load_config_none_digest_and_relabel_override_digest() -> None:
    """flows.py overrides [policy] relabel with dataclasses.replace: the digest is the file's with relabel = true."""
    from dataclasses import replace

    cfg = load_config(None)
    assert cfg.digest() == "sha256:1d5356737c08f5a89502c966c265b9d72324d975356d026bc7060f13228a1fb5"
    overridden = replace(cfg, policy=replace(cfg.policy, relabel=True))
    assert overridden.digest() == parse_config({"policy": {"relabel": True}}).digest()


@pytest.mark.parametrize(("doc", "message"), [
    ({"policy": {"oops": 1, "zz": 2, "min_rows": -1}},  # every unknown key of the table, before its bad values
     "tg.toml: unknown key(s) oops, zz in [policy]; allowed: max_drift_share, max_quarantined_share, min_rows, "
     "quarantine_flagged, reject_on_contract, relabel"),
    ({"policy": {"min_rows": -1}, "polcy": {}},
     "tg.toml: unknown key(s) polcy in [top level]; allowed: allowed_roots, chunk_mb, ledger, out_root, "
     "partition_rows, policy, scoring, sources, state_dir"),
    ({"trainguard": {"scoring": {"seed": 1}}},
     "tg.toml: unknown key(s) seed in [trainguard.scoring]; allowed: anchor, fp_budget, random_state"),
    ({"trainguard": {}, "x": 1}, "tg.toml: unknown key(s) x in [top level]; allowed: trainguard"),
    ({"sources": {"a": {"path": "a.csv", "schedule": "nope", "cron": "x"}}},
     "tg.toml: unknown key(s) cron in [sources.a]; allowed: label_column, landing_dir, out, path, poll_seconds, "
     "schedule, source_column"),
])
def test_unknown_key_messages(doc: dict, message: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_config(doc, origin="tg.toml")
    assert info.value.code == "config:unknown_key" and str(info.value) == message


@pytest.mark.parametrize(("doc", "message"), [
    ({"trainguard": 5}, "tg.toml: [trainguard] must be a table, not the integer 5"),
    ({"sources": {"a": 5}}, "tg.toml: [sources.a] must be a table, not the integer 5"),
    ({"sources": {"my source": 5}}, "tg.toml: [sources] table name must be letters, digits, '.', '_' or '-' "
                                    'starting with a letter or digit (at most 128), not the string "my source"'),
    ({"trainguard": {"sources": {"a": {"path": "", "schedule": "nope", "poll_seconds": 0}}}},  # schedule first
     'tg.toml: [trainguard.sources.a] schedule must be a cron expression such as "0 * * * *", not the string "nope"'),
    ({"allowed_roots": ["ok", ""]},  # the whole array is shown, not its wrong item
     'tg.toml: allowed_roots must be an array of non-empty strings, not an array ["ok", ""]'),
    ({"policy": {"reject_on_contract": ["expect:not_null", 5]}},
     'tg.toml: [policy] reject_on_contract must be an array of failure kinds such as ["expect:not_null", '
     '"schema:type"] (schema:* or expect:*, no column), not an array ["expect:not_null", 5]'),
    ({"chunk_mb": 0, "scoring": {"fp_budget": 0.5}}, "tg.toml: [scoring] fp_budget must be a number in (0, 0.5), "
                                                     "not the float 0.5"),
    ({"scoring": {"random_state": 2**32}},
     "tg.toml: [scoring] random_state must be an integer in [0, 4294967295], not the integer 4294967296"),
    ({"sources": {"a": {"poll_seconds": True}}},
     "tg.toml: [sources.a] poll_seconds must be an integer >= 1, not the boolean true"),
])
def test_bad_value_messages(doc: dict, message: str) -> None:
    with pytest.raises(PipelineConfigError) as info:
        parse_config(doc, origin="tg.toml")
    assert info.value.code == "config:bad_value" and str(info.value) == message


@given(doc=st.dictionaries(st.sampled_from(["policy", "scoring", "sources", "allowed_roots", "chunk_mb", "oops"]),
                           st.one_of(st.integers(), st.text(max_size=3), st.lists(st.integers(), max_size=2),
                                     st.dictionaries(st.sampled_from(["min_rows", "fp_budget", "a", "x"]),
                                                     st.one_of(st.integers(), st.text(max_size=3), st.none()),
                                                     max_size=2)),
                           max_size=3))
def test_no_pydantic_text_reaches_the_user(doc: dict) -> None:
    try:
        parse_config(doc, origin="tg.toml")
    except PipelineConfigError as exc:
        text = str(exc)
        assert "\n" not in text and "pydantic" not in text and "Input should" not in text, text
        assert "validation error" not in text and text.startswith("tg.toml: ") and exc.__cause__ is None


def test_config_and_source_built_in_python_are_checked_and_frozen() -> None:
    import dataclasses

    with pytest.raises(PipelineConfigError, match=r"^Config chunk_mb must be an integer >= 1, not the integer 0$"):
        Config(chunk_mb=0)
    with pytest.raises(PipelineConfigError, match=r"^Config policy must be a Policy, not a table$"):
        Config(policy={"min_rows": 1})  # type: ignore[arg-type]
    with pytest.raises(PipelineConfigError) as info:
        Policy(min_rows=1, oops=2)  # type: ignore[call-arg]
    assert info.value.code == "config:unknown_key" and str(info.value).startswith("Policy: unknown key(s) oops;")
    with pytest.raises(PipelineConfigError, match=r"^Policy min_rows must be an integer >= 0, not the integer -1$"):
        dataclasses.replace(Policy(), min_rows=-1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().chunk_mb = 3  # type: ignore[misc]
    assert Policy(max_drift_share=1).max_drift_share == 1.0 and isinstance(Policy(max_drift_share=1).max_drift_share,
                                                                           float)
    assert Config().source("any name") == Config().source("any name")  # an unscheduled default, any --source
