"""The model page: what a model version decides and why (explanation of a held-out row), its mitigated candidates
against it (accuracy versus disparity), and the mitigation form. Thin views over the mitigation services."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from apps.core import charts
from apps.core.errors import AttestError
from apps.core.forms import chart_html
from apps.evaluation import mitigation as services
from apps.evaluation.insights import comparison_chart
from apps.evaluation.permissions import can
from apps.evaluation.selectors import (
    comparison,
    default_constraint,
    held_out_rows,
    mitigation_runs,
    newest_evaluation,
    row_explanations,
)
from apps.training.models import ModelVersion
from apps.training.permissions import models_visible_to
from apps.usecases.vocab import metric_label

MITIGATION_FIELDS = ("method", "constraint", "attribute", "max_calls", "epsilon_per_call")


def comparison_context(model_version: ModelVersion) -> dict[str, Any] | None:
    """The accuracy-versus-disparity chart and table of a model and its candidates (shared by the model page, the
    evaluation page and the board's review page); None when the original has no candidate."""
    compared = comparison(model_version)
    if compared is None:
        return None
    for row in compared["rows"]:
        row["constraint_label"] = services.CONSTRAINTS.get(row["constraint"], row["constraint"])
    return {
        **compared,
        "metric_label": metric_label(compared["metric"]),
        "chart": chart_html(comparison_chart(compared)),
    }


def _model(request: HttpRequest, model_id: Any) -> ModelVersion:
    return get_object_or_404(
        models_visible_to(request.user).select_related("usecase", "training_run__dataset_version", "parent"),
        id=model_id,
    )


def explanation_context(job: Any) -> dict[str, Any]:
    """A row explanation and, once it has finished, the chart of its contributions."""
    result = (job.result or {}) if job is not None and job.status == "succeeded" else {}
    chart = ""
    if result.get("contributions"):
        chart = charts.contribution_chart(
            [(item["feature"], item["contribution"]) for item in result["contributions"]],
            title=f'Contributions to the log-odds of "{result.get("positive_class", "positive")}" for this row, '
            "from the average held-out row",
        )
    return {"explanation": job, "explanation_chart": chart_html(chart)}


def _explanation(request: HttpRequest, model: ModelVersion) -> dict[str, Any]:
    """The explanation asked for in the address, else the newest one the person asked for on this model."""
    chosen = request.GET.get("explanation")
    explanations = row_explanations(request.user, model)
    if chosen:
        try:
            job = explanations.filter(id=chosen).first()
        except ValidationError:
            job = None
    else:
        job = explanations.filter(created_by=request.user).first()
    return explanation_context(job)


def _context(request: HttpRequest, model: ModelVersion, **extra: Any) -> dict[str, Any]:
    organisation = model.organisation
    usecase = model.usecase
    is_original = model.parent_id is None
    return {
        "model": model,
        "usecase": usecase,
        "run": model.training_run,
        "evaluation": newest_evaluation(model),
        "comparison": comparison_context(model),
        "runs": [r for r in mitigation_runs(model.parent or model) if r.status != "succeeded"],
        "held_out_rows": held_out_rows(model),
        **_explanation(request, model),
        "may_explain": can(request.user, "explain", organisation) and not model.non_private,
        "may_mitigate": can(request.user, "mitigate", organisation) and is_original and not model.non_private,
        "methods": services.METHODS,
        "constraints": services.CONSTRAINTS,
        "attributes": (usecase.fairness_policy or {}).get("sensitive_attributes") or [],
        "default_constraint": default_constraint(usecase),
        "thresholds_note": services.THRESHOLDS_NOTE,
        "reductions_note": services.REDUCTIONS_NOTE,
        "defaults": {"max_calls": services.DEFAULT_MAX_CALLS, "epsilon_per_call": services.DEFAULT_EPSILON_PER_CALL},
        **extra,
    }


@login_required
def model_detail(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _model(request, model_id)
    return render(request, "evaluation/model.html", _context(request, model))


@login_required
def row_explanation(request: HttpRequest, model_id: Any, job_id: Any) -> HttpResponse:
    """The explanation section alone: polled by htmx while its job runs."""
    model = _model(request, model_id)
    job = row_explanations(request.user, model).filter(id=job_id).first()
    if job is None:
        raise Http404
    return render(request, "evaluation/_row_explanation.html", {"model": model, **explanation_context(job)})


@login_required
@require_POST
def explain_row(request: HttpRequest, model_id: Any) -> HttpResponse:
    model = _model(request, model_id)
    position = None if request.POST.get("choice") == "random" else request.POST.get("position", "")
    try:
        job = services.row_explanation_request(actor=request.user, model_version=model, position=position)
    except AttestError as exc:
        messages.error(request, exc.message)
        return redirect("evaluation:model", model_id=model.id)
    return redirect(f"{reverse('evaluation:model', args=[model.id])}?explanation={job.id}#explanation-heading")


@login_required
@require_POST
def mitigate(request: HttpRequest, model_id: Any) -> HttpResponse:
    """Threshold mitigation launches at once (it spends nothing); a reduction is previewed first, and launches only
    when the person confirms the composed epsilon the preview showed."""
    model = _model(request, model_id)
    chosen = {name: request.POST.get(name) or None for name in MITIGATION_FIELDS}
    try:
        if chosen["method"] == "reductions" and request.POST.get("step") != "confirm":
            plan = services.mitigation_plan(actor=request.user, model_version=model, **chosen)
            return render(request, "evaluation/model.html", _context(request, model, plan=plan, chosen=chosen))
        run = services.mitigation_request(
            actor=request.user, model_version=model, confirm_epsilon=request.POST.get("confirm_epsilon"), **chosen
        )
    except AttestError as exc:
        messages.error(request, exc.message)
        return redirect("evaluation:model", model_id=model.id)
    messages.success(
        request,
        "Mitigation queued: the candidate becomes a new model version, evaluated on the same held-out rows.",
    )
    return redirect("training:run", run_id=run.id)
