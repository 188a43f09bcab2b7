"""The deployment pages' forms call the services and say what happened: deploying from the model's page (or why
not), tokens shown once, withdrawal, the alert workflow, a retraining request from an alert, feedback triage, and the
monitoring report request."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.audit.models import AuditEvent
from apps.deployments.models import Deployment, Feedback, RetrainingRequest, ScoringToken
from apps.ethics.services import review_request_deployment
from apps.reports.models import Report
from tests.conftest import PASSWORD
from tests.deployments.pagekit import make_alert, make_deployment, make_windows

pytestmark = pytest.mark.django_db


def signed_in(client, user):
    client.login(username=user.username, password=PASSWORD)
    return client


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


@pytest.fixture
def deployment(approved_model, owner):
    return make_deployment(approved_model, owner=owner)


def test_the_model_page_says_why_a_model_cannot_be_deployed_and_offers_the_form_once_approved(
    client, owner, trained_model, board_member
):
    from apps.ethics.services import vote_cast
    from tests.ethics.factories import set_board_rules

    run_page = reverse("training:run", args=[trained_model.training_run_id])
    html = signed_in(client, owner).get(run_page).content.decode()
    assert "Deploy this model" in html and "has no deployment review" in html
    assert reverse("deployments:deploy", args=[trained_model.id]) not in html

    set_board_rules(trained_model.organisation, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=trained_model)
    html = client.get(run_page).content.decode()
    assert f"{review.reference} is open for votes" in html
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    html = client.get(run_page).content.decode()
    assert reverse("deployments:deploy", args=[trained_model.id]) in html and "Not deployed anywhere" in html

    response = client.post(
        reverse("deployments:deploy", args=[trained_model.id]),
        {"environment": "production", "system": "Benefits case system"},
        follow=True,
    )
    deployment = Deployment.objects.get()
    assert response.redirect_chain[-1][0] == reverse("deployments:detail", args=[deployment.id])
    assert deployment.environment == "production" and deployment.owner == owner
    html = client.get(run_page).content.decode()
    assert reverse("deployments:detail", args=[deployment.id]) in html and "Benefits case system" in html

    refused = client.post(
        reverse("deployments:deploy", args=[trained_model.id]),
        {"environment": "Production Two!", "system": "x"},
        follow=True,
    )
    assert Deployment.objects.count() == 1 and any("Environment" in m for m in messages_of(refused))


def test_a_scoring_token_secret_is_shown_once_and_a_revoked_token_says_so(client, owner, deployment):
    signed_in(client, owner)
    response = client.post(reverse("deployments:token_create", args=[deployment.id]), {"name": "Case system"})
    token = ScoringToken.objects.get()
    secret = re.search(r'id="new-token-secret" value="([^"]+)"', response.content.decode()).group(1)
    assert secret.startswith(token.prefix) and response["Cache-Control"] == "no-store"
    page = client.get(reverse("deployments:detail", args=[deployment.id])).content.decode()
    assert secret not in page and token.prefix in page
    client.post(reverse("deployments:token_revoke", args=[deployment.id, token.id]))
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert "Revoked" in client.get(reverse("deployments:detail", args=[deployment.id])).content.decode()


def test_withdrawing_needs_a_reason_and_ends_the_deployment(client, owner, deployment):
    signed_in(client, owner)
    url = reverse("deployments:withdraw", args=[deployment.id])
    client.post(url, {"reason": ""})
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.ACTIVE
    client.post(url, {"reason": "The benefit scheme closed on 1 May."})
    deployment.refresh_from_db()
    assert deployment.status == Deployment.Status.WITHDRAWN and deployment.end_reason.startswith("The benefit")
    page = client.get(reverse("deployments:detail", args=[deployment.id])).content.decode()
    assert url not in page  # an ended deployment offers no actions


def test_the_alert_workflow_acknowledge_assign_comment_resolve_through_the_page(client, owner, steward, deployment):
    windows = make_windows(deployment, 6)
    alert = make_alert(deployment, windows[5], "data_drift:psi:hours-per-week")
    signed_in(client, owner)
    client.post(reverse("deployments:alert_acknowledge", args=[alert.id]))
    client.post(reverse("deployments:alert_assign", args=[alert.id]), {"assignee": str(steward.id)})
    client.post(reverse("deployments:alert_comment", args=[alert.id]), {"body": "Upstream form changed in week 6."})
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == owner and alert.assignee == steward
    html = client.get(reverse("deployments:alert", args=[alert.id])).content.decode()
    assert "Upstream form changed in week 6." in html and "Acknowledged" in html
    assert html.count("opened here") == 1  # the window the alert opened in, among the monitor's recent windows
    response = client.post(reverse("deployments:alert_resolve", args=[alert.id]), {"resolution": ""}, follow=True)
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and messages_of(response)
    client.post(reverse("deployments:alert_resolve", args=[alert.id]), {"resolution": "Form fixed; data is back."})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolution == "Form fixed; data is back."
    events = AuditEvent.objects.filter(object_id=str(alert.id)).order_by("sequence")
    actions = list(events.values_list("action", flat=True))
    assert actions == ["alert.acknowledge", "alert.assign", "alert.resolve"]


def test_a_retraining_request_opened_from_an_alert_shows_the_prefilled_run(client, owner, deployment):
    windows = make_windows(deployment, 6)
    alert = make_alert(deployment, windows[5], "data_drift:psi:hours-per-week")
    signed_in(client, owner)
    response = client.post(
        reverse("deployments:alert_retrain", args=[alert.id]),
        {"reason": "Hours per week drifted from week 6."},
        follow=True,
    )
    item = RetrainingRequest.objects.get()
    assert item.alert == alert and item.deployment == deployment and item.opened_by == owner
    assert response.redirect_chain[-1][0] == reverse("deployments:retraining", args=[item.id])
    html = response.content.decode()
    spec = deployment.model_version.training_run.spec
    assert ", ".join(spec["features"]) in html and f"target epsilon {spec['target_epsilon']}" in html
    assert reverse("deployments:retraining_launch", args=[item.id]) in html
    alert_page = client.get(reverse("deployments:alert", args=[alert.id])).content.decode()
    assert reverse("deployments:retraining", args=[item.id]) in alert_page
    assert reverse("deployments:alert_retrain", args=[alert.id]) not in alert_page  # one request from one alert


def test_feedback_is_triaged_linked_to_an_alert_and_closed(client, owner, deployment):
    windows = make_windows(deployment, 2)
    alert = make_alert(deployment, windows[1], "fairness:false_positive_rate:sex=Female")
    signed_in(client, owner)
    client.post(
        reverse("deployments:feedback_submit", args=[deployment.id]),
        {"kind": "feedback", "body": "Caseworkers see more women flagged since June."},
    )
    item = Feedback.objects.get()
    assert item.source == "internal" and item.author == owner
    html = client.get(reverse("deployments:feedback")).content.decode()
    assert "Caseworkers see more women flagged since June." in html
    client.post(
        reverse("deployments:feedback_triage", args=[item.id]),
        {"category": "unfair", "severity": "warning", "alert": str(alert.id), "response": "Linked to the alert."},
    )
    item.refresh_from_db()
    assert (item.status, item.category, item.severity, item.alert) == ("triaged", "unfair", "warning", alert)
    client.post(reverse("deployments:feedback_close", args=[item.id]), {"back": "status=all"})
    item.refresh_from_db()
    assert item.status == "closed"
    assert "Caseworkers see more" not in client.get(reverse("deployments:feedback")).content.decode()  # new only


def test_the_monitoring_report_is_requested_from_the_deployment_page_for_a_period(client, owner, deployment):
    windows = make_windows(deployment, 3)
    signed_in(client, owner)
    start = windows[0].starts_at.date()
    response = client.post(
        reverse("deployments:report", args=[deployment.id]),
        {"period_from": start.isoformat(), "period_to": windows[-1].ends_at.date().isoformat()},
    )
    report = Report.objects.get()
    assert response.url == reverse("reports:detail", args=[report.id])
    assert report.kind == "monitoring" and report.subject_id == str(deployment.id) and report.period_start == start
    client.post(
        reverse("deployments:report", args=[deployment.id]),
        {"period_from": windows[-1].ends_at.date().isoformat(), "period_to": start.isoformat()},
    )
    assert Report.objects.count() == 1  # a period ending before it starts is refused


def test_promotion_offers_only_versions_whose_approval_is_in_force_and_replaces_the_active_one(
    client, owner, admin_user, board_member, prepared_version
):
    from apps.ethics.services import approval_revoke
    from tests.deployments.kit import approve, register, reported_model

    deployed = reported_model(owner, prepared_version)
    approve(deployed, owner=owner, member=board_member)
    deployment = register(deployed, owner)
    approved = reported_model(owner, prepared_version)
    approve(approved, owner=owner, member=board_member)
    revoked = reported_model(owner, prepared_version)
    approve(revoked, owner=owner, member=board_member)
    approval_revoke(actor=admin_user, review=revoked.reviews.get(status="decided"), reason="Its vendor withdrew it.")
    unreviewed = reported_model(owner, prepared_version)  # the newest version: never reviewed

    html = signed_in(client, owner).get(reverse("deployments:detail", args=[deployment.id])).content.decode()
    select = re.search(r'<select id="promote-model" name="model_version">(.*?)</select>', html, re.S).group(1)
    assert re.findall(r'<option value="([^"]+)"', select) == [str(approved.id)]
    for model in (revoked, unreviewed, deployed):
        assert str(model.id) not in select

    response = client.post(reverse("deployments:promote", args=[deployment.id]), {"model_version": str(approved.id)})
    promoted = Deployment.objects.get(status=Deployment.Status.ACTIVE, environment="production")
    assert promoted.model_version == approved and promoted.previous == deployment
    assert response.url == reverse("deployments:detail", args=[promoted.id])
