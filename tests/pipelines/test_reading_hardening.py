"""pipelines.reading against hostile or odd input: credentials in URLs, FIFOs and devices, unknown URL schemes,
protocol 0/1 pickles (and CSVs that only look like them), binary Parquet columns, ``..`` in URL roots, JSON
lines mixing numbers and text, percent-encoded file URLs and control characters in names."""

from __future__ import annotations

import collections
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import tasks
from pipelines._uris import redact_uri, scrub, shown
from pipelines.errors import PipelineInputError
from pipelines.reading import (
    check_allowed,
    local_path,
    parquet_partitions_fit,
    read_to_parquet,
    sniff_format,
    stage_remote,
)

_SECRET = "s3cr3tPW"


# --- credentials in URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("uri", "redacted"), [
    ("file://svc:s3cr3tPW@localhost/tmp/x.csv", "file://***@localhost/tmp/x.csv"),
    ("http://user:s3cr3tPW@host:8000/x.csv?a=b", "http://***@host:8000/x.csv?a=b"),
    ("s3://AKIAEXAMPLE:s3cr3tPW@bucket/x.csv", "s3://***@bucket/x.csv"),
    ("https://token@host/x.csv", "https://***@host/x.csv"),
    ("s3://bucket/user@example.com/x.csv", "s3://bucket/user@example.com/x.csv"),  # "@" in the path only
    ("/data/me@home/x.csv", "/data/me@home/x.csv"),
    ("memory://bucket/x.csv", "memory://bucket/x.csv"),
])
def test_credentials_in_a_url_are_redacted(uri: str, redacted: str) -> None:
    assert redact_uri(uri) == redacted
    assert redact_uri(redacted) == redacted
    assert scrub(f"cannot open {uri}", uri) == f"cannot open {redacted}"
    if _SECRET in uri:  # an error message quoting the password alone loses it too
        assert _SECRET not in scrub(f"password {_SECRET} refused", uri)


def test_messages_never_show_a_urls_credentials(tmp_path: Path) -> None:
    with pytest.raises(PipelineInputError) as info:
        check_allowed(f"s3://KEY:{_SECRET}@bucket/other/x.csv", ("s3://bucket/landing",))
    assert info.value.code == "data:outside_allowed_roots" and _SECRET not in info.value.message
    check_allowed(f"s3://KEY:{_SECRET}@bucket/landing/x.csv", ("s3://bucket/landing",))  # credentials aside: inside
    uri = f"file://svc:{_SECRET}@localhost{tmp_path / 'missing.csv'}"
    with pytest.raises(PipelineInputError) as info:
        tasks.stage_input.fn(uri, str(tmp_path / "work"), (), str(tmp_path))
    assert info.value.code == "data:missing_file" and _SECRET not in info.value.message


# --- only regular files ----------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_fifo_is_refused_without_opening_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    with pytest.raises(PipelineInputError) as info:
        tasks.stage_input.fn(str(fifo), str(tmp_path / "work"), (), str(tmp_path))
    assert info.value.code == "data:not_a_file" and "FIFO" in info.value.message
    with pytest.raises(PipelineInputError) as info:
        sniff_format(fifo)
    assert info.value.code == "data:not_a_file"


@pytest.mark.timeout(60)
@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_character_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    for uri in ("/dev/zero", "file:///dev/zero", "local:///dev/zero"):
        with pytest.raises(PipelineInputError) as info:
            tasks.stage_input.fn(uri, str(tmp_path / "work"), (), str(tmp_path))
        assert info.value.code == "data:not_a_file" and "character device" in info.value.message, uri


# --- URL schemes fsspec cannot read ---------------------------------------------------------------------------


def test_an_unknown_url_scheme_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(PipelineInputError) as info:
        stage_remote("foo://x/y.csv", tmp_path)
    assert info.value.code == "data:unsupported_url" and "'foo'" in info.value.message


def test_a_url_whose_fsspec_backend_is_missing_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fsspec.registry import known_implementations

    monkeypatch.setitem(known_implementations, "tgmissing",
                        {"class": "tg_missing_backend.FS", "err": "Install tg-missing-backend to access tgmissing"})
    with pytest.raises(PipelineInputError) as info:
        stage_remote(f"tgmissing://user:{_SECRET}@bucket/x.csv", tmp_path)
    assert info.value.code == "data:unsupported_url"
    assert "Install tg-missing-backend" in info.value.message and _SECRET not in info.value.message
    assert not list(tmp_path.rglob("*.part"))


def test_a_missing_package_is_not_retried() -> None:
    class _State:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def result(self) -> Any:
            raise self.exc

    assert tasks._retry_unless_ours(None, None, _State(ImportError("Install s3fs to access S3"))) is False
    assert tasks._retry_unless_ours(None, None, _State(PipelineInputError("data:unsupported_url", "x"))) is False
    assert tasks._retry_unless_ours(None, None, _State(ConnectionResetError("flaky"))) is True


# --- pickles of protocol 0 and 1 ------------------------------------------------------------------------------


_BIG = collections.OrderedDict((f"key{i}", i) for i in range(2000))


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'echo pwned'\ntR.",
    b"cposix\nsystem\n(S'echo pwned'\ntR.",
    b"csubprocess\ncheck_output\n((S'id'\nltR.",
    b"(S'echo pwned'\nios\nsystem\n.",                    # INST instead of GLOBAL
    pickle.dumps(collections.OrderedDict(a=1), protocol=0),
    pickle.dumps(collections.OrderedDict(a=1), protocol=1),
    pickle.dumps(_BIG, protocol=0),                       # larger than the sniffed prefix
    pickle.dumps(_BIG, protocol=1),
], ids=["os", "posix", "subprocess", "inst", "p0", "p1", "p0-big", "p1-big"])
def test_protocol_0_and_1_pickles_that_import_are_refused(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(payload)
    with pytest.raises(PipelineInputError) as info:
        sniff_format(path)
    assert info.value.code == "data:executable_format" and "pickle" in info.value.message


@pytest.mark.parametrize("text", [
    "color,size\nred,3\nblue,4\n",
    "c\n1\n2\n3\n",
    "cat\ndog\n1\n2\n",
    "cat\ndog\n",
    "cname\n" + "".join(f"alice{i}\n" for i in range(2000)),  # one column, larger than the sniffed prefix
    "code,value\n" + "".join(f"c{i},{i}\n" for i in range(2000)),
])
def test_csvs_whose_header_starts_with_c_are_data(tmp_path: Path, text: str) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text, encoding="utf-8")
    assert sniff_format(path) == "csv"
    rows, _ = read_to_parquet(path, tmp_path / "out.parquet", fmt="csv", uri=str(path), row_group_rows=1000)
    assert rows == text.count("\n") - 1


# --- binary Parquet columns -----------------------------------------------------------------------------------


@pytest.mark.parametrize("column", [
    pa.array([bytes([i % 256, 0xFF]) for i in range(50)], pa.binary(2)),
    pa.array([[bytes([0xFF])] for _ in range(50)], pa.list_(pa.binary())),
    pa.array([{"b": bytes([0xFF])} for _ in range(50)], pa.struct([("b", pa.binary(1))])),
], ids=["fixed_size_binary", "list_of_binary", "struct_of_fixed_size_binary"])
def test_binary_parquet_columns_are_refused(tmp_path: Path, column: pa.Array) -> None:
    path = tmp_path / "bin.parquet"
    pq.write_table(pa.table({"a": pa.array(range(50)), "fb": column}), path)
    for read in (lambda: parquet_partitions_fit(path, str(path), 1000),
                 lambda: read_to_parquet(path, tmp_path / "out.parquet", fmt="parquet", uri=str(path),
                                         row_group_rows=1000)):
        with pytest.raises(PipelineInputError) as info:
            read()
        assert info.value.code == "data:encoding" and "'fb'" in info.value.message


# --- allowed roots given as URLs ------------------------------------------------------------------------------


def test_url_roots_cannot_be_escaped_with_dot_dot(tmp_path: Path) -> None:
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "sub" / "a.csv").write_text("x\n1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "plain.csv").write_text("x\n1\n")
    root = f"local://{allowed}"
    check_allowed(f"local://{allowed}/sub/a.csv", (root,))
    for outside in (f"local://{allowed}/../data/plain.csv", f"local://{tmp_path}/allowed2/a.csv",
                    f"file://{allowed}/../data/plain.csv"):
        with pytest.raises(PipelineInputError) as info:
            check_allowed(outside, (root,))
        assert info.value.code == "data:outside_allowed_roots", outside
    mem = ("memory://bucket/landing",)
    check_allowed("memory://bucket/landing/sub/a.csv", mem)
    for outside in ("memory://bucket/landing/../other/a.csv", "memory://bucket/landing2/a.csv",
                    "memory://bucket/landing/%2e%2e/other/a.csv", "memory://bucket/landing/x?/../../other/a.csv",
                    "memory://other/landing/a.csv", "s3://bucket/landing/a.csv", "memory://bucket/landing"):
        with pytest.raises(PipelineInputError) as info:
            check_allowed(outside, mem)
        assert info.value.code == "data:outside_allowed_roots", outside


# --- file:// URLs are percent-decoded -------------------------------------------------------------------------


def test_a_file_url_is_percent_decoded(tmp_path: Path) -> None:
    path = tmp_path / "with space.csv"
    path.write_text("x\n1\n", encoding="utf-8")
    uri = f"file://{tmp_path}/with%20space.csv"
    assert local_path(uri) == path
    staged = tasks.stage_input.fn(uri, str(tmp_path / "work"), (str(tmp_path),), str(tmp_path))
    assert Path(staged["path"]) == path and staged["bytes"] == path.stat().st_size


# --- control characters in names ------------------------------------------------------------------------------


def test_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil\nname\r\t.csv"
    path.write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(PipelineInputError) as info:
        sniff_format(path)
    assert "\n" not in info.value.message and "\r" not in info.value.message and "\t" not in info.value.message
    assert "evil\\nname\\r\\t.csv" in info.value.message
    assert shown("a\u202eb\x00") == "a\\u202eb\\x00"
    with pytest.raises(PipelineInputError) as info:
        tasks.stage_input.fn(str(tmp_path / "gone\n.csv"), str(tmp_path / "work"), (), str(tmp_path))
    assert info.value.code == "data:missing_file" and "\n" not in info.value.message


# --- JSON lines whose column mixes numbers and text -----------------------------------------------------------

_LATE = 3000  # rows of numbers before the first text value; blocks here are 8 KiB, so this is a later block


def _mixed_lines(blank_every: int = 0) -> list[str]:
    lines = []
    for i in range(_LATE + 20):
        lines.append(json.dumps({"a": i, "m": i % 50 if i < _LATE else "txt"}))
        if blank_every and i % blank_every == 0:
            lines.append("")
    return lines


@pytest.mark.parametrize("block", [8 << 10, 64 << 20], ids=["streamed", "whole"])
def test_json_lines_mixing_numbers_and_text_name_the_files_row(tmp_path: Path, block: int) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(_mixed_lines()) + "\n", encoding="utf-8")
    with pytest.raises(PipelineInputError) as info:
        read_to_parquet(path, tmp_path / "out.parquet", fmt="json", uri=str(path), row_group_rows=1000,
                        block_bytes=block)
    message = info.value.message
    assert info.value.code == "data:unreadable" and "\n" not in message
    assert "column 'm' mixes numbers and text" in message
    assert f"row {_LATE}, line {_LATE + 1}" in message, message
    assert not (tmp_path / "out.parquet").exists()


def test_json_lines_rows_and_lines_are_counted_across_blocks_and_blank_lines(tmp_path: Path) -> None:
    lines = _mixed_lines(blank_every=100)
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    line = next(n for n, text in enumerate(lines, start=1) if '"txt"' in text)
    with pytest.raises(PipelineInputError) as info:
        read_to_parquet(path, tmp_path / "out.parquet", fmt="json", uri=str(path), row_group_rows=1000,
                        block_bytes=8 << 10)
    assert f"row {_LATE}, line {line}" in info.value.message, info.value.message


def test_a_bad_json_line_late_in_a_large_file_names_the_files_row(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i}) for i in range(_LATE)] + ["{not json"]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PipelineInputError) as info:
        read_to_parquet(path, tmp_path / "out.parquet", fmt="json", uri=str(path), row_group_rows=1000,
                        block_bytes=8 << 10)
    assert info.value.code == "data:unreadable"
    assert f"in row {_LATE} (line {_LATE + 1})" in info.value.message, info.value.message


def test_json_objects_that_gain_keys_in_a_later_block_are_read(tmp_path: Path) -> None:
    lines = [json.dumps({"a": i, "o": {"x": i} if i < _LATE else {"y": "s"}}) for i in range(_LATE + 10)]
    path = tmp_path / "keys.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    streamed, whole = tmp_path / "streamed.parquet", tmp_path / "whole.parquet"
    read_to_parquet(path, streamed, fmt="json", uri=str(path), row_group_rows=1000, block_bytes=8 << 10)
    read_to_parquet(path, whole, fmt="json", uri=str(path), row_group_rows=1000, block_bytes=64 << 20)
    assert pq.read_table(streamed).equals(pq.read_table(whole))


def test_a_pickle_padded_past_the_sniffed_bytes_is_still_refused(tmp_path: Path) -> None:
    """Found by a second review: 4 KB of harmless opcodes (that also read as a one-column CSV) hid the import."""
    payload = b"I0\n" + b"0I1\n" * 1200 + b"cbuiltins\nprint\n(S'pwned'\ntR."
    assert len(payload) > 4096
    path = tmp_path / "evil.csv"
    path.write_bytes(payload)
    with pytest.raises(PipelineInputError, match="imports builtins.print") as err:
        sniff_format(path)
    assert err.value.code == "data:executable_format"
    harmless = tmp_path / "ints.csv"  # the same padding with no import is data
    harmless.write_bytes(b"I0\n" + b"0I1\n" * 1200)
    assert sniff_format(harmless) == "csv"


def test_mz_is_an_executable_only_with_a_pe_header(tmp_path: Path) -> None:
    """A CSV whose header starts with "MZ" (mass-spectrometry m/z columns) was refused as a Windows executable."""
    text = tmp_path / "mz.csv"
    text.write_text("MZ,intensity\n" + "".join(f"{100 + i}.5,{i}\n" for i in range(50)))
    assert sniff_format(text) == "csv"
    exe = tmp_path / "tool.csv"
    exe.write_bytes(b"MZ" + b"\x90" * 58 + (64).to_bytes(4, "little") + b"PE\x00\x00" + b"\x00" * 200)
    with pytest.raises(PipelineInputError, match="Windows executable"):
        sniff_format(exe)


@pytest.mark.parametrize(("uri", "secrets"), [
    ("simplecache::ftp://alice:CHAINSECRET1@127.0.0.1:1/x.csv", ["CHAINSECRET1"]),
    ("https://host.example/x.csv?X-Amz-Signature=QSECRET2&token=QSECRET3&a=1", ["QSECRET2", "QSECRET3"]),
    ("https://host.example/x.csv?sig=QS%2FECRET4", ["QS%2FECRET4", "QS/ECRET4"]),
])
def test_chained_and_presigned_url_secrets_are_redacted(uri: str, secrets: list[str]) -> None:
    """Found by a second review: chained fsspec URLs and presigned query strings were recorded as written."""
    shown_uri = redact_uri(uri)
    message = scrub(f"failed to read {uri}: {' '.join(secrets)}", uri)
    for secret in secrets:
        assert secret not in shown_uri and secret not in message
    assert "***" in shown_uri and shown_uri.split("?")[0].endswith("/x.csv")


def test_text_that_loads_as_a_pickle_without_calling_anything_is_data(tmp_path: Path) -> None:
    """Found by a third review: 'cost' then 'NaN' then '2.5' decodes as GLOBAL ost.NaN ... STOP; a stream that
    never calls what it names runs none of the file's code, and such label files were refused."""
    for text in ("cost\nNaN\n2.5\n3.1\n4.0\n", "comment\nfine\n.\n"):
        path = tmp_path / "one-column.csv"
        path.write_text(text)
        assert sniff_format(path) == "csv"


def test_a_local_file_name_with_a_question_mark_is_not_a_query() -> None:
    assert redact_uri("data/x?key=1.csv") == "data/x?key=1.csv"
    assert redact_uri("https://h/x?author=a&keyword=b&key=S") == "https://h/x?author=a&keyword=b&key=***"


def test_a_small_csv_whose_header_is_longer_than_a_megabyte_is_read(tmp_path: Path) -> None:
    """Found by review: pyarrow's default 1 MB block made a 60,000-column file 'Empty CSV file' (data:empty_file)."""
    names = [f"feature_{i:012d}" for i in range(60_000)]  # 21 bytes each: a 1.3 MB header
    path = tmp_path / "wide.csv"
    path.write_text("\n".join([",".join(names)] + [",".join([str(r)] * 60_000) for r in range(3)]) + "\n")
    rows, columns = read_to_parquet(path, tmp_path / "wide.parquet", fmt="csv", uri=str(path), row_group_rows=64)
    assert rows == 3 and columns[:2] == names[:2] and len(columns) == 60_000
