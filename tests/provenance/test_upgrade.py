"""Ledgers written before the verifiable index keep verifying and are upgraded in place: by `trainguard ledger
upgrade` or by their first append, with the index built from their leaves (both backends)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from pipelines.cli.main import main
from provenance.errors import LedgerIntegrityError, NotApprovedError
from provenance.gate import decide
from provenance.ledger import open_ledger
from provenance.signing import MAP_ROOT, load_private_key
from tests.provenance.conftest import digest, statement

DATA = Path(__file__).parent / "data"
_OLD_TABLES = ("meta", "entries", "nodes", "subjects", "checkpoints")


@pytest.fixture()
def old_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """The ledger of data/ledger-v1.db (written by the code before the index) on each backend, and its key."""
    key = tmp_path / "ledger.key"
    shutil.copy(DATA / "ledger-v1.key", key)
    key.chmod(0o600)
    db = tmp_path / "ledger.db"
    shutil.copy(DATA / "ledger-v1.db", db)
    if request.param == "sqlite":
        return f"sqlite:///{db}", key
    import psycopg

    url = str(request.getfixturevalue("postgres_schema"))
    src = sqlite3.connect(db)
    with psycopg.connect(url, autocommit=True) as pg:  # the same rows in the tables the old code made
        pg.execute("create table meta (key text primary key, value text not null)")
        pg.execute("create table entries (idx bigint primary key, body bytea not null, source text, verdict text,"
                   " time text)")
        pg.execute("create table nodes (id bigint primary key, hash bytea not null)")
        pg.execute("create table subjects (digest text not null, idx bigint not null, primary key (digest, idx))")
        pg.execute("create table checkpoints (tree_size bigint primary key, body bytea not null)")
        for table in _OLD_TABLES:
            rows = src.execute(f"select * from {table}").fetchall()
            if rows:
                marks = ", ".join(["%s"] * len(rows[0]))
                pg.cursor().executemany(f"insert into {table} values ({marks})", rows)
    return url, key


pytestmark = pytest.mark.parametrize(
    "old_ledger", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)


def test_an_old_ledger_verifies_and_the_gate_asks_for_the_upgrade(old_ledger: tuple[str, Path]) -> None:
    url, key = old_ledger
    with open_ledger(url, signing_key=str(key), create=False) as led:
        assert led.verify(all_signatures=True).tree_size == 7
        with pytest.raises(LedgerIntegrityError) as err:
            decide(led, digest(0), label="b0.csv")
        assert err.value.code == "ledger:no_index" and "trainguard ledger upgrade" in str(err.value)


def test_ledger_upgrade_builds_the_index_from_the_leaves(old_ledger: tuple[str, Path], monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    url, key = old_ledger
    monkeypatch.setenv("TRAINGUARD_SIGNING_KEY", str(key))
    assert main(["ledger", "upgrade", "--ledger", url]) == 0
    out, err = capsys.readouterr()
    assert "upgraded: index built over 7 entries" in out and "built its verifiable index over 7" in err
    assert main(["ledger", "upgrade", "--ledger", url]) == 0
    assert "nothing to do" in capsys.readouterr().out
    with open_ledger(url, signing_key=str(key), create=False) as led:
        cp = led.checkpoint()
        assert cp is not None and MAP_ROOT in cp and cp["tree_size"] == 7
        assert led.verify(all_signatures=True).tree_size == 7  # old checkpoints and the re-signed one
        assert decide(led, digest(0), label="b0.csv").index == 0
        assert decide(led, digest(2), label="b2.csv").verdict == "override"  # the old override still releases it
        with pytest.raises(NotApprovedError):
            decide(led, digest(9), label="b9.csv")
        assert led.note(7) is not None


def test_the_first_append_upgrades_and_says_so(old_ledger: tuple[str, Path], capsys: pytest.CaptureFixture[str]
                                               ) -> None:
    url, key = old_ledger
    with open_ledger(url, signing_key=load_private_key(key), create=False) as led:
        res = led.append(statement(42))
        assert res.index == 7 and led.upgraded
        assert "built its verifiable index over 7 entries" in capsys.readouterr().err
        assert [r.index for r in led.history(digest(42)).records] == [7]
        assert [r.index for r in led.history(digest(2)).records] == [2, 5, 6]
        assert led.verify().tree_size == 8


def test_an_ingest_run_upgrades_an_old_ledger_before_it_looks_for_refusals(old_ledger: tuple[str, Path],
                                                                           monkeypatch: pytest.MonkeyPatch,
                                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The flow asks the index whether the input was refused before, ahead of its append: on a ledger made before
    the index that lookup upgrades it (the run appends with the signing key anyway) instead of failing."""
    from pipelines._sticky import prior_refusal

    url, key = old_ledger
    monkeypatch.setenv("TRAINGUARD_SIGNING_KEY", str(key))
    assert prior_refusal(url, digest(0)) is None
    assert "built its verifiable index over 7 entries" in capsys.readouterr().err
    refusal = prior_refusal(url, digest(1))
    assert refusal is None  # approved only
    with open_ledger(url, signing_key=str(key), create=False) as led:
        assert led.verify().tree_size == 7
