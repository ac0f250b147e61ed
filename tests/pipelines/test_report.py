"""pipelines.report: one self-contained page with verdict, tables, SVG histograms and suspicious rows."""

from __future__ import annotations

import re
from html.parser import HTMLParser

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


# Issue #16: the page is rendered from Jinja2 templates with autoescape; data never becomes markup.
_SCRIPT = "<script>alert(1)</script>"
_ATTR = "\"'><img src=x onerror=alert(1)>"
_TAGS = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "span", "table", "thead", "tbody", "tr",
         "th", "td", "code", "ul", "li", "div", "svg", "text", "rect", "line"}  # every tag the templates write


class _Page(HTMLParser):
    """The tags, attributes and text of a page, as a browser's tokenizer reads them."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs += attrs

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _assert_only_escaped(html: str, *hostile: str) -> _Page:
    assert "<script" not in html.lower() and "<img" not in html.lower()
    for text in hostile:
        assert text not in html
    page = _Page(html)
    assert page.tags <= _TAGS, page.tags - _TAGS
    assert not [name for name, _ in page.attrs if name.startswith("on") or name == "src"]  # text inside values only
    return page


def _hostile_summary(h1: str = _SCRIPT, h2: str = _ATTR) -> dict:
    summary = _summary()
    summary.update(
        source={"name": h1 + h2, "uri": h2, "digest": h1, "format": h2}, verdict=h2, warnings=[h1, h2],
        reasons=[h1, h2], checks={h1: {"passed": False, h2: h1}}, failures={"total": h1, "by_check": [{h1: h2}]},
        drift=[{"column": h1, "test": h2, "drifted": True}], error={"code": h1, "message": h2},
        reference={"digest": h1}, contract={"digest": h2}, config_digest=h1, code_version=h2,
        threshold={"mode": h1, "cut": 0.5, "fp_budget": 0.01},
        labels={"column": h2, "suggested": 1, "confusion": [{"given": h1, "suggested": h2, "rows": 1, "flagged": 1}],
                "relabelled": {"rows": 1, "changes": [{"from": h2, "to": h1, "rows": 1}]}})
    return summary


def test_hostile_data_appears_only_escaped() -> None:
    scores = _scores()
    scores["reasons"] = [[_SCRIPT], [_ATTR], [_SCRIPT, _ATTR], [], []]
    scores["score_" + _ATTR] = 0.5  # a column name becomes a histogram's title (text and aria-label)
    q = pd.DataFrame({_SCRIPT: [_ATTR, "x"], _ATTR: [_SCRIPT, "y"], "row": [2, 3], "score": [0.95, 0.9],
                      "reasons": [[_SCRIPT], [_ATTR]]})
    html = render_report_html(_hostile_summary(), scores, q)
    page = _assert_only_escaped(html, _SCRIPT, _ATTR)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&#39;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    shown = "".join(page.text)  # still shown, as text: in the facts, reasons, tables, values, labels, histograms
    assert shown.count(_SCRIPT) >= 15 and shown.count(_ATTR) >= 15
    assert f"{_SCRIPT}={_ATTR}" in shown  # a quarantined row's values
    assert ("aria-label", f"score_{_ATTR} histogram") in page.attrs


def test_hostile_output_dir_rerenders_escaped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    import pyarrow.parquet as pq

    from pipelines.outputs import _scores_table
    from pipelines.report import render_report

    scores = _scores()
    scores["reasons"] = [[_SCRIPT], [_ATTR], [], [], []]
    (tmp_path / "summary.json").write_text(json.dumps(_hostile_summary()), encoding="utf-8")
    pq.write_table(_scores_table(scores), tmp_path / "scores.parquet")
    pd.DataFrame({_ATTR: [_SCRIPT], "row": [2], "score": [0.95], "reasons": [[_SCRIPT]]}).to_parquet(
        tmp_path / "quarantine.parquet")
    html = render_report(tmp_path).read_text(encoding="utf-8")
    _assert_only_escaped(html, _SCRIPT, _ATTR)
    assert f"{_ATTR}={_SCRIPT}".replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
        '"', "&#34;").replace("'", "&#39;") in html


_MARKUPISH = st.text(max_size=30) | st.text(st.sampled_from(list("<>\"'&=/ abimg")), max_size=30)


@given(_MARKUPISH, _MARKUPISH)
def test_any_text_is_shown_as_text_never_as_markup(a: str, b: str) -> None:
    html = render_report_html(_hostile_summary(a, b), _scores(), pd.DataFrame())
    page = _assert_only_escaped(html)
    shown = "".join(page.text)
    assert shown.count("warning: ") == 2  # each warning is its own paragraph, whatever it says


def test_histograms_are_markup_only_when_svg_histogram_made_them() -> None:
    svg = svg_histogram([0.5], [True], title=_ATTR)
    _assert_only_escaped(svg, _ATTR)
    html = render_report_html(_summary(), _scores(), pd.DataFrame(), histograms=[svg, "<svg onload=alert(1)>"])
    assert svg in html and "&lt;svg onload=alert(1)&gt;" in html  # a plain string is escaped like any other value
    _assert_only_escaped(html)


def test_templates_ship_as_package_data() -> None:
    """The package-data patterns in pyproject.toml match every template (issue #16: they matched nothing)."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    patterns = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["pipelines"]
    templates = sorted((root / "pipelines" / "templates").iterdir())
    assert {t.name for t in templates} >= {"report.html.j2", "macros.html.j2"}
    shipped = {p for pattern in patterns for p in (root / "pipelines").glob(pattern)}
    assert [t for t in templates if t not in shipped] == []
