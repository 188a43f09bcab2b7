"""Celery entry points: thin wrappers that claim a job row, call a service or the engine, and record results."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

import celery
from celery import shared_task

from workers import task_names
from workers.runtime import JobContext, job_task

# Upper bound for the diagnostics job's optional pause (tests use it to kill a worker mid-job).
DIAGNOSTICS_MAX_SLEEP = 60


@job_task(task_names.DIAGNOSTICS)
def diagnostics(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Proves web -> broker -> worker -> database: each step reports progress; the result names the worker."""
    from django.db import connection

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


@job_task(task_names.CONSENT_IMPORT)
def consent_import(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.consent.services import consent_import_run

    return consent_import_run(
        consent_import_id=spec["consent_import_id"], progress=lambda fraction, message: ctx.progress(fraction, message)
    )


@shared_task(name=task_names.REAP_EXPIRED_JOBS, expires=55)
def reap_expired_jobs() -> dict[str, int]:
    """Beat, every minute: jobs whose worker died go back to the queue or fail; none stays running."""
    from apps.jobs.services import job_reap_expired

    return job_reap_expired()


@job_task(task_names.DATASET_PROFILE)
def dataset_profile(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.services import dataset_version_profile

    return dataset_version_profile(
        version_id=spec["version_id"], progress=lambda fraction, message: ctx.progress(fraction, message, force=True)
    )


@job_task(task_names.DATASET_PREPARE)
def dataset_prepare(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.services import dataset_version_prepare

    return dataset_version_prepare(
        version_id=spec["version_id"],
        actor_id=ctx.job.created_by_id,
        progress=lambda fraction, message: ctx.progress(fraction, message, force=True),
    )


@shared_task(name=task_names.DATASET_RETENTION, expires=3600)
def dataset_retention() -> list[str]:
    """Beat, daily: erase dataset versions past their retention date (their data keys are destroyed)."""
    from apps.datasets.services import dataset_version_erase_expired

    return dataset_version_erase_expired()
