"""Two last votes cast at the same instant produce exactly one decision (PostgreSQL row locks, real threads)."""

import threading

import pytest
from django.db import connection

from apps.audit.verify import audit_chain_verify
from apps.core.errors import AttestError
from apps.ethics.models import Decision, Vote
from apps.ethics.services import vote_cast
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create, usecase_transition
from tests.ethics.factories import open_review, set_board_rules
from tests.usecases.factories import usecase_data

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def cast_together(review, members, choice):
    barrier = threading.Barrier(len(members))
    outcomes = {}

    def cast(member):
        try:
            barrier.wait()
            vote_cast(actor=member, review=review, choice=choice, reason="Cast at the same instant.")
            outcomes[member.username] = "ok"
        except AttestError as exc:
            outcomes[member.username] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=cast, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@pytest.mark.parametrize(
    ("quorum", "decides", "first", "together", "expected_outcome", "expected_results"),
    [
        # Everyone must vote: both last votes count, and whichever lands second makes the one decision.
        (3, "wait", "approve", "approve", "approved", ["ok", "ok"]),
        # A board that settles early: the first of the two settles it (two rejections of three can never reach 2/3
        # approval); the other is refused because the review is decided, never counted into a second decision.
        (2, "settled", "reject", "reject", "rejected", ["invalid_state", "ok"]),
    ],
)
def test_two_last_votes_at_the_same_instant_make_one_decision(
    org, owner, board_member, board2, board3, quorum, decides, first, together, expected_outcome, expected_results
):
    set_board_rules(org, quorum=quorum, threshold=0.66, decides=decides)
    usecase = usecase_transition(
        actor=owner, usecase=usecase_create(actor=owner, organisation=org, data=usecase_data()), action="submit"
    )
    review = open_review(usecase)
    vote_cast(actor=board_member, review=review, choice=first, reason="First.")
    outcomes = cast_together(review, [board2, board3], together)
    assert sorted(outcomes.values()) == expected_results
    decision = Decision.objects.get(review=review)
    assert decision.outcome == expected_outcome
    assert decision.tally["cast"] == Vote.objects.filter(review=review).count()
    assert UseCase.objects.get(pk=usecase.pk).status == ("approved" if expected_outcome == "approved" else "rejected")
    assert audit_chain_verify().ok
