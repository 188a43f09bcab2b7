import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.errors import AttestError, PermissionDenied, ValidationFailed
from apps.datasets.models import DatasetVersion
from apps.jobs.models import Job
from apps.jobs.services import job_claim, job_reap_expired
from apps.training.models import BudgetEntry, ModelVersion, PrivacyBudget, TrainingRun
from apps.training.services import budget_for, training_run_request
from tests.conftest import run_inline
from tests.training.conftest import run_spec
from workers.engine.training.accounting import Mechanism, epsilon_spent

pytestmark = pytest.mark.django_db


def execute(run):
    """Run the training job in-process through the real lifecycle, exactly as a worker does; its result."""
    return run_inline(run.job_id).result


def test_a_private_run_trains_commits_its_spend_and_publishes_a_model(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    budget = budget_for(prepared_version)
    assert budget.reserved == pytest.approx(1.0)
    assert budget.delta == 1e-5  # 2,000 people: 1/(10 n) = 5e-5, rounded down to a power of ten
    result = execute(run)
    run.refresh_from_db()
    budget.refresh_from_db()
    assert run.status == "succeeded" and run.privacy["epsilon"] == pytest.approx(1.0, abs=0.02)
    assert budget.reserved == 0 and budget.composed_spent == pytest.approx(run.privacy["epsilon"])
    model = ModelVersion.objects.get(training_run=run)
    assert model.sha256 == result["model_sha256"]
    manifest = model.manifest
    assert manifest["dataset_sha256"] == prepared_version.sha256
    assert manifest["consent_snapshot_hash"] == prepared_version.consent_snapshot_hash
    assert manifest["privacy"]["noise_multiplier"] > 0 and manifest["libraries"]["opacus"]
    kinds = list(run.budget_entries.order_by("created_at").values_list("kind", flat=True))
    assert kinds == ["reserve", "commit"]


def test_two_runs_compose_below_the_naive_sum_and_a_third_is_refused_with_the_numbers(prepared_version, owner):
    for seed in (1, 2):
        execute(
            training_run_request(actor=owner, version=prepared_version, spec=run_spec(seed=seed, target_epsilon=2.0))
        )
    budget = budget_for(prepared_version)
    commits = list(BudgetEntry.objects.filter(kind="commit"))
    independent = epsilon_spent(
        [Mechanism(c.noise_multiplier, c.sample_rate, c.steps) for c in commits], budget.delta
    ).epsilon
    assert budget.composed_spent == pytest.approx(independent)
    assert budget.composed_spent < budget.naive_spent == pytest.approx(sum(c.epsilon for c in commits))
    with pytest.raises(AttestError) as caught:
        training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=3.0))
    assert caught.value.code == "budget_exceeded"
    assert caught.value.details["cap"] == 5.0 and caught.value.details["requested"] == 3.0
    assert "remaining" in caught.value.message


def test_launch_checks_refuse_with_a_reason(prepared_version, owner, steward, approved_usecase):
    with pytest.raises(PermissionDenied):
        training_run_request(actor=steward, version=prepared_version, spec=run_spec())
    with pytest.raises(AttestError, match="prepared"):
        training_run_request(actor=owner, version=prepared_version.parent, spec=run_spec())
    with pytest.raises(ValidationFailed) as caught:
        training_run_request(actor=owner, version=prepared_version, spec=run_spec(features=["applicant_id", "age"]))
    assert "identifiers" in caught.value.details["features"][0]
    DatasetVersion.objects.filter(pk=prepared_version.pk).update(consent_as_of=timezone.now() - timedelta(days=40))
    prepared_version.refresh_from_db()
    with pytest.raises(AttestError, match="40 days old"):
        training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    approved_usecase.status = "rejected"
    approved_usecase.save()
    with pytest.raises(AttestError, match="approval"):
        training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    assert not TrainingRun.objects.exists() and not PrivacyBudget.objects.filter(reserved__gt=0).exists()


def test_a_cancelled_run_commits_only_what_its_steps_spent_and_publishes_nothing(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(epochs=50))
    # Cancelled while running (the flag is read at the next step): the same lifecycle a worker runs.
    from apps.jobs import registry
    from apps.jobs.runner import job_execute

    kind = registry.get("training")
    original = kind.run

    def cancel_then_run(ctx, spec):
        Job.objects.filter(id=run.job_id).update(cancel_requested=True)
        return original(ctx, spec)

    object.__setattr__(kind, "run", cancel_then_run)
    try:
        ended = job_execute(run.job_id, worker="test", renew_lease=False)
    finally:
        object.__setattr__(kind, "run", original)
    run.refresh_from_db()
    budget = budget_for(prepared_version)
    assert ended.status == "cancelled" and run.state == "cancelled" and run.status == "stopped"
    assert not ModelVersion.objects.exists()
    assert budget.reserved == 0
    entry = run.budget_entries.exclude(kind="reserve").get()
    if run.steps_completed:
        assert entry.kind == "commit" and entry.epsilon < 1.0
    else:
        assert entry.kind == "release"


def test_a_lost_worker_commits_completed_steps_once_and_never_publishes(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec())
    # What a worker killed mid-run leaves behind: steps done, the plan, a running job whose lease expired.
    TrainingRun.objects.filter(pk=run.pk).update(
        steps_completed=7, planned={"noise_multiplier": 1.1, "sample_rate": 0.09, "total_steps": 22}
    )
    job_claim(job_id=run.job_id, worker="killed")
    Job.objects.filter(pk=run.job_id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert job_reap_expired()["failed"] == 1  # training has one attempt: a rerun would spend budget twice
    assert job_reap_expired()["failed"] == 0
    from apps.jobs.runner import job_settle_failure

    job_settle_failure(Job.objects.get(pk=run.job_id))  # a second settlement (a retried hook) changes nothing
    run.refresh_from_db()
    assert run.state == "failed" and "lost" in run.failure
    commit = run.budget_entries.get(kind="commit")
    assert commit.steps == 7
    assert commit.epsilon == pytest.approx(epsilon_spent([Mechanism(1.1, 0.09, 7)], 1e-5).epsilon)
    assert run.status == "stopped" and "No model was published" in run.error and not ModelVersion.objects.exists()
    assert budget_for(prepared_version).reserved == 0
    # Its noise came from the CSPRNG like every run's: the pages must not call its spent epsilon seeded.
    assert run.privacy["epsilon"] == pytest.approx(commit.epsilon) and not run.noise_is_seeded


def test_a_non_private_baseline_is_flagged_and_spends_no_budget(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(), non_private=True)
    execute(run)
    model = ModelVersion.objects.get(training_run=run)
    assert model.non_private and model.manifest["non_private"] is True
    assert budget_for(prepared_version).composed_spent == 0
    assert AuditEvent.objects.filter(action="training.request", after__non_private=True).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_launches_at_the_same_moment_cannot_overspend(prepared_version, owner):
    budget_for(prepared_version)  # cap 5
    barrier = threading.Barrier(2)
    outcomes = []

    def launch():
        try:
            barrier.wait()
            training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=3.0))
            outcomes.append("ok")
        except AttestError as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["budget_exceeded", "ok"]
    assert budget_for(prepared_version).reserved == pytest.approx(3.0)
