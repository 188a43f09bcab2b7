"""HTML pages for datasets: register, upload with progress, profile and roles, coverage, prepare, lineage,
datasheets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts.middleware import organisation_or_404
from apps.core import charts
from apps.core.errors import AttestError
from apps.core.forms import add_service_errors, chart_html
from apps.core.uploads import accepts_upload
from apps.datasets import services
from apps.datasets.datasheet import empty_datasheet
from apps.datasets.forms import DatasetForm, DatasheetForm, RolesForm
from apps.datasets.models import DatasetVersion
from apps.datasets.permissions import can, visible_to
from apps.datasets.profiles import column_profiles
from apps.datasets.selectors import lineage, prepare_blocker, version_coverage
from apps.datasets.uploads import EncryptingUploadHandler, dataset_upload_limit
from apps.jobs.models import Job
from apps.usecases.permissions import visible_to as usecases_visible_to

COVERAGE_COLOURS = {"granted": "#2e7d32", "withdrawn": "#a4262c", "refused": "#b26a00", "unknown": "#90a4ae"}


@login_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    datasets = visible_to(request.user).filter(organisation=organisation).select_related("usecase")
    can_write = can(request.user, "change", organisation)
    form = None
    if can_write:
        usecases = usecases_visible_to(request.user).filter(organisation=organisation).order_by("reference")
        form = DatasetForm(request.POST or None, usecases=usecases)
        if request.method == "POST" and form.is_valid():
            usecase = get_object_or_404(usecases, id=form.cleaned_data["usecase"])
            try:
                dataset = services.dataset_create(
                    actor=request.user,
                    usecase=usecase,
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                )
            except AttestError as exc:
                add_service_errors(request, form, exc)
            else:
                return redirect("datasets:detail", dataset_id=dataset.id)
    elif request.method == "POST":
        raise Http404
    return render(request, "datasets/list.html", {"datasets": datasets, "form": form})


@login_required
def dataset_detail(request: HttpRequest, dataset_id: Any) -> HttpResponse:
    dataset = get_object_or_404(visible_to(request.user).select_related("usecase"), id=dataset_id)
    return render(
        request,
        "datasets/detail.html",
        {
            "dataset": dataset,
            "lineage": lineage(dataset),
            "can_write": can(request.user, "change", dataset.organisation),
            "default_retention": (timezone.localdate() + timedelta(days=730)).isoformat(),
        },
    )


def _may_upload(user: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    """Checked before the body is read: only the dataset's stewards and admins may send a file to it."""
    if not visible_to(user, "change").filter(id=kwargs["dataset_id"]).exists():
        raise Http404


@accepts_upload(
    handler=EncryptingUploadHandler,
    max_file_bytes=dataset_upload_limit,
    fields=("file",),
    allowed=_may_upload,
    back=lambda request, kwargs: reverse("datasets:detail", args=[kwargs["dataset_id"]]),
)
@login_required
def dataset_upload(request: HttpRequest, dataset_id: Any) -> HttpResponse:
    """The file was encrypted while it streamed in (the upload policy above: checked, bounded, cleaned up)."""
    dataset = get_object_or_404(visible_to(request.user, "change"), id=dataset_id)
    if request.method != "POST":
        raise Http404
    wants_json = "application/json" in request.headers.get("Accept", "")
    upload = request.FILES.get("file")
    try:
        if upload is None or not hasattr(upload, "incoming"):
            raise AttestError("invalid", "Choose a CSV or Parquet file to upload.")
        retention = request.POST.get("retention_until") or None
        version, created = services.dataset_version_upload(
            actor=request.user,
            dataset=dataset,
            incoming=upload.incoming,
            sha256=upload.sha256,
            file_name=upload.name,
            retention_until=retention,
        )
    except AttestError as exc:
        if wants_json:
            return JsonResponse(exc.as_dict(), status=exc.status)
        messages.error(request, exc.message)
        return redirect("datasets:detail", dataset_id=dataset.id)
    note = "New version" if created else "This content was uploaded before; it is the same version"
    if wants_json:
        return JsonResponse(
            {
                "version": str(version.id),
                "created": created,
                "message": note,
                "url": reverse("datasets:version", args=[version.id]),
            },
            status=201 if created else 200,
        )
    messages.success(request, f"{note}: v{version.number}.")
    return redirect("datasets:version", version_id=version.id)


def _coverage_chart(coverage: dict[str, Any] | None) -> str:
    if not coverage:
        return ""
    parts = [(name.capitalize(), coverage["shares"][name], COVERAGE_COLOURS[name]) for name in COVERAGE_COLOURS]
    return charts.stacked_bar(parts, title=f"Consent for '{coverage['purpose']}' now ({coverage['total']:,} rows)")


@login_required
def version_detail(request: HttpRequest, version_id: Any) -> HttpResponse:
    version = get_object_or_404(
        visible_to(request.user, "view", DatasetVersion).select_related("dataset__usecase", "parent", "created_by"),
        id=version_id,
    )
    can_write = can(request.user, "change", version.dataset.organisation)
    columns = list(version.columns.all())
    roles_form = RolesForm(request.POST or None, columns=columns) if columns else None
    if request.method == "POST":
        if not can_write:
            raise Http404
        if roles_form is not None and roles_form.is_valid():
            try:
                services.dataset_version_confirm_roles(actor=request.user, version=version, roles=roles_form.roles())
            except AttestError as exc:
                add_service_errors(request, roles_form, exc)
            else:
                messages.success(request, "Column roles confirmed.")
                return redirect("datasets:version", version_id=version.id)
    # Redacted for everyone: no values of personal-data columns, no quasi-identifier cell below the minimum size.
    profile = column_profiles(version, columns)
    rows = []
    for column in columns:
        column_profile = profile.get(column.name, {})
        histogram = column_profile.get("histogram")
        rows.append(
            {
                "column": column,
                "median": (column_profile.get("quantiles") or {}).get("0.5"),
                "profile": column_profile,
                "field": roles_form[f"role__{column.name}"] if roles_form else None,
                "chart": chart_html(charts.histogram(histogram["edges"], histogram["counts"], title=column.name))
                if histogram
                else "",
            }
        )
    coverage = None
    if version.subject_key_column and version.status == DatasetVersion.Status.READY:
        try:
            coverage = version_coverage(version)
        except AttestError as exc:
            messages.error(request, exc.message)
    jobs = Job.objects.filter(target_id=str(version.id)).order_by("-created_at")
    # Offered only when it can succeed; the service refuses with the same words.
    blocker = prepare_blocker(version, coverage) if can_write and version.kind == DatasetVersion.Kind.RAW else ""
    return render(
        request,
        "datasets/version.html",
        {
            "version": version,
            "rows": rows,
            "roles_form": roles_form,
            "can_write": can_write,
            "coverage": coverage,
            "coverage_chart": chart_html(_coverage_chart(coverage)),
            "profile_job": version.profile_job,
            "prepare_job": jobs.filter(kind="prepare").first(),
            "prepare_blocker": blocker,
            "children": version.children.all(),
        },
    )


@login_required
@require_POST
def version_prepare(request: HttpRequest, version_id: Any) -> HttpResponse:
    version = get_object_or_404(visible_to(request.user, "view", DatasetVersion), id=version_id)
    try:
        services.dataset_version_prepare_start(actor=request.user, version=version)
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Preparing a consent-filtered, de-identified version.")
    return redirect("datasets:version", version_id=version.id)


@login_required
def datasheet(request: HttpRequest, version_id: Any) -> HttpResponse:
    version = get_object_or_404(
        visible_to(request.user, "view", DatasetVersion).select_related("dataset"), id=version_id
    )
    can_write = can(request.user, "change", version.dataset.organisation)
    latest = version.datasheets.order_by("-number").first()
    if latest is None and can_write and request.method != "POST":
        latest = services.datasheet_save(actor=request.user, version=version)  # prefilled first revision
    form = DatasheetForm(request.POST or None, content=latest.content if latest else empty_datasheet())
    if request.method == "POST":
        if not can_write:
            raise Http404
        if form.is_valid():
            services.datasheet_save(actor=request.user, version=version, content=form.content())
            messages.success(request, "Datasheet saved as a new revision.")
            return redirect("datasets:datasheet", version_id=version.id)
    return render(
        request, "datasets/datasheet.html", {"version": version, "form": form, "latest": latest, "can_write": can_write}
    )
