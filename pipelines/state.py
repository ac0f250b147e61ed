"""Per-source state kept next to the ledger: the contract and copies of approved data used as references.

Layout under the state directory (``<ledger dir>/state`` for SQLite ledgers, the config's ``state_dir``
otherwise)::

    sources/<source>/contract.toml          inferred from the first approved data of the source
    sources/<source>/approved/<hex>.parquet  approved rows of a run, by digest (the next run's reference)
    profiles/<hex>.json                      drift profile of a reference, by the reference digest

A reference joining several approved sets (the newest too small alone) is not kept here: each run builds it in its
work directory from the approved sets (a re-run rebuilds it from the ``parts`` its entry names and checks the
recorded digest), with its drift profile, so this directory grows only by the approved data itself.

Example::

    >>> from pipelines.state import state_dir_for
    >>> str(state_dir_for("sqlite:////tmp/x/ledger.db", None))
    '/tmp/x/state'
"""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from pipelines.config import SOURCE_NAME
from pipelines.errors import PipelineConfigError

__all__ = ["state_dir_for", "SourceState"]

_SAFE = SOURCE_NAME


def state_dir_for(ledger_url: str, configured: str | None) -> Path:
    """Where per-source state lives for this ledger."""
    if configured:
        return Path(configured)
    if ledger_url.startswith("sqlite:///"):
        return Path(ledger_url[len("sqlite:///"):]).parent / "state"
    return Path(os.environ.get("TRAINGUARD_HOME", ".trainguard")) / "state"


class SourceState:
    """The state of one source (its name must be a safe file name)."""

    def __init__(self, root: Path, source: str) -> None:
        if not _SAFE.match(source):
            raise PipelineConfigError(
                "config:bad_source_name",
                f"source name {source!r} must be letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(at most 128)",
            )
        self.root = root
        self.source = source
        self.dir = root / "sources" / source

    @property
    def contract_path(self) -> Path:
        return self.dir / "contract.toml"

    def load_contract_text(self) -> str | None:
        """The stored contract TOML, or None when the source has none yet."""
        try:
            return self.contract_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def save_contract_text(self, text: str) -> Path:
        from pipelines.outputs import atomic_write_bytes

        return atomic_write_bytes(self.contract_path, text.encode("utf-8"))

    def approved_path(self, digest: str) -> Path:
        return self.dir / "approved" / (digest.removeprefix("sha256:") + ".parquet")

    def keep_approved(self, path: Path, digest: str) -> Path:
        """Copy approved data into the state (idempotent; written atomically)."""
        return _keep(path, self.approved_path(digest))

    def profile_path(self, reference_digest: str) -> Path:
        return self.root / "profiles" / (reference_digest.removeprefix("sha256:") + ".json")


def _keep(path: Path, dest: Path) -> Path:
    """Copy ``path`` to ``dest`` unless it is there: by digest, so an existing file already holds these bytes."""
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f"{dest.name}.{os.getpid()}.{threading.get_ident()}.part")  # one per writer
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
    return dest
