"""pipelines.report: one self-contained page with verdict, tables, SVG histograms and suspicious rows."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from pipelines.report import render_report_html, svg_histogram


def _summary(verdict: str = "approved") -> dict:
    return {
        "source": {"name": "credit", "uri": "data/<b>x</b>.csv", "digest": "sha256:" + "a" * 64},
        "verdict": verdict, "reasons": ["quarantined 2 of 5 rows"],
        "counts": {"rows": 5, "flagged": 2, "quarantined": 2, "clean": 3},
        "checks": {"quarantine": {"passed": True, "share": 0.4}},
        "failures": {"total": 1, "by_check": [{"check": "expect_column_values_to_not_be_null", "column": "age",
                                               "rows": 1, "example_rows": "3", "reason": "expect:not_null:age"}]},
        "drift": [{"column": "age", "test": "ks", "statistic": 0.2, "threshold": 0.1, "drifted": True}],
    }


def _scores() -> pd.DataFrame:
    return pd.DataFrame({"row": np.arange(5), "score": [0.1, 0.2, 0.95, 0.9, 0.3],
                         "flagged": [False, False, True, True, False],
                         "reasons": [[], [], ["label:inconsistent"], ["expect:not_null:age"], []],
                         "score_iforest": [0.1, 0.2, 0.5, 0.4, 0.3]})


def test_report_is_self_contained_and_complete() -> None:
    q = pd.DataFrame({"age": [44.0, None], "row": [2, 3], "score": [0.95, 0.9],
                      "reasons": [["label:inconsistent"], ["expect:not_null:age"]]})
    html = render_report_html(_summary(), _scores(), q)
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=\"?https?:", html)
    assert "APPROVED" in html
    assert html.count("<svg") == 2  # score + score_iforest
    assert "expect:not_null:age" in html and "label:inconsistent" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html  # escaped
    assert "age=44.0" in html


def test_rejected_and_error_reports() -> None:
    html = render_report_html(dict(_summary("rejected"), error={"code": "data:encoding", "message": "not UTF-8"}),
                              pd.DataFrame(), pd.DataFrame())
    assert "REJECTED" in html and "data:encoding" in html and "no rows were scored" in html


@given(values=st.lists(st.floats(0, 1), min_size=1, max_size=300), data=st.data())
def test_histogram_counts_every_row(values: list[float], data: st.DataObject) -> None:
    flags = data.draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    svg = svg_histogram(values, flags, title="score")
    counts = [int(m) for m in re.findall(r": (\d+) (?:rows|flagged)</title>", svg)]
    assert sum(counts) == len(values)
    assert svg.startswith("<svg") and svg.endswith("</svg>")


def test_render_report_from_an_output_dir(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pyarrow.parquet as pq

    from pipelines.outputs import _scores_table
    from pipelines.report import render_report

    (tmp_path / "summary.json").write_text(json.dumps(_summary()), encoding="utf-8")
    pq.write_table(_scores_table(_scores()), tmp_path / "scores.parquet")
    html = render_report(tmp_path).read_text(encoding="utf-8")
    top = html[html.index("Most suspicious rows"):]
    assert "label:inconsistent" in top and "expect:not_null:age" in top  # reasons of the top rows, read lazily
    assert top.index("label:inconsistent") < top.index("expect:not_null:age")  # highest score first


def test_approved_badge_says_rows_were_quarantined_and_drifted_columns_come_first() -> None:
    summary = _summary()
    summary["drift"] = [
        {"column": "age", "test": "ks", "statistic": 0.01, "threshold": 0.1, "drifted": False},
        {"column": "job", "test": "js", "statistic": 0.3, "threshold": 0.1, "drifted": True},
    ]
    html = render_report_html(summary, _scores(), pd.DataFrame())
    assert "with 2 of 5 rows quarantined" in html
    assert "(1 of 2 tests drifted)" in html
    drift_section = html[html.index("Drift against the reference"):html.index("Score histograms")]
    assert drift_section.index("<td>job</td>") < drift_section.index("<td>age</td>")
    summary["counts"] = {"rows": 5, "flagged": 0, "quarantined": 0, "clean": 5}
    assert "rows quarantined" not in render_report_html(summary, _scores(), pd.DataFrame())


@given(st.lists(st.tuples(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0]), st.booleans()), min_size=1, max_size=60))
def test_report_read_column_by_column_equals_the_page_of_the_whole_table(rows: list[tuple[float, bool]]) -> None:
    """render_report streams scores.parquet a column at a time; the page is the one the whole table gives
    (ties in score ordered by row number)."""
    import json
    import tempfile
    from pathlib import Path

    import pyarrow.parquet as pq

    from pipelines.outputs import _scores_table
    from pipelines.report import render_report

    n = len(rows)
    scores = pd.DataFrame({"row": np.arange(n), "score": [s for s, _ in rows], "flagged": [f for _, f in rows],
                           "reasons": [[f"r{i}"] if f else [] for i, (_, f) in enumerate(rows)],
                           "score_knn": np.linspace(0.0, 1.0, n)})
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "summary.json").write_text(json.dumps(_summary()), encoding="utf-8")
        pq.write_table(_scores_table(scores), Path(d) / "scores.parquet")
        streamed = render_report(d).read_text(encoding="utf-8")
    assert streamed == render_report_html(_summary(), scores, pd.DataFrame())


def test_report_of_a_damaged_output_dir_is_bad_input_naming_the_file(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Found by review: a corrupt summary.json made ``trainguard report`` an internal error (exit 70)."""
    import json

    from pipelines.cli.main import main

    (tmp_path / "summary.json").write_text("{not json", encoding="utf-8")
    assert main(["report", str(tmp_path), "--json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["code"] == "data:bad_output_dir" and "summary.json" in doc["message"]
    (tmp_path / "summary.json").write_text(json.dumps(_summary()), encoding="utf-8")
    (tmp_path / "scores.parquet").write_bytes(b"PAR1 truncated")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "scores.parquet" in err and "Traceback" not in err
    (tmp_path / "summary.json").write_text("[1, 2]", encoding="utf-8")
    assert main(["report", str(tmp_path)]) == 2
    assert not (tmp_path / "report.html").exists()
