"""Only a model whose approval is in force is deployed; one active version per environment; promotion, rollback and
withdrawal are each one audited action."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.errors import AttestError
from apps.deployments.models import Deployment, RetrainingRequest
from apps.deployments.selectors import approval_blockers
from apps.deployments.services import deployment_rollback, deployment_withdraw
from apps.ethics.models import ApprovalRevocation, Decision, Waiver
from apps.ethics.services import approval_revoke, review_request_deployment, vote_cast, waiver_request, waiver_vote
from apps.jobs.models import Job
from apps.usecases.models import UseCase
from tests.deployments.kit import FAILING, approve, register, reported_model
from tests.ethics.factories import set_board_rules

pytestmark = pytest.mark.django_db


@pytest.fixture
def approved(owner, board_member, prepared_version):
    model = reported_model(owner, prepared_version)
    approve(model, owner=owner, member=board_member)
    return model


def refusal_of(model, owner):
    with pytest.raises(AttestError) as caught:
        register(model, owner)
    assert caught.value.status == 409 and caught.value.code == "not_approved"
    assert not Deployment.objects.filter(model_version=model).exists()
    return caught.value


# ---------------------------------------------------------------------------------------------------- refusals


def test_a_model_without_approval_is_refused_with_the_reason(owner, prepared_version):
    model = reported_model(owner, prepared_version)
    error = refusal_of(model, owner)
    assert error.details["blockers"] == [f"{model} has no deployment review: ask the ethics board to approve it first."]


def test_a_model_still_in_review_is_refused(owner, prepared_version, board_member):
    model = reported_model(owner, prepared_version)
    review = review_request_deployment(actor=owner, model_version=model)
    error = refusal_of(model, owner)
    assert error.details["blockers"] == [f"The ethics board has not decided yet: {review.reference} is open for votes."]


def test_a_revoked_approval_is_refused_with_who_and_why(approved, owner, admin_user, board_member):
    review = approved.reviews.get(status="decided")
    approval_revoke(actor=admin_user, review=review, reason="The vendor's licence was withdrawn.")
    error = refusal_of(approved, owner)
    [blocker] = error.details["blockers"]
    assert f"The approval given in {review.reference} was revoked" in blocker
    assert admin_user.username in blocker and "The vendor's licence was withdrawn." in blocker
    # The decision itself is unchanged: the revocation is its own row.
    assert Decision.objects.get(review=review).outcome == "approved"
    assert ApprovalRevocation.objects.get(decision__review=review).revoked_by == admin_user


def test_only_the_chair_or_an_admin_revokes_and_only_once(approved, owner, admin_user, board_member):
    review = approved.reviews.get(status="decided")
    with pytest.raises(AttestError) as caught:
        approval_revoke(actor=board_member, review=review, reason="I changed my mind about it.")
    assert caught.value.code == "permission_denied"
    set_board_rules(review.organisation, quorum=1, chair=board_member)
    approval_revoke(actor=board_member, review=review, reason="The chair withdraws the approval.")
    with pytest.raises(AttestError) as caught:
        approval_revoke(actor=admin_user, review=review, reason="A second revocation of it.")
    assert caught.value.code == "invalid_state"
    assert approval_blockers(approved)  # and it is no longer deployable


def test_an_expired_waiver_the_approval_relied_on_is_refused(owner, board_member, prepared_version):
    model = reported_model(owner, prepared_version, results=FAILING)
    set_board_rules(model.organisation, quorum=1, decides="settled")
    review = review_request_deployment(actor=owner, model_version=model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="The gap is a known artefact of the small sample; a bigger one is coming.",
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    waiver_vote(actor=board_member, waiver=waiver, choice="approve", reason="Time-boxed and justified.")
    vote_cast(actor=board_member, review=review, choice="approve", reason="Approved under the waiver.")
    assert Decision.objects.get(review=review).waivers[0]["id"] == str(waiver.id)
    assert approval_blockers(model) == []  # in force while the waiver is
    Waiver.objects.filter(pk=waiver.pk).update(expires_on=timezone.localdate() - timedelta(days=1))
    error = refusal_of(model, owner)
    [blocker] = error.details["blockers"]
    assert f"relies on a waiver that expired on {waiver.expires_on - timedelta(days=31):%d %b %Y}" in blocker
    assert "demographic parity difference" in blocker  # what the waiver covered


def test_a_non_private_baseline_is_refused(owner, prepared_version):
    model = reported_model(owner, prepared_version, non_private=True)
    error = refusal_of(model, owner)
    assert error.details["blockers"][0] == (
        f"{model} is a non-private baseline, kept for comparison only: it is never deployed."
    )


def test_a_model_with_seeded_noise_is_refused(owner, prepared_version):
    model = reported_model(owner, prepared_version, seeded=True)
    error = refusal_of(model, owner)
    assert error.details["blockers"][0] == f"{model} cannot be deployed: {model.privacy_warning}"
    assert "replay" in model.privacy_warning


def test_the_api_refuses_in_the_error_shape_with_every_blocker(owner, prepared_version):
    model = reported_model(owner, prepared_version, seeded=True)
    client = APIClient()
    client.force_authenticate(owner)
    response = client.post(
        "/api/v1/deployments/",
        {"model_version": str(model.id), "environment": "production", "system": "Case system"},
        format="json",
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "not_approved" and len(error["details"]["blockers"]) == 2
    assert all(blocker in error["message"] for blocker in error["details"]["blockers"])


def test_people_who_do_not_own_or_administer_cannot_deploy(approved, steward, board_member, auditor):
    for person in (steward, board_member, auditor):
        with pytest.raises(AttestError) as caught:
            register(approved, person)
        assert caught.value.code == "permission_denied"


# ------------------------------------------------------------------------------------------------ registration


def test_registering_snapshots_the_plan_queues_the_reference_and_puts_the_use_case_in_production(approved, owner):
    deployment = register(approved, owner)
    assert deployment.status == "active" and deployment.previous is None
    assert deployment.plan["window"] == "week" and len(deployment.plan_sha256) == 64
    assert len(deployment.public_slug) >= 20
    assert UseCase.objects.get(pk=approved.usecase_id).status == UseCase.Status.IN_PRODUCTION
    event = AuditEvent.objects.filter(action="deployment.register").get()
    assert event.after["plan_sha256"] == deployment.plan_sha256
    # The reported model already has its reference: nothing to queue.
    assert event.after["reference_job"] is None
    assert not Job.objects.filter(kind="monitoring_reference").exists()


def test_one_active_version_per_environment_and_promotion_replaces_it(approved, owner, board_member, prepared_version):
    first = register(approved, owner)
    pilot = register(approved, owner, environment="pilot")  # another environment: both active
    second_model = reported_model(owner, prepared_version)
    approve(second_model, owner=owner, member=board_member)
    request = RetrainingRequest.objects.create(
        organisation=first.organisation,
        deployment=first,
        usecase=first.usecase,
        reason="Drift in hours-per-week.",
        status=RetrainingRequest.Status.APPROVED,
        opened_by=owner,
        training_run=second_model.training_run,
    )
    second = register(second_model, owner)
    first.refresh_from_db()
    request.refresh_from_db()
    assert (first.status, second.status, second.previous_id) == ("replaced", "active", first.id)
    assert "promotion" in first.end_reason and first.ended_at is not None
    assert request.status == RetrainingRequest.Status.PROMOTED
    event = AuditEvent.objects.filter(action="deployment.promote").get()
    assert event.after["replaced"] == str(first.id) and event.after["retraining_request"] == str(request.id)
    assert Deployment.objects.filter(status="active", environment="production").get() == second
    pilot.refresh_from_db()
    assert pilot.status == "active"
    with pytest.raises(AttestError) as caught:
        register(second_model, owner)
    assert caught.value.code == "invalid_state"  # already the active version there
    with pytest.raises(IntegrityError), transaction.atomic():
        Deployment.objects.filter(pk=first.pk).update(status="active")  # the database holds the rule too


def test_rollback_reactivates_the_previous_version_in_one_audited_action(
    approved, owner, board_member, prepared_version
):
    first = register(approved, owner)
    second_model = reported_model(owner, prepared_version)
    approve(second_model, owner=owner, member=board_member)
    second = register(second_model, owner)
    before = AuditEvent.objects.count()
    reactivated = deployment_rollback(actor=owner, deployment=second, reason="Scores drifted after the promotion.")
    second.refresh_from_db()
    assert reactivated.pk == first.pk and reactivated.status == "active" and reactivated.ended_at is None
    assert second.status == "rolled_back" and second.end_reason == "Scores drifted after the promotion."
    [event] = AuditEvent.objects.order_by("id")[before:]
    assert event.action == "deployment.rollback" and event.after["reason"] == "Scores drifted after the promotion."
    assert event.after["reactivated"] == str(first.id)


def test_rollback_is_refused_when_the_previous_approval_is_no_longer_in_force(
    approved, owner, admin_user, board_member, prepared_version
):
    first = register(approved, owner)
    second_model = reported_model(owner, prepared_version)
    approve(second_model, owner=owner, member=board_member)
    second = register(second_model, owner)
    approval_revoke(
        actor=admin_user, review=approved.reviews.get(status="decided"), reason="Found a flaw in that model."
    )
    with pytest.raises(AttestError) as caught:
        deployment_rollback(actor=owner, deployment=second, reason="Scores drifted after the promotion.")
    assert caught.value.status == 409
    assert caught.value.message.startswith(f"Cannot roll back to {approved}: its approval is no longer in force.")
    assert "Found a flaw in that model." in caught.value.message
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("replaced", "active")
    assert not AuditEvent.objects.filter(action="deployment.rollback").exists()


def test_rollback_needs_a_reason_and_a_previous_version(approved, owner):
    deployment = register(approved, owner)
    with pytest.raises(AttestError) as caught:
        deployment_rollback(actor=owner, deployment=deployment, reason="")
    assert caught.value.code == "invalid"
    with pytest.raises(AttestError) as caught:
        deployment_rollback(actor=owner, deployment=deployment, reason="Nothing to go back to, surely.")
    assert "Nothing to roll back to" in caught.value.message


def test_withdrawal_ends_the_deployment(approved, owner):
    deployment = register(approved, owner)
    deployment_withdraw(actor=owner, deployment=deployment, reason="The case system is switched off.")
    deployment.refresh_from_db()
    assert deployment.status == "withdrawn" and deployment.ended_at is not None
    assert not approval_blockers(approved)  # the approval stays; it can be deployed again
    assert register(approved, owner).status == "active"
