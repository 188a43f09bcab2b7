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
    """Performance and fairness by group on rows the model never trained on, explanations, the counterfactual probe
    and robustness with its gates on the same rows, and the membership audit."""
    from apps.datasets.services import read_version_table
    from workers.engine.evaluation.evaluate import Policy, evaluate, privacy_cost
    from workers.engine.evaluation.groups import group_codes
    from workers.engine.evaluation.metrics import multiclass_by_group, multiclass_summary
    from workers.engine.evaluation.scoring import audit_membership, predict, sigmoid
    from workers.engine.training.artifacts import load_model, mitigated_decisions
    from workers.engine.training.data import DataError

    item = Evaluation.objects.select_related("model_version__training_run", "dataset_version").get(
        id=spec["evaluation_id"]
    )
    run = item.model_version.training_run
    model, prep, manifest = load_model(Path(settings.STORAGE_ROOT) / item.model_version.storage_path)
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
            # A mitigated candidate decides with its group thresholds or its mixture (a draw seeded with the
            # evaluation's seed, so the same seed reproduces it); any other model at 0.5.
            decisions = mitigated_decisions(model, prep, manifest, test_rows, scores, seed=item.seed)
            results = evaluate(
                y_true=labels,
                y_score=scores,
                y_pred=decisions,
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
        except (ValueError, DataError) as exc:
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
    results.update(
        _explanations_and_robustness(
            ctx, model, prep, test_rows, labels, policy, item.seed, mitigated=bool(manifest.get("mitigation"))
        )
    )
    results["fairness_verdict"] = results["verdict"]
    results["verdict"] = combined_verdict(results["fairness_verdict"], results["robustness_verdict"])
    audit: dict[str, Any] = {}
    if member_rows is not None:
        ctx.progress(0.7, "Membership-inference audit", force=True)
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


def combined_verdict(fairness: str, robustness: str) -> str:
    """Fail when a fairness or a robustness gate fails; otherwise unknown (never a pass) when one cannot be
    evaluated; otherwise pass."""
    verdicts = {fairness, robustness}
    return "fail" if "fail" in verdicts else "unknown" if "unknown" in verdicts else "pass"


def _explanations_and_robustness(
    ctx: JobContext,
    model: Any,
    prep: Any,
    rows: Any,
    labels: Any,
    policy: dict[str, Any],
    seed: int,
    *,
    mitigated: bool = False,
) -> dict[str, Any]:
    """Global explanations, the counterfactual probe and the robustness suite with its gates, all on the same held-out
    rows as the fairness figures. Only aggregates are returned: per-row attributions never leave the engine."""
    from workers.engine.explain._model import ExplanationError
    from workers.engine.explain.counterfactual import counterfactual_probe
    from workers.engine.explain.global_ import explain_global
    from workers.engine.robustness.gates import evaluate_robustness_gates, robustness_gates_of, robustness_verdict
    from workers.engine.robustness.suite import robustness_suite

    sensitive = [a for a in policy.get("sensitive_attributes", []) if a in rows.columns]
    min_group_size = policy.get("min_group_size", 30)
    notes: list[str] = []
    if mitigated:
        notes.append(
            "This is a mitigated candidate: its fairness gates above judge its mitigated decisions, while the "
            "explanations, the counterfactual probe and the robustness suite read its scores decided at 0.5 (the "
            "group thresholds or the randomised mixture are not applied there)."
        )
    explanations: dict[str, Any] | None = None
    counterfactual: list[dict[str, Any]] = []
    if len(prep.classes) != 2:
        notes.append(
            "Explanations and the counterfactual probe are on the log-odds of one positive class; explanations per "
            "predicted class of a multiclass model are out of scope, so neither was computed. The robustness suite "
            "below shows accuracy only."
        )
    else:
        ctx.progress(
            0.45, "Explaining the model on the held-out rows (attributions, permutation importance)", force=True
        )
        try:
            explanations = explain_global(
                model, prep, rows, labels=labels, sensitive=sensitive, min_group_size=min_group_size, seed=seed
            )
        except ExplanationError as exc:
            notes.append(f"Explanations were not computed: {exc}")
        ctx.progress(0.5, "Counterfactual probe of the sensitive attributes and declared proxies", force=True)
        probed = list(dict.fromkeys(sensitive + list(policy.get("proxies", []))))
        present = [a for a in probed if a in rows.columns]
        try:
            by_name = {
                entry["attribute"]: entry
                for entry in counterfactual_probe(model, prep, rows, attributes=present, min_group_size=min_group_size)
            }
        except ExplanationError as exc:
            notes.append(f"The counterfactual probe was not run: {exc}")
        else:
            # A declared proxy absent from these rows cannot be one of the model's features either.
            counterfactual = [
                by_name.get(name, {"attribute": name, "not_a_feature": True, "not_in_data": True}) for name in probed
            ]
    ctx.progress(0.55, "Robustness suite: noise, category flips, missing values, adversarial examples", force=True)
    suite = robustness_suite(model, prep, rows, labels=labels, policy=policy, seed=seed)
    gates = evaluate_robustness_gates(suite, robustness_gates_of(policy))
    return {
        "explanations": explanations,
        "counterfactual": counterfactual,
        "robustness": suite,
        "robustness_gates": gates,
        "robustness_verdict": robustness_verdict(gates),
        "notes": notes,
    }


# Nothing to undo on failure: results are written in one transaction at the very end, and the page reads the failure
# from the job.
register(
    JobKind(kind="evaluation", label="Evaluation", task_name=task_names.EVALUATION, queue="gpu", run=run_evaluation)
)

# The model page's kinds (mitigation, explanation of a held-out row) live beside this module: importing registers them.
from apps.evaluation import mitigation_jobs  # noqa: E402, F401
