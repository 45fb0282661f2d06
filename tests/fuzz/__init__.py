"""Fuzzing of the raw-message path (hypothesis; atheris harness by hand)."""
