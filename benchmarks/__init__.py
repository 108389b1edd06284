"""Reproducible measurements against named baselines (`make bench`)."""
