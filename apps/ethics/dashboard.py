"""Dashboard cards of the ethics board: votes due, decisions, and conditions (overdue ones flagged)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.ethics.models import Condition, ReviewRequest
from apps.ethics.selectors import overdue_conditions, reviews_awaiting


@card(Role.BOARD, order=5)
def awaiting_my_vote(request: HttpRequest) -> dict[str, Any]:
    waiting = reviews_awaiting(request.user, request.organisation)  # type: ignore[attr-defined]
    count = len(waiting)
    first = waiting[0] if waiting else None
    return {
        "title": "Reviews awaiting your vote",
        "count": count,
        "body": f"Next: {first.reference}, due {first.due_at:%d %b %Y}." if first else "No vote is due from you.",
        "url": reverse("ethics:review", kwargs={"review_id": first.id}) if first else reverse("ethics:list"),
        "link_text": "Open the review" if first else "All reviews",
        "tone": "warning" if count else None,
    }


def _overdue(request: HttpRequest) -> dict[str, Any] | None:
    late = overdue_conditions(request.organisation)  # type: ignore[attr-defined]
    count = late.count()
    open_count = Condition.objects.filter(
        organisation=request.organisation,  # type: ignore[attr-defined]
        status=Condition.Status.OPEN,
    ).count()
    if not open_count:
        return None
    return {
        "title": "Conditions of approvals",
        "count": open_count,
        "body": f"{count} overdue." if count else "None overdue.",
        "url": reverse("ethics:list") + "#conditions-heading",
        "link_text": "Track conditions",
        "tone": "danger" if count else None,
    }


card(Role.BOARD, order=6)(_overdue)
card(Role.ADMIN, order=6)(_overdue)
card(Role.AUDITOR, order=30)(_overdue)


@card(Role.OWNER, order=12)
def my_conditions_and_reviews(request: HttpRequest) -> dict[str, Any] | None:
    organisation = request.organisation  # type: ignore[attr-defined]
    mine = Condition.objects.filter(organisation=organisation, owner=request.user, status=Condition.Status.OPEN)
    late = overdue_conditions(organisation).filter(owner=request.user).count()
    reviews = ReviewRequest.objects.filter(organisation=organisation, usecase__owner=request.user)
    open_reviews = reviews.filter(status=ReviewRequest.Status.OPEN).count()
    decided = reviews.filter(status=ReviewRequest.Status.DECIDED).select_related("decision").order_by("-updated_at")
    latest = decided.first()
    body = f"{open_reviews} review(s) of your work open with the board."
    if latest:
        body += f" Latest decision: {latest.reference} {latest.decision.get_outcome_display().lower()}."
    if mine.exists():
        body += f" You own {mine.count()} open condition(s)" + (f", {late} overdue." if late else ".")
    return {
        "title": "Board reviews and conditions",
        "count": open_reviews,
        "body": body,
        "url": reverse("ethics:list"),
        "link_text": "Reviews and conditions",
        "tone": "danger" if late else None,
    }
