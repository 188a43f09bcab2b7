"""Dashboard cards of the portfolio: overdue risk reviews, for the people who answer for risks."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.portfolio.selectors import overdue_reviews


def _overdue(request: HttpRequest) -> dict[str, Any] | None:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None:
        return None
    overdue = overdue_reviews(organisation).count()
    return {
        "title": "Overdue risk reviews",
        "count": overdue,
        "body": (
            f"{overdue} open risk{'s' if overdue != 1 else ''} of the register past {'their' if overdue != 1 else 'its'}"
            " review date."
            if overdue
            else "Every open risk of the register is within its review date."
        ),
        "url": reverse("portfolio:risks") + ("?overdue=1" if overdue else ""),
        "link_text": "Open the risk register",
        "tone": "warning" if overdue else None,
    }


card(Role.ADMIN, order=25)(_overdue)
card(Role.OWNER, order=25)(_overdue)
