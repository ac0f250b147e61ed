"""trainguard: checks."""
