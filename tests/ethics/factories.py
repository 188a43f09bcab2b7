"""Helpers to take a use case through the board in tests, with the real services."""

from __future__ import annotations

from apps.ethics.models import ReviewRequest
from apps.ethics.selectors import board_of
from apps.ethics.services import vote_cast
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_transition


def set_board_rules(
    organisation, *, quorum: int, threshold: float = 0.66, chair=None, decides: str | None = None
) -> None:
    """Test set-up only: the service (board_update) refuses a quorum larger than the board, which set-up may need.
    ``decides`` ("wait", the default of a new board, or "settled") is left as it is unless given."""
    board = board_of(organisation)
    board.quorum, board.approval_threshold, board.chair = quorum, threshold, chair
    board.decides = decides or board.decides
    board.save()


def open_review(usecase: UseCase) -> ReviewRequest:
    return usecase.reviews.get(status=ReviewRequest.Status.OPEN)


def approve_by_board(usecase: UseCase, *members, submitter=None) -> UseCase:
    """Submit the use case (if it is a draft) and have ``members`` approve it under a quorum of len(members).

    Other board members may exist and not vote, so this set-up relies on a board that decides once the outcome is
    settled; the board's timing is put back afterwards."""
    previous = board_of(usecase.organisation).decides
    set_board_rules(usecase.organisation, quorum=len(members), decides="settled")
    if usecase.status == UseCase.Status.DRAFT:
        usecase = usecase_transition(actor=submitter or usecase.owner, usecase=usecase, action="submit")
    review = open_review(usecase)
    for member in members:
        vote_cast(actor=member, review=review, choice="approve", reason="Sound purpose, basis and DPIA.")
    set_board_rules(usecase.organisation, quorum=len(members), decides=previous)
    usecase.refresh_from_db()
    return usecase
