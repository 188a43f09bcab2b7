"""Job lifecycle: create and enqueue after commit, claim by conditional update, lease, progress, finish, reap.

Audit: a job is created inside the service that asked for it, and that service's one audit event names the job; the
job's end (succeeded, failed, cancelled) and a cancellation request write one event each. Events carry digests and
counts, never a job's spec or result (a scoring batch, predictions): those stay on the job row, which retention can
remove. Claims, progress and lease renewals are operational telemetry (thousands per training run) and are not audited.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.accounts.models import Organisation, User
from apps.accounts.selectors import roles_in
from apps.audit.context import current_request_id
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied
from apps.jobs.models import Job

logger = logging.getLogger(__name__)
S = Job.Status

# Progress is written at most this often (seconds) unless forced: a training loop reports every step.
PROGRESS_MIN_INTERVAL = 0.5
_last_progress_write: dict[str, float] = {}


# A queued job whose message has not been picked up after this long is sent again (lost message, broker restart).
STALE_QUEUED_SECONDS = 300


def _enqueue(job: Job) -> None:
    """Send the task; a broker outage must not turn a committed request into an error, so it is logged and the
    reaper sends stale queued jobs again (a second delivery is harmless: the claim lets only one run)."""
    from portal.celery import app as celery_app

    try:
        celery_app.send_task(job.task_name, args=[str(job.id)], queue=job.queue)
    except Exception:  # noqa: BLE001 - any broker error; the row stays QUEUED and is retried by the reaper
        logger.exception("Could not send job %s to the broker; the reaper will send it again", job.id)


def payload_digest(payload: Any) -> dict[str, Any]:
    """What the audit log may keep of a job's spec or result: its sha256 and size, never its content."""
    data = json.dumps(payload or {}, sort_keys=True, default=str).encode()
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def job_create(
    *,
    actor: User | None,
    organisation: Organisation | None,
    kind: str,
    spec: dict[str, Any] | None = None,
    target: models.Model | None = None,
    max_attempts: int | None = None,
) -> Job:
    """Create a queued job of a declared kind and send its task by name once the surrounding transaction commits.

    Writes no audit event: the calling service's own event names the job (one event per service).
    """
    from apps.jobs.registry import get as kind_of

    declared = kind_of(kind)
    with transaction.atomic():
        job = Job.objects.create(
            organisation=organisation,
            kind=kind,
            task_name=declared.task_name,
            queue=declared.queue,
            spec=spec or {},
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            request_id=current_request_id.get(),
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            max_attempts=max_attempts or declared.max_attempts or settings.JOB_MAX_ATTEMPTS,
        )
        # The worker must find the committed row: enqueue only after commit (never inside the transaction).
        transaction.on_commit(lambda: _enqueue(job))
    return job


def job_claim(*, job_id: Any, worker: str) -> Job | None:
    """Take a job for this worker with ONE conditional UPDATE; None when another worker has it (or it is done).

    Claimable: QUEUED, or RUNNING whose lease expired (its worker died), and attempts left.
    """
    now = timezone.now()
    claimable = Q(status=S.QUEUED) | Q(status=S.RUNNING, lease_expires_at__lt=now)
    changed = Job.objects.filter(claimable, id=job_id, attempt__lt=F("max_attempts"), cancel_requested=False).update(
        status=S.RUNNING,
        attempt=F("attempt") + 1,
        worker=worker[:200],
        lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        started_at=now,
        updated_at=now,
    )
    if changed != 1:
        return None
    return Job.objects.get(id=job_id)


def job_renew_lease(*, job: Job) -> bool:
    """Extend the lease of a job this worker holds; False when it no longer holds it (reaped or reassigned)."""
    now = timezone.now()
    changed = Job.objects.filter(id=job.id, status=S.RUNNING, attempt=job.attempt).update(
        lease_expires_at=now + timedelta(seconds=settings.JOB_LEASE_SECONDS), updated_at=now
    )
    return changed == 1


def job_report_progress(
    *, job: Job, fraction: float, message: str = "", data: dict[str, Any] | None = None, force: bool = False
) -> bool:
    """Record progress (0..1) and renew the lease, at most every PROGRESS_MIN_INTERVAL seconds unless forced.

    Returns whether the job has been asked to cancel, so loops can stop promptly.
    """
    key = f"{job.id}:{job.attempt}"
    now_mono = time.monotonic()
    if not force and now_mono - _last_progress_write.get(key, 0.0) < PROGRESS_MIN_INTERVAL:
        return job.cancel_requested
    _last_progress_write[key] = now_mono
    now = timezone.now()
    fields: dict[str, Any] = {
        "progress": max(0.0, min(1.0, float(fraction))),
        "progress_message": message[:300],
        "lease_expires_at": now + timedelta(seconds=settings.JOB_LEASE_SECONDS),
        "updated_at": now,
    }
    if data is not None:
        fields["progress_data"] = data
    Job.objects.filter(id=job.id, status=S.RUNNING, attempt=job.attempt).update(**fields)
    job.cancel_requested = Job.objects.filter(id=job.id).values_list("cancel_requested", flat=True).first() or False
    return job.cancel_requested


def _finish(job: Job, status: str, **fields: Any) -> bool:
    now = timezone.now()
    changed = Job.objects.filter(id=job.id, status=S.RUNNING, attempt=job.attempt).update(
        status=status, finished_at=now, lease_expires_at=None, updated_at=now, **fields
    )
    _last_progress_write.pop(f"{job.id}:{job.attempt}", None)
    return changed == 1


def job_succeed(*, job: Job, result: dict[str, Any] | None = None, on_success: Any = None) -> bool:
    """Mark the job succeeded (and run the kind's ``on_success`` in the same transaction); False, with nothing
    written, if this attempt no longer holds it."""
    with transaction.atomic():
        if not _finish(job, S.SUCCEEDED, result=result or {}, progress=1.0):
            return False
        if on_success is not None:
            on_success(job=job, result=result or {})
        audit_record(
            actor=None,
            organisation=job.organisation_id,
            action="job.succeed",
            target=job,
            after={"kind": job.kind, "attempt": job.attempt, "result": payload_digest(result)},
            request_id=job.request_id,
        )
    return True


def job_fail(*, job: Job, code: str, message: str, details: Any = None) -> bool:
    """Mark the job failed with a message people can read; the audit event keeps the code and a digest only."""
    error = {"code": code, "message": message, "details": details or {}}
    with transaction.atomic():
        if not _finish(job, S.FAILED, error=error):
            return False
        audit_record(
            actor=None,
            organisation=job.organisation_id,
            action="job.fail",
            target=job,
            after={"kind": job.kind, "attempt": job.attempt, "code": code, "error": payload_digest(error)},
            request_id=job.request_id,
        )
    return True


def job_mark_cancelled(*, job: Job, result: dict[str, Any] | None = None) -> bool:
    """The worker stopped a running job on request."""
    with transaction.atomic():
        if not _finish(job, S.CANCELLED, result=result or {}):
            return False
        audit_record(
            actor=None,
            organisation=job.organisation_id,
            action="job.cancelled",
            target=job,
            after={"kind": job.kind, "attempt": job.attempt, "result": payload_digest(result)},
            request_id=job.request_id,
        )
    return True


def job_release_for_retry(*, job: Job) -> None:
    """A transient error: give the job back to the queue (the task retries; attempts stay counted)."""
    Job.objects.filter(id=job.id, status=S.RUNNING, attempt=job.attempt).update(
        status=S.QUEUED, lease_expires_at=None, worker="", updated_at=timezone.now()
    )


def job_diagnostics_start(*, actor: User, organisation: Organisation, sleep_seconds: float = 0) -> Job:
    """Launch the diagnostics job (org admins): proves web -> broker -> worker -> database."""
    from apps.jobs.permissions import can_run_diagnostics

    if not roles_in(actor, organisation):
        raise NotFound()
    if not can_run_diagnostics(actor, organisation):
        raise PermissionDenied("Only org admins run diagnostics.")
    with transaction.atomic():
        job = job_create(
            actor=actor,
            organisation=organisation,
            kind="diagnostics",
            spec={"sleep_seconds": max(0.0, min(float(sleep_seconds), 60.0))},
        )
        audit_record(
            actor=actor, organisation=organisation, action="job.diagnostics", target=job, after={"kind": job.kind}
        )
    return job


def job_cancel(*, actor: User, job: Job) -> Job:
    """Ask a job to stop: a queued one is cancelled at once, a running one at its next progress report."""
    from apps.jobs.permissions import can

    if not can(actor, "view", job):
        raise NotFound()
    if not can(actor, "cancel", job):
        raise PermissionDenied("Only the person who started a job or an org admin can cancel it.")
    with transaction.atomic():
        locked = Job.objects.select_for_update().get(id=job.id)
        if locked.is_finished:
            raise InvalidState(f"The job has already {locked.get_status_display().lower()}.")
        before = locked.status
        locked.cancel_requested = True
        if locked.status == S.QUEUED:
            locked.status = S.CANCELLED
            locked.finished_at = timezone.now()
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="job.cancel",
            target=locked,
            before={"status": before},
            after={"status": locked.status, "cancel_requested": True},
        )
        if locked.status == S.CANCELLED:
            # A queued job never reaches a worker: settle its domain side here (a training run's reservation, ...).
            transaction.on_commit(lambda: _settle(locked))
    return locked


def _settle(job: Job) -> None:
    from apps.jobs.runner import job_settle_failure

    job_settle_failure(job)


def job_reap_expired() -> dict[str, int]:
    """Sweep RUNNING jobs whose lease expired: requeue those with attempts left, fail the others.

    This is what guarantees an interrupted job never stays "running": a killed worker stops renewing its lease.
    """
    now = timezone.now()
    requeued = failed = 0
    expired = Job.objects.filter(status=S.RUNNING, lease_expires_at__lt=now)
    for job in expired:
        if job.attempt < job.max_attempts and not job.cancel_requested:
            changed = Job.objects.filter(
                id=job.id, status=S.RUNNING, attempt=job.attempt, lease_expires_at__lt=now
            ).update(
                status=S.QUEUED,
                lease_expires_at=None,
                worker="",
                updated_at=now,
                progress_message=f"Worker lost during attempt {job.attempt}; queued again.",
            )
            if changed:
                requeued += 1
                transaction.on_commit(lambda job=job: _enqueue(job))
        else:
            message = (
                "Cancelled: the worker stopped before it could finish."
                if job.cancel_requested
                else (
                    "The worker running this job stopped without finishing (it was restarted, ran out of memory or "
                    f"lost its connection) on {job.attempt} attempt{'s' if job.attempt != 1 else ''}; Attest gave up. "
                    "Nothing was published. Start it again, or ask an operator if it happens again."
                )
            )
            status = S.CANCELLED if job.cancel_requested else S.FAILED
            with transaction.atomic():
                finished = _finish(job, status, error={"code": "worker_lost", "message": message, "details": {}})
                if finished:
                    failed += 1
                    audit_record(
                        actor=None,
                        organisation=job.organisation_id,
                        action=f"job.{status}",
                        target=job,
                        after={"kind": job.kind, "attempt": job.attempt, "code": "worker_lost"},
                        request_id=job.request_id,
                    )
            if finished:
                _settle(job)
    stale = Job.objects.filter(
        status=S.QUEUED, cancel_requested=False, updated_at__lt=now - timedelta(seconds=STALE_QUEUED_SECONDS)
    )
    for job in stale:
        Job.objects.filter(pk=job.pk).update(updated_at=now)
        transaction.on_commit(lambda job=job: _enqueue(job))
    if requeued or failed:
        logger.warning("Reaped expired jobs: %d requeued, %d failed", requeued, failed)
    return {"requeued": requeued, "failed": failed}
