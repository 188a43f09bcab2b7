import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import NotFound, PermissionDenied
from apps.jobs.models import Job
from apps.jobs.services import (
    job_cancel,
    job_claim,
    job_create,
    job_diagnostics_start,
    job_fail,
    job_reap_expired,
    job_succeed,
)

S = Job.Status


def make_job(org, actor=None, **kwargs):
    return Job.objects.create(
        organisation=org, kind="diagnostics", task_name="attest.default.diagnostics", created_by=actor, **kwargs
    )


@pytest.mark.django_db
def test_a_job_is_enqueued_only_after_its_transaction_commits(org, admin_user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        job = job_create(actor=admin_user, organisation=org, kind="diagnostics")
    assert len(callbacks) == 1  # the send waits for commit
    assert job.status == S.QUEUED and job.task_name == "attest.default.diagnostics" and job.queue == "default"
    # Creating a job is part of the calling service's one event, never a second one.
    assert not AuditEvent.objects.filter(object_id=str(job.id)).exists()


@pytest.mark.django_db
def test_a_claim_takes_a_queued_job_once(org):
    job = make_job(org)
    claimed = job_claim(job_id=job.id, worker="w1")
    assert claimed is not None and claimed.status == S.RUNNING and claimed.attempt == 1
    assert job_claim(job_id=job.id, worker="w2") is None


@pytest.mark.django_db
def test_a_running_job_with_an_expired_lease_can_be_claimed_again(org):
    job = make_job(org)
    job_claim(job_id=job.id, worker="w1")
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = job_claim(job_id=job.id, worker="w2")
    assert again.attempt == 2 and again.worker == "w2"


@pytest.mark.django_db
def test_a_stale_attempt_cannot_finish_a_job_another_worker_holds(org):
    job = make_job(org)
    first = job_claim(job_id=job.id, worker="w1")
    Job.objects.filter(id=job.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = job_claim(job_id=job.id, worker="w2")
    assert job_succeed(job=first, result={"who": "w1"}) is False
    assert job_succeed(job=second, result={"who": "w2"}) is True
    job.refresh_from_db()
    assert job.result == {"who": "w2"}
    assert AuditEvent.objects.filter(action="job.succeed", object_id=str(job.id)).count() == 1


@pytest.mark.django_db
def test_the_reaper_requeues_lost_jobs_and_fails_them_when_attempts_run_out(org):
    retry = make_job(org)
    job_claim(job_id=retry.id, worker="w1")
    spent = make_job(org, max_attempts=1)
    job_claim(job_id=spent.id, worker="w1")
    healthy = make_job(org)
    job_claim(job_id=healthy.id, worker="w1")
    Job.objects.filter(id__in=[retry.id, spent.id]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert job_reap_expired() == {"requeued": 1, "failed": 1}
    retry.refresh_from_db(), spent.refresh_from_db(), healthy.refresh_from_db()
    assert retry.status == S.QUEUED
    assert (
        spent.status == S.FAILED
        and "stopped without finishing" in spent.error["message"]
        and "1 attempt;" in spent.error["message"]
    )
    assert healthy.status == S.RUNNING
    assert not Job.objects.filter(status=S.RUNNING, lease_expires_at__lt=timezone.now()).exists()


@pytest.mark.django_db
def test_failing_records_the_error_in_the_one_shape(org):
    job = make_job(org)
    claimed = job_claim(job_id=job.id, worker="w1")
    job_fail(job=claimed, code="invalid", message="Column 'age' vanished.", details={"column": "age"})
    job.refresh_from_db()
    assert job.error == {"code": "invalid", "message": "Column 'age' vanished.", "details": {"column": "age"}}
    assert job.lease_expires_at is None


@pytest.mark.django_db
def test_a_queued_job_is_cancelled_at_once_by_its_creator_but_not_by_a_colleague(org, owner, steward, outsider):
    job = make_job(org, actor=owner)
    with pytest.raises(PermissionDenied):
        job_cancel(actor=steward, job=job)
    with pytest.raises(NotFound):
        job_cancel(actor=outsider, job=job)
    assert job_cancel(actor=owner, job=job).status == S.CANCELLED
    assert job_claim(job_id=job.id, worker="w1") is None


@pytest.mark.django_db
def test_only_org_admins_start_diagnostics(org, admin_user, owner, outsider, django_capture_on_commit_callbacks):
    with pytest.raises(PermissionDenied):
        job_diagnostics_start(actor=owner, organisation=org)
    with pytest.raises(NotFound):
        job_diagnostics_start(actor=outsider, organisation=org)
    job = job_diagnostics_start(actor=admin_user, organisation=org, sleep_seconds=1000)
    assert job.spec == {"sleep_seconds": 60.0}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_the_same_job_at_once_get_it_exactly_once(org):
    winners = []
    for _round in range(20):
        job = make_job(org)
        barrier = threading.Barrier(4)
        results = []

        def claim(name, job_id=job.id, barrier=barrier, results=results):
            barrier.wait()
            results.append(job_claim(job_id=job_id, worker=name))
            connection.close()

        threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners.append(sum(1 for result in results if result is not None))
    assert winners == [1] * 20
