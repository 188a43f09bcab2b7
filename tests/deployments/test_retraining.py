"""The retraining loop: a request opened from an alert is pre-filled with the newest prepared version and the
deployed run's spec; launching it requests a training run through the training service (budget and all); the
request follows the run, the evaluation and the board; the board's review shows the monitoring evidence and a
side-by-side comparison with the deployed version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.consent.services import consent_event_record
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.datasets.models import DatasetVersion
from apps.datasets.services import dataset_version_prepare, dataset_version_profile
from apps.deployments.alerts import alerts_sync
from apps.deployments.models import Alert, MonitoringWindow, RetrainingRequest
from apps.deployments.retraining import (
    SPEC_KEYS,
    retraining_comparison,
    retraining_prefill,
    retraining_request_close,
    retraining_request_launch,
    retraining_request_open,
    retraining_requests_follow,
)
from apps.ethics.bindings import bound_evaluation
from apps.ethics.models import Notice
from apps.ethics.services import review_request_deployment, vote_cast
from apps.jobs.services import job_claim, job_fail
from apps.training.models import BudgetEntry, TrainingRun
from apps.training.services import training_run_stop
from tests.conftest import PASSWORD
from tests.deployments.loop import report_trained, result, window

pytestmark = pytest.mark.django_db

DRIFT = "data_drift:psi:hours-per-week"


@pytest.fixture
def alert(deployed):
    target = window(deployed, 6)
    results = [result(DRIFT, "fail"), result("performance:accuracy", "pass", 0.8, 0.76)]
    MonitoringWindow.objects.filter(pk=target.pk).update(status="evaluated", results=results)
    alerts_sync(deployment=deployed, window=target, results=results)
    return Alert.objects.get()


@pytest.fixture
def newer_version(deployed, steward):
    """Since training a person withdrew consent and the steward prepared the data again: a newer version of the
    same dataset, without that person's row."""
    deployed_on = deployed.model_version.training_run.dataset_version
    when = (timezone.now() - timedelta(days=1)).isoformat()
    consent_event_record(
        actor=steward,
        organisation=deployed.organisation,
        data={"subject_id": "A-00001", "purpose": "Service improvement", "status": "withdrawn", "timestamp": when},
    )
    newer = DatasetVersion.objects.get(id=dataset_version_prepare(version_id=deployed_on.parent_id)["version_id"])
    dataset_version_profile(version_id=newer.id)
    newer.refresh_from_db()
    assert newer.dataset_id == deployed_on.dataset_id and newer.number > deployed_on.number
    return newer


def open_request(deployment, owner, alert):
    return retraining_request_open(
        actor=owner, deployment=deployment, reason="Hours per week drifted from week six.", alert=alert
    )


def test_a_request_is_prefilled_with_the_newest_prepared_version_and_the_deployed_spec(
    deployed, owner, alert, newer_version
):
    request = open_request(deployed, owner, alert)
    assert request.dataset_version == newer_version
    assert (request.status, request.alert, request.usecase_id) == ("open", alert, deployed.usecase_id)
    deployed_spec = deployed.model_version.training_run.spec
    assert retraining_prefill(request)["spec"] == {key: deployed_spec[key] for key in SPEC_KEYS}
    event = AuditEvent.objects.get(action="retraining.open")
    assert event.after["dataset_version"] == str(newer_version.id) and "drifted" not in str(event.after)


def test_launching_requests_a_training_run_through_the_training_service(deployed, owner, alert, newer_version):
    request = open_request(deployed, owner, alert)
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    launched = retraining_request_launch(actor=owner, request=request, spec_overrides={"epochs": 3})

    run = launched.training_run
    assert launched.status == "training"
    assert run.dataset_version == newer_version and run.created_by == owner
    deployed_spec = deployed.model_version.training_run.spec
    assert run.spec["epochs"] == 3 and run.spec["features"] == deployed_spec["features"]
    assert run.spec["label"] == deployed_spec["label"]
    assert run.job.kind == "training" and run.job.status == "queued"
    reservation = BudgetEntry.objects.get(run=run, kind="reserve")  # the budget ledger applies
    assert reservation.epsilon == deployed_spec["target_epsilon"]
    actions = list(AuditEvent.objects.filter(id__gt=before).order_by("id").values_list("action", flat=True))
    assert actions == ["training.request", "retraining.launch"]
    with pytest.raises(InvalidState):
        retraining_request_launch(actor=owner, request=launched)


def test_a_launch_the_budget_refuses_links_nothing(deployed, owner, alert):
    request = open_request(deployed, owner, alert)
    with pytest.raises(AttestError) as refused:
        retraining_request_launch(actor=owner, request=request, spec_overrides={"target_epsilon": 50})
    assert refused.value.code == "budget_exceeded"
    request.refresh_from_db()
    assert request.status == "open" and request.training_run is None
    assert not TrainingRun.objects.filter(spec__target_epsilon=50).exists()
    with pytest.raises(ValidationFailed):
        retraining_request_launch(actor=owner, request=request, spec_overrides={"delta": 0.5})


def test_the_request_follows_its_run_the_evaluation_and_the_board(deployed, owner, board_member, alert):
    request = retraining_request_launch(actor=owner, request=open_request(deployed, owner, alert))
    assert retraining_requests_follow() == []  # still training

    candidate = report_trained(request.training_run, seed=2)
    assert retraining_requests_follow() == []  # trained and evaluated: waiting for the owner to ask the board
    review = review_request_deployment(actor=owner, model_version=candidate)
    (moved,) = retraining_requests_follow()
    assert (moved.status, moved.review) == ("in_review", review)

    vote_cast(actor=board_member, review=review, choice="approve", reason="Drift addressed.")
    (moved,) = retraining_requests_follow()
    assert moved.status == "approved"
    assert Notice.objects.filter(user=owner, kind="retraining_approved").exists()
    assert retraining_requests_follow() == []  # nothing moves twice
    assert AuditEvent.objects.filter(action="retraining.follow").count() == 2


def test_a_stopped_run_puts_the_request_back_to_open_and_it_can_be_launched_again(deployed, owner, alert):
    request = retraining_request_launch(actor=owner, request=open_request(deployed, owner, alert))
    job = job_claim(job_id=request.training_run.job_id, worker="test")
    job_fail(job=job, code="invalid", message="The worker ran out of memory.")
    job.refresh_from_db()
    training_run_stop(run=request.training_run, job=job, spent=None, composed=None)
    (moved,) = retraining_requests_follow()
    assert moved.status == "open"
    relaunched = retraining_request_launch(actor=owner, request=moved)
    assert relaunched.training_run != request.training_run and relaunched.status == "training"


def test_the_board_sees_the_monitoring_evidence_and_both_versions_side_by_side(
    client, deployed, owner, board_member, alert, newer_version
):
    request = retraining_request_launch(actor=owner, request=open_request(deployed, owner, alert))
    candidate = report_trained(request.training_run, epsilon=0.8, seed=7, female_fpr=0.3)
    review = review_request_deployment(actor=owner, model_version=candidate)

    comparison = retraining_comparison(review)
    deployed_model = deployed.model_version
    assert comparison["request"] == request and comparison["deployment"] == deployed
    assert comparison["deployed"]["model"] == deployed_model and comparison["candidate"]["model"] == candidate
    rows = {row["label"]: row for row in comparison["rows"]}
    old_results = bound_evaluation(deployed_model).results
    new_results = bound_evaluation(candidate).results
    accuracy = rows["Accuracy on held-out rows"]
    assert (accuracy["deployed"], accuracy["candidate"]) == (
        old_results["overall"]["accuracy"],
        new_results["overall"]["accuracy"],
    )
    assert accuracy["delta"] == pytest.approx(new_results["overall"]["accuracy"] - old_results["overall"]["accuracy"])
    assert rows["Training data"]["changed"] and newer_version.label in rows["Training data"]["candidate"]
    assert (rows["Epsilon spent"]["deployed"], rows["Epsilon spent"]["candidate"]) == (1.0, 0.8)
    (gate,) = comparison["gates"]
    assert gate["metric"] == "demographic_parity_difference"
    assert gate["deployed"]["value"] == old_results["gates"][0]["value"]
    assert gate["candidate"]["value"] == new_results["gates"][0]["value"]
    per_group = {(row["group"], row["rate"]): row for row in comparison["groups"] if row["grouping"] == "sex"}
    for group in ("Female", "Male"):
        row = per_group[(group, "selection_rate")]
        old_group = next(g for g in old_results["groupings"][0]["groups"] if g["group"] == group)
        new_group = next(g for g in new_results["groupings"][0]["groups"] if g["group"] == group)
        assert (row["deployed"], row["candidate"]) == (old_group["selection_rate"], new_group["selection_rate"])
    assert comparison["alerts"] == [alert]
    (evidence,) = comparison["windows"]
    assert evidence["counts"]["fail"] == 1 and evidence["flagged"][0]["monitor"] == DRIFT

    client.login(username=board_member.username, password=PASSWORD)
    html = client.get(f"/reviews/{review.id}/").content.decode()
    assert "Retraining: monitoring evidence and comparison with the deployed version" in html
    assert alert.title in html and f"Deployed (v{deployed_model.number})" in html
    assert f"Retrained (v{candidate.number})" in html


def test_a_review_that_did_not_come_from_a_retraining_shows_no_comparison(client, deployed, board_member):
    assert retraining_comparison(deployed.review) is None
    client.login(username=board_member.username, password=PASSWORD)
    assert "section-retraining" not in client.get(f"/reviews/{deployed.review_id}/").content.decode()


def test_who_may_open_launch_and_close(deployed, owner, steward, auditor, outsider, admin_user, alert):
    for person, error in ((steward, PermissionDenied), (auditor, PermissionDenied), (outsider, NotFound)):
        with pytest.raises(error):
            open_request(deployed, person, alert)
    request = open_request(deployed, admin_user, alert)
    with pytest.raises(InvalidState):  # one request underway per deployment
        open_request(deployed, owner, alert)
    with pytest.raises(PermissionDenied):
        retraining_request_launch(actor=steward, request=request)
    with pytest.raises(ValidationFailed):
        retraining_request_close(actor=owner, request=request, reason=" ")
    closed = retraining_request_close(actor=owner, request=request, reason="The drift was a data-entry fault.")
    assert closed.status == "closed"
    with pytest.raises(InvalidState):
        retraining_request_launch(actor=owner, request=closed)
    assert RetrainingRequest.objects.filter(status="closed").count() == 1
    assert open_request(deployed, owner, alert).status == "open"  # a closed one no longer blocks a new request
