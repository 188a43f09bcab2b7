"""Evaluation reads: the policy's main disparity metric, the explanation baseline scoring reuses, mitigated
candidates beside their original, and a model's row explanations."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from apps.accounts.models import User
from apps.accounts.selectors import organisation_ids_for
from apps.evaluation.models import Evaluation
from apps.evaluation.permissions import MITIGATE_ROLES
from apps.jobs.models import Job
from apps.training.models import ModelVersion, TrainingRun
from apps.usecases.models import UseCase

# The constraint that targets each fairness metric of a policy (predictive parity has none).
CONSTRAINT_FOR_METRIC = {
    "demographic_parity_difference": "demographic_parity",
    "demographic_parity_ratio": "demographic_parity",
    "equalized_odds_difference": "equalized_odds",
    "equalized_odds_ratio": "equalized_odds",
    "equal_opportunity_difference": "true_positive_rate_parity",
    "false_positive_rate_difference": "false_positive_rate_parity",
    "false_negative_rate_difference": "true_positive_rate_parity",  # FNR = 1 - TPR
}
DIRECTION = {metric: "min" if metric.endswith("_ratio") else "max" for metric in CONSTRAINT_FOR_METRIC} | {
    "predictive_parity_difference": "max"
}


def main_metric(usecase: UseCase) -> str:
    """The policy's main disparity metric: its first gate's, else demographic parity difference."""
    gates = (usecase.fairness_policy or {}).get("gates") or []
    return gates[0]["metric"] if gates and gates[0].get("metric") else "demographic_parity_difference"


def default_constraint(usecase: UseCase) -> str:
    return CONSTRAINT_FOR_METRIC.get(main_metric(usecase), "demographic_parity")


def held_out_rows(model_version: ModelVersion) -> int:
    """How many held-out test rows the model's run has (positions 1..n on the page)."""
    return len((model_version.training_run.split or {}).get("test") or [])


def newest_evaluation(model_version: ModelVersion) -> Evaluation | None:
    """The newest finished evaluation of the model on its own held-out rows."""
    return (
        model_version.evaluations.filter(status=Evaluation.Status.SUCCEEDED, kind=Evaluation.Kind.HELD_OUT)
        .order_by("-created_at")
        .first()
    )


def explanation_baseline_for(model_version: ModelVersion) -> list[float] | None:
    """The baseline (mean encoded held-out input) that reason codes are measured from: the newest succeeded
    evaluation's ``results["explanations"]["baseline"]``, or None when no evaluation has explanations yet."""
    evaluations = model_version.evaluations.filter(status=Evaluation.Status.SUCCEEDED).order_by("-created_at")
    for evaluation in evaluations.only("results"):
        baseline = ((evaluation.results or {}).get("explanations") or {}).get("baseline")
        if baseline:
            return [float(value) for value in baseline]
    return None


def original_of(model_version: ModelVersion) -> ModelVersion:
    """The trained model a candidate mitigates (the model itself when it is not a candidate)."""
    return model_version.parent or model_version


def worst_disparity(results: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The metric's worst defined value across the groupings with two judged groups, with its interval: what a gate
    on the metric would read (the gate's own entry when the policy gates it)."""
    for gate in results.get("gates") or []:
        if gate.get("metric") == metric and gate.get("value") is not None:
            return {"value": gate["value"], "ci": gate.get("ci") or [None, None], "grouping": gate.get("grouping")}
    direction = DIRECTION.get(metric, "max")
    worst = None
    for grouping in results.get("groupings") or []:
        entry = (grouping.get("fairness") or {}).get(metric) or {}
        if entry.get("value") is None or grouping.get("judged_groups", 0) < 2:
            continue
        better = worst is None or (
            entry["value"] > worst["value"] if direction == "max" else entry["value"] < worst["value"]
        )
        if better:
            worst = {"value": entry["value"], "ci": entry.get("ci") or [None, None], "grouping": grouping["name"]}
    return worst


def comparison(model_version: ModelVersion) -> dict[str, Any] | None:
    """The original model and each of its mitigated candidates, with accuracy and the policy's main disparity
    metric from each one's newest held-out evaluation; None when the original has no candidate."""
    original = original_of(model_version)
    candidates = list(ModelVersion.objects.filter(parent=original).select_related("training_run").order_by("number"))
    if not candidates:
        return None
    metric = main_metric(original.usecase)
    rows = []
    for model in [original, *candidates]:
        evaluation = newest_evaluation(model)
        results = (evaluation.results or {}) if evaluation else {}
        disparity = worst_disparity(results, metric) if results else None
        run = model.training_run
        spent = 0.0
        if model.parent_id:
            commits = run.budget_entries.filter(kind="commit")
            spent = sum(entry.epsilon for entry in commits)
        rows.append(
            {
                "model": model,
                "is_original": model.pk == original.pk,
                "method": (model.mitigation or {}).get("method", ""),
                "constraint": (model.mitigation or {}).get("constraint", ""),
                "attribute": (model.mitigation or {}).get("attribute", ""),
                "epsilon_spent": spent,
                "evaluation": evaluation,
                "accuracy": ((results.get("overall") or {}).get("accuracy")),
                "disparity": disparity,
                "verdict": evaluation.verdict if evaluation else "",
                "current": model.pk == model_version.pk,
            }
        )
    return {"metric": metric, "direction": DIRECTION.get(metric, "max"), "rows": rows}


def mitigation_runs(model_version: ModelVersion) -> QuerySet[TrainingRun]:
    """The runs that made (or are making, or failed to make) candidates of the model, newest first."""
    return (
        TrainingRun.objects.filter(spec__mitigation__parent=str(model_version.pk))
        .select_related("job")
        .order_by("-created_at")
    )


def row_explanations_visible_to(user: User) -> QuerySet[Job]:
    """Explanations of held-out rows the user may read, newest first. Each shows one person's values, so only the
    roles that may ask for one (stewards, use-case owners and org admins of the model's organisation) read them;
    board members and auditors see the model's aggregates, not a person's row."""
    ids = organisation_ids_for(user, MITIGATE_ROLES)
    return Job.objects.filter(kind="row_explanation", organisation_id__in=ids).order_by("-created_at")


def row_explanations(user: User, model_version: ModelVersion) -> QuerySet[Job]:
    """The model's row explanations the user may read, newest first."""
    return row_explanations_visible_to(user).filter(
        target_type="training.modelversion", target_id=str(model_version.pk)
    )
