"""A worker killed with SIGKILL in the middle of DP training: the run never stays running, its completed steps'
privacy spend is committed exactly once, and no model is published."""

import time

import pytest

from apps.jobs.models import Job
from apps.training.models import ModelVersion, TrainingRun
from apps.training.services import budget_for, training_run_request
from tests.training.conftest import run_spec
from workers.tasks import reap_expired_jobs

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def wait_for(predicate, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def test_a_killed_training_worker_commits_completed_steps_once_and_publishes_nothing(
    celery_worker, owner, prepared_version
):
    worker = celery_worker("gpu")
    run = training_run_request(
        actor=owner, version=prepared_version, spec=run_spec(epochs=200, batch_size=8, model="mlp", target_epsilon=2.0)
    )
    wait_for(lambda: TrainingRun.objects.get(pk=run.pk).steps_completed > 20)
    worker.kill()
    run.refresh_from_db()
    # What a dead worker leaves: its job still "running" (until the lease expires), the reservation held.
    assert run.state == "running" and budget_for(prepared_version).reserved == pytest.approx(2.0)
    # After the lease expires, the reaper (beat, every minute) fails the job and its failure hook settles the run.
    wait_for(lambda: reap_expired_jobs()["failed"] == 1, timeout=30)
    run.refresh_from_db()
    assert run.state == "failed" and run.status == "stopped" and "No model was published" in run.failure
    assert Job.objects.get(pk=run.job_id).status == "failed"
    commit = run.budget_entries.get(kind="commit")
    assert commit.steps >= 20 and 0 < commit.epsilon < 2.0
    budget = budget_for(prepared_version)
    assert budget.reserved == 0 and budget.composed_spent == pytest.approx(commit.epsilon)
    assert not ModelVersion.objects.exists()
    assert reap_expired_jobs()["failed"] == 0  # never counted twice
    assert run.budget_entries.filter(kind="commit").count() == 1
