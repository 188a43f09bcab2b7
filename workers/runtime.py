"""The rules every job task follows, in one place.

``@job_task(name)`` turns ``body(ctx, spec) -> dict`` into a Celery task taking a job id. It claims the job row
(returning quietly when the claim fails: a duplicate delivery or a job another worker holds), sets the request id,
renews the lease from a background thread, and records the outcome:

- success -> SUCCEEDED with the body's result;
- ``AttestError`` (bad data, refused budget, ...) -> FAILED with its message, never retried;
- ``JobCancelled`` -> CANCELLED;
- transient infrastructure errors (database or broker connection) -> the job goes back to QUEUED and the task
  retries with exponential backoff and jitter, bounded by the job row's attempts;
- anything else -> FAILED with the exception's type (the traceback goes to the worker log).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError, close_old_connections

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError)
try:  # kombu/redis connection errors are transient too
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    TRANSIENT_ERRORS += (KombuOperationalError, RedisConnectionError)
except ImportError:  # pragma: no cover
    pass


class JobCancelled(Exception):
    """Raised inside a job body when its cancellation was requested."""

    def __init__(self, result: dict[str, Any] | None = None) -> None:
        super().__init__("cancelled")
        self.result = result or {}


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """What a job body may do with its job: report progress and find out whether to stop."""

    job: Any
    _lease_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def spec(self) -> dict[str, Any]:
        return self.job.spec

    def progress(self, fraction: float, message: str = "", force: bool = False, **data: Any) -> None:
        from apps.jobs.services import job_report_progress

        job_report_progress(job=self.job, fraction=fraction, message=message, data=data or None, force=force)

    def cancel_requested(self) -> bool:
        from apps.jobs.models import Job

        return bool(Job.objects.filter(id=self.job.id).values_list("cancel_requested", flat=True).first())

    def raise_if_cancelled(self, result: dict[str, Any] | None = None) -> None:
        if self.cancel_requested():
            raise JobCancelled(result)


def _renew_lease_until(stop: threading.Event, job: Any, interval: float) -> None:
    from apps.jobs.services import job_renew_lease

    try:
        while not stop.wait(interval):
            try:
                if not job_renew_lease(job=job):
                    return
            except Exception:  # a failed renewal must not kill the job; the next one may succeed
                logger.warning("Lease renewal failed for job %s", job.id, exc_info=True)
    finally:
        from django.db import connection

        connection.close()


def job_task(name: str, *, max_backoff: int = 300) -> Callable[[Callable[..., dict[str, Any]]], Any]:
    def decorator(body: Callable[..., dict[str, Any]]) -> Any:
        @shared_task(name=name, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
        def task(self: Any, job_id: str) -> None:
            from django.conf import settings

            from apps.audit.context import current_request_id
            from apps.core.errors import AttestError
            from apps.jobs.services import (
                job_claim,
                job_fail,
                job_mark_cancelled,
                job_release_for_retry,
                job_succeed,
            )

            close_old_connections()
            job = job_claim(job_id=job_id, worker=worker_name())
            if job is None:
                logger.info("Job %s not claimable (done, held by another worker, or out of attempts)", job_id)
                return
            token = current_request_id.set(job.request_id or f"job-{job.id}")
            context = JobContext(job=job)
            renewer = threading.Thread(
                target=_renew_lease_until,
                args=(context._lease_stop, job, max(1.0, settings.JOB_LEASE_SECONDS / 3)),
                daemon=True,
            )
            renewer.start()
            try:
                result = body(context, job.spec)
            except JobCancelled as exc:
                job_mark_cancelled(job=job, result=exc.result)
            except AttestError as exc:
                job_fail(job=job, code=exc.code, message=exc.message, details=exc.details)
            except SoftTimeLimitExceeded:
                job_fail(job=job, code="time_limit", message="The job ran past its time limit and was stopped.")
            except TRANSIENT_ERRORS as exc:
                context._lease_stop.set()
                close_old_connections()
                if job.attempt >= job.max_attempts:
                    job_fail(
                        job=job,
                        code="transient_error",
                        message=f"Gave up after {job.attempt} attempts: {type(exc).__name__}: {exc}",
                    )
                    return
                job_release_for_retry(job=job)
                countdown = min(max_backoff, 2**job.attempt) + random.uniform(0, 1)  # noqa: S311 - jitter
                logger.warning("Transient error in job %s, retrying in %.1fs", job.id, countdown, exc_info=True)
                raise self.retry(exc=exc, countdown=countdown) from exc
            except Exception as exc:
                logger.exception("Job %s failed", job.id)
                job_fail(job=job, code="error", message=f"Unexpected error: {type(exc).__name__}: {exc}"[:500])
            else:
                job_succeed(job=job, result=result)
            finally:
                context._lease_stop.set()
                current_request_id.reset(token)

        task.job_body = body
        return task

    return decorator
