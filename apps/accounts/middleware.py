"""Chooses the organisation a signed-in person is working in (the organisation switcher)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from apps.accounts.selectors import organisations_visible_to, roles_in

SESSION_KEY = "attest_organisation_id"


class CurrentOrganisationMiddleware:
    """Sets ``request.organisation`` (or None) and ``request.roles`` from the session, checked against access."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organisation = None  # type: ignore[attr-defined]
        request.roles = set()  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            visible = organisations_visible_to(user)
            chosen = request.session.get(SESSION_KEY)
            organisation = visible.filter(id=chosen).first() if chosen else None
            if organisation is None:
                organisation = visible.order_by("name").first()
            request.organisation = organisation  # type: ignore[attr-defined]
            request.roles = roles_in(user, organisation)  # type: ignore[attr-defined]
        return self.get_response(request)
