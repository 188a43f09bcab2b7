"""HTML pages for consent: the register summary, CSV imports with progress, and error reports."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone

from apps.consent import services
from apps.consent.models import ConsentRecord, DataSubject
from apps.consent.permissions import can, imports_visible_to
from apps.consent.selectors import subjects_with_status
from apps.consent.services import IMPORT_MAX_BYTES
from apps.core.errors import AttestError
from apps.core.uploads import SpoolingUploadHandler, accepts_upload


def _may_import(user: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    """Checked before the body is read: a consent file goes only to an organisation the user imports for."""
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(user, "view", organisation):
        raise Http404
    if not can(user, "import", organisation):
        raise PermissionDenied


@accepts_upload(
    handler=SpoolingUploadHandler,
    max_file_bytes=IMPORT_MAX_BYTES,
    fields=("file",),
    allowed=_may_import,
    too_large_message=f"The file is larger than {IMPORT_MAX_BYTES // 2**20} MB.",
)
@login_required
def consent_home(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(request.user, "view", organisation):
        raise Http404
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a CSV file to import.")
        else:
            try:
                consent_import = services.consent_import_create(
                    actor=request.user, organisation=organisation, file_name=upload.name, chunks=upload.chunks()
                )
            except AttestError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, f"{consent_import.file_name} is being imported.")
                return redirect("consent:home")
    now = timezone.now()
    purposes = organisation.processing_purposes or []
    summary = []
    for purpose in purposes:
        counts = dict(
            subjects_with_status(organisation, purpose, now)
            .exclude(status=None)
            .values_list("status")
            .annotate(n=Count("id"))
            .values_list("status", "n")
        )
        summary.append({"purpose": purpose, **{s: counts.get(s, 0) for s in ConsentRecord.Status.values}})
    return render(
        request,
        "consent/home.html",
        {
            "imports": imports_visible_to(request.user)
            .filter(organisation=organisation)
            .select_related("job", "created_by")[:20],
            "summary": summary,
            "subjects": DataSubject.objects.filter(organisation=organisation).count(),
            "can_import": can(request.user, "import", organisation),
        },
    )


@login_required
def import_errors(request: HttpRequest, import_id: Any) -> HttpResponse:
    consent_import = get_object_or_404(imports_visible_to(request.user), id=import_id)
    response = HttpResponse(consent_import.error_report or "line,column,message\n", content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="consent-import-{consent_import.id}-errors.csv"'
    return response
