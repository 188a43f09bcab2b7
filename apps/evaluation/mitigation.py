"""Mitigating a model version's disparity, and explaining one held-out row: the services behind the model page.

A mitigated candidate is its own model version (``parent`` names the original, ``mitigation`` says what was done),
made by a job on the gpu queue and evaluated like any model. Because ``ModelVersion.training_run`` is one-to-one, each
candidate has its own TrainingRun row: the spec it was made with, its job, and (for reductions) its budget entries.

- Group thresholds (post-processing) are fitted on the parent run's VALIDATION rows: the held-out test rows the
  evaluation judges on never shape the candidate, and the training rows are not read again, so their (epsilon, delta)
  guarantee is the parent's, unchanged. The validation rows are used without differential privacy, for a handful of
  numbers (one threshold pair per group); they are the same rows the parent's run already reads for its validation
  accuracy and the audit's reference models. No budget is spent.
- Exponentiated gradient (reductions) retrains: each call of its learner is a DP-SGD training on the training rows,
  so the candidate spends privacy budget. The composed epsilon of every call the reduction may make is computed with
  the project's accountant before launch (``mitigation_plan``), shown, and must be confirmed; it is reserved in the
  dataset's ledger and committed (what the calls made spent) or released, exactly as a training run's.

The web side computes epsilon with the accountant (dp_accounting's PLD, no torch) so the figure is known before the
job is queued; the worker's trainer calibrates each call with the same function and arguments, so it spends what the
plan says.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.db import transaction
from django.db.models import Max

from apps.accounts.models import User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.evaluation.permissions import can
from apps.evaluation.selectors import default_constraint, held_out_rows
from apps.jobs.models import Job
from apps.training.models import BudgetEntry, ModelVersion, TrainingRun
from apps.usecases.models import UseCase

METHODS = {
    "thresholds": "Group thresholds (post-processing, as fairlearn's ThresholdOptimizer)",
    "reductions": "Exponentiated gradient (reductions retraining, as fairlearn's ExponentiatedGradient)",
}
# fairlearn's constraint names; the methods support different sets.
CONSTRAINTS = {
    "demographic_parity": "Demographic parity (equal selection rates)",
    "equalized_odds": "Equalized odds (equal true and false positive rates)",
    "true_positive_rate_parity": "Equal opportunity (equal true positive rates)",
    "false_positive_rate_parity": "Equal false positive rates",
}
METHOD_CONSTRAINTS = {
    "thresholds": tuple(CONSTRAINTS),
    "reductions": ("demographic_parity", "equalized_odds"),
}
DEFAULT_MAX_CALLS = 5
MAX_CALLS_LIMIT = 20
# Iterations of the reduction's game; the learner calls (each a private training) are capped by max_calls.
REDUCTION_ITERATIONS = 50
DEFAULT_EPSILON_PER_CALL = 0.2
CONFIRM_TOLERANCE = 1e-6
THRESHOLDS_NOTE = (
    "Thresholds are fitted on the run's validation rows, never on the held-out test rows the evaluation judges on. "
    "The training rows are not read again, so their differential-privacy guarantee is the original model's, "
    "unchanged. The validation rows are used without differential privacy, for a handful of numbers (one pair of "
    "thresholds per group): a person in them is not protected by epsilon. No privacy budget is spent."
)
REDUCTIONS_NOTE = (
    "Each learner call is a DP-SGD training on the training rows and spends privacy budget; the epsilon shown is "
    "every possible call composed by the accountant, reserved before launch and settled at the end. The reduction's "
    "multipliers and member weights are computed on the validation rows (used without differential privacy), so a "
    "call's sample weights depend only on a person's own label and group: the accounting covers the training rows."
)


def _visible(actor: User, model_version: ModelVersion, action: str, refusal: str) -> None:
    organisation = model_version.organisation
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, action, organisation):
        raise PermissionDenied(refusal)


def _clean(
    model_version: ModelVersion,
    *,
    method: str,
    constraint: str | None,
    attribute: str | None,
    max_calls: Any,
    epsilon_per_call: Any,
) -> dict[str, Any]:
    """The request's settings, checked against the model, its run and its use case's policy."""
    if model_version.parent_id is not None:
        raise InvalidState("Mitigate the original model: this version is already a mitigated candidate.")
    if model_version.non_private:
        raise InvalidState("A non-private baseline is for comparison only: it is not mitigated or deployed.")
    run = model_version.training_run
    errors: dict[str, list[str]] = {}
    if method not in METHODS:
        errors["method"] = [f"one of {', '.join(METHODS)}"]
    usecase = UseCase.objects.get(pk=model_version.usecase_id)
    if not constraint:
        constraint = default_constraint(usecase)
        if method == "reductions" and constraint not in METHOD_CONSTRAINTS["reductions"]:
            constraint = "equalized_odds"  # the reduction's moment that holds true and false positive rates
    if method in METHODS and constraint not in METHOD_CONSTRAINTS[method]:
        errors["constraint"] = [f"one of {', '.join(METHOD_CONSTRAINTS[method])}"]
    sensitive = list((usecase.fairness_policy or {}).get("sensitive_attributes") or [])
    attribute = attribute or (sensitive[0] if sensitive else None)
    if not attribute or attribute not in sensitive:
        errors["attribute"] = [
            f"one of the policy's sensitive attributes: {', '.join(sensitive)}"
            if sensitive
            else "the use case's fairness policy names no sensitive attribute"
        ]
    elif attribute not in (run.dataset_version.column_names or []):
        errors["attribute"] = [f"{attribute} is not a column of the training data"]
    split = run.split or {}
    if not split.get("validation"):
        errors.setdefault("method", []).append("the run recorded no validation rows to fit on")
    latest = model_version.evaluations.filter(status="succeeded").order_by("-created_at").first()
    if latest is not None and "multiclass" in (latest.results or {}):
        errors["method"] = ["mitigation is defined for binary outcomes; this model has more than two classes"]
    cleaned: dict[str, Any] = {"method": method, "constraint": constraint, "attribute": attribute}
    if method == "reductions":
        try:
            cleaned["max_calls"] = int(max_calls if max_calls not in (None, "") else DEFAULT_MAX_CALLS)
            if not 1 <= cleaned["max_calls"] <= MAX_CALLS_LIMIT:
                errors["max_calls"] = [f"between 1 and {MAX_CALLS_LIMIT}"]
        except (TypeError, ValueError):
            errors["max_calls"] = ["a whole number"]
        try:
            value = epsilon_per_call if epsilon_per_call not in (None, "") else DEFAULT_EPSILON_PER_CALL
            cleaned["epsilon_per_call"] = float(value)
            if not 0.01 <= cleaned["epsilon_per_call"] <= 100:
                errors["epsilon_per_call"] = ["between 0.01 and 100"]
        except (TypeError, ValueError):
            errors["epsilon_per_call"] = ["a number"]
        if not split.get("train"):
            errors.setdefault("method", []).append("the run recorded no training rows to retrain on")
    if errors:
        raise ValidationFailed("The mitigation request is not valid.", errors)
    return cleaned


def _reductions_budget(model_version: ModelVersion, cleaned: dict[str, Any], budget: Any) -> dict[str, Any]:
    """Each call's DP-SGD mechanism (calibrated as the trainer will) and every call composed, alone and on top of
    the dataset's committed spend. The accountant is dp_accounting's PLD: no torch in the web process."""
    from apps.training.services import committed_mechanisms
    from workers.engine.training import accounting

    run = model_version.training_run
    spec = run.spec or {}
    rows = len(run.split["train"])
    sample_rate = min(1.0, int(spec.get("batch_size", 256)) / rows)
    steps = max(1, int(round(1 / sample_rate))) * int(spec.get("epochs", 1))
    # Calibrated at the delta the trainer will use (the run's spec); composed at the budget's, as the ledger is.
    noise_multiplier, _ = accounting.noise_for_target(
        target_epsilon=cleaned["epsilon_per_call"],
        delta=float(spec.get("delta") or budget.delta),
        sample_rate=sample_rate,
        steps=steps,
    )
    # The reduction stops before a call beyond max_calls (a repeated or one-label problem trains nothing).
    calls = cleaned["max_calls"]
    everything = accounting.Mechanism(noise_multiplier, sample_rate, steps * calls)
    alone = accounting.epsilon_spent([everything], budget.delta).epsilon
    history = [
        accounting.Mechanism(m["noise_multiplier"], m["sample_rate"], m["steps"]) for m in committed_mechanisms(budget)
    ]
    after = accounting.epsilon_spent([*history, everything], budget.delta).epsilon
    per_call = accounting.epsilon_spent([accounting.Mechanism(noise_multiplier, sample_rate, steps)], budget.delta)
    return {
        "calls": calls,
        "training_rows": rows,
        "per_call": {
            "noise_multiplier": noise_multiplier,
            "sample_rate": sample_rate,
            "steps": steps,
            "epsilon": per_call.epsilon,
            "target_epsilon": cleaned["epsilon_per_call"],
        },
        "epsilon": alone,
        "dataset_composed_after": after,
        "accountant": accounting.LABEL,
        "delta": budget.delta,
    }


def mitigation_plan(
    *,
    actor: User,
    model_version: ModelVersion,
    method: str,
    constraint: str | None = None,
    attribute: str | None = None,
    max_calls: Any = None,
    epsilon_per_call: Any = None,
) -> dict[str, Any]:
    """What the mitigation would do and spend, before it is launched: the settings, the rows it uses, and for
    reductions the composed epsilon of all its learner calls beside the dataset's budget. Changes nothing."""
    from apps.training.services import budget_for

    _visible(actor, model_version, "mitigate", "Only stewards, use-case owners and org admins mitigate models.")
    cleaned = _clean(
        model_version,
        method=method,
        constraint=constraint,
        attribute=attribute,
        max_calls=max_calls,
        epsilon_per_call=epsilon_per_call,
    )
    run = model_version.training_run
    budget = budget_for(run.dataset_version)
    plan: dict[str, Any] = {
        **cleaned,
        "model_version": str(model_version.id),
        "validation_rows": len(run.split.get("validation", [])),
        "budget": {
            "cap": budget.epsilon_cap,
            "spent": budget.composed_spent,
            "reserved": budget.reserved,
            "remaining": budget.remaining,
        },
    }
    if cleaned["method"] == "thresholds":
        plan.update({"epsilon": 0.0, "fits": True, "note": THRESHOLDS_NOTE})
        return plan
    plan.update(_reductions_budget(model_version, cleaned, budget))
    # The same conservative rule as a training launch: spent + reserved + this mitigation's own composed epsilon.
    plan["fits"] = budget.composed_spent + budget.reserved + plan["epsilon"] <= budget.epsilon_cap + 1e-9
    plan["note"] = REDUCTIONS_NOTE
    return plan


def mitigation_request(
    *,
    actor: User,
    model_version: ModelVersion,
    method: str,
    constraint: str | None = None,
    attribute: str | None = None,
    max_calls: Any = None,
    epsilon_per_call: Any = None,
    confirm_epsilon: Any = None,
) -> TrainingRun:
    """Queue a mitigated candidate of ``model_version`` (a job on the gpu queue, with its own TrainingRun row).

    Reductions spend privacy budget: ``confirm_epsilon`` must repeat the composed epsilon ``mitigation_plan`` showed,
    and it is reserved in the ledger under the dataset's budget row lock, or refused when the budget cannot cover it.
    """
    from apps.jobs.services import job_create
    from apps.training.services import budget_for

    plan = mitigation_plan(
        actor=actor,
        model_version=model_version,
        method=method,
        constraint=constraint,
        attribute=attribute,
        max_calls=max_calls,
        epsilon_per_call=epsilon_per_call,
    )
    parent_run = model_version.training_run
    organisation = model_version.organisation
    usecase = UseCase.objects.get(pk=model_version.usecase_id)
    if usecase.status not in (UseCase.Status.APPROVED, UseCase.Status.IN_PRODUCTION):
        raise InvalidState(f"{usecase.reference} is not approved for development: its models are not mitigated.")
    requested = float(plan["epsilon"])
    if plan["method"] == "reductions":
        try:
            confirmed = float(confirm_epsilon)
        except (TypeError, ValueError):
            confirmed = None
        if confirmed is None or abs(confirmed - requested) > CONFIRM_TOLERANCE * max(1.0, requested):
            raise AttestError(
                "conflict",
                f"This retraining spends epsilon {requested:.3f} of the dataset's privacy budget: confirm that "
                "figure to launch it.",
                {"plan": plan},
            )
    mitigation = {
        key: plan[key]
        for key in ("method", "constraint", "attribute", "max_calls", "epsilon_per_call", "calls", "per_call")
        if key in plan
    }
    with transaction.atomic():
        budget = budget_for(parent_run.dataset_version, lock=True)  # serialises concurrent launches, as training
        if requested and budget.composed_spent + budget.reserved + requested > budget.epsilon_cap + 1e-9:
            raise AttestError(
                "budget_exceeded",
                (
                    f"This retraining would exceed the dataset's privacy budget: cap {budget.epsilon_cap:g}, spent "
                    f"{budget.composed_spent:.3g}, reserved by running jobs {budget.reserved:.3g}, requested "
                    f"{requested:.3g}, remaining {budget.remaining:.3g}."
                ),
                {
                    "cap": budget.epsilon_cap,
                    "spent": budget.composed_spent,
                    "reserved": budget.reserved,
                    "requested": requested,
                    "remaining": budget.remaining,
                },
            )
        spec = dict(parent_run.spec or {})
        if plan["method"] == "reductions":
            spec["target_epsilon"] = plan["per_call"]["target_epsilon"]  # each call's, as the trainer calibrates it
        spec["mitigation"] = {**mitigation, "parent": str(model_version.id)}
        run = TrainingRun.objects.create(
            organisation=organisation,
            usecase=usecase,
            dataset_version=parent_run.dataset_version,
            created_by=actor,
            spec=spec,
            non_private=False,
            # The same rows as the parent: the candidate is judged on the parent's held-out test rows.
            split=parent_run.split,
        )
        if requested:
            BudgetEntry.objects.create(
                budget=budget,
                run=run,
                kind=BudgetEntry.Kind.RESERVE,
                epsilon=requested,
                note=f"reductions: up to {plan['calls']} DP learner calls",
            )
            budget.reserved += requested
            budget.save(update_fields=["reserved", "updated_at"])
        job = job_create(
            actor=actor, organisation=organisation, kind="mitigation", spec={"run_id": str(run.id)}, target=run
        )
        run.job = job
        run.save(update_fields=["job"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="mitigation.request",
            target=run,
            after={
                **mitigation,
                "model_version": str(model_version.id),
                "model_sha256": model_version.sha256,
                "reserved_epsilon": requested,
                "budget_remaining_after": budget.remaining,
                "job": str(job.id),
            },
        )
    return run


def mitigation_succeed(
    *,
    run: TrainingRun,
    mitigation: dict[str, Any],
    privacy: dict[str, Any],
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    storage_path: str,
    spent: dict[str, Any] | None,
    composed: float | None,
) -> ModelVersion:
    """Record the candidate: a new model version with its parent and mitigation, the budget settled (reductions),
    and its held-out evaluation queued (named in this event)."""
    from apps.evaluation.services import evaluation_queue
    from apps.training.services import run_budget_settle

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        parent = ModelVersion.objects.get(pk=run.spec["mitigation"]["parent"])
        run_budget_settle(run=run, spent=spent, composed=composed, note="mitigation succeeded")
        number = (ModelVersion.objects.filter(usecase=run.usecase).aggregate(n=Max("number"))["n"] or 0) + 1
        model = ModelVersion.objects.create(
            organisation=run.organisation,
            usecase=run.usecase,
            training_run=run,
            number=number,
            sha256=manifest["model_sha256"],
            storage_path=storage_path,
            manifest=manifest,
            non_private=False,
            parent=parent,
            mitigation=mitigation,
        )
        run.status = TrainingRun.Status.SUCCEEDED
        run.error = ""
        run.privacy, run.metrics = privacy, metrics
        run.steps_completed = int((spent or {}).get("steps") or 0)
        run.save()
        evaluation = evaluation_queue(actor=None, model_version=model)
        audit_record(
            actor=None,
            organisation=run.organisation,
            action="mitigation.succeed",
            target=run,
            after={
                "model_version": str(model.id),
                "model_sha256": model.sha256,
                "parent": str(parent.id),
                "parent_sha256": parent.sha256,
                "method": mitigation.get("method"),
                "constraint": mitigation.get("constraint"),
                "fitted_on": mitigation.get("fitted_on"),
                "spent": spent,
                "composed_budget_spent": composed,
                "evaluation": str(evaluation.id),
            },
            request_id=run.job.request_id if run.job else None,
        )
    return model


def mitigation_stop(*, run: TrainingRun, job: Any, spent: dict[str, Any] | None, composed: float | None) -> None:
    """The failure hook of a mitigation job (failed, cancelled or lost): commit what the learner calls that ran
    spent (or release the reservation) and publish no candidate. Why it ended stays on the job row."""
    from apps.training.services import run_budget_settle

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status != TrainingRun.Status.PENDING:
            return  # settled already: never count twice
        reason = (job.error or {}).get("message", "the job failed.")
        note = "Cancelled." if job.status == Job.Status.CANCELLED else f"Stopped: {reason}"
        if spent:
            note += f" {spent.get('calls', 0)} learner call(s) ran and their spend is committed."
        note += " No candidate was published."
        run_budget_settle(run=run, spent=spent, composed=composed, note=note[:300])
        run.status = TrainingRun.Status.STOPPED
        run.error = note
        if spent:
            run.privacy = spent
            run.steps_completed = int(spent.get("steps") or 0)
        run.save()
        audit_record(
            actor=None,
            organisation=run.organisation,
            action="mitigation.stop",
            target=run,
            after={"job_status": job.status, "spent": spent, "composed_budget_spent": composed},
        )


def row_explanation_request(*, actor: User, model_version: ModelVersion, position: Any = None) -> Job:
    """Queue the explanation of one held-out test row, chosen by its position (1..n) or at random (``None``).

    The row's values and its explanation stay on the job row, read only by the roles that may ask for one; the audit
    event keeps the model and the row's position only.
    """
    from apps.jobs.services import job_create

    _visible(actor, model_version, "explain", "Only stewards, use-case owners and org admins explain rows.")
    if model_version.non_private:
        raise InvalidState("A non-private baseline is for comparison only: its rows are not explained.")
    total = held_out_rows(model_version)
    if total == 0:
        raise InvalidState("The model's run recorded no held-out test rows.")
    chosen_at_random = position in (None, "")
    if chosen_at_random:
        position = secrets.randbelow(total) + 1
    try:
        position = int(position)
    except (TypeError, ValueError):
        raise ValidationFailed("The row's position must be a whole number.", {"position": ["a whole number"]}) from None
    if not 1 <= position <= total:
        raise ValidationFailed(
            f"Choose a held-out row between 1 and {total:,}.", {"position": [f"between 1 and {total}"]}
        )
    with transaction.atomic():
        job = job_create(
            actor=actor,
            organisation=model_version.organisation,
            kind="row_explanation",
            spec={"model_version_id": str(model_version.id), "position": position},
            target=model_version,
        )
        audit_record(
            actor=actor,
            organisation=model_version.organisation,
            action="model.explain_row",
            target=model_version,
            after={
                "job": str(job.id),
                "model_sha256": model_version.sha256,
                "position": position,
                "held_out_rows": total,
                "at_random": chosen_at_random,
            },
        )
    return job
