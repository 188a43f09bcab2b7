"""Quorum arithmetic, checked case by case and against a brute-force reading of the rules."""

import itertools

import pytest

from apps.ethics import rules
from apps.ethics.rules import (
    ABSTAIN,
    APPROVE,
    APPROVE_WITH_CONDITIONS,
    APPROVED,
    APPROVED_WITH_CONDITIONS,
    CHANGES_REQUESTED,
    REJECT,
    REJECTED,
    REQUEST_CHANGES,
    Rules,
)


@pytest.mark.parametrize(
    ("votes", "quorum", "threshold", "expected"),
    [
        ([APPROVE], 2, 0.66, None),  # below quorum: no decision
        ([APPROVE, ABSTAIN], 2, 0.66, APPROVED),  # abstentions count towards quorum, not the share
        ([APPROVE, APPROVE, REJECT], 3, 0.66, APPROVED),  # 2/3 = 0.667 meets 0.66
        ([APPROVE, APPROVE, REJECT], 3, 0.67, REJECTED),  # ...but not 0.67
        ([APPROVE, REJECT], 2, 0.5, APPROVED),  # a share equal to the threshold passes
        ([APPROVE, APPROVE_WITH_CONDITIONS, REJECT], 3, 0.6, APPROVED_WITH_CONDITIONS),
        ([APPROVE, REJECT, REQUEST_CHANGES], 3, 0.6, CHANGES_REQUESTED),  # a tie goes to the less final outcome
        ([APPROVE, REJECT, REJECT, REQUEST_CHANGES], 4, 0.6, REJECTED),
        ([ABSTAIN, ABSTAIN], 2, 0.5, CHANGES_REQUESTED),  # nobody supported it
        ([APPROVE, APPROVE, APPROVE], 3, 1.0, APPROVED),  # unanimity
        ([APPROVE, APPROVE, ABSTAIN, REJECT], 4, 1.0, REJECTED),
    ],
)
def test_outcome(votes, quorum, threshold, expected):
    assert rules.outcome(votes, Rules(quorum, threshold)) == expected


def test_a_review_settles_only_when_no_remaining_vote_could_change_it():
    strict = Rules(quorum=2, threshold=0.66)
    # Two approvals of five: three members could still reject.
    assert rules.settled([APPROVE, APPROVE], 3, strict) is None
    # Everyone voted: the outcome stands.
    assert rules.settled([APPROVE, APPROVE], 0, strict) == APPROVED
    # Three rejections with one member left: even an approval leaves the share at 1/4.
    assert rules.settled([REJECT, REJECT, REJECT], 1, strict) == REJECTED
    # Below quorum and not enough members left to reach it: never settles.
    assert rules.settled([APPROVE], 0, Rules(quorum=2, threshold=0.5)) is None
    # One approval, one member left who may not vote at all: quorum could fail, so not settled.
    assert rules.settled([APPROVE], 1, strict) is None
    # A remaining member could add conditions, so plain approval is not settled.
    assert rules.settled([APPROVE, APPROVE, APPROVE], 1, Rules(quorum=2, threshold=0.5)) is None


def test_settled_agrees_with_enumerating_every_future_by_hand():
    """For every small board and every vote history, 'settled' means: all futures give the same outcome."""
    choices = rules.VOTE_CHOICES
    for quorum, threshold in [(1, 0.5), (2, 0.66), (3, 1.0)]:
        board_rules = Rules(quorum, threshold)
        for cast in range(0, 4):
            for history in itertools.product(choices, repeat=cast):
                for remaining in range(0, 3):
                    futures = set()
                    for future in itertools.product((*choices, None), repeat=remaining):
                        futures.add(rules.outcome(list(history) + [c for c in future if c], board_rules))
                    expected = futures.pop() if len(futures) == 1 else None
                    assert rules.settled(list(history), remaining, board_rules) == expected


def test_waivers_use_the_same_rules():
    assert rules.waiver_outcome([APPROVE, APPROVE, REJECT], Rules(3, 0.66)) == rules.GRANTED
    assert rules.waiver_outcome([APPROVE, REJECT], Rules(2, 0.66)) == rules.REFUSED
    assert rules.waiver_outcome([APPROVE], Rules(2, 0.66)) is None
