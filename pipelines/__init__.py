"""trainguard: pipelines."""
