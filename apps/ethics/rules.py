"""The board's decision arithmetic, free of Django so it can be reasoned about and tested on its own.

Quorum is the minimum number of votes cast (abstentions count towards it). The approval share is approvals (with or
without conditions) over non-abstaining votes; a review is approved when that share reaches the threshold. Otherwise
the outcome is "rejected" when rejections outnumber requests for changes, and "changes requested" when they do not
(the less final outcome wins a tie, so the owner can still answer the board).

When a review decides itself is the board's choice (``decides``):

- ``WAIT`` (the default): once every eligible member has voted, or once the due date has passed with quorum met, so
  every member's voice is on the record before the outcome is.
- ``SETTLED``: as soon as the outcome is *settled*: quorum is met and no way the remaining eligible members could vote
  (or not vote) would change the outcome.

Either way the chair may close earlier, once quorum is met.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations_with_replacement

APPROVE = "approve"
APPROVE_WITH_CONDITIONS = "approve_with_conditions"
REQUEST_CHANGES = "request_changes"
REJECT = "reject"
ABSTAIN = "abstain"
VOTE_CHOICES = (APPROVE, APPROVE_WITH_CONDITIONS, REQUEST_CHANGES, REJECT, ABSTAIN)
WAIVER_CHOICES = (APPROVE, REJECT, ABSTAIN)

APPROVED = "approved"
APPROVED_WITH_CONDITIONS = "approved_with_conditions"
CHANGES_REQUESTED = "changes_requested"
REJECTED = "rejected"
GRANTED = "granted"
REFUSED = "refused"

# Floating-point shares such as 2/3 must meet a threshold typed as 0.66 or 0.6667 exactly as a person would expect.
EPSILON = 1e-9


WAIT = "wait"
SETTLED = "settled"


@dataclass(frozen=True)
class Rules:
    quorum: int
    threshold: float
    decides: str = WAIT


@dataclass(frozen=True)
class Tally:
    counts: dict[str, int]
    cast: int
    non_abstaining: int
    approvals: int

    @property
    def share(self) -> float | None:
        return self.approvals / self.non_abstaining if self.non_abstaining else None


def tally(choices: list[str]) -> Tally:
    counts = {choice: 0 for choice in VOTE_CHOICES}
    for choice in choices:
        counts[choice] += 1
    cast = len(choices)
    approvals = counts[APPROVE] + counts[APPROVE_WITH_CONDITIONS]
    return Tally(counts=counts, cast=cast, non_abstaining=cast - counts[ABSTAIN], approvals=approvals)


def outcome(choices: list[str], rules: Rules) -> str | None:
    """The decision the votes cast so far would make, or None while quorum is not met."""
    result = tally(choices)
    if result.cast < rules.quorum:
        return None
    share = result.share
    if share is not None and share + EPSILON >= rules.threshold:
        return APPROVED_WITH_CONDITIONS if result.counts[APPROVE_WITH_CONDITIONS] else APPROVED
    if result.counts[REJECT] > result.counts[REQUEST_CHANGES]:
        return REJECTED
    return CHANGES_REQUESTED


def waiver_outcome(choices: list[str], rules: Rules) -> str | None:
    """A waiver is its own vote under the same rules: granted when approvals reach the threshold, else refused."""
    decided = outcome(choices, rules)
    if decided is None:
        return None
    return GRANTED if decided in (APPROVED, APPROVED_WITH_CONDITIONS) else REFUSED


def settled(
    choices: list[str], remaining: int, rules: Rules, *, options: tuple[str, ...] = VOTE_CHOICES, decide=outcome
) -> str | None:  # type: ignore[no-untyped-def]
    """The outcome if every completion of the remaining members' votes (each of them may also not vote) gives the
    same one, else None. Boards are small (tens of members), so trying every completion is cheap and obviously right.
    """
    current = decide(choices, rules)
    if current is None and len(choices) + remaining < rules.quorum:
        return None
    possible = (*options, None)
    for extra in combinations_with_replacement(possible, remaining):
        if decide(choices + [c for c in extra if c is not None], rules) != current:
            return None
    return current


def decided(
    choices: list[str],
    remaining: int,
    rules: Rules,
    *,
    past_due: bool = False,
    options: tuple[str, ...] = VOTE_CHOICES,
    decide=outcome,
) -> str | None:  # type: ignore[no-untyped-def]
    """The outcome a vote should decide now under the board's timing, or None while the review stays open."""
    if rules.decides == SETTLED:
        return settled(choices, remaining, rules, options=options, decide=decide)
    if remaining == 0 or past_due:
        return decide(choices, rules)  # None while quorum is not met
    return None


def quorum_reachable(cast: int, remaining: int, rules: Rules) -> bool:
    return cast + remaining >= rules.quorum


def votes_needed(cast: int, rules: Rules) -> int:
    return max(0, rules.quorum - cast)
