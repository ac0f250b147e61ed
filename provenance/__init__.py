"""trainguard provenance: a signed, hash-chained RFC 6962 Merkle log of ingestion decisions, and the gate.

Decisions recorded here (contracts in DESIGN.md):

- An entry is an in-toto Statement v1 (``provenance.entries``) stored as its canonical JSON bytes (sorted keys, no
  spaces, UTF-8). Predicate types ``https://trainguard.dev/ingestion/v1`` and ``.../override/v1`` are accepted;
  any other version is refused on write and on read.
- Hash chain: ``predicate.previous`` holds the leaf hash (hex) of the entry before it (``null`` for entry 0). The
  ledger sets it inside the append transaction, so the link is part of the hashed, signed bytes.
- Merkle tree: ``leaf = SHA-256(0x00 || entry bytes)``, ``node = SHA-256(0x01 || left || right)``; every perfect
  subtree is stored once, so appends and proofs are O(log n). The entry hash is the leaf hash.
- Each append signs a checkpoint ``{origin, tree_size, root_hash, timestamp, key_id, signature}`` with Ed25519.
- Lookup by dataset digest goes through an index table beside the tree; every answer carries an inclusion proof
  checked against the latest checkpoint, whose signature is checked against the trusted keys (fail closed).
- Overrides (``trainguard approve``) are entries with verdict ``override`` whose ``predicate.approval`` holds the
  approver's ``key_id`` and signature over the statement without ``previous`` and without that signature; the gate
  honours them only for trusted approver keys.

Example::

    >>> from provenance.ledger import open_ledger                     # doctest: +SKIP
    >>> from provenance.gate import require_approved                  # doctest: +SKIP
    >>> require_approved("clean.parquet", ledger=open_ledger())       # doctest: +SKIP
"""

__all__ = ["bundle", "entries", "errors", "gate", "hashing", "ledger", "merkle", "signing"]
