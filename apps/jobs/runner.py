"""Running one job through its whole lifecycle: claim, run, record the outcome, settle every kind of failure.

The Celery tasks in ``workers/tasks.py`` are thin registrations around :func:`job_execute`; the demo seed and the tests
run jobs through the same function (:func:`job_run_inline`), so there is one lifecycle whoever runs a job.

Outcomes:

- success -> SUCCEEDED with the run's result, and the kind's ``on_success`` in the same transaction;
- ``AttestError`` (bad data, refused budget, ...) -> FAILED with its message, never retried;
- ``JobCancelled`` -> CANCELLED;
- the soft time limit -> FAILED ("time_limit");
- transient infrastructure errors (database or broker connection) -> back to QUEUED and :class:`RetryLater` for the
  caller to retry with backoff, bounded by the job row's attempts; FAILED once they are used up;
- anything else -> FAILED with the exception's type (the traceback goes to the worker log).

Every path that ends in FAILED or CANCELLED calls the kind's ``on_failure``; so do the reaper (a lost worker) and
cancelling a queued job (``apps.jobs.services``).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection

from apps.audit.context import current_request_id
from apps.core.errors import AttestError
from apps.jobs import registry
from apps.jobs.models import Job

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (OperationalError, InterfaceError, ConnectionError)
try:  # kombu/redis connection errors are transient too
    from kombu.exceptions import OperationalError as KombuOperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError

    TRANSIENT_ERRORS += (KombuOperationalError, RedisConnectionError)
except ImportError:  # pragma: no cover
    pass

MAX_BACKOFF_SECONDS = 300


class JobCancelled(Exception):
    """Raised inside a job's run when its cancellation was requested."""

    def __init__(self, result: dict[str, Any] | None = None) -> None:
        super().__init__("cancelled")
        self.result = result or {}


class RetryLater(Exception):
    """A transient error with attempts left: the job is queued again; the caller retries after ``countdown``."""

    def __init__(self, countdown: float, cause: BaseException) -> None:
        super().__init__(f"retry in {countdown:.1f}s: {cause!r}")
        self.countdown = countdown
        self.cause = cause


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class JobContext:
    """What a job's run may do with its job: report progress and find out whether to stop."""

    job: Job
    _lease_stop: threading.Event = field(default_factory=threading.Event)

    @property
    def spec(self) -> dict[str, Any]:
        return self.job.spec

    def progress(self, fraction: float, message: str = "", force: bool = False, **data: Any) -> None:
        from apps.jobs.services import job_report_progress

        job_report_progress(job=self.job, fraction=fraction, message=message, data=data or None, force=force)

    def progress_callback(self) -> Any:
        """A plain ``(fraction, message)`` callable for services that know nothing of jobs."""
        return lambda fraction, message: self.progress(fraction, message, force=True)

    def cancel_requested(self) -> bool:
        return bool(Job.objects.filter(id=self.job.id).values_list("cancel_requested", flat=True).first())

    def raise_if_cancelled(self, result: dict[str, Any] | None = None) -> None:
        if self.cancel_requested():
            raise JobCancelled(result)


def _renew_lease_until(stop: threading.Event, job: Job, interval: float) -> None:
    from apps.jobs.services import job_renew_lease

    try:
        while not stop.wait(interval):
            try:
                if not job_renew_lease(job=job):
                    return
            except Exception:  # a failed renewal must not kill the job; the next one may succeed
                logger.warning("Lease renewal failed for job %s", job.id, exc_info=True)
    finally:
        connection.close()


def job_settle_failure(job: Job) -> None:
    """Call the kind's ``on_failure`` for a job that ended failed or cancelled. Never raises: the job row already
    tells the truth, so a settlement error is logged and the next reaper pass cannot make things worse."""
    try:
        kind = registry.get(job.kind)
    except LookupError:
        return
    if kind.on_failure is None:
        return
    try:
        kind.on_failure(job=Job.objects.get(pk=job.pk))
    except Exception:
        logger.exception("Settling the failure of job %s (%s) failed", job.id, job.kind)


def _fresh_connection() -> None:
    """A worker drops a broken or stale connection before it touches the database. Inside a transaction (an inline
    run in a test, or a caller's atomic block) the connection is the caller's and is left alone."""
    if not connection.in_atomic_block:
        close_old_connections()


def _unexpected_message(exc: BaseException) -> str:
    # The exception's own text can quote data (a value that failed to parse): it stays in the worker log.
    return (
        f"The job stopped on an internal error ({type(exc).__name__}). Nothing was published; "
        "the operators have the details in the worker log. Try again, or contact them if it happens again."
    )


def job_execute(job_id: Any, *, worker: str | None = None, renew_lease: bool = True) -> Job | None:
    """Claim the job and run it to an end. None when the claim fails (a duplicate delivery, or another worker holds
    it). Raises :class:`RetryLater` for transient errors with attempts left."""
    from apps.jobs.services import job_claim, job_fail, job_mark_cancelled, job_release_for_retry, job_succeed

    _fresh_connection()
    job = job_claim(job_id=job_id, worker=worker or worker_name())
    if job is None:
        logger.info("Job %s not claimable (done, held by another worker, or out of attempts)", job_id)
        return None
    kind = registry.get(job.kind)
    token = current_request_id.set(job.request_id or f"job-{job.id}")
    context = JobContext(job=job)
    if renew_lease:
        threading.Thread(
            target=_renew_lease_until,
            args=(context._lease_stop, job, max(1.0, settings.JOB_LEASE_SECONDS / 3)),
            daemon=True,
        ).start()
    ended_badly = False
    try:
        result = kind.run(context, job.spec)
    except JobCancelled as exc:
        ended_badly = job_mark_cancelled(job=job, result=exc.result)
    except AttestError as exc:
        ended_badly = job_fail(job=job, code=exc.code, message=exc.message, details=exc.details)
    except SoftTimeLimitExceeded:
        ended_badly = job_fail(
            job=job,
            code="time_limit",
            message="The job ran past its time limit and was stopped. Nothing was published.",
        )
    except TRANSIENT_ERRORS as exc:
        context._lease_stop.set()
        _fresh_connection()
        if job.attempt >= job.max_attempts:
            ended_badly = job_fail(
                job=job,
                code="transient_error",
                message=f"The database or message broker could not be reached after {job.attempt} attempts.",
            )
        else:
            job_release_for_retry(job=job)
            countdown = min(MAX_BACKOFF_SECONDS, 2**job.attempt) + random.uniform(0, 1)  # noqa: S311 - jitter
            logger.warning("Transient error in job %s, retrying in %.1fs", job.id, countdown, exc_info=True)
            raise RetryLater(countdown, exc) from exc
    except Exception as exc:
        logger.exception("Job %s failed", job.id)
        ended_badly = job_fail(job=job, code="error", message=_unexpected_message(exc))
    else:
        job_succeed(job=job, result=result, on_success=kind.on_success)
    finally:
        context._lease_stop.set()
        current_request_id.reset(token)
    if ended_badly:
        job_settle_failure(job)
    return Job.objects.get(pk=job.pk)


def job_run_inline(job: Job) -> Job:
    """Run a queued job in this process through the same lifecycle (the demo seed; tests). Returns the ended job."""
    ended = job_execute(job.id, worker=f"inline:{worker_name()}", renew_lease=False)
    if ended is None:
        raise RuntimeError(f"job {job.id} could not be claimed")
    return ended
