"""Dashboard cards of the use-case register."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.dashboard import card
from apps.usecases.models import UseCase


@card(Role.OWNER, order=10)
def my_usecases(request: HttpRequest) -> dict[str, Any]:
    mine = UseCase.objects.filter(organisation=request.organisation, owner=request.user)  # type: ignore[attr-defined]
    drafts = mine.filter(status=UseCase.Status.DRAFT).count()
    rejected = mine.filter(status=UseCase.Status.REJECTED).count()
    approved = mine.filter(status=UseCase.Status.APPROVED).count()
    body = f"{drafts} draft{'s' if drafts != 1 else ''} to complete and submit; {approved} approved for development."
    if rejected:
        body += f" {rejected} rejected: revise and reopen."
    return {
        "title": "My use cases",
        "count": mine.count(),
        "body": body,
        "url": reverse("usecases:list"),
        "link_text": "Open the register",
    }


@card(Role.OWNER, order=11)
def register_usecase(request: HttpRequest) -> dict[str, Any]:
    return {
        "title": "Register a use case",
        "body": "Purpose, legal basis, AI Act risk tier, DPIA and policies.",
        "url": reverse("usecases:create"),
        "link_text": "Start a draft",
    }


def _register(request: HttpRequest) -> dict[str, Any]:
    total = UseCase.objects.filter(organisation=request.organisation).count()  # type: ignore[attr-defined]
    return {
        "title": "Use-case register",
        "count": total,
        "body": "Every AI use case with its legal basis and DPIA.",
        "url": reverse("usecases:list"),
        "link_text": "Open the register",
    }


card(Role.ADMIN, order=20)(_register)
card(Role.AUDITOR, order=20)(_register)
