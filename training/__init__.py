"""Training, evaluation and data tooling for ovmlv (not shipped with Hub models)."""
