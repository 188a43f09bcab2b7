"""Celery task names: the only thing the web side knows about workers (no imports, so the web stays light)."""

DIAGNOSTICS = "attest.default.diagnostics"
