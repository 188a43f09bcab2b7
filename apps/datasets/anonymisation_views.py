"""The steward's anonymisation pages: choose quasi-identifiers, hierarchies and privacy models; see risk and utility
before and after, side by side; apply. Thin: every write is a service in ``apps.datasets.anonymisation``."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import charts
from apps.core.errors import AttestError
from apps.core.forms import chart_html
from apps.core.uploads import accepts_upload
from apps.datasets.anonymisation import (
    HIERARCHY_KINDS,
    MAX_HIERARCHY_BYTES,
    anonymisation_apply_start,
    anonymisation_request,
    default_config,
    parse_hierarchy_csv,
    parse_population_csv,
)
from apps.datasets.models import Anonymisation, DatasetVersion
from apps.datasets.permissions import can, visible_to

KIND_LABELS = {
    "propose": "Attest's proposal",
    "intervals": "Intervals (widths)",
    "dates": "Month, then year",
    "prefix": "Drop trailing characters",
    "suppression": "Value or * only",
    "table": "Uploaded hierarchy (CSV)",
}


def _config_from_post(request: HttpRequest, version: DatasetVersion) -> dict[str, Any]:
    post = request.POST
    hierarchies: dict[str, Any] = {}
    for name in version.column_names:
        upload = request.FILES.get(f"hierarchy_file__{name}")
        kind = post.get(f"hierarchy__{name}", "propose")
        if upload is not None:
            hierarchies[name] = parse_hierarchy_csv(name, upload.read())
        elif kind == "intervals":
            widths = [w.strip() for w in post.get(f"widths__{name}", "").split(",") if w.strip()]
            try:
                hierarchies[name] = {"kind": "intervals", "widths": [float(w) for w in widths]}
            except ValueError:
                raise AttestError(
                    "invalid",
                    f"Interval widths for '{name}' must be numbers, e.g. 5, 10, 20.",
                    {f"widths__{name}": ["numbers separated by commas"]},
                ) from None
        elif kind in HIERARCHY_KINDS and kind not in ("propose", "table"):
            hierarchies[name] = {"kind": kind}
    population_file = request.FILES.get("population")
    population = parse_population_csv(population_file.read()) if population_file is not None else None
    percent = post.get("suppression_percent", "5")
    try:
        limit = float(percent) / 100
    except ValueError:
        limit = percent  # the service names the field
    return {
        "quasi_identifiers": post.getlist("quasi_identifiers"),
        "sensitive": post.get("sensitive", ""),
        "k": post.get("k"),
        "suppression_limit": limit,
        "l_diversity": post.get("l_diversity") or None,
        "l_kind": post.get("l_kind", "distinct"),
        "t_closeness": post.get("t_closeness") or None,
        "t_distance": post.get("t_distance", "equal"),
        "measure": post.get("measure", "loss"),
        "hierarchies": hierarchies,
        "population": population,
    }


@accepts_upload(
    max_file_bytes=5 * MAX_HIERARCHY_BYTES,
    max_files=100,
    max_request_bytes=32 * 1024 * 1024,
    too_large_message="A hierarchy file may hold at most 1 MB and the population table 5 MB.",
)
@login_required
def anonymise(request: HttpRequest, version_id: Any) -> HttpResponse:
    version = get_object_or_404(
        visible_to(request.user, "view", DatasetVersion).select_related("dataset"), id=version_id
    )
    if not can(request.user, "change", version.dataset.organisation):
        raise Http404
    config = default_config(version)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        try:
            config = _config_from_post(request, version)
            item = anonymisation_request(actor=request.user, version=version, config=config)
        except AttestError as exc:
            messages.error(request, exc.message)
            errors = exc.details if isinstance(exc.details, dict) else {}
        else:
            return redirect("datasets:anonymisation", anonymisation_id=item.id)
    profile = {c["name"]: c for c in (version.profile or {}).get("columns", [])}
    columns = []
    for column in version.columns.all():
        numeric = profile.get(column.name, {}).get("mean") is not None
        columns.append(
            {
                "name": column.name,
                "role": column.get_role_display() if column.role else "",
                "numeric": numeric,
                "distinct": profile.get(column.name, {}).get("distinct"),
                "quasi": column.name in config.get("quasi_identifiers", []),
                "sensitive": column.name == config.get("sensitive"),
            }
        )
    return render(
        request,
        "datasets/anonymise.html",
        {
            "version": version,
            "columns": columns,
            "config": config,
            "errors": errors,
            "kinds": [(k, KIND_LABELS[k]) for k in HIERARCHY_KINDS],
            "suppression_percent": round(float(config.get("suppression_limit") or 0) * 100, 2)
            if isinstance(config.get("suppression_limit"), (int, float))
            else 5,
            "history": version.anonymisations.select_related("created_by", "output", "job")[:10],
        },
    )


def _risk_chart(result: dict[str, Any]) -> str:
    before, after = result["risk_before"], result["risk_after"]
    bars = [
        charts.Bar("highest risk, before", before["highest"]),
        charts.Bar("highest risk, after", after["highest"]),
        charts.Bar("average risk, before", before["average"]),
        charts.Bar("average risk, after", after["average"]),
        charts.Bar(f"share above {before['threshold']:.2f}, before", before["share_above_threshold"]),
        charts.Bar(f"share above {after['threshold']:.2f}, after", after["share_above_threshold"]),
    ]
    return charts.bar_chart(bars, title="Prosecutor re-identification risk, before and after", max_value=1.0)


def _classes_chart(result: dict[str, Any]) -> str:
    bars = [charts.Bar(f"classes of {row['label']}", row["records"]) for row in result["class_sizes"]]
    return charts.bar_chart(bars, title="Records by equivalence-class size, after")


@login_required
def anonymisation_detail(request: HttpRequest, anonymisation_id: Any) -> HttpResponse:
    item = get_object_or_404(
        Anonymisation.objects.filter(version__in=visible_to(request.user, "view", DatasetVersion)).select_related(
            "version__dataset", "job", "output", "created_by"
        ),
        id=anonymisation_id,
    )
    result = item.result or {}
    context = {
        "item": item,
        "status": item.state,
        "status_label": item.state_label,
        "result": result,
        "can_write": can(request.user, "change", item.version.dataset.organisation),
        "risk_chart": chart_html(_risk_chart(result)) if result else "",
        "classes_chart": chart_html(_classes_chart(result)) if result else "",
        "live": item.is_live,
    }
    if request.headers.get("HX-Request"):
        return render(request, "datasets/_anonymisation_live.html", context)
    return render(request, "datasets/anonymisation.html", context)


@login_required
@require_POST
def anonymisation_apply(request: HttpRequest, anonymisation_id: Any) -> HttpResponse:
    item = get_object_or_404(
        Anonymisation.objects.filter(version__in=visible_to(request.user, "view", DatasetVersion)),
        id=anonymisation_id,
    )
    try:
        anonymisation_apply_start(actor=request.user, anonymisation=item)
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Writing the anonymised version.")
    return redirect("datasets:anonymisation", anonymisation_id=item.id)
