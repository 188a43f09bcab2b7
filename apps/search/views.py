"""The search results page: the header's search box sends its query here."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from apps.search.selectors import KINDS, MAX_QUERY, MIN_QUERY, search


@login_required
def results(request: HttpRequest) -> HttpResponse:
    query = (request.GET.get("q") or "").strip()[:MAX_QUERY]
    kind = request.GET.get("kind") or ""
    kinds = (kind,) if kind in {k.key for k in KINDS} else None
    organisation = request.organisation  # type: ignore[attr-defined]
    # Without an organisation acted in (a person in several who has not chosen yet) nothing is searched, as the
    # other pages show nothing until one is chosen.
    groups = search(request.user, query, organisation=organisation, kinds=kinds) if organisation else []
    return render(
        request,
        "search/results.html",
        {
            "query": query,
            "kind": kinds[0] if kinds else "",
            "kinds": KINDS,
            "groups": groups,
            "total": sum(len(group["results"]) for group in groups),
            "too_short": 0 < len(query) < MIN_QUERY,
            "organisation": organisation,
        },
    )
