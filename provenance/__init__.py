"""trainguard: provenance."""
