"""``make demo``: ingest data_samples/ end to end and show what trainguard did.

1. ingest the clean reference of source ``credit`` (it becomes the source's approved reference and contract),
2. ingest the poisoned batch: poisoned rows are quarantined, clean.parquet is approved,
3. score the quarantine against the ground truth,
4. the gate passes clean.parquet and refuses the raw poisoned file,
5. print where the report, outputs and ledger are.

Everything is written under ``demo-out/`` (recreated on each run). Run: ``python -m pipelines.demo``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples" / "credit"


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main(out: Path | None = None) -> int:
    """Run the demo; returns 0 when every step ended as expected."""
    out = out or ROOT / "demo-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    prefect_home = Path(os.environ.setdefault("PREFECT_HOME", str(ROOT / ".trainguard" / "prefect")))
    prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect creates only the last level; a fresh clone has none
    # First start of the embedded Prefect server migrates its database: slower than 20 s on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    ledger = f"sqlite:///{out / 'ledger.db'}"
    os.environ["TRAINGUARD_LEDGER"] = ledger
    from pipelines.cli.ingest_cmd import quiet_prefect

    quiet_prefect()
    import pandas as pd

    from pipelines.cli.main import main as cli
    from provenance.errors import NotApprovedError
    from provenance.gate import require_approved

    _say("== 1. ingest the trusted reference of source 'credit' (600 clean rows)")
    _say("   (a source's first batch has no reference yet: trainguard warns, and here the data is trusted)")
    code = cli(["ingest", str(SAMPLES / "reference.csv"), "--source", "credit", "--label-column", "class",
                "--out", str(out / "reference")])
    if code != 0:
        _say(f"demo: the reference was not approved (exit {code})")
        return 1
    _say("\n== 2. ingest the poisoned batch (235 rows, 45 of them poison)")
    code = cli(["ingest", str(SAMPLES / "batch_poisoned.csv"), "--source", "credit", "--label-column", "class",
                "--out", str(out / "batch")])
    if code != 0:
        _say(f"demo: the poisoned batch was rejected as a whole (exit {code}); see {out / 'batch' / 'report.html'}")
        return 1

    _say("\n== 3. what was quarantined, against the ground truth")
    truth = pd.read_csv(SAMPLES / "batch_poisoned.truth.csv", keep_default_na=False)
    scores = pd.read_parquet(out / "batch" / "scores.parquet")
    quarantined = set(pd.read_parquet(out / "batch" / "quarantine.parquet")["row"].astype(int))
    truth["quarantined"] = truth["row"].isin(quarantined)
    by_kind = truth[truth["is_poison"]].groupby("kind")["quarantined"].agg(["sum", "count"])
    for kind, rec in by_kind.iterrows():
        _say(f"  {kind:22s} {int(rec['sum']):3d} / {int(rec['count']):3d} quarantined")
    fp = int((truth["quarantined"] & ~truth["is_poison"]).sum())
    tp = int((truth["quarantined"] & truth["is_poison"]).sum())
    _say(f"  poison caught {tp} / {int(truth['is_poison'].sum())}; clean rows quarantined {fp} / "
         f"{int((~truth['is_poison']).sum())}; rows scored {len(scores)}")
    missed = [str(kind) for kind, rec in by_kind.iterrows() if int(rec["sum"]) == 0]
    if missed:
        _say(f"  not caught on this sample: {', '.join(missed)} (these rows are in the approved clean.parquet; "
             "see the README's demo section)")

    _say("\n== 4. the gate (what a training script calls first)")
    record = require_approved(out / "batch" / "clean.parquet")
    _say(f"  PASS  {out / 'batch' / 'clean.parquet'} (ledger entry #{record.index}, verdict {record.verdict})")
    try:
        require_approved(SAMPLES / "batch_poisoned.csv")
    except NotApprovedError as exc:
        _say(f"  REFUSED  {SAMPLES / 'batch_poisoned.csv'}: {exc}")
    else:
        _say("  demo: the gate accepted the raw poisoned file; this is a bug")
        return 1

    _say("\n== 5. where things are")
    _say(f"  report      {out / 'batch' / 'report.html'}")
    _say(f"  outputs     {out / 'batch'}/{{clean,quarantine,scores}}.parquet, summary.json")
    _say(f"  ledger      {ledger}   (trainguard ledger log --ledger {ledger})")
    _say(f"  gate        .venv/bin/trainguard gate {out / 'batch' / 'clean.parquet'} --ledger {ledger}")
    tp_share = tp / max(1, int(truth["is_poison"].sum()))
    return 0 if tp_share > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
