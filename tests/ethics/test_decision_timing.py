"""When a review decides: a new board waits for every eligible member or the due date, so every voice is on the
record; a board may choose to decide as soon as the outcome is settled."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.ethics import rules
from apps.ethics.models import Board, Decision, ReviewRequest
from apps.ethics.selectors import board_of, review_state
from apps.ethics.services import (
    board_update,
    review_request_deployment,
    reviews_decide_due,
    reviews_remind_due,
    vote_cast,
    waiver_request,
    waiver_vote,
)
from apps.usecases.services import usecase_create, usecase_tighten_gate, usecase_transition
from tests.ethics.conftest import reevaluate
from tests.ethics.factories import open_review, set_board_rules
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db


@pytest.fixture
def submitted(org, owner, board_member, board2, board3):
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data())
    return usecase_transition(actor=owner, usecase=usecase, action="submit")


def past_due(review):
    ReviewRequest.objects.filter(pk=review.pk).update(due_at=timezone.now() - timedelta(hours=1))
    review.refresh_from_db()
    return review


def test_a_new_board_waits_for_every_member(org):
    assert board_of(org).decides == Board.Decides.WAIT == rules.WAIT


def test_a_waiting_board_records_every_vote_before_deciding(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="reject", reason="No lawful basis for this.")
    vote_cast(actor=board2, review=review, choice="reject", reason="Agree.")
    # Settled already (no third vote reaches 2/3 approval), but the board waits for the last member's voice.
    assert review_state(review).current_outcome == "rejected"
    assert not Decision.objects.exists()
    review.refresh_from_db()
    assert review.status == "open"
    vote_cast(actor=board3, review=review, choice="request_changes", reason="Say how people contest it.")
    decision = Decision.objects.get(review=review)
    assert decision.outcome == "rejected" and decision.tally["cast"] == 3


def test_at_the_due_date_a_waiting_board_decides_on_the_votes_cast(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = open_review(submitted)
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    vote_cast(actor=board2, review=review, choice="approve", reason="Proportionate.")
    assert reviews_decide_due() == []  # not due yet: board3 may still vote
    past_due(review)
    # The board's hourly round (the reminders task) decides it; board3 is not reminded of a decided review.
    assert reviews_remind_due() == 0
    decision = Decision.objects.get(review=review)
    assert decision.outcome == "approved" and decision.closed_by is None
    assert decision.tally == {
        "counts": {"approve": 2, "approve_with_conditions": 0, "request_changes": 0, "reject": 0, "abstain": 0},
        "cast": 2,
        "eligible": 3,
        "recused": 0,
        "approval_share": 1.0,
    }
    submitted.refresh_from_db()
    assert submitted.status == "approved"


def test_past_the_due_date_without_quorum_the_review_stays_open(submitted, board_member, board2, board3):
    set_board_rules(submitted.organisation, quorum=2, threshold=0.66)
    review = past_due(open_review(submitted))
    vote_cast(actor=board_member, review=review, choice="approve", reason="Sound.")
    assert reviews_decide_due() == []
    review.refresh_from_db()
    assert review.status == "open"
    # The next vote after the due date brings quorum and decides at once, without waiting for board3.
    vote_cast(actor=board2, review=review, choice="approve", reason="Agree.")
    assert Decision.objects.get(review=review).outcome == "approved"


def test_a_waiting_board_waits_on_waivers_too_and_the_due_date_decides_them(
    org, owner, approved_usecase, trained_model, board_member, board2, board3
):
    set_board_rules(org, quorum=2, threshold=0.66, decides="wait")
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(trained_model, actor=owner)
    review = review_request_deployment(actor=owner, model_version=trained_model)
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="Gap is within sampling noise; monitored.",
        expires_on=timezone.localdate() + timedelta(days=60),
    )
    waiver_vote(actor=board_member, waiver=waiver, choice="approve", reason="Acceptable with monitoring.")
    waiver_vote(actor=board2, waiver=waiver, choice="approve", reason="Agree.")
    waiver.refresh_from_db()
    assert waiver.status == "open"  # board3 has not voted yet
    past_due(review)
    reviews_decide_due()
    waiver.refresh_from_db()
    assert waiver.status == "granted" and waiver.tally["cast"] == 2
    review.refresh_from_db()
    assert review.status == "open"  # no votes on the review itself: no quorum, no decision


def test_the_board_chooses_its_timing_and_only_known_timings(org, admin_user, board_member, board2):
    with pytest.raises(ValidationFailed) as caught:
        board_update(actor=admin_user, organisation=org, data={"decides": "whenever"})
    assert "decides" in caught.value.details
    board = board_update(actor=admin_user, organisation=org, data={"decides": "settled"})
    assert board.decides == "settled" and board.rules.decides == rules.SETTLED


def test_the_board_page_sets_the_timing(client, org, admin_user, board_member, board2):
    from tests.conftest import PASSWORD

    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get("/reviews/board/")
    assert b'name="decides" value="wait" checked' in page.content
    client.post(
        "/reviews/board/",
        {
            "quorum": 2,
            "approval_threshold": 0.66,
            "vote_days": 10,
            "chair": "",
            "decides": "settled",
            "item_key": "lawful",
            "item_text": "Is it lawful?",
            "item_source": "",
        },
    )
    assert board_of(org).decides == "settled"


def test_decided_waits_for_everyone_or_the_due_date_unless_the_board_settles_early():
    wait = rules.Rules(quorum=2, threshold=0.66)
    settle = rules.Rules(quorum=2, threshold=0.66, decides=rules.SETTLED)
    two_rejections = [rules.REJECT, rules.REJECT]
    assert rules.decided(two_rejections, 1, settle) == rules.REJECTED
    assert rules.decided(two_rejections, 1, wait) is None
    assert rules.decided(two_rejections, 0, wait) == rules.REJECTED
    assert rules.decided(two_rejections, 1, wait, past_due=True) == rules.REJECTED
    assert rules.decided([rules.APPROVE], 2, wait, past_due=True) is None  # no quorum, even when due
