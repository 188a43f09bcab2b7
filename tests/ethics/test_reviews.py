"""The board's services: development and deployment reviews, quorum, recusal, separation of duties, conditions,
gates and waivers, supersession when a bound artifact changes, immutability of decisions, notices."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts.models import Membership, Role
from apps.audit.models import AuditEvent
from apps.core.errors import AttestError, InvalidState, PermissionDenied, ValidationFailed
from apps.datasets.services import datasheet_save
from apps.ethics.models import Condition, Decision, Notice, ReviewRequest
from apps.ethics.selectors import review_state
from apps.ethics.services import (
    board_update,
    comment_add,
    condition_mark_met,
    review_close,
    review_recuse,
    review_request_deployment,
    reviews_remind_due,
    vote_cast,
    waiver_request,
    waiver_vote,
)
from apps.modelcards.services import modelcard_save
from apps.usecases.services import usecase_create, usecase_tighten_gate, usecase_transition
from tests.ethics.conftest import reevaluate
from tests.ethics.factories import open_review, set_board_rules
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(org, owner, board_member, board2, board3):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    return usecase_transition(actor=owner, usecase=usecase, action="submit")


def test_submitting_opens_a_development_review_bound_to_the_revision_and_tells_the_board(
    submitted, board_member, board2, board3, owner
):
    review = open_review(submitted)
    assert submitted.status == "in_review"
    assert review.kind == "development"
    latest = submitted.revisions.order_by("-number").first()
    assert review.bindings["usecase"]["sha256"] == latest.sha256
    notified = set(Notice.objects.filter(review=review, kind="review_open").values_list("user__username", flat=True))
    assert notified == {board_member.username, board2.username, board3.username}
    # E-mails leave only after the transaction commits; the test transaction never commits, so check the hook.
    assert owner.username not in notified


def test_quorum_and_threshold_decide_and_the_decision_moves_the_use_case(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    assert not Decision.objects.exists()
    state = review_state(review)
    assert state.votes_needed == 1 and len(state.pending) == 2
    vote_cast(actor=board2, review=review, choice="approve", reason="Agree.")
    # Two approvals of three: the third member could still make it "with conditions" or tip the share, so no
    # decision yet...
    assert not Decision.objects.exists()
    vote_cast(actor=board3, review=review, choice="reject", reason="Too intrusive.")
    # ...and 2/3 >= 0.66 approves once everyone has voted.
    decision = Decision.objects.get(review=review)
    assert decision.outcome == "approved"
    assert decision.tally["counts"] == {
        "approve": 2,
        "approve_with_conditions": 0,
        "request_changes": 0,
        "reject": 1,
        "abstain": 0,
    }
    submitted.refresh_from_db()
    assert submitted.status == "approved"
    with pytest.raises(InvalidState):
        vote_cast(actor=board3, review=review, choice="approve", reason="Changed my mind.")


def test_a_clear_majority_settles_before_everyone_votes(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66, decides="settled")
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="reject", reason="No lawful basis for this.")
    vote_cast(actor=board2, review=review, choice="reject", reason="Agree.")
    # Whatever the last member does, approvals cannot reach 2/3.
    assert Decision.objects.get(review=review).outcome == "rejected"
    submitted.refresh_from_db()
    assert submitted.status == "rejected"


def test_changes_requested_send_the_use_case_back_to_its_owner(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=3, threshold=0.66)
    review = open_review(submitted)
    for member in (board_member, board2, board3):
        vote_cast(actor=member, review=review, choice="request_changes", reason="Say how people contest it.")
    submitted.refresh_from_db()
    assert submitted.status == "draft"


def test_recusal_removes_a_member_and_can_settle_the_review(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    vote_cast(actor=board2, review=review, choice="approve", reason="Sound.")
    review_recuse(actor=board3, review=review, reason="My spouse leads the vendor team.")
    assert Decision.objects.get(review=review).outcome == "approved"
    with pytest.raises(InvalidState):
        review_recuse(actor=board2, review=review, reason="late")


def test_a_recused_member_cannot_vote_and_a_voter_cannot_recuse(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = open_review(submitted)
    review_recuse(actor=board3, review=review, reason="Conflict: former manager of the owner.")
    with pytest.raises(AttestError) as caught:
        vote_cast(actor=board3, review=review, choice="approve", reason="Fine.")
    assert caught.value.code == "separation_of_duties"
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    with pytest.raises(InvalidState):
        review_recuse(actor=board_member, review=review, reason="Forgot a conflict.")


def test_separation_of_duties_excludes_owner_steward_and_trainer_whatever_their_roles(
    org, owner, steward, trained_model, board_member, board2
):
    # Give each of the people in the model's story a board seat: none of them may vote on it.
    for person in (owner, steward):
        Membership.objects.get_or_create(user=person, organisation=org, role=Role.BOARD)
    set_board_rules(org, quorum=2)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    reasons = {}
    for person in (owner, steward):
        with pytest.raises(AttestError) as caught:
            vote_cast(actor=person, review=review, choice="approve", reason="Mine is fine.")
        assert caught.value.code == "separation_of_duties"
        reasons[person.username] = caught.value.details["reason"]
    assert "owns the use case" in reasons[owner.username]
    assert "stewards its data" in reasons[steward.username] or "column roles" in reasons[steward.username]
    state = review_state(review)
    assert {m.username for m in state.eligible} == {board_member.username, board2.username}


def test_whoever_launched_the_training_cannot_vote_even_as_a_board_member(
    org, admin_user, owner, prepared_version, board_member
):
    from apps.evaluation.models import Evaluation
    from apps.training.services import training_run_request
    from tests.ethics.conftest import run_inline
    from tests.training.conftest import run_spec

    # The admin launches the run (not the use case's owner), then sits on the board.
    run = training_run_request(actor=admin_user, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    run_inline(Evaluation.objects.get(model_version=run.model_version).job_id)
    Membership.objects.create(user=admin_user, organisation=org, role=Role.BOARD)
    review = review_request_deployment(actor=owner, model_version=run.model_version)
    with pytest.raises(AttestError) as caught:
        vote_cast(actor=admin_user, review=review, choice="approve", reason="My run is fine.")
    assert caught.value.code == "separation_of_duties"
    assert caught.value.details["reason"] == "launched the training run"
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")  # an unconnected member may


def test_approval_with_conditions_creates_tracked_conditions(
    submitted, owner, board_member, board2, board3, admin_user
):
    set_board_rules(submitted.organisation, quorum=3, threshold=0.66)
    review = open_review(submitted)
    due = (timezone.localdate() + timedelta(days=30)).isoformat()
    with pytest.raises(ValidationFailed):
        vote_cast(
            actor=board_member,
            review=review,
            choice="approve_with_conditions",
            reason="If...",
            conditions=[{"text": "", "owner": str(owner.id), "due": "2020-01-01"}],
        )
    vote_cast(
        actor=board_member,
        review=review,
        choice="approve_with_conditions",
        reason="If people can contest.",
        conditions=[{"text": "Publish a contest route", "owner": str(owner.id), "due": due}],
    )
    vote_cast(actor=board2, review=review, choice="approve", reason="Sound.")
    vote_cast(actor=board3, review=review, choice="abstain", reason="Outside my expertise.")
    decision = Decision.objects.get(review=review)
    assert decision.outcome == "approved_with_conditions"
    condition = Condition.objects.get(decision=decision)
    assert condition.owner == owner and condition.due_on.isoformat() == due
    with pytest.raises(PermissionDenied):
        condition_mark_met(actor=board2, condition=condition, note="done")
    condition_mark_met(actor=owner, condition=condition, note="Published at /contest")
    condition.refresh_from_db()
    assert condition.status == "met"


def test_an_overdue_condition_is_flagged(submitted, owner, board_member, board2, board3):
    from apps.ethics.selectors import overdue_conditions

    set_board_rules(submitted.organisation, quorum=1, decides="settled")
    review = open_review(submitted)
    tomorrow = timezone.localdate() + timedelta(days=1)
    vote_cast(
        actor=board_member,
        review=review,
        choice="approve_with_conditions",
        reason="If.",
        conditions=[{"text": "Train caseworkers", "owner": str(owner.id), "due": tomorrow.isoformat()}],
    )
    # Quorum is met, but two members could still reject: not settled.
    assert not Condition.objects.exists()
    # A second approval settles it: even a rejection from the last member leaves 2/3 >= 0.66.
    vote_cast(actor=board2, review=review, choice="approve", reason="Sound.")
    assert list(overdue_conditions(submitted.organisation)) == []
    late = list(overdue_conditions(submitted.organisation, today=tomorrow + timedelta(days=1)))
    assert [c.text for c in late] == ["Train caseworkers"]


def test_the_chair_closes_only_once_quorum_is_met(submitted, board_member, board2, board3, admin_user):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66, chair=board3)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    with pytest.raises(PermissionDenied):
        review_close(actor=board2, review=review)
    with pytest.raises(InvalidState, match="Quorum is not met"):
        review_close(actor=board3, review=review)
    vote_cast(actor=board2, review=review, choice="approve", reason="Sound.")
    decision = review_close(actor=board3, review=review)
    assert decision.outcome == "approved" and decision.closed_by == board3
    assert AuditEvent.objects.filter(action="review.close", object_id=str(review.id)).count() == 1


def test_a_failing_gate_blocks_approval_until_a_waiver_passes(
    org, owner, approved_usecase, trained_model, board_member, board2, board3
):
    set_board_rules(org, quorum=2, threshold=0.66, decides="settled")
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    failing = reevaluate(trained_model, actor=owner)
    assert failing.verdict == "fail"
    review = review_request_deployment(actor=owner, model_version=trained_model)
    with pytest.raises(AttestError) as caught:
        vote_cast(actor=board_member, review=review, choice="approve", reason="Good enough.")
    assert caught.value.code == "gate_failed"
    assert "demographic parity difference" in caught.value.message
    with pytest.raises(ValidationFailed):
        waiver_request(actor=owner, review=review, justification="short", expires_on=timezone.localdate())
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="Gap is within sampling noise; monitored monthly.",
        expires_on=timezone.localdate() + timedelta(days=90),
    )
    assert [item["key"] for item in waiver.waived] == ["gate:demographic_parity_difference"]
    with pytest.raises(AttestError) as caught:
        waiver_vote(actor=owner, waiver=waiver, choice="approve", reason="Mine.")
    waiver_vote(actor=board_member, waiver=waiver, choice="approve", reason="Acceptable with monitoring.")
    waiver.refresh_from_db()
    assert waiver.status == "open"
    waiver_vote(actor=board2, waiver=waiver, choice="approve", reason="Agree.")
    # Two grants of three eligible: a refusal from the last member could not bring the share under 0.66.
    waiver.refresh_from_db()
    assert waiver.status == "granted"
    with pytest.raises(InvalidState):
        waiver_vote(actor=board3, waiver=waiver, choice="reject", reason="Too late.")
    for member in (board_member, board2, board3):
        vote_cast(actor=member, review=review, choice="approve", reason="Approved under the waiver.")
    decision = Decision.objects.get(review=review)
    assert decision.approved
    assert decision.waivers[0]["waived"][0]["key"] == "gate:demographic_parity_difference"
    from apps.ethics.selectors import deployment_status

    status = deployment_status(trained_model)
    assert status["label"].startswith("Approved for deployment") and status["waivers"]


def test_a_refused_waiver_leaves_approval_blocked(org, owner, approved_usecase, trained_model, board_member, board2):
    set_board_rules(org, quorum=2)
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(trained_model, actor=owner)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="We would like to ship it anyway, please.",
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    waiver_vote(actor=board_member, waiver=waiver, choice="reject", reason="No reason given to accept the gap.")
    waiver_vote(actor=board2, waiver=waiver, choice="reject", reason="Agree.")
    waiver.refresh_from_db()
    assert waiver.status == "refused"
    with pytest.raises(AttestError):
        vote_cast(actor=board_member, review=review, choice="approve", reason="Anyway.")


def test_changing_a_bound_artifact_supersedes_the_review_and_votes_start_again(
    org, owner, steward, trained_model, board_member, board2, board3
):
    set_board_rules(org, quorum=3)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    card = trained_model.card_revisions.get()
    # The model card changes: the review must start again.
    modelcard_save(
        actor=owner, model_version=trained_model, narrative=dict(card.narrative, caveats="Not for people under 18.")
    )
    review.refresh_from_db()
    assert review.status == "superseded"
    assert "model_card" in review.superseded_reason
    successor = review.superseded_by
    assert successor.status == "open" and successor.votes.count() == 0
    assert successor.bindings["model_card"]["revision"] == 2
    assert Notice.objects.filter(review=successor, kind="superseded").count() == 3
    # The datasheet changes: superseded again.
    version = trained_model.training_run.dataset_version
    datasheet_save(actor=steward, version=version, content=_edited_datasheet(version))
    successor.refresh_from_db()
    assert successor.status == "superseded" and "datasheet" in successor.superseded_reason
    # A vote on a stale review is refused, never silently counted.
    with pytest.raises(InvalidState):
        vote_cast(actor=board2, review=review, choice="approve", reason="Late.")


def _edited_datasheet(version):
    from apps.datasets.datasheet import prefill_datasheet
    from apps.datasets.selectors import version_coverage

    sheet = version.datasheets.order_by("-number").first()
    content = dict(sheet.content) if sheet else prefill_datasheet(version, version_coverage(version))
    content["maintenance"] = dict(content.get("maintenance") or {}, updates="Quarterly; erasure within 30 days.")
    return content


def test_a_new_evaluation_supersedes_and_a_stale_vote_supersedes_on_the_spot(org, owner, trained_model, board_member):
    set_board_rules(org, quorum=1)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    reevaluate(trained_model, actor=owner)
    review.refresh_from_db()
    assert review.status == "superseded" and "evaluation" in review.superseded_reason


@pytest.mark.postgres
def test_decisions_are_immutable_in_postgresql(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=1, chair=board_member)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    review_close(actor=board_member, review=review)
    decision = Decision.objects.get()
    from django.db import DatabaseError, transaction

    # The portal's database role may not UPDATE or DELETE decisions at all (apps/audit/dbroles.py); the owner meets the
    # trigger (tests/audit/test_database_roles.py).
    refused = "immutable|permission denied for table ethics_decision"
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).update(outcome="rejected")
    with pytest.raises(DatabaseError, match=refused), transaction.atomic():
        Decision.objects.filter(pk=decision.pk).delete()


def test_board_rules_are_validated_and_only_admins_change_them(org, admin_user, board_member, board2):
    with pytest.raises(PermissionDenied):
        board_update(actor=board_member, organisation=org, data={"quorum": 1})
    with pytest.raises(ValidationFailed) as caught:
        board_update(
            actor=admin_user,
            organisation=org,
            data={"quorum": 5, "approval_threshold": 0.3, "chair": str(admin_user.id)},
        )
    assert set(caught.value.details) == {"approval_threshold", "chair"}
    with pytest.raises(ValidationFailed, match="not changed") as caught:
        board_update(actor=admin_user, organisation=org, data={"quorum": 5})
    assert "quorum cannot exceed" in caught.value.details["quorum"][0]
    board = board_update(
        actor=admin_user,
        organisation=org,
        data={
            "quorum": 2,
            "approval_threshold": 0.75,
            "chair": str(board2.id),
            "checklist": [{"text": "Is it lawful?"}, {"key": "fair", "text": "Is it fair?"}],
        },
    )
    assert (board.quorum, board.approval_threshold, board.chair) == (2, 0.75, board2)
    assert [item["key"] for item in board.checklist] == ["item1", "fair"]


def test_auditors_read_but_do_not_discuss(submitted, auditor, board_member):
    review = open_review(submitted)
    with pytest.raises(PermissionDenied):
        comment_add(actor=auditor, review=review, section="usecase", body="Hello")
    comment = comment_add(actor=board_member, review=review, section="usecase", body="Is the retention justified?")
    assert comment.section == "usecase"


def test_reminders_reach_members_who_have_not_voted_once_a_day(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=3)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    ReviewRequest.objects.filter(pk=review.pk).update(due_at=timezone.now() + timedelta(hours=12))
    assert reviews_remind_due() == 2
    assert reviews_remind_due() == 0  # not twice within a day
    due = Notice.objects.filter(kind="vote_due").values_list("user__username", flat=True)
    assert set(due) == {board2.username, board3.username}


def test_decision_e_mails_are_sent_after_commit(submitted, board_member, django_capture_on_commit_callbacks):
    set_board_rules(submitted.organisation, quorum=1, chair=board_member)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    with django_capture_on_commit_callbacks(execute=True):
        review_close(actor=board_member, review=review)
    subjects = [message.subject for message in mail.outbox]
    assert any("decided: approved" in subject for subject in subjects)
    recipients = {address for message in mail.outbox for address in message.to}
    assert submitted.owner.email in recipients


def test_superseding_withdraws_open_waivers(org, owner, approved_usecase, trained_model, board_member):
    set_board_rules(org, quorum=1)
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(trained_model, actor=owner)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="Within noise; monitored monthly by the team.",
        expires_on=timezone.localdate() + timedelta(days=30),
    )
    reevaluate(trained_model, actor=owner)
    waiver.refresh_from_db()
    review.refresh_from_db()
    assert review.status == "superseded" and waiver.status == "withdrawn"
    assert not review.superseded_by.waivers.exists()
