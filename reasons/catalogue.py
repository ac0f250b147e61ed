"""The one catalogue of trainguard's reason codes: every code raised as an error or written as a reason.

A code is ``area:what`` (``data:empty_file``). An entry is one code or one family of codes with placeholders in
angle brackets (``expect:in_range:<column>``, ``outlier:ecod:feature=<column>``); a placeholder stands for any
non-empty text. Kinds:

- ``error``: raised as a ``reasons.errors.TrainguardError`` (one stderr line, the ``code`` of a ``--json``
  failure document, the ``error.code`` of an ``error`` ledger entry) with its exit code.
- ``outcome``: the ``code`` of a command's result that is not a failure (``gate:approved``).
- ``row``: a reason in ``scores.parquet``'s ``reasons`` (and ``quarantine.parquet``) or in the contract's
  failures table: why one row was flagged.
- ``batch``: a reason of the whole batch: a batch-level contract failure, or one of the verdict's ``reasons``
  (``summary.json``, the ledger entry), where the code may be followed by a space and the numbers behind it
  (``policy:min_rows 3 < 10``).

``docs/reason-codes.md`` is generated from this module (``python -m reasons.docs``); tests/test_reason_codes.py
fails when a code in the source is missing here, an entry here is used nowhere, or the docs are stale.

>>> lookup("expect:in_range:age").code
'expect:in_range:<column>'
>>> lookup("policy:min_rows 3 < 10").exit_code
1
>>> anchor("outlier:ecod:feature=income")
'outlier-ecod-feature-column'
>>> lookup("nope:nothing") is None
True
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

__all__ = ["Reason", "Kind", "CATALOGUE", "EXIT_CODES", "KINDS", "lookup", "anchor", "area_of"]

Kind = Literal["error", "outcome", "row", "batch"]
KINDS: tuple[Kind, ...] = ("error", "outcome", "row", "batch")

#: What each exit code of the ``trainguard`` commands means (docs/design.md).
EXIT_CODES: dict[int, str] = {
    0: "ok: approved, nothing refused",
    1: "rejected or refused by the policy or the gate (not a crash)",
    2: "bad input, usage or config: fix what the message names and run again",
    3: "integrity failure: the ledger, a proof or a signature does not check out (fail closed)",
    70: "internal error: a bug in trainguard (rerun with TRAINGUARD_DEBUG=1 and report the traceback)",
}

_PLACEHOLDER = re.compile(r"<[a-z_]+>")


@dataclass(frozen=True)
class Reason:
    """One catalogue entry: a code (or a family with ``<placeholder>`` parts), its kind, what it means, the exit
    code(s) a command ends with because of it (none for row reasons), and what the user should do."""

    code: str
    kind: Kind
    meaning: str
    action: str
    exit_codes: tuple[int, ...] = ()

    @property
    def exit_code(self) -> int | None:
        """The usual exit code (the first of ``exit_codes``), or None when the code ends no command."""
        return self.exit_codes[0] if self.exit_codes else None

    @property
    def is_family(self) -> bool:
        return bool(_PLACEHOLDER.search(self.code))

    @property
    def anchor(self) -> str:
        """The id of this entry's anchor in docs/reason-codes.md."""
        return _slug(self.code)


def _slug(code: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", code.lower()).strip("-")


def _e(code: str, kind: Kind, exit_codes: int | tuple[int, ...] | None, meaning: str, action: str) -> Reason:
    codes = () if exit_codes is None else (exit_codes,) if isinstance(exit_codes, int) else exit_codes
    return Reason(code, kind, meaning, action, codes)


_CONTRACT = "fix the contract file (or the config that builds it) as the message says"
_LEDGER_INTEGRITY = ("do not use the ledger's answers; run `trainguard ledger verify` to find the bad entry, and restore "
                     "the ledger from a backup or an export you trust")

_ENTRIES: tuple[Reason, ...] = (
    # --- the CLI ---------------------------------------------------------------------------------------------
    _e("usage", "error", 2, "The command line is wrong: an unknown command or option, or a missing argument.",
       "Run the command with --help and fix the arguments."),
    _e("internal", "error", 70, "An unexpected exception: a bug in trainguard, not a problem with your data.",
       "Rerun with TRAINGUARD_DEBUG=1 and report the traceback."),
    _e("internal:<exception>", "error", 70,
       "An ingest attempt crashed with this exception; the ledger's `error` entry records it.",
       "Rerun with TRAINGUARD_DEBUG=1 and report the traceback; the bytes can be ingested again once it is fixed."),
    _e("usage:relabel_without_label", "error", 2, "--relabel was asked for without a label column.",
       "Pass --label-column (or set label_column in the source's config), or drop --relabel."),
    _e("usage:rotate_out", "error", 2,
       "`trainguard keys rotate` cannot write the new key where the signing key comes from: it comes from "
       "$TRAINGUARD_SIGNING_KEY.", "Pass --out FILE (then point the variable at it) or --new-key FILE."),
    _e("usage:runner", "error", 2, "--runner is neither `local` nor `dask`.", "Use --runner local or --runner dask."),
    _e("usage:same_column", "error", 2, "--label-column and --source-column name the same column.",
       "Name the label column and the column saying where each row came from: they must differ."),
    # --- config: the TOML config, the contract, parameters ----------------------------------------------------
    _e("config:bad_out", "error", 2, "The output directory cannot be written.",
       "Give an --out directory you can write to (check its permissions and free space)."),
    _e("config:bad_source", "error", 2, "A [sources.NAME] table of the config has neither a path nor a landing_dir.",
       "Give the source a path or a landing_dir."),
    _e("config:bad_source_name", "error", 2,
       "A source name has characters other than letters, digits, '.', '_' and '-' or is longer than 128.",
       "Rename the source (--source or the [sources.NAME] table)."),
    _e("config:bad_toml", "error", 2, "The config file is not valid TOML.", "Fix the TOML syntax at the place named."),
    _e("config:bad_value", "error", 2, "A config value has the wrong type or is out of range.",
       "Set the value the message names to what it expects."),
    _e("config:chunk_rows", "error", 2, "chunk_rows of contract validation is below 1.", "Pass chunk_rows >= 1."),
    _e("config:contract_expectation", "error", 2,
       "An [[expectations]] entry of the contract has no type, an unknown Great Expectations type or bad "
       "arguments.", _CONTRACT + ": use an expectation and arguments Great Expectations 1.x knows."),
    _e("config:contract_key", "error", 2, "The contract has an unknown key or a key of the wrong shape.", _CONTRACT + "."),
    _e("config:contract_pattern", "error", 2, "A column's pattern in the contract is not a valid regular expression.",
       _CONTRACT + "."),
    _e("config:contract_range", "error", 2,
       "A column's min or max in the contract is not a number (a date-time for dates) or min > max.", _CONTRACT + "."),
    _e("config:contract_toml", "error", 2, "The contract file is not valid TOML.", _CONTRACT + "."),
    _e("config:contract_type", "error", 2, "A column of the contract has an unknown logical type.",
       _CONTRACT + ": use one of the types the message lists."),
    _e("config:contract_unreadable", "error", 2, "The contract file cannot be read.",
       "Check the contract's path and permissions."),
    _e("config:contract_value", "error", 2, "A contract value cannot be written as TOML (TOML has no null).",
       "Leave the key out instead of setting it to None."),
    _e("config:dask_address", "error", 2, "--dask-address is not scheme://host:port.",
       "Give the scheduler's address, e.g. tcp://127.0.0.1:8786."),
    _e("config:dask_unreachable", "error", 2, "No Dask scheduler answers at --dask-address.",
       "Start the scheduler or fix the address, or use --runner local."),
    _e("config:drift_thresholds", "error", 2, "A drift threshold has an unknown key or an invalid value.",
       "Fix the drift thresholds the message names."),
    _e("config:engine", "error", 2, "The contract validation engine is unknown.", "Use one of the engines listed."),
    _e("config:label_column", "error", 2,
       "The label column is not a column of the data, or holds nested or mixed values instead of classes.",
       "Name the column that holds the class labels (--label-column), or none."),
    _e("config:missing", "error", 2, "The config file does not exist.", "Fix the --config path, or leave it out."),
    _e("config:no_sources", "error", 2, "`trainguard serve` was given a config without [sources.NAME] tables.",
       "Add a [sources.NAME] table per source to serve."),
    _e("config:out_unwritable", "error", 2,
       "The input cannot be staged in the output directory: no space left, quota exceeded or a read-only file "
       "system.", "Free space or give an --out directory on a writable file system."),
    _e("config:prefect_unreachable", "error", 2, "`trainguard serve` cannot reach the Prefect API.",
       "Start one with `prefect server start`, or set PREFECT_API_URL."),
    _e("config:profile", "error", 2, "A drift profile directory was given without the reference digest to load.",
       "Pass the reference's digest with the profile directory."),
    _e("config:quantiles", "error", 2, "Contract inference quantiles are not 0 <= lo < hi <= 1.",
       "Pass quantiles within those bounds."),
    _e("config:tolerance", "error", 2, "The contract inference tolerance is not a finite number >= 0.",
       "Pass a tolerance >= 0."),
    _e("config:unknown_key", "error", 2, "The config has a key trainguard does not know (a typo?).",
       "Remove or correct the key; the message lists the allowed ones."),
    _e("config:unreadable", "error", 2, "The config file cannot be read.", "Check the config's path and permissions."),
    # --- data: the dataset cannot be ingested as given -------------------------------------------------------
    _e("data:bad_output_dir", "error", 2, "`trainguard report` was pointed at a directory that is not a trainguard "
       "output (a file in it cannot be read).", "Give the --out directory of an ingest run."),
    _e("data:binary", "error", 2, "The file holds binary bytes where CSV or JSON-lines text was expected.",
       "Give a text file of the expected format, or name it by its real extension (.parquet)."),
    _e("data:changed_during_ingest", "error", 2,
       "The source file changed or disappeared while it was being ingested; nothing from the run is published.",
       "Ingest it again once nothing writes to it (land files with an atomic rename)."),
    _e("data:duplicate_column", "error", 2, "The data (or the reference) has two columns with one name.",
       "Rename or drop one of them."),
    _e("data:empty_file", "error", 2, "The file is empty or has no header and no rows.",
       "Check that the right file was given and that it was written completely."),
    _e("data:empty_reference", "error", 2, "The reference has no rows or no columns.", "Give a reference with data."),
    _e("data:encoding", "error", 2, "The file (or a text column) is not valid UTF-8.",
       "Re-export the data as UTF-8 (the message gives the offset or the column)."),
    _e("data:error", "error", 2, "An ingest attempt failed with an error that carries no code of its own.",
       "Read the message; if it names no problem with the data, report it as a bug."),
    _e("data:executable_format", "error", 2,
       "The file is a pickle or another format that runs code when loaded; it is refused without being opened.",
       "Export the data as CSV, JSON lines or Parquet."),
    _e("data:label_values", "error", 2, "The label column holds nested values (lists, arrays or maps), not classes.",
       "Name a column of class labels, or flatten the labels."),
    _e("data:malformed_csv", "error", 2, "The CSV file cannot be parsed (unbalanced quotes, ragged rows...).",
       "Fix the CSV at the place the message names."),
    _e("data:missing_file", "error", 2, "The dataset does not exist.", "Check the path or URL."),
    _e("data:no_rows", "error", 2, "The file has a header but no data rows.", "Give a batch with rows."),
    _e("data:not_a_file", "error", 2, "The path is a directory, a device, a FIFO or a socket, not a data file.",
       "Give the path of a regular file."),
    _e("data:not_an_output_dir", "error", 2, "The directory has no summary.json: it is not an ingest output.",
       "Give the --out directory of an ingest run."),
    _e("data:not_found", "error", 2, "The file does not exist.", "Check the path."),
    _e("data:outside_allowed_roots", "error", 2, "The path is outside the allowed_roots set in the config.",
       "Move the file under an allowed root, or extend allowed_roots."),
    _e("data:profile_digest", "error", 2, "The drift profile was made from another reference than the one given.",
       "Rebuild the profile from this reference, or give the matching reference."),
    _e("data:profile_unreadable", "error", 2, "The drift profile file cannot be read.",
       "Rebuild the profile (the next ingest with the reference writes it)."),
    _e("data:unknown_format", "error", 2, "The file's extension is not .csv, .tsv, .parquet or .jsonl.",
       "Rename the file to its format's extension, or convert it."),
    _e("data:unknown_label_column", "error", 2, "The batch has no column of the --label-column name.",
       "Name a column the batch has (the message lists them)."),
    _e("data:unknown_source_column", "error", 2, "The batch has no column of the --source-column name.",
       "Name a column the batch has (the message lists them)."),
    _e("data:unreachable", "error", 2, "The input cannot be read: a refused connection, a denied permission...",
       "Check the path or URL, the network and the credentials, then run again."),
    _e("data:unreadable", "error", 2, "The file cannot be read as its format (corrupt Parquet, bad JSON...).",
       "Check the file; re-export it if it is damaged."),
    _e("data:unsupported_url", "error", 2,
       "The URL's scheme needs an fsspec package that is not installed, or is no known scheme.",
       "Install the package the message names, or copy the file to a local path."),
    _e("reference:unavailable", "error", 2,
       "The approved reference of the source is neither in the state directory nor at its recorded URI.",
       "Restore the reference data, or pass --reference with trusted data."),
    # --- scoring ---------------------------------------------------------------------------------------------
    _e("scoring:bad_fp_budget", "error", 2, "The false-positive budget is not in (0, 0.5).",
       "Set fp_budget within those bounds."),
    _e("scoring:continuous_label", "error", 2, "The label column looks continuous (many distinct numbers).",
       "Label checks are for class labels: leave --label-column out for a regression target."),
    _e("scoring:empty_reference", "error", 2, "The data to fit the scorer on has no rows.",
       "Give a reference (or batch) with rows."),
    _e("scoring:missing_column", "error", 2, "The batch lacks a column the reference has (or the label column).",
       "Give a batch with the reference's columns."),
    _e("scoring:no_detectors", "error", 2, "No enabled detector can score these rows.",
       "Enable a row detector (iforest, ecod, hbos, knn) or give the data a label column."),
    _e("scoring:no_features", "error", 2, "The data has no feature columns to score.",
       "Give data with at least one column besides the label and source columns."),
    _e("scoring:no_source_sample", "error", 2,
       "The source test needs the batch's features, but the batch sample given to finalize lacks them.",
       "Pass batch_sample to RowScorer.finalize (a bug when it comes from `trainguard ingest`: report it)."),
    _e("scoring:nothing_to_fit", "error", 2, "Neither a reference nor a batch with rows was given to fit on.",
       "Give a reference or a batch with rows."),
    _e("scoring:partition_mismatch", "error", 2,
       "The partition scores do not line up with the batch's rows.",
       "Score the partitions of this batch only (a bug when it comes from `trainguard ingest`: report it)."),
    _e("scoring:small_reference", "error", 2,
       "The reference has too few rows to hold the false-positive budget.",
       "Give a larger trusted reference, or raise fp_budget."),
    _e("scoring:unknown_detector", "error", 2, "A detector name is unknown.", "Use the detectors the message lists."),
    # --- input: files and arguments given to provenance ------------------------------------------------------
    _e("input:bad_bundle", "error", 2, "The directory is not a ledger bundle (a file of it is missing).",
       "Give a directory written by `trainguard ledger export`."),
    _e("input:bad_checkpoint", "error", 2, "The file is not a checkpoint.",
       "Give a checkpoint file (the message says how to extract one from a --json output)."),
    _e("input:bad_digest", "error", 2, "The text is not a SHA-256 digest.", "Give sha256:<64 lowercase hex digits>."),
    _e("input:bad_out", "error", 2, "The export directory cannot be created or written.",
       "Give an --out directory you can write to."),
    _e("input:bad_time", "error", 2, "A time filter is not an RFC 3339 time or date.",
       "Give a time such as 2024-05-01 or 2024-05-01T12:00:00Z."),
    _e("input:is_directory", "error", 2, "A directory was given where a file was expected.",
       "Give a file, or use the directory digest."),
    _e("input:missing_file", "error", 2, "The file does not exist (and the argument is no digest either).",
       "Check the path, or give the sha256: digest."),
    _e("input:no_reason", "error", 2, "An override was asked for without a reason.",
       "Pass --reason saying why these bytes are approved."),
    _e("input:no_such_entry", "error", 2, "The ledger has no entry with this index.", "Give an index below its size."),
    _e("input:not_a_file", "error", 2, "The path is a device, FIFO or socket: it is refused without being read.",
       "Give a regular file or a directory of them."),
    _e("input:not_directory", "error", 2, "The path is not a directory.", "Give a directory."),
    _e("input:symlink", "error", 2,
       "A directory to digest holds a symlink out of it, a dangling one or one to a directory.",
       "Remove the link or replace it with the file."),
    _e("input:unreadable", "error", 2, "The file cannot be read.", "Check its permissions."),
    # --- ledger entries ----------------------------------------------------------------------------------------
    *(_e(code, "error", (2, 3), meaning,
         "When writing: a bug in what builds the entry, report it. When reading (exit 3): the stored entry was "
         "changed; " + _LEDGER_INTEGRITY + ".")
      for code, meaning in (
          ("entry:bad_approval", "An override entry's approval lacks its key id, signature or digest."),
          ("entry:bad_predicate", "An entry's predicate is not a JSON object."),
          ("entry:bad_previous", "An entry's predicate.previous is neither null nor a hash."),
          ("entry:bad_rotation", "A key-rotation entry lacks one of its fields."),
          ("entry:bad_subject", "An entry's subject is not a (name, sha256 digest) pair."),
          ("entry:bad_type", "An entry's _type is not the in-toto Statement v1 type."),
          ("entry:bad_verdict", "An entry's verdict is unknown or does not go with its predicate type."),
          ("entry:no_subject", "An entry names no subject."),
          ("entry:no_time", "An entry's predicate.time is not an RFC 3339 string."),
          ("entry:not_object", "An entry is not a JSON object."),
          ("entry:unknown_field", "An entry has unknown or missing top-level fields."),
          ("entry:unknown_predicate_version", "An entry's predicate type (version) is not supported."),
      )),
    _e("entry:not_json", "error", 2, "A value cannot be written as canonical JSON (a NaN, bytes, an object...).",
       "A bug in what builds the entry: report it."),
    # --- keys ------------------------------------------------------------------------------------------------
    _e("keys:ambiguous_verifier", "error", 2, "Two trusted keys share a name and key hash.",
       "Remove the duplicate from the trusted keys."),
    _e("keys:bad_key_name", "error", 2, "A signed-note key name is empty or has spaces, '+' or control characters.",
       "Use a plain name for the key."),
    _e("keys:bad_private_key", "error", 2, "The key file is not an unencrypted PEM private key.",
       "Give the key file `trainguard keys generate` wrote."),
    _e("keys:bad_public_key", "error", 2, "A public key is not base64 of 32 raw bytes.",
       "Copy the key again from `trainguard keys show`."),
    _e("keys:bad_verifier_key", "error", 2, "A signed-note verifier key is malformed.",
       "Copy it again from `trainguard ledger checkpoint --json` (its verifier_keys)."),
    _e("keys:exists", "error", 2, "The key file already exists; it is not overwritten.",
       "Choose another --out path, or remove the old key if you are sure nothing needs it."),
    _e("keys:ledger_has_key", "error", 2, "The ledger already has a signing key (or entries it signed).",
       "Use --out FILE for another key (an approver's), or `trainguard keys rotate` to replace it."),
    _e("keys:missing", "error", 2, "No signing key or no trusted keys are configured where one is needed.",
       "Point $TRAINGUARD_SIGNING_KEY at the ledger's key, or write the trusted public keys to a file "
       "(`trainguard keys show`) and pass it with --trusted-keys or $TRAINGUARD_TRUSTED_KEYS."),
    _e("keys:not_ed25519", "error", 2, "The key file holds another kind of key than Ed25519.",
       "Use an Ed25519 key (`trainguard keys generate`)."),
    _e("keys:same_key", "error", 2, "A key rotation was asked to rotate to the current key.", "Give a new key."),
    _e("keys:trusted_unreadable", "error", 2, "The trusted-keys file cannot be read.",
       "Check the file's path and permissions."),
    # --- ledger: configuration ------------------------------------------------------------------------------
    _e("ledger:bad_url", "error", 2, "The ledger URL is neither sqlite:///path nor postgresql://...",
       "Fix --ledger or $TRAINGUARD_LEDGER."),
    _e("ledger:busy", "error", 2, "The SQLite ledger stayed locked by another process.",
       "Run again when the other writer is done (or give each process time)."),
    _e("ledger:key_mismatch", "error", 2, "The ledger was last signed by another key than the configured one.",
       "Point $TRAINGUARD_SIGNING_KEY at the ledger's key."),
    _e("ledger:no_signing_key", "error", 2, "The ledger has entries but its signing key is not where it is looked for.",
       "Point $TRAINGUARD_SIGNING_KEY (or $TRAINGUARD_HOME) at the ledger's key; a new key is made only for an "
       "empty ledger."),
    _e("ledger:not_found", "error", 2, "There is no ledger at the URL (or the file is no trainguard ledger).",
       "Check the ledger URL; the first `trainguard ingest` with it creates the ledger."),
    _e("ledger:read_only", "error", 2, "The ledger cannot be written.",
       "Grant write access (file permissions, or INSERT on PostgreSQL's ledger tables)."),
    _e("ledger:unreachable", "error", 2, "The ledger's database cannot be reached or opened.",
       "Check the URL, the server and the credentials."),
    _e("ledger:unknown_digest", "error", 1, "No ledger entry names these bytes, so there is nothing to prove.",
       "Ingest the data first."),
    # --- ledger: integrity (fail closed) ---------------------------------------------------------------------
    *(_e(code, "error", 3, meaning, action or _LEDGER_INTEGRITY[0].upper() + _LEDGER_INTEGRITY[1:] + ".")
      for code, meaning, action in (
          ("ledger:bad_checkpoint", "A stored checkpoint is malformed, stored under another size or of another log.",
           ""),
          ("ledger:bad_inclusion", "An entry does not prove into the signed root.", ""),
          ("ledger:bad_index", "The verifiable index or the source index disagrees with the entries.",
           "Run `trainguard ledger verify`; if the entries check out, `trainguard ledger upgrade --rebuild-index` "
           "rebuilds the index."),
          ("ledger:bad_map", "The stored index rows differ from the signed map root or from the entries.",
           "Run `trainguard ledger verify`; if the entries check out, `trainguard ledger upgrade --rebuild-index` "
           "rebuilds the index."),
          ("ledger:bad_map_proof", "A map proof does not lead to the signed map root.", ""),
          ("ledger:bad_note", "A signed note is malformed or states another tree than the JSON checkpoint.", ""),
          ("ledger:bad_note_signature", "A trusted key's signature on the checkpoint note does not verify.", ""),
          ("ledger:bad_rotation", "A key-rotation entry's keys or signatures do not check.", ""),
          ("ledger:bad_signature", "A checkpoint's signature is invalid.", ""),
          ("ledger:bad_witness", "The witness file is damaged or holds no checkpoint of this ledger.",
           "Remove the witness file only if you trust the ledger's current state; otherwise investigate."),
          ("ledger:broken_chain", "An entry's predicate.previous does not name the hash of the entry before it.", ""),
          ("ledger:corrupt_checkpoint", "A checkpoint is not JSON or not a checkpoint.", ""),
          ("ledger:corrupt_entry", "A stored entry is not UTF-8 JSON.", ""),
          ("ledger:corrupt_store", "The database holds a value of the wrong type, or a query on it failed.", ""),
          ("ledger:fork", "Two signed checkpoints disagree, or the ledger does not extend one it signed earlier.",
           "Treat the ledger as tampered with: compare it with the witness and your exports, and restore it."),
          ("ledger:gap", "Entries are missing.", ""),
          ("ledger:hash_mismatch", "An entry or Merkle node differs from what the signed tree names.", ""),
          ("ledger:map_root_mismatch", "The index rebuilt from the entries differs from the signed map root.", ""),
          ("ledger:no_checkpoint", "The ledger has entries but no signed checkpoint.", ""),
          ("ledger:no_index", "The latest checkpoint signs no index root, so a lookup by digest cannot be proven.",
           "Run `trainguard ledger upgrade` where the signing key is."),
          ("ledger:no_note", "The latest checkpoint has no signed note (signed before notes existed).",
           "Run `trainguard ledger upgrade --rebuild-index`, which signs one."),
          ("ledger:retired_key", "A checkpoint is signed by a key after it was rotated out.", ""),
          ("ledger:root_mismatch", "The entries do not lead to the signed root.", ""),
          ("ledger:size_mismatch", "The entries do not match the latest signed checkpoint's size.", ""),
          ("ledger:truncated", "The ledger is shorter than a checkpoint it signed earlier.", ""),
          ("ledger:unsigned_entry", "The latest signed checkpoint does not cover every entry.", ""),
          ("ledger:untrusted_key", "A checkpoint is signed by a key that is not trusted (here, or at that size).",
           "Check the trusted keys (--trusted-keys, $TRAINGUARD_TRUSTED_KEYS; `trainguard keys show`); if they are "
           "right, the ledger was re-signed by someone else."),
          ("ledger:untrusted_note", "No trusted key signed the checkpoint note.",
           "Check the trusted keys; if they are right, do not trust the note."),
      )),
    # --- gate ------------------------------------------------------------------------------------------------
    _e("gate:approved", "outcome", 0, "The exact bytes carry an approving, provable ledger entry (or override).",
       "Nothing: use the data."),
    _e("gate:no_verdict", "error", 1, "The bytes' only entries are failed attempts (`error`): nothing approved them.",
       "Fix what the failed ingest reported and ingest the data again."),
    _e("gate:refused_before", "error", 1,
       "The bytes were rejected or quarantined; a later approval does not lift a refusal.",
       "Use other data, or have a trusted approver run `trainguard approve DIGEST --reason ...`."),
    _e("gate:rejected", "error", 1, "A ledger entry rejected or quarantined these bytes.",
       "Use the batch's clean.parquet, or have a trusted approver override with `trainguard approve`."),
    _e("gate:trusted_keys_with_open_ledger", "error", 2,
       "trusted_keys were given with an already open Ledger (API misuse).",
       "Pass the ledger URL, or open the ledger with open_ledger(url, trusted_keys=...)."),
    _e("gate:unknown", "error", 1, "No ledger entry names these bytes.", "Ingest the data first."),
    _e("gate:untrusted_override", "error", 1,
       "An override names the bytes, but its approver key is not trusted or its signature does not check.",
       "Have an approver whose key is trusted sign the override, or trust that key ($TRAINGUARD_APPROVER_KEYS)."),
    # --- proof: the stand-alone verifier (provenance/verify_proof.py) --------------------------------------------
    *(_e(f"proof:{check}", "error", 3, meaning,
         "Do not trust the proof; get a fresh one with `trainguard ledger prove DIGEST --json` and check the key.")
      for check, meaning in (
          ("checkpoint", "The proof's checkpoint is malformed or not signed by a trusted key."),
          ("digest", "The proof is about other bytes than the --digest asked for."),
          ("entries", "The proof's entries are not the list the map proves, or do not name the digest."),
          ("format", "The proof document is malformed."),
          ("inclusion", "The decisive entry does not prove into the signed root."),
          ("map", "The map proof does not lead to the signed map root."),
          ("note", "The signed note does not verify or states another tree."),
      )),
    # --- contract failures: schema (batch-level) and expectations (per row) -----------------------------------
    _e("schema:duplicate_column:<column>", "batch", 1, "The batch has two columns with this name.",
       "Fix the producer of the data so that column names are unique."),
    _e("schema:empty_batch", "batch", 1, "The batch has no rows.", "Check the producer of the data."),
    _e("schema:extra_column:<column>", "batch", 1,
       "The batch has a column the contract does not list (and the contract allows no extra columns).",
       "Add the column to the contract if it is expected, or drop it upstream."),
    _e("schema:missing_column:<column>", "batch", 1, "A column of the contract is missing from the batch.",
       "Fix the producer of the data, or remove the column from the contract."),
    _e("schema:type:<column>", "batch", 1, "The column's storage type cannot hold the contract's logical type.",
       "Fix the column's type upstream, or the contract's type."),
    _e("expect:error:<column>", "batch", 1,
       "An expectation could not be evaluated: its column is absent or Great Expectations failed on it.",
       "Fix the expectation's arguments or the data it reads."),
    _e("expect:in_range:<column>", "row", None, "The value is below the contract's min or above its max.",
       "Check the row; widen min/max in the contract if the value is legitimate."),
    _e("expect:in_set:<column>", "row", None, "The value is not one of the contract's allowed values.",
       "Check the row; add the value to allowed if it is legitimate."),
    _e("expect:label_class:<column>", "row", None, "The label is not one of the contract's classes.",
       "Check the row; add the class to the contract if it is new and legitimate."),
    _e("expect:length:<column>", "row", None, "The text is shorter than min_length or longer than max_length.",
       "Check the row, or the contract's lengths."),
    _e("expect:not_null:<column>", "row", None, "The value is missing in a column the contract says is not nullable.",
       "Fill the value upstream, or set nullable = true in the contract."),
    _e("expect:pattern:<column>", "row", None, "The text does not match the contract's pattern.",
       "Check the row, or the pattern."),
    _e("expect:type:<column>", "row", None, "The value cannot be read as the contract's type.",
       "Fix the value upstream (the failures table shows it)."),
    _e("expect:unique:<column>", "row", None, "The value repeats in a column the contract says is unique.",
       "Remove the duplicates upstream, or drop unique from the contract."),
    _e("expect:<expectation>:<column>", "row", None,
       "A row fails the contract's [[expectations]] entry of this name (`expect_column_values_to_` left off); "
       "`*` when it names no column.", "Check the row against that expectation."),
    # --- row reasons of scores.parquet -------------------------------------------------------------------------
    *(_e(f"outlier:{name}", "row", None, f"The row lies far from the trusted reference in feature space ({what}).",
         "Check the row's values (the feature= reasons name the most deviant columns); quarantined rows stay out "
         "of clean.parquet.")
      for name, what in (("ecod", "ECOD, per-feature tail probabilities"), ("hbos", "HBOS, histogram density"),
                         ("iforest", "isolation forest"), ("knn", "distance to the nearest reference rows"))),
    _e("outlier:ecod:feature=<column>", "row", None, "One of the columns in which the outlying row deviates most.",
       "Look at this column of the row first."),
    _e("outlier:too_typical", "row", None,
       "The row sits at the very centre of the reference with a doubted label, in a batch holding significantly "
       "more such rows than trusted data (generated, averaged or shrunk rows).",
       "Check where the batch's rows came from; central rows with doubted labels are a poisoning pattern."),
    _e("label:inconsistent", "row", None, "The trusted label model finds the row's label unlikely for its features.",
       "Check the label; with --relabel the suggested label may replace it."),
    _e("label:knn_disagreement", "row", None, "The row's nearest trusted neighbours carry another label.",
       "Check the label; with --relabel the suggested label may replace it."),
    _e("label:prior_shift", "row", None,
       "The row's class is far more frequent in the batch than in the reference, and the row is among its most "
       "doubted (a targeted label flip moves many rows into one class).", "Check the labels of that class."),
    _e("label:unseen", "row", None, "The label is a class the reference never holds.",
       "Check the label; add the class to the reference if it is new and legitimate."),
    _e("duplicate:conflicting_label", "row", None,
       "The row duplicates another (in the batch or the reference) that carries a different label.",
       "Keep the copy whose label is right."),
    _e("duplicate:exact", "row", None, "The row is an exact copy of another row of the batch or the reference.",
       "Usually harmless alone; check for repeated records upstream."),
    _e("duplicate:flood", "row", None,
       "Far more copies of this point (or near-copies) than the reference's rate predicts.",
       "Check the source: a flood of copies skews training."),
    _e("cluster:backdoor", "row", None,
       "The row carries a value that is rare in the reference but frequent in the batch, nearly always with one "
       "label: a likely backdoor trigger.", "Check the rows holding the trigger value (the feature= reasons name it)."),
    _e("cluster:backdoor:feature=<column>", "row", None, "The column holding the suspected backdoor trigger value.",
       "Look at this column of the flagged rows."),
    _e("cluster:backdoor:features=<column_a>,<column_b>", "row", None,
       "The pair of columns whose combined values are the suspected backdoor trigger.",
       "Look at these columns of the flagged rows."),
    _e("cluster:dense_label_group", "row", None,
       "The row is in a dense group of same-label rows whose labels the trusted model doubts.",
       "Check the labels of the group (clean-label collisions, relabelled clusters)."),
    _e("cluster:density_excess", "row", None,
       "The row's region holds far more batch rows than the reference's density explains, with doubted labels.",
       "Check the rows of that region (collision poisoning packs rows around one point)."),
    _e("source:compromised:<name>", "row", None,
       "The row came from a source whose rows stand out as a whole (suspicion, label doubt or features).",
       "Investigate that source; its whole contribution is quarantined."),
    _e("score:adaptive", "row", None,
       "Below the budget's threshold but above the cut widened for a significantly contaminated batch.",
       "Check the row with the batch's other flagged rows."),
    _e("score:combined", "row", None, "No single detector crossed the threshold, but their combined evidence did.",
       "Check the row's score_<detector> columns."),
    _e("campaign:<reason>", "row", None,
       "The batch row matches a cluster or duplicate pattern across the source's recent approved batches (the "
       "reason after `campaign:` says which).", "Check the source's recent batches: poison may arrive spread over "
       "several of them."),
    # --- verdict reasons (summary.json, the ledger entry) ------------------------------------------------------
    _e("policy:contract", "batch", 1,
       "Contract failures of a kind the policy rejects on (or batch-level failures); the kind and columns follow.",
       "Fix the data, or the contract, or reject_on_contract in the policy."),
    _e("policy:drift", "batch", 1, "More columns drifted from the reference than max_drift_share allows.",
       "Check the drift table in the report; if the change is expected, approve a new reference."),
    _e("policy:min_rows", "batch", 1, "The batch has fewer rows than min_rows.", "Check that the batch is complete."),
    _e("policy:no_clean_rows", "batch", 1, "Every row of the batch was quarantined.",
       "Check the batch: nothing in it passed."),
    _e("policy:quarantined_share", "batch", 1, "More rows were quarantined than max_quarantined_share allows.",
       "Check the flagged rows in the report; the batch as a whole looks poisoned or broken."),
    _e("policy:rejected", "error", 1, "The policy rejected the batch; the ledger has a `rejected` entry for it.",
       "Read the verdict's reasons (summary.json, report.html)."),
    _e("ledger:refused_before", "batch", 1,
       "These bytes were refused by an earlier ledger entry, which still stands; the batch is rejected again.",
       "Have a trusted approver run `trainguard approve DIGEST --reason ...` if the bytes are good."),
)


def _build(entries: tuple[Reason, ...]) -> dict[str, Reason]:
    out: dict[str, Reason] = {}
    for entry in entries:
        if entry.code in out:
            raise ValueError(f"reason code {entry.code!r} is catalogued twice")
        if entry.kind not in KINDS or any(code not in EXIT_CODES for code in entry.exit_codes):
            raise ValueError(f"reason code {entry.code!r} has a bad kind or exit code")
        out[entry.code] = entry
    return out


#: Every reason code, by code (families by their placeholder form).
CATALOGUE: dict[str, Reason] = _build(_ENTRIES)


@lru_cache(maxsize=1)
def _families() -> tuple[tuple[re.Pattern[str], Reason], ...]:
    """Families as full-match patterns, the most specific (most literal characters) first."""
    fams = [e for e in CATALOGUE.values() if e.is_family]
    fams.sort(key=lambda e: (-len(_PLACEHOLDER.sub("", e.code)), e.code))
    return tuple((re.compile(".+".join(map(re.escape, _PLACEHOLDER.split(e.code))), re.DOTALL), e) for e in fams)


def _match(code: str) -> Reason | None:
    entry = CATALOGUE.get(code)
    if entry is not None:
        return entry
    for pattern, fam in _families():
        if pattern.fullmatch(code):
            return fam
    return None


def lookup(code: str) -> Reason | None:
    """The catalogue entry of a concrete code, or None when it is not catalogued.

    Tried in order: the code itself; the most specific family it belongs to (``expect:in_range:age`` ->
    ``expect:in_range:<column>``); a verdict reason's code without the numbers after its first space
    (``policy:min_rows 3 < 10``); a failure kind, i.e. a code without its trailing part
    (``schema:missing_column`` -> ``schema:missing_column:<column>``, as in the policy's ``reject_on_contract``).
    """
    entry = _match(code)
    if entry is None and " " in code:
        entry = _match(code.split(" ", 1)[0])
    if entry is None and ":" in code and not code.endswith(":"):
        kinds = [e for c, e in CATALOGUE.items() if c.startswith(code + ":")]
        entry = min(kinds, key=lambda e: len(e.code)) if kinds else None
    return entry


def anchor(code: str) -> str | None:
    """The id of the anchor of ``code``'s entry in docs/reason-codes.md (link ``reason-codes.md#<id>``), or None
    when the code is not catalogued."""
    entry = lookup(code)
    return entry.anchor if entry is not None else None


def area_of(code: str) -> str:
    """The area of a code: the part before the first colon (``data`` of ``data:empty_file``)."""
    return code.split(":", 1)[0]
