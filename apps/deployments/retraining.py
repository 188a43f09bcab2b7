"""The retraining loop: from an alert or a piece of feedback back through training, evaluation and the board.

The owner opens a request on a deployment; it is pre-filled with the newest ready prepared version of the deployed
model's dataset and the deployed run's training spec. Launching requests the training run through the training
service, so the dataset's privacy budget and the use case's approval state apply as for any run. The request then
follows its run, the run's evaluation and the deployment review of the model it produced (``retraining_requests_follow``,
run by the beat tick): TRAINING until the model's deployment review opens, IN_REVIEW while the board looks at it,
APPROVED once approved (``deployment_register`` marks it PROMOTED). The board's review page shows the
monitoring evidence that led to the request and a side-by-side comparison with the deployed version
(``retraining_comparison``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse

from apps.accounts.models import Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.audit.services import audit_record
from apps.core.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from apps.datasets.models import DatasetVersion
from apps.deployments.models import Alert, Deployment, Feedback, MonitoringWindow, RetrainingRequest
from apps.ethics.bindings import bound_evaluation
from apps.ethics.models import ReviewRequest
from apps.ethics.notices import notify
from apps.training.models import ModelVersion, TrainingRun
from apps.training.services import training_run_request

REASON_MAX = 4000
CLOSE_REASON_MAX = 500
# The training spec a retraining may carry over or change (delta and the accountant come from the dataset's budget).
SPEC_KEYS = (
    "label",
    "features",
    "model",
    "epochs",
    "batch_size",
    "learning_rate",
    "max_grad_norm",
    "target_epsilon",
    "seed",
)
UNDERWAY = (
    RetrainingRequest.Status.OPEN,
    RetrainingRequest.Status.TRAINING,
    RetrainingRequest.Status.IN_REVIEW,
    RetrainingRequest.Status.APPROVED,
)
FOLLOWED = (RetrainingRequest.Status.TRAINING, RetrainingRequest.Status.IN_REVIEW, RetrainingRequest.Status.APPROVED)
# The per-group rates each gated fairness metric is computed from (the evaluation keeps them per group).
GROUP_RATES = {
    "demographic_parity_difference": ("selection_rate",),
    "demographic_parity_ratio": ("selection_rate",),
    "equalized_odds_difference": ("recall", "false_positive_rate"),
    "equalized_odds_ratio": ("recall", "false_positive_rate"),
    "equal_opportunity_difference": ("recall",),
    "predictive_parity_difference": ("precision",),
    "false_positive_rate_difference": ("false_positive_rate",),
    "false_negative_rate_difference": ("false_negative_rate",),
}
EVIDENCE_WINDOWS = 4


# ------------------------------------------------------------------------------------------------------- reading


def retraining_visible_to(user: User) -> QuerySet[RetrainingRequest]:
    return RetrainingRequest.objects.filter(organisation_id__in=organisation_ids_for(user)).select_related(
        "deployment__model_version", "usecase", "opened_by", "dataset_version__dataset", "training_run", "review"
    )


def retraining_may(user: User, action: str, request: RetrainingRequest | Deployment) -> bool:
    """view: every role of the organisation; act (open, launch, close): an org admin, or an owner who owns the use
    case or the deployment."""
    deployment = request if isinstance(request, Deployment) else request.deployment
    roles = roles_in(user, deployment.organisation)
    if action == "view":
        return bool(roles)
    if Role.ADMIN in roles:
        return True
    return Role.OWNER in roles and user.id in (deployment.owner_id, deployment.usecase.owner_id)


def newest_prepared_version(deployment: Deployment) -> DatasetVersion | None:
    """The newest ready prepared (or anonymised) version of the deployed model's dataset that still has the columns
    the deployed run used; the newest ready one if none has them all."""
    run = deployment.model_version.training_run
    needed = set(run.spec.get("features") or []) | ({run.spec["label"]} if run.spec.get("label") else set())
    candidates = list(
        DatasetVersion.objects.filter(dataset_id=run.dataset_version.dataset_id, status=DatasetVersion.Status.READY)
        .exclude(kind=DatasetVersion.Kind.RAW)
        .order_by("-number", "-created_at")
    )
    for version in candidates:
        if needed <= set(version.column_names or []):
            return version
    return candidates[0] if candidates else None


def retraining_prefill(request: RetrainingRequest) -> dict[str, Any]:
    """What the launch form starts from: the request's dataset version and the deployed run's spec."""
    run = request.deployment.model_version.training_run
    return {
        "dataset_version": request.dataset_version,
        "spec": {key: run.spec[key] for key in SPEC_KEYS if key in (run.spec or {})},
    }


def _model_of(run: TrainingRun | None) -> ModelVersion | None:
    if run is None:
        return None
    return ModelVersion.objects.filter(training_run=run).first()


def _followed_state(request: RetrainingRequest) -> tuple[str, ReviewRequest | None]:
    """Where the request stands from its run, the model's evaluation and its deployment review."""
    run = request.training_run
    if run is None:
        return request.status, request.review
    if run.status == TrainingRun.Status.STOPPED:
        return RetrainingRequest.Status.OPEN, None  # launch again
    model = _model_of(run)
    if model is None:
        return RetrainingRequest.Status.TRAINING, None
    review = (
        model.reviews.filter(kind=ReviewRequest.Kind.DEPLOYMENT)
        .exclude(status__in=(ReviewRequest.Status.SUPERSEDED, ReviewRequest.Status.WITHDRAWN))
        .order_by("-created_at")
        .first()
    )
    if review is None:
        return RetrainingRequest.Status.TRAINING, None  # trained and evaluated: the owner asks for the review next
    decision = getattr(review, "decision", None) if review.status == ReviewRequest.Status.DECIDED else None
    if decision is not None and decision.approved:
        return RetrainingRequest.Status.APPROVED, review
    return RetrainingRequest.Status.IN_REVIEW, review


def retraining_progress(request: RetrainingRequest) -> dict[str, Any]:
    """What a page shows of the request's way through the loop, read live (the stored status follows it hourly)."""
    run = request.training_run
    model = _model_of(run)
    evaluation = bound_evaluation(model) if model else None
    status, review = _followed_state(request) if request.status in FOLLOWED else (request.status, request.review)
    return {
        "status": status,
        "status_label": RetrainingRequest.Status(status).label,
        "run": run,
        "run_state": run.state if run else None,
        "model": model,
        "evaluation": evaluation,
        "review": review,
        "may_request_review": model is not None and evaluation is not None and review is None,
    }


# ----------------------------------------------------------------------------------------------------- comparison


def _facts(model: ModelVersion) -> dict[str, Any]:
    run = model.training_run
    evaluation = bound_evaluation(model)
    results = (evaluation.results or {}) if evaluation else {}
    version = run.dataset_version
    return {
        "model": model,
        "run": run,
        "evaluation": evaluation,
        "data": f"{version.dataset.name} {version.label}",
        "data_id": str(version.id),
        "spec": run.spec or {},
        "epsilon": (run.privacy or {}).get("epsilon"),
        "delta": (run.privacy or {}).get("delta", (run.spec or {}).get("delta")),
        "accuracy": (results.get("overall") or {}).get("accuracy"),
        "verdict": evaluation.verdict if evaluation else None,
        "gates": {gate["metric"]: gate for gate in results.get("gates", []) if gate.get("metric")},
        "groupings": {g["name"]: g for g in results.get("groupings", []) if g.get("name")},
    }


def _shown(value: Any) -> Any:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return value


def _row(label: str, deployed: Any, candidate: Any, *, number: bool = False) -> dict[str, Any]:
    return {
        "label": label,
        "deployed": _shown(deployed),
        "candidate": _shown(candidate),
        "number": number,
        "changed": deployed != candidate,
        "delta": (candidate - deployed)
        if number and isinstance(deployed, int | float) and isinstance(candidate, int | float)
        else None,
    }


def _evidence(deployment: Deployment) -> dict[str, Any]:
    alerts = list(
        Alert.objects.filter(deployment=deployment)
        .exclude(status=Alert.Status.RESOLVED)
        .select_related("window")
        .order_by("-severity", "-updated_at")
    )
    windows = []
    evaluated = MonitoringWindow.objects.filter(
        deployment=deployment, status=MonitoringWindow.Status.EVALUATED
    ).order_by("-starts_at")[:EVIDENCE_WINDOWS]
    for window in evaluated:
        counts = {"fail": 0, "warn": 0, "pass": 0, "insufficient": 0}
        flagged = []
        for result in window.results or []:
            status = result.get("status")
            if status in counts:
                counts[status] += 1
            if status in ("fail", "warn"):
                flagged.append({"monitor": result.get("monitor"), "status": status, "value": result.get("value")})
        windows.append({"window": window, "counts": counts, "flagged": flagged})
    return {"alerts": alerts, "windows": windows}


def retraining_comparison(review: ReviewRequest) -> dict[str, Any] | None:
    """For a deployment review of a model that came from a retraining request: the monitoring evidence of the
    deployed version (its open alerts and its last windows' results) and a side-by-side comparison with it (data
    version, spec, epsilon, accuracy, each gated fairness metric per grouping and its per-group rates, verdicts).
    None for any other review."""
    if review.kind != ReviewRequest.Kind.DEPLOYMENT or review.model_version_id is None:
        return None
    request = (
        RetrainingRequest.objects.filter(training_run_id=review.model_version.training_run_id)
        .select_related("deployment__model_version__training_run", "alert", "feedback", "opened_by")
        .order_by("-created_at")
        .first()
    )
    if request is None:
        return None
    deployment = request.deployment
    deployed, candidate = _facts(deployment.model_version), _facts(review.model_version)
    rows = [
        _row("Model version", f"v{deployed['model'].number}", f"v{candidate['model'].number}"),
        _row("Training data", deployed["data"], candidate["data"]),
    ]
    for key in ("model", "label", "features", "epochs", "batch_size", "learning_rate", "max_grad_norm"):
        rows.append(
            _row(
                key.replace("_", " ").capitalize(),
                deployed["spec"].get(key),
                candidate["spec"].get(key),
                number=key in ("epochs", "batch_size", "learning_rate", "max_grad_norm"),
            )
        )
    rows += [
        _row("Epsilon spent", deployed["epsilon"], candidate["epsilon"], number=True),
        _row("Delta", deployed["delta"], candidate["delta"], number=True),
        _row("Accuracy on held-out rows", deployed["accuracy"], candidate["accuracy"], number=True),
        _row("Gate verdict", deployed["verdict"], candidate["verdict"]),
    ]
    gates = []
    groups = []
    for metric in sorted(set(deployed["gates"]) | set(candidate["gates"])):
        before, after = deployed["gates"].get(metric, {}), candidate["gates"].get(metric, {})
        gates.append({"metric": metric, "deployed": before, "candidate": after})
        for name in sorted(set(deployed["groupings"]) | set(candidate["groupings"])):
            old_grouping = deployed["groupings"].get(name, {})
            new_grouping = candidate["groupings"].get(name, {})
            groups.append(
                {
                    "metric": metric,
                    "grouping": name,
                    "group": None,
                    "rate": metric,
                    **_pair(
                        ((old_grouping.get("fairness") or {}).get(metric) or {}).get("value"),
                        ((new_grouping.get("fairness") or {}).get(metric) or {}).get("value"),
                    ),
                }
            )
            old_rows = {row["group"]: row for row in old_grouping.get("groups", [])}
            new_rows = {row["group"]: row for row in new_grouping.get("groups", [])}
            for rate in GROUP_RATES.get(metric, ()):
                for group in sorted(set(old_rows) | set(new_rows), key=str):
                    groups.append(
                        {
                            "metric": metric,
                            "grouping": name,
                            "group": group,
                            "rate": rate,
                            **_pair(old_rows.get(group, {}).get(rate), new_rows.get(group, {}).get(rate)),
                        }
                    )
    return {
        "request": request,
        "deployment": deployment,
        "deployed": deployed,
        "candidate": candidate,
        "rows": rows,
        "gates": gates,
        "groups": groups,
        **_evidence(deployment),
    }


def _pair(deployed: Any, candidate: Any) -> dict[str, Any]:
    delta = candidate - deployed if isinstance(deployed, int | float) and isinstance(candidate, int | float) else None
    return {"deployed": deployed, "candidate": candidate, "delta": delta}


# ---------------------------------------------------------------------------------------------------------- writes


def _require(actor: User, action: str, target: RetrainingRequest | Deployment, message: str) -> None:
    deployment = target if isinstance(target, Deployment) else target.deployment
    if not roles_in(actor, deployment.organisation):
        raise NotFound()
    if not retraining_may(actor, action, target):
        raise PermissionDenied(message)


def _digest(text: str) -> dict[str, Any]:
    return {"characters": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest()}


def retraining_request_open(
    *,
    actor: User,
    deployment: Deployment,
    reason: str,
    alert: Alert | None = None,
    feedback: Feedback | None = None,
) -> RetrainingRequest:
    """Open a retraining request on an active deployment, from an alert or feedback of that deployment, pre-filled
    with the newest ready prepared version of its model's dataset. One request underway per deployment."""
    _require(actor, "act", deployment, "The use case's or deployment's owner, or an org admin, asks for retraining.")
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    if not reason:
        errors["reason"] = ["Say why the model should be retrained."]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"at most {REASON_MAX} characters"]
    if alert is not None and alert.deployment_id != deployment.id:
        errors["alert"] = ["an alert of this deployment"]
    if feedback is not None and feedback.deployment_id != deployment.id:
        errors["feedback"] = ["feedback on this deployment"]
    if errors:
        raise ValidationFailed("The retraining request is not complete.", errors)
    with transaction.atomic():
        locked = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if locked.status != Deployment.Status.ACTIVE:
            raise InvalidState("Only an active deployment is retrained; this one has ended.")
        underway = RetrainingRequest.objects.filter(deployment=locked, status__in=UNDERWAY).first()
        if underway is not None:
            raise InvalidState(
                "A retraining request of this deployment is already underway.", {"retraining_request": str(underway.id)}
            )
        version = newest_prepared_version(deployment)
        request = RetrainingRequest.objects.create(
            organisation_id=deployment.organisation_id,
            deployment=locked,
            usecase_id=deployment.usecase_id,
            reason=reason,
            alert=alert,
            feedback=feedback,
            opened_by=actor,
            dataset_version=version,
        )
        audit_record(
            actor=actor,
            organisation=deployment.organisation_id,
            action="retraining.open",
            target=request,
            after={
                "deployment": str(deployment.id),
                "alert": str(alert.id) if alert else None,
                "feedback": str(feedback.id) if feedback else None,
                "dataset_version": str(version.id) if version else None,
                "reason": _digest(reason),
            },
        )
    return request


def retraining_request_launch(
    *, actor: User, request: RetrainingRequest, spec_overrides: dict[str, Any] | None = None
) -> RetrainingRequest:
    """Request the training run through the training service (budget, approval state and consent age apply) with
    the deployed run's spec and the given changes, and link it. Its event (``retraining.launch``) follows the
    training service's own (``training.request``), which books the budget reservation."""
    _require(actor, "act", request, "The use case's or deployment's owner, or an org admin, launches retraining.")
    overrides = dict(spec_overrides or {})
    unknown = sorted(set(overrides) - set(SPEC_KEYS))
    if unknown:
        raise ValidationFailed(
            "Some settings cannot be changed here.", {key: [f"one of {', '.join(SPEC_KEYS)}"] for key in unknown}
        )
    with transaction.atomic():
        locked = (
            RetrainingRequest.objects.select_for_update(of=("self",))
            .select_related("deployment__model_version__training_run", "training_run", "dataset_version__dataset")
            .get(pk=request.pk)
        )
        relaunch = (
            locked.status == RetrainingRequest.Status.TRAINING
            and locked.training_run is not None
            and locked.training_run.status == TrainingRun.Status.STOPPED
        )
        if locked.status != RetrainingRequest.Status.OPEN and not relaunch:
            raise InvalidState(f"The request is {locked.get_status_display().lower()}: its training was launched.")
        version = locked.dataset_version
        if version is None or version.status != DatasetVersion.Status.READY:
            raise InvalidState("The request has no ready prepared version to train on; prepare one first.")
        spec = {**retraining_prefill(locked)["spec"], **overrides}
        previous = locked.training_run_id
        run = training_run_request(actor=actor, version=version, spec=spec)
        locked.training_run = run
        locked.status = RetrainingRequest.Status.TRAINING
        locked.review = None
        locked.save(update_fields=["training_run", "status", "review", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="retraining.launch",
            target=locked,
            after={
                "training_run": str(run.id),
                "job": str(run.job_id),
                "dataset_version": str(version.id),
                "changed": sorted(overrides),
                "previous_run": str(previous) if previous else None,
            },
        )
    return locked


def retraining_request_close(*, actor: User, request: RetrainingRequest, reason: str) -> RetrainingRequest:
    """Close a request that will not go further (the alert was a data fault, the candidate was rejected, ...)."""
    _require(actor, "act", request, "The use case's or deployment's owner, or an org admin, closes the request.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Say why the request is closed.", {"reason": ["required"]})
    if len(reason) > CLOSE_REASON_MAX:
        raise ValidationFailed("The reason is too long.", {"reason": [f"at most {CLOSE_REASON_MAX} characters"]})
    with transaction.atomic():
        locked = RetrainingRequest.objects.select_for_update().get(pk=request.pk)
        if locked.status in (RetrainingRequest.Status.PROMOTED, RetrainingRequest.Status.CLOSED):
            raise InvalidState(f"The request is {locked.get_status_display().lower()} already.")
        before = locked.status
        locked.status = RetrainingRequest.Status.CLOSED
        locked.closed_reason = reason
        locked.save(update_fields=["status", "closed_reason", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation_id,
            action="retraining.close",
            target=locked,
            before={"status": before},
            after={"status": locked.status, "reason": _digest(reason)},
        )
    return locked


def retraining_requests_follow(*, requests: Iterable[RetrainingRequest] | None = None) -> list[RetrainingRequest]:
    """Move each request underway to where its run, evaluation and review stand (the beat tick runs it; a page may
    run it for one request). One audit event per request whose status or review changed; the opener and the use
    case's owner are told when the board approves the candidate."""
    candidates = (
        list(requests)
        if requests is not None
        else RetrainingRequest.objects.filter(status__in=FOLLOWED).order_by("created_at")
    )
    moved = []
    for request in candidates:
        with transaction.atomic():
            locked = (
                RetrainingRequest.objects.select_for_update(of=("self",))
                .select_related("training_run", "deployment", "usecase__owner", "opened_by", "organisation")
                .get(pk=request.pk)
            )
            if locked.status not in FOLLOWED:
                continue
            status, review = _followed_state(locked)
            review_id = review.id if review else None
            if status == locked.status and review_id == locked.review_id:
                continue
            before = {"status": locked.status, "review": str(locked.review_id) if locked.review_id else None}
            locked.status, locked.review = status, review
            locked.save(update_fields=["status", "review", "updated_at"])
            if status == RetrainingRequest.Status.APPROVED:
                notify(
                    [locked.opened_by, locked.usecase.owner],
                    organisation=locked.organisation,
                    kind="retraining_approved",
                    message=f"The retrained model for {locked.deployment} was approved by the board "
                    f"({review.reference}); it may be promoted.",
                    url=reverse("deployments:retraining", kwargs={"request_id": locked.id}),
                )
            audit_record(
                actor=None,
                organisation=locked.organisation_id,
                action="retraining.follow",
                target=locked,
                before=before,
                after={"status": status, "review": str(review_id) if review_id else None},
            )
            moved.append(locked)
    return moved
