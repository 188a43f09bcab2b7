"""Celery task names: the only thing the web side knows about workers (no imports, so the web stays light).

Names carry their queue (``attest.default.*`` / ``attest.gpu.*``) so routing is visible where tasks are sent.
"""

DIAGNOSTICS = "attest.default.diagnostics"
REAP_EXPIRED_JOBS = "attest.default.reap_expired_jobs"
CONSENT_IMPORT = "attest.default.consent_import"
