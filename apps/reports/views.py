"""The report library (filters, downloads, issuing), a report's page, and the verify page."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.selectors import organisations_visible_to, roles_in
from apps.core.errors import AttestError
from apps.core.uploads import SpoolingUploadHandler, accepts_upload
from apps.reports import services
from apps.reports.models import Report
from apps.reports.permissions import visible_to

MAX_VERIFY_BYTES = 50 * 1024 * 1024


def _subjects(organisation: Any) -> dict[str, list[tuple[str, str]]]:
    """What each kind of report can be issued about, in the current organisation."""
    from apps.datasets.models import DatasetVersion
    from apps.ethics.models import ReviewRequest
    from apps.training.models import ModelVersion

    models = [(str(m.id), str(m)) for m in ModelVersion.objects.filter(organisation=organisation, non_private=False)]
    return {
        Report.Kind.MODEL_CARD: models,
        Report.Kind.ANNEX_IV: models,
        Report.Kind.DATASHEET: [
            (str(v.id), str(v))
            for v in DatasetVersion.objects.filter(dataset__organisation=organisation).exclude(
                status__in=[DatasetVersion.Status.ERASED, DatasetVersion.Status.REPLACED]
            )
        ],
        Report.Kind.DPIA: [(str(u.id), str(u)) for u in organisation.usecases.exclude(status="draft")],
        Report.Kind.ART30: [(str(organisation.id), organisation.name)],
        Report.Kind.AUDIT_EXTRACT: [(str(organisation.id), organisation.name)],
        Report.Kind.DECISION: [
            (str(r.id), f"{r.reference} {r.get_kind_display()}")
            for r in ReviewRequest.objects.filter(organisation=organisation, status="decided")
        ],
    }


@login_required
def library(request: HttpRequest) -> HttpResponse:
    reports = visible_to(request.user).exclude(job__status__in=["failed", "cancelled"], status=Report.Status.PENDING)
    params = request.GET
    if params.get("organisation"):
        reports = reports.filter(organisation_id=params["organisation"])
    if params.get("kind") in Report.Kind.values:
        reports = reports.filter(kind=params["kind"])
    if params.get("usecase"):
        reports = reports.filter(usecase_id=params["usecase"])
    if params.get("model"):
        reports = reports.filter(model_version_id=params["model"])
    for name, lookup in (("from", "created_at__date__gte"), ("to", "created_at__date__lte")):
        try:
            if params.get(name):
                reports = reports.filter(**{lookup: date.fromisoformat(params[name])})
        except ValueError:
            messages.error(request, f"'{params[name]}' is not a date (YYYY-MM-DD).")
    if params.get("current") == "1":
        reports = reports.filter(superseded_by__isnull=True)
    organisation = getattr(request, "organisation", None)
    may_issue = organisation is not None and bool(roles_in(request.user, organisation) & services.ISSUER_ROLES)
    from apps.training.models import ModelVersion
    from apps.usecases.models import UseCase

    visible_orgs = organisations_visible_to(request.user)
    return render(
        request,
        "reports/library.html",
        {
            "reports": reports.order_by("-created_at")[:300],
            "kinds": Report.Kind.choices,
            # A report about a period is issued from its subject's page, where the period is chosen.
            # Reports of data-subject requests are issued by completing the request, and a compliance statement from
            # its use case's framework page (where its status is seen), not from the library.
            "issue_kinds": [
                (v, label)
                for v, label in Report.Kind.choices
                if v not in services.PERIOD_KINDS and v not in services.RIGHTS_KINDS and v != Report.Kind.COMPLIANCE
            ],
            "organisations": visible_orgs,
            "usecases": UseCase.objects.filter(organisation__in=visible_orgs).order_by("reference"),
            "models": ModelVersion.objects.filter(organisation__in=visible_orgs, non_private=False),
            "params": params,
            "may_issue": may_issue,
            "subjects": _subjects(organisation) if may_issue else {},
        },
    )


@login_required
@require_POST
def issue(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    subject_id = request.POST.get(f"subject_{kind}", "") or request.POST.get("subject", "")
    try:
        if kind not in services.SUBJECTS:
            raise AttestError("invalid", "Choose a kind of report.")
        try:
            subject = services.subject_object(kind, subject_id)
        except (ObjectDoesNotExist, ValueError, DjangoValidationError) as exc:
            raise Http404 from exc
        if not roles_in(request.user, services.subject_organisation(subject)):
            raise Http404
        report = services.report_request(actor=request.user, kind=kind, subject=subject)
    except AttestError as exc:
        messages.error(request, exc.message)
        return redirect("reports:library")
    messages.success(request, f"{report.reference} is being rendered and signed.")
    return redirect("reports:detail", report_id=report.id)


@login_required
def detail(request: HttpRequest, report_id: Any) -> HttpResponse:
    report = get_object_or_404(visible_to(request.user), id=report_id)
    older = (
        visible_to(request.user)
        .filter(
            kind=report.kind,
            subject_type=report.subject_type,
            subject_id=report.subject_id,
            period_start=report.period_start,
            period_end=report.period_end,
        )
        .order_by("-version")
    )
    live = report.is_live
    template = "reports/_status.html" if request.headers.get("HX-Request") else "reports/detail.html"
    return render(request, template, {"report": report, "versions": older, "live": live})


@login_required
def download(request: HttpRequest, report_id: Any) -> HttpResponse:
    report = get_object_or_404(visible_to(request.user), id=report_id)
    try:
        data = services.report_file(report)
    except (AttestError, FileNotFoundError):
        raise Http404 from None
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{report.filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@accepts_upload(
    handler=SpoolingUploadHandler,
    max_file_bytes=MAX_VERIFY_BYTES,
    fields=("file",),
    too_large_message="The file is larger than 50 MB: it is not a report this portal issued.",
)
@login_required
def verify(request: HttpRequest) -> HttpResponse:
    result = None
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, "Choose a PDF file to check.")
        elif upload.size > MAX_VERIFY_BYTES:
            messages.error(request, "The file is larger than 50 MB: it is not a report this portal issued.")
        else:
            result = services.report_verify(upload.read())
            report = result["report"]
            # Only say which report it is to people who may see that organisation's reports.
            if report is not None and not roles_in(request.user, report.organisation):
                result["report"] = None
                result["superseded_by"] = None
                result["superseded_by_request"] = None
    return render(request, "reports/verify.html", {"result": result})


MAX_PEM_BYTES = 64 * 1024


@accepts_upload(
    max_file_bytes=MAX_PEM_BYTES,
    max_files=2,
    fields=("certificate", "key"),
    too_large_message="Choose the certificate file and the key file (PEM, at most 64 KB each).",
)
@login_required
def signing(request: HttpRequest) -> HttpResponse:
    """The organisation's signing identity: every member sees which certificate signs its reports; an org admin
    imports a certificate and key issued by the organisation's own certificate authority."""
    from apps.accounts.models import Role
    from apps.reports.models import SigningIdentity

    organisation = getattr(request, "organisation", None)
    if organisation is None or not roles_in(request.user, organisation):
        raise Http404
    is_admin = Role.ADMIN in roles_in(request.user, organisation)
    errors: dict[str, Any] = {}
    refused = False
    if request.method == "POST":
        uploads = {name: request.FILES.get(name) for name in ("certificate", "key")}
        try:
            if any(f is None or f.size > MAX_PEM_BYTES for f in uploads.values()):
                raise AttestError(
                    "invalid",
                    "Choose the certificate file and the key file (PEM, at most 64 KB each).",
                    {name: ["a PEM file"] for name, f in uploads.items() if f is None},
                )
            texts = {name: f.read().decode("ascii", errors="replace") for name, f in uploads.items()}
            identity = services.signing_identity_import(
                actor=request.user,
                organisation=organisation,
                cert_pem=texts["certificate"],
                key_pem=texts["key"],
                key_password=request.POST.get("key_password", ""),
            )
        except AttestError as exc:
            messages.error(request, exc.message)
            errors, refused = (exc.details if isinstance(exc.details, dict) else {}), True
        else:
            messages.success(request, f"Reports are now signed by {identity.subject}.")
            return redirect("reports:signing")
    identities = list(SigningIdentity.objects.filter(organisation=organisation))
    return render(
        request,
        "reports/signing.html",
        {
            "organisation": organisation,
            "current": next((i for i in identities if i.retired_at is None), None),
            "identities": identities,
            "is_admin": is_admin,
            "errors": errors,
        },
        status=400 if refused else 200,
    )
