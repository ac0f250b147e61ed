"""docs/reason-codes.md, generated from ``reasons.catalogue``: ``python -m reasons.docs > docs/reason-codes.md``.

tests/test_reason_codes.py fails when the committed file differs from ``render()``.
"""

from __future__ import annotations

import sys

from reasons.catalogue import CATALOGUE, EXIT_CODES, Reason, area_of

__all__ = ["render", "AREAS"]

#: One line per area, in the order the reference lists them (areas missing here come last, untitled).
AREAS: dict[str, str] = {
    "usage": "the command line is wrong",
    "internal": "a bug in trainguard",
    "config": "the config, the contract or a parameter is wrong (fix the config)",
    "data": "the dataset cannot be ingested as given (fix the data)",
    "reference": "the source's trusted reference",
    "scoring": "the row scorer cannot fit or score",
    "input": "a file, digest or argument given to the ledger commands",
    "entry": "a ledger entry is malformed (when written: exit 2; when read from the ledger: exit 3)",
    "keys": "signing, trusted and approver keys",
    "ledger": "the ledger: its configuration, and integrity failures (exit 3, fail closed)",
    "gate": "the gate's decision on a dataset's exact bytes",
    "proof": "the stand-alone proof verifier (provenance/verify_proof.py)",
    "policy": "why the policy rejected a batch (verdict reasons)",
    "schema": "batch-level contract failures (the batch is rejected)",
    "expect": "contract expectation failures, mostly of one row (`<column>` is the column, `*` when none)",
    "outlier": "row reasons: far from (or too close to the centre of) the trusted data",
    "label": "row reasons: the label is doubtful",
    "duplicate": "row reasons: copies",
    "cluster": "row reasons: backdoors and clustered poison",
    "source": "row reasons: a compromised source",
    "score": "row reasons: the combined score",
    "campaign": "row reasons: poison spread over the source's recent batches",
}

_KIND = {
    "error": "error",
    "outcome": "outcome",
    "row": "row reason",
    "batch": "batch reason",
}


def _exit(entry: Reason) -> str:
    if not entry.exit_codes:
        return "no exit code of its own (the row is flagged)"
    return "exit " + " or ".join(str(c) for c in entry.exit_codes)


def _areas() -> dict[str, list[Reason]]:
    grouped: dict[str, list[Reason]] = {area: [] for area in AREAS}
    for entry in CATALOGUE.values():
        grouped.setdefault(area_of(entry.code), []).append(entry)
    return {area: entries for area, entries in grouped.items() if entries}


def render() -> str:
    """The text of docs/reason-codes.md."""
    areas = _areas()
    lines = [
        "# Reason codes",
        "",
        "<!-- Generated from reasons/catalogue.py by `python -m reasons.docs > docs/reason-codes.md`; do not edit "
        "by hand. -->",
        "",
        f"Every code trainguard raises as an error or writes as a reason: {len(CATALOGUE)} entries. A code is "
        "`area:what`; an entry with a part in angle brackets (`expect:in_range:<column>`) stands for a family of "
        "codes, the bracketed part being any text (a column name, a detector's reason).",
        "",
        "- **error**: raised by a command: one line on stderr with the code in brackets, the `code` of a `--json` "
        "failure document, the `error.code` of an `error` ledger entry; the command exits with the exit code given.",
        "- **outcome**: the `code` of a result that is not a failure.",
        "- **row reason**: in `scores.parquet`'s and `quarantine.parquet`'s `reasons`, or the contract's failures "
        "table: why a row was flagged.",
        "- **batch reason**: why a whole batch was rejected (a batch-level contract failure, or a verdict reason "
        "in `summary.json` and the ledger entry, where numbers may follow the code after a space).",
        "",
        "## Exit codes",
        "",
        "| exit | meaning |",
        "| --- | --- |",
        *(f"| {code} | {text} |" for code, text in EXIT_CODES.items()),
        "",
        "## Areas",
        "",
        *(f"- [`{area}`](#area-{area}): {AREAS.get(area, '')} ({len(entries)})" for area, entries in areas.items()),
    ]
    for area, entries in areas.items():
        lines += ["", f'<a id="area-{area}"></a>', "", f"## `{area}`: {AREAS.get(area, '')}"]
        for entry in entries:
            lines += [
                "",
                f'<a id="{entry.anchor}"></a>',
                "",
                f"### `{entry.code}`",
                "",
                f"{_KIND[entry.kind]}, {_exit(entry)}. {entry.meaning}",
                "",
                f"What to do: {entry.action}",
            ]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
