"""HTML pages for jobs: the list, a job's detail, its progress partial, and diagnostics."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.errors import AttestError
from apps.jobs import services
from apps.jobs.permissions import can, can_run_diagnostics, visible_to
from apps.jobs.registry import shown_result
from apps.jobs.selectors import jobs_for


@login_required
def job_list(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None:
        raise Http404
    return render(request, "jobs/list.html", {"jobs": jobs_for(request.user, organisation)[:100]})


@login_required
def job_detail(request: HttpRequest, job_id: Any) -> HttpResponse:
    job = get_object_or_404(visible_to(request.user).select_related("created_by"), id=job_id)
    return render(
        request,
        "jobs/detail.html",
        {"job": job, "result": shown_result(job), "can_cancel": can(request.user, "cancel", job)},
    )


@login_required
def job_progress(request: HttpRequest, job_id: Any) -> HttpResponse:
    job = get_object_or_404(visible_to(request.user), id=job_id)
    return render(request, "partials/progress.html", {"job": job})


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: Any) -> HttpResponse:
    job = get_object_or_404(visible_to(request.user), id=job_id)
    try:
        services.job_cancel(actor=request.user, job=job)
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Cancellation requested.")
    return redirect("jobs:detail", job_id=job.id)


@login_required
def diagnostics(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can_run_diagnostics(request.user, organisation):
        raise Http404
    if request.method == "POST":
        try:
            job = services.job_diagnostics_start(actor=request.user, organisation=organisation)
        except AttestError as exc:
            messages.error(request, exc.message)
        else:
            return redirect("jobs:detail", job_id=job.id)
    recent = jobs_for(request.user, organisation, kind="diagnostics")[:10]
    return render(request, "jobs/diagnostics.html", {"recent": recent})
