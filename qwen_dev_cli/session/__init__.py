"""Conversations on disk (append-only JSONL, resumable after a crash) and the log of
each run's telemetry."""
