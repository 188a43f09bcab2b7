"""Celery entry points, thin: one task per job kind's task name, and the beat tasks.

A job task hands its job id to ``apps.jobs.runner.job_execute``, which claims the row, runs the kind declared in
``apps/<app>/jobs.py`` and settles every ending; the only Celery-specific rule here is retrying a transient error with
the countdown the runner chose. Beat tasks call one service each.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from workers import task_names


def _job_task(name: str) -> Any:
    @shared_task(name=name, bind=True, max_retries=None, acks_late=True, reject_on_worker_lost=True)
    def run_job(self: Any, job_id: str) -> None:
        from apps.jobs.runner import RetryLater, job_execute

        try:
            job_execute(job_id)
        except RetryLater as exc:
            raise self.retry(exc=exc.cause, countdown=exc.countdown) from exc

    return run_job


JOB_TASKS = {name: _job_task(name) for name in task_names.JOB_TASKS}


@shared_task(name=task_names.REAP_EXPIRED_JOBS, expires=55)
def reap_expired_jobs() -> dict[str, int]:
    """Beat, every minute: jobs whose worker died go back to the queue or fail (and are settled); none stays running."""
    from apps.jobs.services import job_reap_expired

    return job_reap_expired()


@shared_task(name=task_names.DATASET_RETENTION, expires=3600)
def dataset_retention() -> list[str]:
    """Beat, daily: erase dataset versions past their retention date (their data keys are destroyed), and access
    exports of data-subject requests past their expiry."""
    from apps.datasets.services import dataset_version_erase_expired
    from apps.rights.exports import export_packages_erase_expired

    erased = dataset_version_erase_expired()
    export_packages_erase_expired()
    return erased


@shared_task(name=task_names.FEEDBACK_RETENTION, expires=3600)
def feedback_retention() -> int:
    """Beat, daily: erase what people typed in feedback closed longer ago than its retention period."""
    from apps.deployments.feedback import feedback_erase_expired

    return feedback_erase_expired()


@shared_task(name=task_names.REVIEW_REMINDERS, expires=3000)
def review_reminders() -> int:
    """Beat, hourly: remind board members whose vote on an open review is due within two days (once a day each)."""
    from apps.ethics.services import reviews_remind_due

    return reviews_remind_due()


@shared_task(name=task_names.INCOMING_SWEEP, expires=3000)
def incoming_sweep() -> int:
    """Beat, hourly: delete what a killed process left in the incoming folder (spooled uploads older than the longest
    upload, encrypted files older than the longest upload and the longest job)."""
    from apps.core.uploads import incoming_sweep as sweep

    return sweep()


@shared_task(name=task_names.MONITORING_TICK, expires=3000)
def monitoring_tick() -> dict[str, object]:
    """Beat, hourly: queue the evaluation of monitoring windows that have ended, sweep expired production data, and
    check the approvals and waivers running deployments rest on."""
    from apps.deployments.services import monitoring_tick as tick

    return tick()


@shared_task(name=task_names.RIGHTS_RESUME, expires=280)
def rights_resume() -> int:
    """Beat, every five minutes: data-subject requests that waited for a training run go on once it has ended."""
    from apps.rights.services import subject_requests_resume_waiting

    return subject_requests_resume_waiting()
