"""Launching private training with a budget reservation, and recording what the worker reports.

The web side never imports torch or opacus: epsilon figures that need the accountant are computed by the worker
(``workers/training.py``) and handed to these services as numbers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.models import User
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, NotFound, PermissionDenied, ValidationFailed
from apps.datasets.models import ColumnRole, DatasetVersion
from apps.training.models import BudgetEntry, ModelVersion, PrivacyBudget, TrainingRun
from apps.training.permissions import can
from apps.usecases.models import UseCase
from workers.engine.training.delta import default_delta

# The model kinds a run may train, with the words people read for them.
MODEL_LABELS = {"logistic_regression": "Logistic regression", "mlp": "Multilayer perceptron (64-32)"}
MODELS = tuple(MODEL_LABELS)
DEPLOYABLE_STATES = (UseCase.Status.APPROVED, UseCase.Status.IN_PRODUCTION)


def people_count(version: DatasetVersion) -> int:
    """n for the delta rule: distinct subjects (a person may have several rows), else rows."""
    profile = {c["name"]: c for c in (version.profile or {}).get("columns", [])}
    subject = profile.get(version.subject_key_column)
    return int(subject["distinct"]) if subject and subject.get("distinct") else int(version.row_count)


def budget_for(version: DatasetVersion, *, lock: bool = False) -> PrivacyBudget:
    """The dataset's budget row (created at the first launch from the use case's policy)."""
    dataset = version.dataset
    policy = dataset.usecase.privacy_policy or {}
    n = people_count(version)
    PrivacyBudget.objects.get_or_create(
        dataset=dataset,
        defaults={
            "epsilon_cap": float(policy.get("epsilon_cap") or 3.0),
            "people": n,
            "delta": float(policy["delta"]) if policy.get("delta") else default_delta(n),
            "accountant": "pld",
        },
    )
    queryset = PrivacyBudget.objects.select_for_update() if lock else PrivacyBudget.objects
    return queryset.get(dataset=dataset)


def _clean_spec(version: DatasetVersion, spec: dict[str, Any]) -> dict[str, Any]:
    columns = {c.name: c for c in version.columns.all()}
    errors: dict[str, list[str]] = {}
    label = spec.get("label")
    if label not in columns:
        errors["label"] = ["choose a column of the version"]
    features = [f for f in spec.get("features") or [] if f]
    bad = [f for f in features if f not in columns]
    if bad:
        errors["features"] = [f"not in the version: {', '.join(bad)}"]
    identifying = [
        f
        for f in features
        if f in columns and columns[f].role in (ColumnRole.SUBJECT_KEY, ColumnRole.DIRECT_IDENTIFIER)
    ]
    if identifying:
        errors["features"] = [f"identifiers cannot be features: {', '.join(identifying)}"]
    if not features:
        errors.setdefault("features", ["choose at least one feature"])
    if label in features:
        errors["label"] = ["the label cannot also be a feature"]
    if spec.get("model") not in MODELS:
        errors["model"] = [f"one of {', '.join(MODELS)}"]

    def number(name: str, low: float, high: float, kind: type = float) -> Any:
        try:
            value = kind(spec.get(name))
        except (TypeError, ValueError):
            errors[name] = ["must be a number"]
            return None
        if not low <= value <= high:
            errors[name] = [f"must be between {low} and {high}"]
        return value

    cleaned = {
        "label": label,
        "features": features,
        "model": spec.get("model"),
        "epochs": number("epochs", 1, 200, int),
        "batch_size": number("batch_size", 1, 100_000, int),
        "learning_rate": number("learning_rate", 1e-6, 10),
        "max_grad_norm": number("max_grad_norm", 1e-3, 100),
        "target_epsilon": number("target_epsilon", 0.01, 100),
        "seed": number("seed", 0, 2**31 - 1, int),
    }
    if errors:
        raise ValidationFailed("The training request is not valid.", errors)
    return cleaned


def training_run_request(
    *, actor: User, version: DatasetVersion, spec: dict[str, Any], non_private: bool = False
) -> TrainingRun:
    """Check everything a regulator would ask, reserve the planned epsilon, and queue the run on the gpu queue."""
    from apps.jobs.services import job_create

    organisation = version.dataset.organisation
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, "launch", organisation):
        raise PermissionDenied("Only use-case owners and org admins launch training.")
    usecase = UseCase.objects.get(pk=version.dataset.usecase_id)  # fresh: the state decides
    if usecase.status not in DEPLOYABLE_STATES:
        raise AttestError(
            "invalid_state",
            f"{usecase.reference} is {usecase.get_status_display().lower()}: training needs approval for development.",
        )
    if version.kind == DatasetVersion.Kind.RAW or version.status != DatasetVersion.Status.READY:
        raise AttestError(
            "invalid_state",
            "Train on a prepared (consent-filtered, de-identified) version that is ready, not on raw data.",
        )
    max_age = int((usecase.privacy_policy or {}).get("max_consent_age_days", 30))
    if version.consent_as_of is None or timezone.now() - version.consent_as_of > timedelta(days=max_age):
        age = (timezone.now() - version.consent_as_of).days if version.consent_as_of else None
        raise AttestError(
            "invalid_state",
            f"The consent snapshot is {age} days old; the policy allows {max_age}. Prepare the version again.",
            {"age_days": age, "max_days": max_age},
        )
    cleaned = _clean_spec(version, spec)
    with transaction.atomic():
        budget = budget_for(version, lock=True)  # the row lock serialises concurrent launches
        n = budget.people
        if not budget.delta < 1.0 / n:
            raise AttestError("invalid", f"delta {budget.delta:g} must be below 1/n = {1 / n:.3g}.")
        cleaned["delta"] = budget.delta
        cleaned["accountant"] = budget.accountant
        requested = 0.0 if non_private else cleaned["target_epsilon"]
        # Conservative: the composed spend plus this run can never exceed spend + requested (composition is
        # sub-additive), so reserving the plain sum can refuse a run the accountant would allow, never the reverse.
        if budget.composed_spent + budget.reserved + requested > budget.epsilon_cap + 1e-9:
            raise AttestError(
                "budget_exceeded",
                (
                    f"This run would exceed the dataset's privacy budget: cap {budget.epsilon_cap:g}, spent "
                    f"{budget.composed_spent:.3g}, reserved by running jobs {budget.reserved:.3g}, requested "
                    f"{requested:g}, remaining {budget.remaining:.3g}."
                ),
                {
                    "cap": budget.epsilon_cap,
                    "spent": budget.composed_spent,
                    "reserved": budget.reserved,
                    "requested": requested,
                    "remaining": budget.remaining,
                },
            )
        run = TrainingRun.objects.create(
            organisation=organisation,
            usecase=usecase,
            dataset_version=version,
            created_by=actor,
            spec=cleaned,
            non_private=non_private,
        )
        if requested:
            BudgetEntry.objects.create(budget=budget, run=run, kind=BudgetEntry.Kind.RESERVE, epsilon=requested)
            budget.reserved += requested
            budget.save(update_fields=["reserved", "updated_at"])
        job = job_create(
            actor=actor, organisation=organisation, kind="training", spec={"run_id": str(run.id)}, target=run
        )
        run.job = job
        run.save(update_fields=["job"])
        audit_record(
            actor=actor,
            organisation=organisation,
            action="training.request",
            target=run,
            after={
                **cleaned,
                "non_private": non_private,
                "dataset_version": str(version.id),
                "reserved_epsilon": requested,
                "budget_remaining_after": budget.remaining,
                "job": str(job.id),
            },
        )
    return run


def committed_mechanisms(budget: PrivacyBudget) -> list[dict[str, Any]]:
    """What the accountant composes: every committed run's (noise multiplier, sample rate, steps)."""
    return list(
        budget.entries.filter(kind=BudgetEntry.Kind.COMMIT, steps__gt=0).values(
            "noise_multiplier", "sample_rate", "steps"
        )
    )


def training_run_started(*, run: TrainingRun, planned: dict[str, Any]) -> None:
    """Operational telemetry (not audited): the noise, sampling rate and steps the worker calibrated. Whether the run
    is running is its job's business."""
    TrainingRun.objects.filter(pk=run.pk).update(planned=planned, updated_at=timezone.now())


def training_run_progress(*, run: TrainingRun, steps: int, curve_point: dict[str, float]) -> None:
    """Operational telemetry (not audited): steps done so far, so a lost worker's spend can be committed."""
    run.curve.append(curve_point)
    TrainingRun.objects.filter(pk=run.pk).update(steps_completed=steps, curve=run.curve)


def _settle_budget(run: TrainingRun, *, spent: dict[str, Any] | None, composed: float | None, note: str) -> None:
    """Replace the run's reservation by a commit of what it spent (or a release when nothing was spent)."""
    reservation = run.budget_entries.filter(kind=BudgetEntry.Kind.RESERVE).first()
    if reservation is None or run.budget_entries.exclude(kind=BudgetEntry.Kind.RESERVE).exists():
        return  # non-private baseline, or already settled: never count twice
    budget = PrivacyBudget.objects.select_for_update().get(pk=reservation.budget_id)
    budget.reserved = max(0.0, budget.reserved - reservation.epsilon)
    if spent and spent.get("steps"):
        BudgetEntry.objects.create(
            budget=budget,
            run=run,
            kind=BudgetEntry.Kind.COMMIT,
            epsilon=spent["epsilon"],
            noise_multiplier=spent["noise_multiplier"],
            sample_rate=spent["sample_rate"],
            steps=spent["steps"],
            composed_after=composed,
            note=note,
        )
        budget.composed_spent = composed if composed is not None else budget.composed_spent + spent["epsilon"]
        budget.naive_spent += spent["epsilon"]
    else:
        BudgetEntry.objects.create(
            budget=budget, run=run, kind=BudgetEntry.Kind.RELEASE, epsilon=reservation.epsilon, note=note
        )
    budget.save(update_fields=["reserved", "composed_spent", "naive_spent", "updated_at"])


def run_budget_settle(*, run: TrainingRun, spent: dict[str, Any] | None, composed: float | None, note: str) -> None:
    """A step of the service that ends a run made by another kind of job (a mitigation's), whose one event records
    the spend: the run's reservation becomes a commit of what it spent, or a release. Call it under the run's lock."""
    _settle_budget(run, spent=spent, composed=composed, note=note)


def training_run_succeed(
    *,
    run: TrainingRun,
    privacy: dict[str, Any],
    metrics: dict[str, Any],
    split: dict[str, Any],
    curve: list[dict[str, float]],
    manifest: dict[str, Any],
    storage_path: str,
    composed: float | None,
) -> ModelVersion:
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        _settle_budget(
            run, spent=privacy if run.spec and not run.non_private else None, composed=composed, note="run succeeded"
        )
        number = (ModelVersion.objects.filter(usecase=run.usecase).aggregate(n=Max("number"))["n"] or 0) + 1
        model = ModelVersion.objects.create(
            organisation=run.organisation,
            usecase=run.usecase,
            training_run=run,
            number=number,
            sha256=manifest["model_sha256"],
            storage_path=storage_path,
            manifest=manifest,
            non_private=run.non_private,
        )
        run.status = TrainingRun.Status.SUCCEEDED
        run.error = ""
        run.privacy, run.metrics, run.split, run.curve = privacy, metrics, split, curve
        run.steps_completed = privacy.get("steps", 0)
        run.save()
        from apps.evaluation.services import evaluation_queue

        # Every finished run is evaluated on its held-out rows straight away (named in this service's event).
        evaluation = evaluation_queue(actor=None, model_version=model)
        audit_record(
            actor=None,
            organisation=run.organisation,
            action="training.succeed",
            target=run,
            after={
                "model_version": str(model.id),
                "model_sha256": model.sha256,
                "privacy": privacy,
                "composed_budget_spent": composed,
                "non_private": run.non_private,
                "evaluation": str(evaluation.id),
            },
            request_id=run.job.request_id if run.job else None,
        )
    return model


def training_run_stop(*, run: TrainingRun, job: Any, spent: dict[str, Any] | None, composed: float | None) -> None:
    """The failure hook of a training job (failed, cancelled or lost): commit what the completed steps spent (or
    release the reservation) and publish no model. Why it ended stays on the job row."""
    from apps.jobs.models import Job

    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status != TrainingRun.Status.PENDING:
            return  # settled already: never count twice
        if job.status == Job.Status.CANCELLED:
            note = f"Cancelled after {run.steps_completed:,} steps."
        else:
            note = f"Stopped after {run.steps_completed:,} steps: {(job.error or {}).get('message', 'the job failed.')}"
        note += " No model was published."
        _settle_budget(run, spent=None if run.non_private else spent, composed=composed, note=note[:300])
        run.status = TrainingRun.Status.STOPPED
        run.error = note
        if spent:
            run.privacy = spent
        run.save()
        audit_record(
            actor=None,
            organisation=run.organisation,
            action="training.stop",
            target=run,
            after={
                "job_status": job.status,
                "steps_completed": run.steps_completed,
                "spent": spent,
                "composed_budget_spent": composed,
            },
        )
