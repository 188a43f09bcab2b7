"""Compliance pages: a use case's requirements per framework (filter by status, evidence links, confirm, attach),
a framework's catalogue, the organisation's frameworks (upload its own), and the statement request."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.compliance import services
from apps.compliance.evidence_kinds import EVIDENCE_KINDS
from apps.compliance.models import EvidenceLink, Framework
from apps.compliance.permissions import can, visible_usecases
from apps.compliance.rules import describe
from apps.compliance.selectors import (
    STATUS_LABELS,
    framework_for,
    frameworks_for,
    progress_of,
    requirement_statuses,
)
from apps.core.errors import AttestError
from apps.core.uploads import accepts_upload
from apps.reports.models import Report

MAX_UPLOAD = services.MAX_EVIDENCE_BYTES


def _usecase(request: HttpRequest, usecase_id: Any) -> Any:
    return get_object_or_404(visible_usecases(request.user).select_related("organisation", "owner"), id=usecase_id)


def _framework(request: HttpRequest, key: str, usecase: Any = None) -> Framework:
    framework = framework_for(request.user, key)
    if framework is None or (usecase is not None and framework.organisation_id not in (None, usecase.organisation_id)):
        raise Http404
    return framework


@login_required
def requirements(request: HttpRequest, usecase_id: Any, key: str) -> HttpResponse:
    usecase = _usecase(request, usecase_id)
    framework = _framework(request, key, usecase)
    statuses = requirement_statuses(usecase, framework.key)
    wanted = request.GET.get("status") or ""
    shown = [s for s in statuses if s.status == wanted] if wanted in STATUS_LABELS else statuses
    statement = (
        Report.objects.filter(
            kind=Report.Kind.COMPLIANCE,
            subject_type="compliance.frameworkassessment",
            subject_id__in=[
                str(pk) for pk in usecase.framework_assessments.filter(framework=framework).values_list("id", flat=True)
            ],
        )
        .order_by("-version")
        .first()
    )
    return render(
        request,
        "compliance/requirements.html",
        {
            "usecase": usecase,
            "framework": framework,
            "version": framework.current,
            "statuses": shown,
            "status_filter": wanted,
            "status_labels": STATUS_LABELS,
            "progress": progress_of(framework, statuses),
            "can_act": can(request.user, "act", usecase.organisation),
            "evidence_kinds": EVIDENCE_KINDS,
            "statement": statement,
            "today": date.today(),
        },
    )


@login_required
@require_POST
def confirm(request: HttpRequest, usecase_id: Any, key: str, code: str) -> HttpResponse:
    usecase = _usecase(request, usecase_id)
    framework = _framework(request, key, usecase)
    try:
        services.requirement_confirm(
            actor=request.user, usecase=usecase, framework_key=framework.key, requirement_code=code
        )
        messages.success(request, f"{code} confirmed on its current evidence.")
    except AttestError as exc:
        if exc.code == "not_found":
            raise Http404 from None
        messages.error(request, exc.message)
    return redirect(reverse("compliance:requirements", args=[usecase.id, framework.key]) + f"#req-{code}")


def _may_attach(user: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    usecase = get_object_or_404(visible_usecases(user), id=kwargs["usecase_id"])
    if not can(user, "act", usecase.organisation):
        raise DjangoPermissionDenied


@accepts_upload(
    max_file_bytes=MAX_UPLOAD,
    fields=("file",),
    allowed=_may_attach,
    too_large_message=f"The file is larger than {MAX_UPLOAD // 2**20} MB.",
)
@login_required
@require_POST
def attach(request: HttpRequest, usecase_id: Any, key: str, code: str) -> HttpResponse:
    usecase = _usecase(request, usecase_id)
    framework = _framework(request, key, usecase)
    upload = request.FILES.get("file")
    expires = request.POST.get("expires_on") or ""
    try:
        services.evidence_link_add(
            actor=request.user,
            usecase=usecase,
            framework_key=framework.key,
            requirement_code=code,
            label=request.POST.get("label", ""),
            url=(request.POST.get("url") or "").strip(),
            file_name=upload.name if upload else "",
            file_bytes=b"".join(upload.chunks()) if upload else None,
            expires_on=date.fromisoformat(expires) if expires else None,
        )
        messages.success(request, f"Evidence linked to {code}.")
    except ValueError:
        messages.error(request, "The expiry date is not a date.")
    except AttestError as exc:
        if exc.code == "not_found":
            raise Http404 from None
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.details.items()) if exc.details else ""
        messages.error(request, f"{exc.message} {details}".strip())
    return redirect(reverse("compliance:requirements", args=[usecase.id, framework.key]) + f"#req-{code}")


@login_required
@require_POST
def detach(request: HttpRequest, link_id: Any) -> HttpResponse:
    link = get_object_or_404(
        EvidenceLink.objects.filter(usecase__in=visible_usecases(request.user), removed_at__isnull=True), id=link_id
    )
    try:
        services.evidence_link_remove(actor=request.user, link=link)
        messages.success(request, "Evidence removed.")
    except AttestError as exc:
        messages.error(request, exc.message)
    return redirect("compliance:requirements", link.usecase_id, link.framework_key)


@login_required
@require_POST
def statement(request: HttpRequest, usecase_id: Any, key: str) -> HttpResponse:
    usecase = _usecase(request, usecase_id)
    framework = _framework(request, key, usecase)
    try:
        report = services.compliance_statement_request(actor=request.user, usecase=usecase, framework_key=framework.key)
    except AttestError as exc:
        messages.error(request, exc.message)
        return redirect("compliance:requirements", usecase.id, framework.key)
    messages.success(request, f"The compliance statement {report.reference} is being signed.")
    return redirect("reports:detail", report.id)


@login_required
def framework_detail(request: HttpRequest, key: str) -> HttpResponse:
    framework = _framework(request, key)
    version = framework.current
    rows = [
        {"requirement": r, "applies": describe(r.applies), "evidence": [EVIDENCE_KINDS[k] for k in r.evidence_kinds]}
        for r in version.requirements.all()
    ]
    return render(
        request,
        "compliance/framework.html",
        {"framework": framework, "version": version, "rows": rows, "versions": framework.versions.all()},
    )


def _may_upload(user: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(user, "view", organisation):
        raise Http404
    if not can(user, "manage_frameworks", organisation):
        raise DjangoPermissionDenied


@login_required
def framework_list(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(request.user, "view", organisation):
        raise Http404
    return render(
        request,
        "compliance/frameworks.html",
        {
            "frameworks": frameworks_for({organisation.id}),
            "can_upload": can(request.user, "manage_frameworks", organisation),
            "kinds": [(Framework.Kind.CUSTOM, "Own framework"), (Framework.Kind.POLICY, "Internal policy")],
            "evidence_kinds": EVIDENCE_KINDS,
        },
    )


@accepts_upload(
    max_file_bytes=MAX_UPLOAD,
    fields=("file",),
    allowed=_may_upload,
    too_large_message=f"The file is larger than {MAX_UPLOAD // 2**20} MB.",
)
@login_required
@require_POST
def framework_upload(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None:
        raise Http404
    upload = request.FILES.get("file")
    if upload is None:
        messages.error(request, "Choose a YAML or CSV file.")
        return redirect("compliance:frameworks")
    try:
        version = services.framework_upload(
            actor=request.user,
            organisation=organisation,
            data=b"".join(upload.chunks()),
            filename=upload.name,
            key=(request.POST.get("key") or "").strip(),
            name=(request.POST.get("name") or "").strip(),
            version=(request.POST.get("version") or "").strip(),
            kind=request.POST.get("kind") or Framework.Kind.CUSTOM,
        )
    except AttestError as exc:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in list(exc.details.items())[:10])
        messages.error(request, f"{exc.message} {details}".strip())
        return redirect("compliance:frameworks")
    messages.success(request, f"{version.framework.name} {version.version} loaded.")
    return redirect("compliance:framework", version.framework.key)
