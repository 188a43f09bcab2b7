"""The jobs app's own kind: diagnostics, which proves web -> broker -> worker -> database."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

from django.db import connection

from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from workers import task_names

# Upper bound for the diagnostics job's optional pause (tests use it to kill a worker mid-job).
DIAGNOSTICS_MAX_SLEEP = 60


def run_diagnostics(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Each step reports progress; the result names the worker."""
    import celery

    started = time.monotonic()
    ctx.progress(0.1, "Worker received the task", force=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    ctx.progress(0.3, "Database reachable from the worker", force=True)
    sleep_seconds = min(float(spec.get("sleep_seconds", 0) or 0), DIAGNOSTICS_MAX_SLEEP)
    deadline = time.monotonic() + sleep_seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled({"stopped_after_seconds": round(time.monotonic() - started, 2)})
        remaining = deadline - time.monotonic()
        ctx.progress(0.3 + 0.6 * (1 - remaining / sleep_seconds), f"Waiting ({remaining:.0f}s left)")
        time.sleep(min(0.2, max(remaining, 0)))
    queued_at = ctx.job.created_at.timestamp()
    return {
        "worker_hostname": socket.gethostname(),
        "worker_pid": os.getpid(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "database": connection.vendor,
        "queue": ctx.job.queue,
        "attempt": ctx.job.attempt,
        "queue_to_finish_seconds": round(time.time() - queued_at, 3),
    }


register(JobKind(kind="diagnostics", label="Diagnostics", task_name=task_names.DIAGNOSTICS, run=run_diagnostics))
