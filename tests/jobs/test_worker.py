"""Real worker processes through a real redis-server: the round trip and a worker killed mid-job."""

import os
import time

import pytest

from apps.audit.models import AuditEvent
from apps.jobs.models import Job
from apps.jobs.services import job_diagnostics_start, job_reap_expired

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=60, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


def test_a_diagnostics_job_goes_through_broker_and_worker_and_back(org, admin_user, celery_worker):
    worker = celery_worker()
    job = job_diagnostics_start(actor=admin_user, organisation=org)
    job = wait_for(lambda: Job.objects.filter(id=job.id, status=Job.Status.SUCCEEDED).first(), timeout=60)
    assert job.result["worker_pid"] == worker.pid != os.getpid()
    assert job.result["database"] == "postgresql" or job.result["database"] == "sqlite"
    assert job.progress == 1.0
    assert job.attempt == 1


def test_a_job_whose_worker_is_killed_runs_to_the_end_exactly_once_elsewhere(org, admin_user, celery_worker):
    first = celery_worker()
    job = job_diagnostics_start(actor=admin_user, organisation=org, sleep_seconds=6)
    wait_for(lambda: Job.objects.filter(id=job.id, status=Job.Status.RUNNING, progress__gt=0.3).exists())
    first.kill()  # SIGKILL to the whole process group: no chance to clean up
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING  # what a dead worker leaves behind...

    second = celery_worker()
    # ...until its lease expires; the reaper (beat, every minute in production) then puts it back on the queue.
    wait_for(
        lambda: job_reap_expired()["requeued"] == 1 or Job.objects.get(id=job.id).attempt == 2, timeout=30, interval=0.5
    )
    job = wait_for(lambda: Job.objects.filter(id=job.id).exclude(status__in=["queued", "running"]).first(), timeout=60)
    assert job.status == Job.Status.SUCCEEDED
    assert job.attempt == 2
    assert job.result["worker_pid"] == second.pid
    assert AuditEvent.objects.filter(action="job.succeed", object_id=str(job.id)).count() == 1
    assert not Job.objects.filter(status=Job.Status.RUNNING).exists()
