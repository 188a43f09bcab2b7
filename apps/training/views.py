"""HTML pages for private training: launch, live progress with charts, budget ledger, model versions."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.accounts.middleware import organisation_or_404
from apps.accounts.models import Role
from apps.accounts.selectors import roles_in
from apps.core import charts
from apps.core.errors import AttestError
from apps.core.forms import add_service_errors, chart_html
from apps.deployments.views import model_deployments
from apps.ethics.selectors import deployment_status
from apps.jobs import permissions as job_permissions
from apps.jobs.services import job_cancel
from apps.training import services
from apps.training.forms import TrainingForm
from apps.training.models import PrivacyBudget, TrainingRun
from apps.training.permissions import can, models_visible_to, visible_to
from apps.training.selectors import budget_summary, trainable_versions


@login_required
def training_home(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    runs = (
        visible_to(request.user)
        .filter(organisation=organisation)
        .select_related("dataset_version__dataset", "usecase", "created_by", "job")[:50]
    )
    models = (
        models_visible_to(request.user).filter(organisation=organisation).select_related("usecase", "training_run")[:50]
    )
    return render(
        request,
        "training/home.html",
        {
            "runs": runs,
            "models": models,
            "can_launch": can(request.user, "launch", organisation),
            "versions": trainable_versions(request.user, organisation),
        },
    )


@login_required
def training_new(request: HttpRequest) -> HttpResponse:
    organisation = organisation_or_404(request)
    if not can(request.user, "launch", organisation):
        raise Http404
    version = get_object_or_404(trainable_versions(request.user, organisation), id=request.GET.get("version"))
    columns = list(version.columns.all())
    form = TrainingForm(request.POST or None, columns=columns)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        non_private = data.pop("non_private")
        try:
            run = services.training_run_request(actor=request.user, version=version, spec=data, non_private=non_private)
        except AttestError as exc:
            add_service_errors(request, form, exc)
        else:
            return redirect("training:run", run_id=run.id)
    budget = PrivacyBudget.objects.filter(dataset=version.dataset).first()
    return render(
        request,
        "training/new.html",
        {"version": version, "form": form, "budget": budget_summary(budget), "people": services.people_count(version)},
    )


def _run_context(request: HttpRequest, run: TrainingRun) -> dict[str, Any]:
    curve = run.curve or []
    job = run.job
    chart = ""
    if curve:
        chart = charts.line_chart(
            {"loss": [(p["step"], p["loss"]) for p in curve if p.get("loss") is not None]},
            title="Training loss",
            x_label="step",
            y_label="loss",
        )
        if not run.non_private:
            chart += charts.line_chart(
                {"epsilon spent": [(p["step"], p["epsilon"]) for p in curve]},
                title="Privacy spent (epsilon)",
                x_label="step",
                y_label="epsilon",
            )
    budget = PrivacyBudget.objects.filter(dataset=run.dataset_version.dataset).first()
    model = getattr(run, "model_version", None) if run.status == "succeeded" else None
    deployment = deployment_status(model) if model else None
    roles = roles_in(request.user, run.organisation)
    may_request_review = False
    if (
        model is not None
        and not model.non_private
        and (Role.ADMIN in roles or (Role.OWNER in roles and run.usecase.owner_id == request.user.id))
    ):
        # A new request when none is open and the last one did not end in approval.
        review = deployment["review"]
        may_request_review = review is None or (
            review.status != "open" and not (hasattr(review, "decision") and review.decision.approved)
        )
    return {
        **(model_deployments(request, model) if model is not None else {}),
        "deployment": deployment,
        "may_request_review": may_request_review,
        "run": run,
        "job": job,
        "chart": chart_html(chart),
        "live": job is not None and not job.is_finished,
        "budget": budget_summary(budget),
        "model": model,
        # The rule job_cancel enforces (apps.jobs.permissions), so the button shows only where the service accepts.
        "can_cancel": job is not None and not job.is_finished and job_permissions.can(request.user, "cancel", job),
    }


@login_required
def run_detail(request: HttpRequest, run_id: Any) -> HttpResponse:
    run = get_object_or_404(
        visible_to(request.user).select_related("dataset_version__dataset", "job", "usecase"), id=run_id
    )
    template = "training/_live.html" if getattr(request, "htmx", False) else "training/run.html"
    return render(request, template, _run_context(request, run))


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_id: Any) -> HttpResponse:
    run = get_object_or_404(visible_to(request.user).select_related("job"), id=run_id)
    try:
        job_cancel(actor=request.user, job=run.job)
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            "Cancellation requested: the run stops at its next step and commits only what its completed steps spent.",
        )
    return redirect("training:run", run_id=run.id)
