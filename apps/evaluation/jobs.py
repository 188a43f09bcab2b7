"""Evaluation's job kind: performance and fairness by group on rows the model never trained on, and the membership
audit. The engine (torch, the metrics, the attacks) is imported inside the run function only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.evaluation import services
from apps.evaluation.models import Evaluation
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from workers import task_names


def run_evaluation(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Performance and fairness by group on rows the model never trained on, and the membership audit."""
    from apps.datasets.services import read_version_table
    from workers.engine.evaluation.evaluate import Policy, evaluate, privacy_cost
    from workers.engine.evaluation.groups import group_codes
    from workers.engine.evaluation.metrics import multiclass_by_group, multiclass_summary
    from workers.engine.evaluation.scoring import audit_membership, predict, sigmoid
    from workers.engine.training.artifacts import load_model
    from workers.engine.training.data import DataError

    item = Evaluation.objects.select_related("model_version__training_run", "dataset_version").get(
        id=spec["evaluation_id"]
    )
    run = item.model_version.training_run
    model, prep, _manifest = load_model(Path(settings.STORAGE_ROOT) / item.model_version.storage_path)
    ctx.progress(0.1, "Loading the evaluation rows", force=True)
    frame = read_version_table(item.dataset_version).to_pandas()
    if item.kind == Evaluation.Kind.HELD_OUT:
        test_rows = frame.iloc[run.split["test"]]
        member_rows = frame.iloc[run.split["train"]]
    else:
        test_rows, member_rows = frame, None
    policy = item.policy or {}
    try:
        labels, logits = predict(model, prep, test_rows)
    except DataError as exc:
        raise ValidationFailed(str(exc)) from None
    ctx.progress(0.4, "Computing performance and fairness by group", force=True)
    if logits.shape[1] == 1:
        scores = sigmoid(logits[:, 0])
        try:
            results = evaluate(
                y_true=labels,
                y_score=scores,
                sensitive=test_rows,
                seed=item.seed,
                resamples=200,
                policy=Policy(
                    sensitive_attributes=policy.get("sensitive_attributes", []),
                    gates=policy.get("gates", []),
                    min_group_size=policy.get("min_group_size", 30),
                    intersections=policy.get("intersections", True),
                    normalised_attributes=policy.get("normalised_attributes", []),
                ),
            )
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        results["positive_class"] = prep.classes[1]
    else:
        predictions = logits.argmax(axis=1)
        results = {
            "multiclass": multiclass_summary(labels, predictions, len(prep.classes)),
            "multiclass_groups": multiclass_by_group(
                labels,
                predictions,
                len(prep.classes),
                group_codes(
                    test_rows,
                    [a for a in policy.get("sensitive_attributes", []) if a in test_rows.columns],
                    policy.get("intersections", True),
                ),
                policy.get("min_group_size", 30),
            ),
            "groupings": [],
            "gates": [],
            "verdict": "fail" if policy.get("gates") else "pass",
            "note": "Fairness gates are defined for binary outcomes; multiclass models show performance.",
        }
    audit: dict[str, Any] = {}
    if member_rows is not None:
        ctx.progress(0.6, "Membership-inference audit", force=True)
        audit = audit_membership(
            model=model,
            prep=prep,
            spec=run.spec,
            validation_rows=frame.iloc[run.split.get("validation", [])],
            member_rows=member_rows,
            test_rows=test_rows,
            proven_epsilon=run.privacy.get("epsilon"),
            delta=run.privacy.get("delta") or 1e-5,
            seed=item.seed,
        )
    cost: list[dict[str, Any]] = []
    baseline = Evaluation.objects.filter(
        model_version__training_run__non_private=True,
        model_version__usecase=item.model_version.usecase,
        dataset_version=item.dataset_version,
        status=Evaluation.Status.SUCCEEDED,
    ).first()
    if baseline is not None and not run.non_private and results.get("groupings"):
        cost = privacy_cost(results, baseline.results)
    services.evaluation_record(evaluation=item, results=results, audit=audit, privacy_cost=cost)
    return {"verdict": results.get("verdict"), "audit_epsilon_lower_bound": audit.get("empirical_epsilon_lower_bound")}


# Nothing to undo on failure: results are written in one transaction at the very end, and the page reads the failure
# from the job.
register(
    JobKind(kind="evaluation", label="Evaluation", task_name=task_names.EVALUATION, queue="gpu", run=run_evaluation)
)
