"""Which organisation a signed-in person is acting in: the one they chose this session, never a guess.

A person with one organisation acts in it. A person with several chooses after each sign-in (the chooser page) and
switches only there: choosing the first by name let an organisation that renamed itself "AAA" capture everyone's
next sign-in.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from apps.accounts.models import Organisation
from apps.accounts.selectors import organisation_ids_for, roles_in

SESSION_KEY = "attest_organisation_id"
# Pages that work without an organisation: signing in and out, the chooser itself, passwords, invitations, tokens,
# the API (each call names its organisation), static files, and the public pages of deployments (people affected by a
# decision, who may happen to be signed in).
NO_ORGANISATION_NEEDED = ("/accounts/", "/api/", "/static/", "/healthz", "/livez", "/readyz", "/metrics", "/public/")


def organisation_or_404(request: HttpRequest) -> Organisation:
    """The organisation the request acts in (set by ``CurrentOrganisationMiddleware``); a page that needs one and has
    none answers 404."""
    organisation = getattr(request, "organisation", None)
    if organisation is None:
        raise Http404
    return organisation


class CurrentOrganisationMiddleware:
    """Sets ``request.organisation`` (or None) and ``request.roles`` from the session, checked against access; sends a
    person with several organisations and no choice yet to the chooser."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.organisation = None  # type: ignore[attr-defined]
        request.roles = set()  # type: ignore[attr-defined]
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            visible = {str(pk) for pk in organisation_ids_for(user)}
            chosen = request.session.get(SESSION_KEY)
            if chosen not in visible:
                chosen = next(iter(visible)) if len(visible) == 1 else None
            organisation = Organisation.objects.filter(id=chosen).first() if chosen else None
            request.organisation = organisation  # type: ignore[attr-defined]
            request.roles = roles_in(user, organisation)  # type: ignore[attr-defined]
            if organisation is None and len(visible) > 1 and not request.path.startswith(NO_ORGANISATION_NEEDED):
                return redirect(
                    f"{reverse('accounts:switch_organisation')}?{urlencode({'next': request.get_full_path()})}"
                )
        return self.get_response(request)
