"""Windows are evaluated once they end (the hourly round queues them): too few rows give "insufficient", never a
pass or a fail; a full window gives every monitor's value; privacy monitors read consent, retention and the budget.
The monitoring plan is bound into deployment reviews without making existing reviews stale."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.consent.services import consent_event_record
from apps.core.errors import AttestError
from apps.datasets.models import DatasetVersion
from apps.deployments.models import Alert, MonitoringWindow, ProductionBatch
from apps.deployments.services import monitoring_tick, monitoring_windows_close_due, usecase_set_monitoring_plan
from apps.ethics.models import ReviewRequest
from apps.ethics.services import _stale, approval_revoke, review_request_deployment
from apps.jobs.models import Job
from tests.conftest import run_inline
from tests.deployments.kit import TRAIN_ROWS, approve, csv_bytes, production, register, reported_model
from workers.engine.monitoring.monitors import default_plan

pytestmark = pytest.mark.django_db
ROW_FAMILIES = {"data_drift", "prediction_drift", "data_quality", "performance", "fairness"}


@pytest.fixture
def deployment(owner, board_member, prepared_version):
    model = reported_model(owner, prepared_version)
    approve(model, owner=owner, member=board_member)
    return register(model, owner)


def send(deployment, owner, frame) -> MonitoringWindow:
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(f"/api/v1/deployments/{deployment.id}/batches/", csv_bytes(frame), content_type="text/csv")
    assert response.status_code == 202, response.json()
    run_inline(ProductionBatch.objects.get(pk=response.json()["id"]).job)
    return MonitoringWindow.objects.get(deployment=deployment)


def end_and_evaluate(window: MonitoringWindow) -> list[dict]:
    """Time passes: the window ends; the hourly round queues its evaluation, which a worker runs."""
    MonitoringWindow.objects.filter(pk=window.pk).update(
        starts_at=window.starts_at - timedelta(days=7), ends_at=window.ends_at - timedelta(days=7)
    )
    queued = monitoring_windows_close_due()
    assert [w.pk for w in queued] == [window.pk]
    run_inline(MonitoringWindow.objects.get(pk=window.pk).job)
    window.refresh_from_db()
    assert window.status == "evaluated" and window.evaluated_at is not None
    return window.results


def by_monitor(results: list[dict]) -> dict[str, dict]:
    return {result["monitor"]: result for result in results}


def test_a_small_window_is_insufficient_never_pass_or_fail(deployment, owner):
    window = send(deployment, owner, production(2000, 40, labelled=True))
    results = end_and_evaluate(window)
    row_based = [r for r in results if r["family"] in ROW_FAMILIES]
    assert row_based and {r["status"] for r in row_based} == {"insufficient"}
    assert all(r["value"] is None for r in row_based)
    assert by_monitor(results)["performance:accuracy"]["message"].startswith("Not judged: only 40 labelled rows")


def test_a_full_window_gives_real_results(deployment, owner, steward, prepared_version):
    frame = production(2000, 3000, labelled=True)
    # Seven people of the training rows withdraw consent after training; the training data's retention passed.
    for number in range(1, 8):
        consent_event_record(
            actor=steward,
            organisation=deployment.organisation,
            data={
                "subject_id": f"A-{number:05d}",
                "purpose": "Service improvement",
                "status": "withdrawn",
                "timestamp": timezone.now().isoformat(),
            },
        )
    yesterday = timezone.localdate() - timedelta(days=1)
    DatasetVersion.objects.filter(pk=prepared_version.pk).update(retention_until=yesterday)
    results = by_monitor(end_and_evaluate(send(deployment, owner, frame)))

    accuracy = results["performance:accuracy"]
    expected = (frame["prediction"] == frame["label"]).mean()  # about two thirds: a third of decisions flipped
    assert accuracy["status"] != "insufficient" and accuracy["value"] == pytest.approx(expected, abs=1e-12)
    assert accuracy["interval"][0] < expected < accuracy["interval"][1]
    for feature in ("age", "hours-per-week", "education-num"):
        psi = results[f"data_drift:psi:{feature}"]
        assert psi["status"] in ("pass", "warn", "fail") and psi["value"] >= 0 and psi["rows"] > 500
    assert results["data_drift:chi_square:sex"]["status"] in ("pass", "warn")
    withdrawn = results["privacy:withdrawn_share"]
    assert withdrawn["details"]["withdrawn"] == 7 and withdrawn["rows"] == TRAIN_ROWS
    assert withdrawn["value"] == pytest.approx(7 / TRAIN_ROWS) and withdrawn["status"] == "warn"
    assert results["privacy:retention"]["status"] == "fail"
    assert results["privacy:retention"]["details"]["dates"] == [yesterday.isoformat()]
    assert results["privacy:budget"]["status"] in ("pass", "warn")
    # What warned or failed is an alert on the deployment (engineer B's alerts_sync, called by the evaluation).
    alerted = set(Alert.objects.filter(deployment=deployment).values_list("monitor", flat=True))
    assert {"privacy:withdrawn_share", "privacy:retention"} <= alerted
    # The API serves the window with its results.
    client = APIClient()
    client.force_authenticate(owner)
    window = MonitoringWindow.objects.get(deployment=deployment)
    body = client.get(f"/api/v1/monitoring-windows/{window.id}/").json()
    assert body["status"] == "evaluated" and len(body["results"]) == len(results)


def test_late_rows_open_an_evaluated_window_again_for_the_next_round(deployment, owner):
    window = send(deployment, owner, production(2000, 20))
    end_and_evaluate(window)
    batch = ProductionBatch.objects.get(window=window)
    client = APIClient()
    client.force_authenticate(owner)
    labels = [{"prediction_id": "P-002000", "label": ">50K"}]
    client.post(f"/api/v1/deployments/{deployment.id}/labels/", {"labels": labels}, format="json")
    window.refresh_from_db()
    assert window.status == "open" and window.labelled_rows == 1 and batch.window_id == window.id
    assert [w.pk for w in monitoring_windows_close_due()] == [window.pk]


def test_the_hourly_round_closes_due_windows_and_checks_governance(deployment, owner, admin_user):
    window = send(deployment, owner, production(2000, 10))
    MonitoringWindow.objects.filter(pk=window.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    approval_revoke(actor=admin_user, review=deployment.review, reason="A flaw was found in the training data.")
    summary = monitoring_tick()
    assert summary["windows_queued"] == 1
    assert Job.objects.filter(kind="monitoring_window", status="queued").count() == 1
    # Run again within the hour: nothing queued twice.
    assert monitoring_tick()["windows_queued"] == 0
    assert Alert.objects.filter(deployment=deployment, monitor="governance:approval").exists()


def test_a_window_that_keeps_failing_is_not_queued_for_ever(deployment, owner):
    window = send(deployment, owner, production(2000, 10))
    MonitoringWindow.objects.filter(pk=window.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    for _attempt in range(3):
        [queued] = monitoring_windows_close_due()
        Job.objects.filter(pk=queued.job_id).update(status="failed")
    assert monitoring_windows_close_due() == []


def test_a_weeks_window_without_rows_is_still_evaluated(deployment):
    """An active deployment whose last week had no batch: the round creates that window, so the gap shows."""
    later = timezone.now() + timedelta(days=8)
    from apps.deployments.models import Deployment

    Deployment.objects.filter(pk=deployment.pk).update(created_at=timezone.now() - timedelta(days=10))
    queued = monitoring_windows_close_due(now=later)
    assert len(queued) == 1 and queued[0].rows == 0
    assert queued[0].ends_at <= later


# ------------------------------------------------------------------------------------------------ the plan


def pre_plan_policies_digest(usecase) -> str:
    """How the policies' digest was computed before monitoring plans existed."""
    value = {"fairness": usecase.fairness_policy, "privacy": usecase.privacy_policy}
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def test_binding_the_plan_leaves_reviews_of_use_cases_without_one_as_they_were(owner, prepared_version):
    model = reported_model(owner, prepared_version)
    review = review_request_deployment(actor=owner, model_version=model)
    assert review.bindings["policies"]["sha256"] == pre_plan_policies_digest(model.usecase)
    assert not _stale(review)


def test_a_plan_change_supersedes_open_deployment_reviews(owner, prepared_version):
    model = reported_model(owner, prepared_version)
    review = review_request_deployment(actor=owner, model_version=model)
    usecase = usecase_set_monitoring_plan(
        actor=owner, usecase=model.usecase, plan={**default_plan(), "window": "day", "min_rows": 200}
    )
    review.refresh_from_db()
    assert review.status == ReviewRequest.Status.SUPERSEDED
    assert "policies" in review.superseded_reason and "usecase" in review.superseded_reason
    successor = review.superseded_by
    assert successor.bindings["policies"]["sha256"] != review.bindings["policies"]["sha256"]
    assert usecase.revisions.order_by("-number").first().snapshot["monitoring_plan"]["window"] == "day"
    assert usecase.monitoring_plan["min_rows"] == 200


def test_an_invalid_plan_is_refused_with_each_problem(owner, approved_usecase, steward):
    with pytest.raises(AttestError) as caught:
        usecase_set_monitoring_plan(
            actor=owner,
            usecase=approved_usecase,
            plan={"window": "fortnight", "monitors": {"data_drift": {"psi_alert": -1}, "vibes": {}}},
        )
    problems = " ".join(caught.value.details["monitoring_plan"])
    assert "window" in problems and "psi_alert" in problems and "vibes" in problems
    with pytest.raises(AttestError) as caught:
        usecase_set_monitoring_plan(actor=steward, usecase=approved_usecase, plan=default_plan())
    assert caught.value.code == "permission_denied"
