"""Celery entry points: thin wrappers that claim a job row, call the engine and record results."""
