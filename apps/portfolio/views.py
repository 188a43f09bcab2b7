"""HTML pages of the portfolio: the inventory (with its CSV export) and the risk register."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.middleware import organisation_or_404
from apps.core.errors import AttestError
from apps.core.exports import csv_stream
from apps.core.forms import add_service_errors, chart_html
from apps.portfolio import selectors, services
from apps.portfolio.forms import CloseRiskForm, RiskForm
from apps.portfolio.models import Risk
from apps.portfolio.permissions import can, can_record, visible_to
from apps.usecases.models import UseCase
from apps.usecases.vocab import RiskTier

# Sortable columns of the inventory, in page order (keys of ``selectors.INVENTORY_SORTS``).
COLUMNS = [
    ("reference", "AI system"),
    ("tier", "Risk tier"),
    ("stage", "Lifecycle stage"),
    ("alerts", "Open alerts"),
    ("conditions", "Open conditions"),
    ("waivers", "Expiring waivers"),
]
# The CSV export reads the inventory in chunks of this many use cases, so its queries and memory stay bounded.
EXPORT_CHUNK = 200


@login_required
def inventory(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    filters = selectors.InventoryFilters.from_params(request.GET)
    usecases = selectors.inventory(request.user, organisation, filters)
    page = Paginator(usecases, selectors.PAGE_SIZE).get_page(request.GET.get("page"))
    query = filters.as_query()
    filter_query = urlencode({key: value for key, value in query.items() if key != "sort"})
    columns = []
    for key, label in COLUMNS:
        ascending, descending = filters.sort == key, filters.sort == f"-{key}"
        columns.append(
            {
                "label": label,
                "next": f"-{key}" if ascending else key,
                "aria_sort": "ascending" if ascending else "descending" if descending else "",
            }
        )
    return render(
        request,
        "portfolio/inventory.html",
        {
            "rows": selectors.inventory_rows(list(page.object_list)),
            "page": page,
            "filters": filters,
            "columns": columns,
            "filter_query": filter_query,
            "page_query": urlencode(query),
            "tiers": RiskTier.choices,
            "stages": UseCase.Status.choices,
            "kinds": selectors.INVENTORY_KINDS.items(),
            "alert_states": selectors.ALERT_STATES.items(),
            "waiver_days": selectors.WAIVER_NOTICE_DAYS,
        },
    )


@login_required
def inventory_export(request: HttpRequest) -> StreamingHttpResponse:
    organisation = organisation_or_404(request)
    filters = selectors.InventoryFilters.from_params(request.GET)
    usecases = selectors.inventory(request.user, organisation, filters)

    def lines():  # type: ignore[no-untyped-def]
        paginator = Paginator(usecases, EXPORT_CHUNK)
        for number in paginator.page_range:
            rows = selectors.inventory_rows(list(paginator.page(number).object_list))
            yield from selectors.inventory_csv_rows(rows)

    response = StreamingHttpResponse(
        csv_stream(selectors.INVENTORY_CSV_HEADER, lines()), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="ai-inventory-{organisation.slug}-{stamp}.csv"'
    return response


@login_required
def risk_register(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    filters = selectors.RegisterFilters.from_params(request.GET)
    entries = selectors.register_entries(request.user, organisation, filters)
    # The heat map shows what is open, whatever the list's filters, so the picture of the organisation is stable.
    open_entries = (
        entries
        if filters == selectors.RegisterFilters(sort=filters.sort)
        else selectors.register_entries(request.user, organisation)
    )
    heat = selectors.heat_map(open_entries)
    return render(
        request,
        "portfolio/risks.html",
        {
            "entries": entries,
            "filters": filters,
            "heat": heat,
            "heat_svg": chart_html(heat.svg(f"Open risks of {organisation.name} by likelihood and severity")),
            "likelihood_labels": selectors.LIKELIHOOD_LABELS,
            "overdue_count": sum(1 for entry in open_entries if entry.overdue),
            "can_record": can_record(request.user, organisation),
            "status_choices": [("open", "Open"), ("closed", "Closed"), ("all", "All")],
        },
    )


def _get_risk(request: HttpRequest, risk_id: Any) -> Risk:
    return get_object_or_404(
        visible_to(request.user).select_related("owner", "usecase", "organisation", "closed_by"), id=risk_id
    )


@login_required
def risk_create(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    if not can_record(request.user, organisation):
        raise Http404
    form = RiskForm(request.POST or None, organisation=organisation, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        try:
            risk = services.risk_create(actor=request.user, organisation=organisation, data=form.cleaned_data)
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, f"{risk.reference} recorded.")
            return redirect("portfolio:risk_detail", risk_id=risk.id)
    return render(request, "portfolio/risk_form.html", {"form": form, "risk": None})


@login_required
def risk_detail(request: HttpRequest, risk_id: Any) -> HttpResponse:
    risk = _get_risk(request, risk_id)
    return render(
        request,
        "portfolio/risk_detail.html",
        {
            "risk": risk,
            "entry": selectors.register_entry(risk),
            "can_change": can(request.user, "change", risk) and risk.status == Risk.Status.OPEN,
            "can_close": can(request.user, "close", risk),
            "close_form": CloseRiskForm(),
        },
    )


@login_required
def risk_edit(request: HttpRequest, risk_id: Any) -> HttpResponse:
    risk = _get_risk(request, risk_id)
    if not can(request.user, "change", risk) or risk.status != Risk.Status.OPEN:
        messages.error(request, "You cannot change this risk.")
        return redirect("portfolio:risk_detail", risk_id=risk.id)
    form = RiskForm(request.POST or None, organisation=risk.organisation, initial=RiskForm.initial_from(risk))
    if request.method == "POST" and form.is_valid():
        try:
            services.risk_update(actor=request.user, risk=risk, data=form.cleaned_data)
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            messages.success(request, f"{risk.reference} saved.")
            return redirect("portfolio:risk_detail", risk_id=risk.id)
    return render(request, "portfolio/risk_form.html", {"form": form, "risk": risk})


@login_required
@require_POST
def risk_close(request: HttpRequest, risk_id: Any) -> HttpResponse:
    risk = _get_risk(request, risk_id)
    form = CloseRiskForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why the risk is closed.")
        return redirect("portfolio:risk_detail", risk_id=risk.id)
    try:
        services.risk_close(actor=request.user, risk=risk, note=form.cleaned_data["note"])
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{risk.reference} closed.")
    return redirect("portfolio:risk_detail", risk_id=risk.id)
