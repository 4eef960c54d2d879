"""Judges: models or services that score a response where a phrase list cannot (toxicity)."""
