"""A source's reference is its recent approved data, enough of it (review finding F3).

The newest approved set alone when it holds ``min_reference_rows(fp_budget)`` rows (unchanged: same file, same
digest); else it and older approved sets, newest first, joined into one Parquet file of exactly that many rows,
built in the run's work dir from checked copies and never kept (review 2: all-null columns, columns in another
order, disk growth, parts swapped while read). The first tests call
``resolve_reference`` on a real ledger with approved entries appended through the ledger API (no Prefect); the
last ones run the real flow: a small approved batch no longer stops the source.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import _reference
from pipelines._reference import resolve_reference
from pipelines.config import load_config
from pipelines.errors import PipelineInputError
from pipelines.state import SourceState, state_dir_for
from provenance.entries import make_statement
from provenance.hashing import file_digest
from provenance.ledger import open_ledger

SOURCE = "vendor"


class Source:
    """A source with approved sets appended to a real SQLite ledger, as an ingest run records them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"sqlite:///{root / 'ledger' / 'ledger.db'}"
        self.state = SourceState(state_dir_for(self.url, None), SOURCE)
        self.n = 0

    def approve(self, df: pd.DataFrame | pa.Table, *, source_digest: str | None = None, keep: bool = True,
                reference: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write ``df`` as an approved clean.parquet, keep it in the state and append its approved entry."""
        self.n += 1
        out = self.root / f"out-{self.n}"
        out.mkdir()
        clean = out / "clean.parquet"
        table = df if isinstance(df, pa.Table) else pa.Table.from_pandas(df, preserve_index=False)
        pq.write_table(table, clean, compression="zstd")
        digest = file_digest(clean)
        if keep:
            self.state.keep_approved(clean, digest)
        src = source_digest or "sha256:" + hashlib.sha256(f"input-{self.n}".encode()).hexdigest()
        predicate = {"verdict": "approved", "source": {"name": SOURCE, "uri": f"in-{self.n}.csv", "digest": src},
                     "approved_data": {"uri": str(clean), "digest": digest, "rows": len(df)},
                     "reference": reference, "counts": {"rows": len(df)}, "reasons": []}
        with open_ledger(self.url) as ledger:
            index = ledger.append(make_statement(subjects=[(str(clean), digest)], predicate=predicate)).index
        return {"index": index, "digest": digest, "rows": len(df), "path": clean, "source_digest": src}

    def resolve(self, tmp: Path, *, digest: str = "sha256:" + "0" * 64) -> dict[str, Any] | None:
        work = tmp / f"work-{len(list(tmp.glob('work-*')))}"  # a fresh work dir per run, as the flow has
        work.mkdir()
        ctx = {"config": load_config(None), "ledger_url": self.url, "source": SOURCE, "digest": digest}
        return resolve_reference(ctx, self.state, None, work)


def frame(rows: int, seed: int, **overrides: Any) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=rows), "n": rng.integers(0, 9, rows).astype("int64"),
                       "cat": rng.choice(["a", "b", "c"], rows), "label": rng.integers(0, 2, rows)})
    for name, values in overrides.items():
        df[name] = values
    return df


@pytest.fixture()
def src(tmp_path: Path) -> Source:
    return Source(tmp_path)


def test_a_big_enough_newest_set_is_the_reference_alone_as_before(src: Source, tmp_path: Path) -> None:
    src.approve(frame(300, 1))
    newest = src.approve(frame(150, 2))
    ref = src.resolve(tmp_path)
    assert ref == {"uri": str(newest["path"]), "path": str(src.state.approved_path(newest["digest"])),
                   "digest": newest["digest"], "origin": "ledger"}  # no "parts": the entry is what it was
    assert not (src.state.dir / "references").exists()


def test_a_small_newest_set_is_joined_with_older_ones_into_exactly_the_rows_needed(src: Source,
                                                                                  tmp_path: Path) -> None:
    oldest = src.approve(frame(400, 1).assign(row_id=np.arange(400)))
    older = src.approve(frame(60, 2).assign(row_id=np.arange(60) + 1000))
    newest = src.approve(frame(30, 3).assign(row_id=np.arange(30) + 2000))
    ref = src.resolve(tmp_path)
    assert ref is not None and ref["origin"] == "ledger" and ref["uri"] is None  # no file is kept anywhere
    # newest first until 100 rows: 30 + 60, then a seeded sample of the 10 rows still missing from the oldest;
    # recorded in file order, oldest first
    assert ref["parts"] == [{"index": oldest["index"], "digest": oldest["digest"], "rows": 10},
                            {"index": older["index"], "digest": older["digest"], "rows": 60},
                            {"index": newest["index"], "digest": newest["digest"], "rows": 30}]
    got = pq.read_table(ref["path"]).to_pandas()
    assert len(got) == 100 and list(got.columns) == ["x", "n", "cat", "label", "row_id"]
    want = pd.concat([pd.read_parquet(p["path"]) for p in (older, newest)], ignore_index=True)
    pd.testing.assert_frame_equal(got.iloc[10:].reset_index(drop=True), want)
    sample = got.iloc[:10]
    assert sample["row_id"].is_monotonic_increasing and set(sample["row_id"]) <= set(range(400))
    pd.testing.assert_frame_equal(sample.reset_index(drop=True),
                                  pd.read_parquet(oldest["path"]).iloc[sample["row_id"]].reset_index(drop=True))
    assert ref["digest"] == file_digest(Path(ref["path"])) and Path(ref["path"]).is_relative_to(tmp_path)
    assert Path(ref["profile"]).parent == Path(ref["path"]).parent / "profiles"  # the drift profile: work dir
    again = src.resolve(tmp_path)
    assert again is not None and again["path"] != ref["path"]
    assert dict(again, path=None, profile=None) == dict(ref, path=None, profile=None)  # the same bytes again


def test_the_state_directory_does_not_grow_with_joined_references(src: Source, tmp_path: Path) -> None:
    """Review 2 finding 3: each small approved batch kept a new reference of up to 200,000 rows (15 MB)."""
    src.approve(frame(5000, 1))
    before = sorted(p.relative_to(src.state.root) for p in src.state.root.rglob("*"))
    for seed in range(2, 5):
        src.approve(frame(30, seed), keep=False)  # (its approved copy is not what is measured here)
        ref = src.resolve(tmp_path)
        assert ref is not None and pq.read_metadata(ref["path"]).num_rows == 100  # the need, not 200,000
    assert sorted(p.relative_to(src.state.root) for p in src.state.root.rglob("*")) == before
    assert not (src.state.dir / "references").exists() and not (src.state.root / "profiles").exists()


def test_sets_already_taken_and_the_batch_itself_are_not_counted_twice(src: Source, tmp_path: Path) -> None:
    base = frame(400, 1)
    first = src.approve(base)
    src.approve(base, source_digest=first["source_digest"])  # a re-run: the same approved data again
    this = src.approve(frame(200, 9))  # an older approval of the very batch now being ingested
    newest = src.approve(frame(50, 3))
    ref = src.resolve(tmp_path, digest=this["source_digest"])
    assert ref is not None
    assert [(p["index"], p["rows"]) for p in ref["parts"]] == [(1, 50), (newest["index"], 50)]  # 1 stands for 0
    assert pq.read_metadata(ref["path"]).num_rows == 100


def test_the_last_set_joined_gives_a_seeded_sample_spread_over_it(src: Source, tmp_path: Path) -> None:
    big = src.approve(frame(5000, 1).assign(row_id=np.arange(5000)))
    newest = src.approve(frame(30, 2).assign(row_id=np.arange(30) + 10_000))
    ref = src.resolve(tmp_path)
    assert ref is not None
    assert [(p["index"], p["rows"]) for p in ref["parts"]] == [(big["index"], 70), (newest["index"], 30)]
    got = pd.read_parquet(ref["path"])
    assert len(got) == 100 and got["row_id"].iloc[70:].tolist() == list(range(10_000, 10_030))
    sample = got["row_id"].iloc[:70]
    assert sample.is_monotonic_increasing and sample.max() > 2500  # spread over the file, not its head
    assert src.resolve(tmp_path)["digest"] == ref["digest"]  # type: ignore[index]


def test_the_walk_stops_at_a_set_whose_columns_differ_and_names_them(src: Source, tmp_path: Path) -> None:
    src.approve(frame(500, 1))
    other = src.approve(frame(50, 2).rename(columns={"cat": "kind"}))  # the contract changed here
    newest = src.approve(frame(30, 3))
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    err = info.value
    assert err.code == "scoring:small_reference" and err.exit_code == 2
    assert f"has 30 approved rows to use as its reference (ledger entry {newest['index']})" in err.message
    assert (f"the approved data of ledger entry {other['index']} before them does not match (it has no column "
            "'cat' and an extra column 'kind')") in err.message
    assert "pass --reference with a larger trusted file (at least 100 rows)" in err.message


def test_columns_in_another_order_are_matched_by_name(src: Source, tmp_path: Path) -> None:
    """Review 2 finding 2: the same columns in another order stopped the walk."""
    old = frame(300, 1)
    src.approve(old[list(reversed(old.columns))])
    newest = src.approve(frame(40, 2))
    ref = src.resolve(tmp_path)
    assert ref is not None and [p["rows"] for p in ref["parts"]] == [60, 40]
    got = pd.read_parquet(ref["path"])
    assert list(got.columns) == ["x", "n", "cat", "label"]  # the newest set's order
    assert set(got["x"].iloc[:60]) <= set(old["x"]) and set(got["cat"]) <= {"a", "b", "c"}
    pd.testing.assert_frame_equal(got.iloc[60:].reset_index(drop=True), pd.read_parquet(newest["path"]))


def test_a_different_set_of_columns_names_every_missing_and_extra_column(src: Source, tmp_path: Path) -> None:
    wide = {f"feature_{i:02d}": np.arange(300.0) for i in range(20)}
    src.approve(frame(300, 1).assign(**wide))  # 20 more columns, the last of which the newest set no longer has
    src.approve(frame(40, 2).assign(**{n: np.arange(40.0) for n in list(wide)[:-1]}, added=1.0))
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    assert "(it has no column 'added' and an extra column 'feature_19');" in info.value.message
    src.approve(frame(40, 3).drop(columns=["n"]))  # against the 24 columns before: every one named, none cut off
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    extra = ", ".join(repr(n) for n in ["n", *list(wide)[:-1], "added"])
    assert f"does not match (it has extra columns {extra});" in info.value.message


def test_an_all_null_column_takes_the_type_of_the_other_sets_in_either_direction(src: Source,
                                                                                  tmp_path: Path) -> None:
    """Review 2 finding 1: a small approved batch with an all-empty column (pyarrow type null) stopped the walk."""
    def nulls(df: pd.DataFrame, name: str) -> pa.Table:
        table = pa.Table.from_pandas(df, preserve_index=False)
        return table.set_column(table.schema.get_field_index(name), name, pa.nulls(len(df)))

    typed = frame(60, 1)
    src.approve(typed)  # x is double here
    src.approve(nulls(frame(20, 2), "x"))  # x all-null (type null) in an older set than the newest
    newest = src.approve(nulls(frame(30, 3), "x"))  # and in the newest set
    assert pq.read_schema(newest["path"]).field("x").type == pa.null()
    ref = src.resolve(tmp_path)
    assert ref is not None and [p["rows"] for p in ref["parts"]] == [50, 20, 30]
    got = pq.read_table(ref["path"])
    assert got.schema.field("x").type == pa.float64()  # the type of the newest set where x is not null
    x = got.column("x").to_pylist()
    assert set(x[:50]) <= set(typed["x"]) and None not in x[:50] and x[50:] == [None] * 50
    # the other direction: a typed newest set, an all-null older one (joined as before)
    src.approve(nulls(frame(80, 4), "n"))
    src.approve(frame(30, 5))
    ref = src.resolve(tmp_path)
    assert ref is not None and [p["rows"] for p in ref["parts"]] == [70, 30]
    got = pq.read_table(ref["path"])
    assert got.schema.field("n").type == pa.int64() and got.column("n").null_count == 70
    # a column null in every set joined stays null; a type that does not join still stops the walk
    src.approve(nulls(frame(200, 6), "x").set_column(1, "n", pa.array([str(i) for i in range(200)])))
    src.approve(nulls(frame(30, 7), "x"))
    with pytest.raises(PipelineInputError, match=r"its column 'n' is (large_)?string, not int64"):
        src.resolve(tmp_path)


def test_numbers_widen_across_sets_and_other_types_stop_the_walk(src: Source, tmp_path: Path) -> None:
    src.approve(frame(200, 1).assign(x=np.arange(200, dtype="int64")))  # integers where the newest has floats
    src.approve(frame(40, 2))
    ref = src.resolve(tmp_path)
    assert ref is not None and pq.read_schema(ref["path"]).field("x").type == pa.float64()
    assert set(pd.read_parquet(ref["path"])["x"].iloc[:60]) <= {float(i) for i in range(200)}
    older = pa.Table.from_pandas(frame(200, 6), preserve_index=False)
    src.approve(older.set_column(2, "cat", older.column("cat").cast(pa.large_string())))  # another text type
    newest = src.approve(frame(40, 7))
    ref = src.resolve(tmp_path)
    assert ref is not None and [p["index"] for p in ref["parts"]] == [newest["index"] - 1, newest["index"]]
    assert pq.read_schema(ref["path"]).field("cat").type == pq.read_schema(newest["path"]).field("cat").type

    src.approve(frame(300, 4).assign(n=[str(i) for i in range(300)]))  # text where the newest has integers
    src.approve(frame(40, 5))
    with pytest.raises(PipelineInputError, match=r"its column 'n' is (large_)?string, not int64"):
        src.resolve(tmp_path)


def test_not_enough_approved_data_says_what_to_do(src: Source, tmp_path: Path) -> None:
    src.approve(frame(20, 1))
    src.approve(frame(0, 2))  # an approved set with no rows adds nothing
    src.approve(frame(40, 3))
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    assert info.value.code == "scoring:small_reference"
    assert "has 60 approved rows to use as its reference (ledger entries 0, 2) and there is no older approved " \
           "data; at least 100 are needed" in info.value.message


def test_an_empty_newest_set_adds_no_part_and_the_walk_is_bounded(src: Source, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    big = src.approve(frame(300, 1))
    src.approve(frame(0, 2))  # approved with no clean row (a policy that allows it)
    ref = src.resolve(tmp_path)
    assert ref is not None and ref["parts"] == [{"index": big["index"], "digest": big["digest"], "rows": 100}]
    monkeypatch.setattr(_reference, "REFERENCE_MAX_ENTRIES", 2)
    for seed in range(3, 7):
        src.approve(frame(20, seed))
    with pytest.raises(PipelineInputError, match="has 60 approved rows .* the 2 approved entries before them hold "
                                                 "no more; at least 100"):
        src.resolve(tmp_path)


def test_a_missing_older_set_fails_closed(src: Source, tmp_path: Path) -> None:
    gone = src.approve(frame(300, 1), keep=False)
    gone["path"].unlink()
    src.approve(frame(40, 2))
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    assert info.value.code == "reference:unavailable" and gone["digest"] in info.value.message


def test_a_part_swapped_in_the_state_directory_while_the_walk_reads_it_is_never_used(
        src: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Review 2 finding 4: a part replaced in approved/ after its digest check and before it was read was joined,
    while the entry recorded the digest of the original bytes. Whenever the walk opens the older part (the state
    file or a copy of it), the state file is swapped first: only the bytes that were hashed may be used."""
    older = src.approve(frame(70, 1))
    newest = src.approve(frame(30, 2))
    kept = src.state.approved_path(older["digest"])
    older["path"].unlink()  # only the state directory's copy: nothing to fall back to
    evil = frame(70, 1).assign(x=99999.0)
    real = pq.ParquetFile
    swapped: list[str] = []

    def swapping(source: Any, *args: Any, **kwargs: Any) -> Any:
        if not swapped and Path(str(source)).name == kept.name:
            pq.write_table(pa.Table.from_pandas(evil, preserve_index=False), f"{kept}.evil")
            Path(f"{kept}.evil").replace(kept)
            swapped.append(str(source))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pq, "ParquetFile", swapping)
    ref = src.resolve(tmp_path)
    assert swapped and file_digest(kept) != older["digest"]  # the swap did happen, after the digest check
    assert ref is not None and [p["digest"] for p in ref["parts"]] == [older["digest"], newest["digest"]]
    got = pq.read_table(ref["path"]).to_pandas()
    assert 99999.0 not in set(got["x"])
    want = pd.concat([frame(70, 1), pd.read_parquet(newest["path"])], ignore_index=True)
    pd.testing.assert_frame_equal(got, want)  # exactly the rows of the digests recorded
    # the next run finds the state file's bytes changed: refused, never joined, and the message says so
    with pytest.raises(PipelineInputError) as info:
        src.resolve(tmp_path)
    assert info.value.code == "reference:unavailable" and older["digest"] in info.value.message
    assert f"({kept} holds other bytes); pass --reference" in info.value.message


def test_a_rerun_rebuilds_the_joined_reference_from_its_parts(src: Source, tmp_path: Path) -> None:
    src.approve(frame(400, 1))
    src.approve(frame(30, 2))
    ref = src.resolve(tmp_path)
    assert ref is not None
    recorded = {k: ref[k] for k in ("uri", "digest", "origin", "parts")}
    again = src.approve(frame(150, 3), reference=recorded)  # the batch approved against the joined reference
    rerun = src.resolve(tmp_path, digest=again["source_digest"])
    assert rerun is not None and {k: rerun[k] for k in recorded} == recorded
    assert file_digest(Path(rerun["path"])) == ref["digest"] and Path(rerun["path"]).is_relative_to(tmp_path)
    src.state.approved_path(recorded["parts"][0]["digest"]).unlink()  # the out dir's copy (its URI) is left
    rebuilt = src.resolve(tmp_path, digest=again["source_digest"])
    assert rebuilt is not None and rebuilt["digest"] == ref["digest"]
    Path(src.root / "out-1" / "clean.parquet").unlink()
    with pytest.raises(PipelineInputError, match="its approved parts do not rebuild it; pass --reference") as info:
        src.resolve(tmp_path, digest=again["source_digest"])
    assert info.value.code == "reference:unavailable"


# --- the real flow -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_then_next(tmp_path_factory: pytest.TempPathFactory, data_samples: Path,
                    prefect_harness: None) -> dict[str, Any]:
    """The review's reproduction: the reference, then an 80-row batch (approved), then the next batch."""
    from pipelines.flows import ingest

    root = tmp_path_factory.mktemp("f3")
    url = f"sqlite:///{root / 'ledger' / 'ledger.db'}"
    credit = data_samples / "credit"
    small = root / "b80.csv"
    pd.read_csv(credit / "batch_clean.csv").head(80).to_csv(small, index=False)
    runs = {}
    for name, path in (("ref", credit / "reference.csv"), ("small", small), ("next", credit / "batch_clean.csv"),
                       ("again", credit / "batch_clean.csv")):
        runs[name] = ingest(str(path), source="credit", label_column="class", ledger_url=url,
                            out_dir=str(root / name))
    return {"root": root, "url": url, **runs}


@pytest.mark.usefixtures("prefect_harness")
def test_flow_a_small_approved_batch_no_longer_stops_the_source(small_then_next: dict[str, Any]) -> None:
    ref, small, nxt = small_then_next["ref"], small_then_next["small"], small_then_next["next"]
    assert ref["exit_code"] == small["exit_code"] == 0 and 0 < small["counts"]["clean"] < 100
    # the small batch itself was judged against the big approved set alone, exactly as before
    assert small["reference"] == {"uri": str(small_then_next["root"] / "ref" / "clean.parquet"),
                                  "digest": ref["outputs"]["clean.parquet"], "origin": "ledger"}
    assert nxt["exit_code"] == 0 and nxt["verdict"] == "approved", nxt.get("message")
    parts = [{"index": next(e["index"] for e in run["ledger"] if e["verdict"] == "approved"),
              "digest": run["outputs"]["clean.parquet"], "rows": run["counts"]["clean"]} for run in (ref, small)]
    assert nxt["reference"]["parts"][-1] == parts[1] and nxt["reference"]["origin"] == "ledger"
    assert nxt["reference"]["parts"][0] == dict(parts[0], rows=100 - parts[1]["rows"])  # exactly the 100 needed
    assert nxt["reference"]["uri"] is None  # the joined file is not kept: the parts rebuild it
    state = SourceState(state_dir_for(small_then_next["url"], None), "credit")
    assert not (state.dir / "references").exists()
    assert not state.profile_path(nxt["reference"]["digest"]).exists()  # its drift profile is not kept either
    assert state.profile_path(ref["outputs"]["clean.parquet"]).is_file()  # (a single set's still is)
    parts = nxt["reference"]["parts"]
    summary = json.loads((small_then_next["root"] / "next" / "summary.json").read_text(encoding="utf-8"))
    assert summary["reference"] == nxt["reference"]
    assert nxt["reference"]["digest"] in (small_then_next["root"] / "next" / "report.html").read_text()
    with open_ledger(small_then_next["url"]) as ledger:
        pred = ledger.record(nxt["ledger"][0]["index"]).statement["predicate"]
        small_pred = ledger.record(small["ledger"][0]["index"]).statement["predicate"]
        ledger.verify()
    assert pred["reference"] == nxt["reference"] and pred["reference_digest"] == nxt["reference"]["digest"]
    assert pred["parents"] == [nxt["reference"]["digest"], *(p["digest"] for p in parts)]
    assert "parts" not in small_pred["reference"] and small_pred["parents"] == [ref["outputs"]["clean.parquet"]]


@pytest.mark.usefixtures("prefect_harness")
def test_flow_rerun_of_a_batch_judged_against_a_union_is_idempotent(small_then_next: dict[str, Any]) -> None:
    nxt, again = small_then_next["next"], small_then_next["again"]
    assert again["exit_code"] == 0 and again["reference"] == nxt["reference"]
    first, second = small_then_next["root"] / "next", small_then_next["root"] / "again"
    for name in ("clean.parquet", "scores.parquet", "summary.json", "report.html"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


@pytest.mark.usefixtures("prefect_harness")
def test_flow_too_little_approved_data_is_one_line_exit_2_and_recorded(
        tmp_path: Path, data_samples: Path, ledger_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pipelines.cli.main import main
    from pipelines.flows import ingest

    credit = data_samples / "credit"
    small = tmp_path / "b80.csv"
    pd.read_csv(credit / "batch_clean.csv").head(80).to_csv(small, index=False)
    first = ingest(str(small), source="thin", label_column="class", reference=str(credit / "reference.csv"),
                   ledger_url=ledger_url, out_dir=str(tmp_path / "small"))
    assert first["exit_code"] == 0 and first["counts"]["clean"] < 100  # the source's only approved data
    capsys.readouterr()
    code = main(["ingest", str(credit / "batch_clean.csv"), "--source", "thin", "--label-column", "class",
                 "--ledger", ledger_url, "--out", str(tmp_path / "next")])
    err = capsys.readouterr().err
    assert code == 2
    line = [ln for ln in err.splitlines() if ln.startswith("trainguard: error:")]
    assert len(line) == 1 and "Traceback" not in err
    assert (f"source 'thin' has {first['counts']['clean']} approved rows to use as its reference (ledger entry "
            f"{first['ledger'][0]['index']}) and there is no older approved data; at least 100 are needed") in line[0]
    assert line[0].endswith("pass --reference with a larger trusted file (at least 100 rows) "
                            "[scoring:small_reference]")
    with open_ledger(ledger_url) as ledger:
        (_, newest), *_ = ledger.log(source="thin")
    assert newest["predicate"]["verdict"] == "error" and newest["predicate"]["reasons"] == ["scoring:small_reference"]
    summary = json.loads((tmp_path / "next" / "summary.json").read_text(encoding="utf-8"))
    assert summary["error"]["code"] == "scoring:small_reference" and summary["error"]["exit_code"] == 2
    assert not (tmp_path / "next" / "clean.parquet").exists()
