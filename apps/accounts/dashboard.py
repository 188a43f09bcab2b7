"""Dashboard cards of the accounts app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Membership, Role
from apps.core.dashboard import card


@card(Role.ADMIN, order=10)
def members(request: HttpRequest) -> dict[str, Any]:
    organisation = request.organisation  # type: ignore[attr-defined]
    people = Membership.objects.filter(organisation=organisation).values("user").distinct().count()
    admins = Membership.objects.filter(organisation=organisation, role=Role.ADMIN).count()
    return {
        "title": "Members and roles",
        "count": people,
        "body": f"{people} people hold roles here; {admins} org admin{'s' if admins != 1 else ''}.",
        "url": reverse("accounts:members"),
        "link_text": "Manage members",
    }


def _tokens(request: HttpRequest) -> dict[str, Any]:
    active = request.user.api_tokens.filter(revoked_at__isnull=True).count()  # type: ignore[union-attr]
    return {
        "title": "API tokens",
        "count": active,
        "body": "For CI pipelines and your organisation's systems. Tokens are shown once and stored hashed.",
        "url": reverse("accounts:tokens"),
        "link_text": "Manage tokens",
    }


card(Role.ADMIN, order=80)(_tokens)
card(Role.OWNER, order=80)(_tokens)
card(Role.STEWARD, order=80)(_tokens)
