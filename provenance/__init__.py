"""trainguard provenance: a signed, hash-chained RFC 6962 Merkle log of ingestion decisions, and the gate.

Decisions recorded here (contracts in docs/design.md):

- An entry is an in-toto Statement v1 (``provenance.entries``) stored as its canonical JSON bytes (sorted keys, no
  spaces, UTF-8). Predicate types ``https://trainguard.dev/ingestion/v1`` and ``.../override/v1`` are accepted;
  any other version is refused on write and on read.
- Hash chain: ``predicate.previous`` holds the leaf hash (hex) of the entry before it (``null`` for entry 0). The
  ledger sets it inside the append transaction, so the link is part of the hashed, signed bytes.
- Merkle tree: ``leaf = SHA-256(0x00 || entry bytes)``, ``node = SHA-256(0x01 || left || right)``; every perfect
  subtree is stored once, so appends and proofs are O(log n). The entry hash is the leaf hash.
- Each append signs a checkpoint ``{origin, tree_size, root_hash, map_root, timestamp, key_id, signature}`` with
  Ed25519, and the same checkpoint as a C2SP signed note (``provenance.checkpoint_note``).
- Lookup by dataset digest goes through the verifiable index (``provenance.vmap``, ``provenance.index``): a sparse
  Merkle map from each subject digest to every entry naming it, whose root every checkpoint signs; a lookup is
  proven complete against the signed checkpoint and each entry inclusion-proved, trusting no database row.
- Overrides (``trainguard approve``) are entries with verdict ``override`` whose ``predicate.approval`` holds the
  approver's ``key_id`` and signature over the statement without ``previous`` and without that signature; the gate
  honours them only for trusted approver keys.

Example::

    >>> from provenance.ledger import open_ledger                     # doctest: +SKIP
    >>> from provenance.gate import require_approved                  # doctest: +SKIP
    >>> require_approved("clean.parquet", ledger=open_ledger())       # doctest: +SKIP
"""

__all__ = ["bundle", "checkpoint_note", "decision", "entries", "errors", "gate", "hashing", "index", "ledger", "merkle",
           "note", "overrides", "reading", "rotation", "signing", "vmap", "witness"]
