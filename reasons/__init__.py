"""trainguard reasons: the one catalogue of reason codes and the error base every package shares.

The bottom of the layering: ``checks``, ``provenance`` and ``pipelines`` may all import it, and it imports none
of them (nor anything outside the standard library), so ``trainguard gate`` pays next to nothing for it.

- ``reasons.catalogue``: every code raised as an error or written as a reason (``data:empty_file``,
  ``expect:in_range:<column>``...), with its kind, meaning, exit code and what to do; ``lookup(code)``,
  ``anchor(code)``.
- ``reasons.errors``: ``TrainguardError(code, message)`` and its kinds (config, input, refused, integrity), the
  bases of each package's errors.
- ``reasons.docs``: ``python -m reasons.docs > docs/reason-codes.md`` writes the reference from the catalogue.
"""

__all__ = ["catalogue", "docs", "errors"]
