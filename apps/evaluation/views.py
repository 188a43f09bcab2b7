"""The evaluation page: verdict, gates with intervals, group tables and charts, privacy audit; re-evaluation and
gate tightening."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core import charts
from apps.core.errors import AttestError
from apps.core.forms import chart_html
from apps.evaluation import services
from apps.evaluation.insights import insights
from apps.evaluation.permissions import can, visible_to
from apps.usecases.permissions import can as can_on_usecase
from apps.usecases.services import usecase_tighten_gate
from apps.usecases.vocab import FAIRNESS_METRICS, metric_label

GROUP_COLUMNS = [
    ("selection_rate", "Selection rate"),
    ("accuracy", "Accuracy"),
    ("recall", "TPR (recall)"),
    ("false_positive_rate", "FPR"),
    ("precision", "Precision"),
    ("roc_auc", "ROC AUC"),
]


def gate_chart(gate: dict[str, Any], groupings: list[dict[str, Any]]) -> str:
    bars = []
    for grouping in groupings:
        entry = grouping["fairness"][gate["metric"]]
        if entry["value"] is not None:
            low, high = entry["ci"]
            bars.append(charts.Bar(grouping["name"], entry["value"], low, high))
        elif grouping.get("judged_groups", 0) >= 2:  # a ratio of 0/0: shown as undefined, never as 0
            bars.append(charts.Bar(grouping["name"], None, note="(0/0)"))
    label = "at most" if gate["direction"] == "max" else "at least"
    return charts.bar_chart(
        bars,
        title=metric_label(gate["metric"]),
        threshold=gate["threshold"],
        threshold_label=f"threshold ({label})",
        max_value=1.0,
    )


def selection_chart(grouping: dict[str, Any]) -> str:
    bars = [
        charts.Bar(
            row["group"], row["selection_rate"], *row["selection_rate_ci"], note="too small" if row["too_small"] else ""
        )
        for row in grouping["groups"]
    ]
    return charts.bar_chart(bars, title=f"Selection rate by {grouping['name']} (95% intervals)", max_value=1.0)


@login_required
def evaluation_detail(request: HttpRequest, evaluation_id: Any) -> HttpResponse:
    item = get_object_or_404(
        visible_to(request.user).select_related(
            "model_version__training_run", "model_version__usecase", "dataset_version", "job"
        ),
        id=evaluation_id,
    )
    results = item.results or {}
    groupings = results.get("groupings", [])
    gate_charts = [chart_html(gate_chart(gate, groupings)) for gate in results.get("gates", [])]
    group_sections = [{"grouping": g, "chart": chart_html(selection_chart(g))} for g in groupings]
    audit = item.audit or {}
    audit_chart = ""
    if audit.get("proven_epsilon") is not None:
        audit_chart = chart_html(
            charts.bar_chart(
                [
                    charts.Bar("proven epsilon (accountant)", audit["proven_epsilon"]),
                    charts.Bar("empirical lower bound (95%)", audit["empirical_epsilon_lower_bound"]),
                ],
                title="Privacy: proven epsilon beside the audit's lower bound",
            )
        )
    usecase = item.model_version.usecase
    return render(
        request,
        "evaluation/detail.html",
        {
            "evaluation": item,
            "results": results,
            # A list, not a zip: the template walks it twice (the table, then the charts).
            "gate_charts": list(zip(results.get("gates", []), gate_charts, strict=False)),
            "groups": group_sections,
            "columns": GROUP_COLUMNS,
            "audit": audit,
            "audit_chart": audit_chart,
            "insights": insights(item),
            "usecase": usecase,
            "metrics": list(FAIRNESS_METRICS),
            "live": item.is_live,
            "newer": item.model_version.evaluations.filter(created_at__gt=item.created_at).first(),
            # The services' own rules, so a button shows only where the service accepts it.
            "may_rerun": can(request.user, "request", item.organisation),
            "may_tighten": can_on_usecase(request.user, "tighten_gate", usecase),
        },
    )


@login_required
@require_POST
def evaluation_rerun(request: HttpRequest, evaluation_id: Any) -> HttpResponse:
    item = get_object_or_404(visible_to(request.user), id=evaluation_id)
    try:
        new = services.evaluation_request(
            actor=request.user, model_version=item.model_version, dataset_version=item.dataset_version, seed=item.seed
        )
    except AttestError as exc:
        messages.error(request, exc.message)
        return redirect("evaluation:detail", evaluation_id=item.id)
    return redirect("evaluation:detail", evaluation_id=new.id)


@login_required
@require_POST
def tighten_gate(request: HttpRequest, evaluation_id: Any) -> HttpResponse:
    item = get_object_or_404(visible_to(request.user).select_related("model_version__usecase"), id=evaluation_id)
    try:
        threshold = float(request.POST.get("threshold", ""))
        usecase_tighten_gate(
            actor=request.user,
            usecase=item.model_version.usecase,
            metric=request.POST.get("metric", ""),
            threshold=threshold,
        )
    except ValueError:
        messages.error(request, "The threshold must be a number.")
    except AttestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Gate tightened. Run the evaluation again to apply it.")
    return redirect("evaluation:detail", evaluation_id=item.id)
