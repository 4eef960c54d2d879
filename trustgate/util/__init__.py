"""Shared helpers every stage may use: on-disk storage (atomic entries, locks, cache keys),
the user-facing error type, and progress output. Nothing here imports another trustgate stage."""
