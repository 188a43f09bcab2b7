"""The audit trail page: filters (htmx refreshes the table), exports and on-demand chain verification."""

from __future__ import annotations

from datetime import datetime, time
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.selectors import has_role
from apps.audit.forms import AuditFilterForm
from apps.audit.selectors import READ_ROLES, audit_events_filtered, audit_events_visible_to
from apps.audit.verify import audit_chain_verify


def _day(value):  # type: ignore[no-untyped-def]
    return timezone.make_aware(datetime.combine(value, time.min)) if value else None


@login_required
def trail(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not has_role(request.user, organisation, *READ_ROLES):
        raise Http404
    form = AuditFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    events = audit_events_filtered(
        audit_events_visible_to(request.user),
        organisation=organisation.id,
        action=filters.get("action", ""),
        actor=filters.get("actor", ""),
        object_id=filters.get("object_id", ""),
        since=_day(filters.get("since")),
        until=_day(filters.get("until")),
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    query = {key: value for key, value in request.GET.items() if key != "page" and value}
    export_query = urlencode(
        {
            **{k: v for k, v in query.items() if k in ("action", "actor", "object_id")},
            "organisation": str(organisation.id),
        }
    )
    context = {"form": form, "page": page, "query": urlencode(query), "export_query": export_query}
    template = "audit/_table.html" if getattr(request, "htmx", False) else "audit/trail.html"
    return render(request, template, context)


@login_required
@require_POST
def verify(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not has_role(request.user, organisation, *READ_ROLES):
        raise Http404
    return render(request, "audit/_verify.html", {"result": audit_chain_verify(organisation=organisation)})
