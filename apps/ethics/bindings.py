"""What a review is bound to: every artifact a member reads, with its revision and sha256.

A review's votes count only for the exact artifacts it bound when it opened; if any of them changes, the review is
superseded and votes start again (see ``services.reviews_supersede_stale``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from apps.datasets.models import DatasetVersion
from apps.evaluation.models import Evaluation
from apps.thirdparty.selectors import review_binding as third_party_review_binding
from apps.training.models import ModelVersion
from apps.usecases.models import UseCase


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def lineage(version: DatasetVersion) -> list[DatasetVersion]:
    """The version and its ancestors, newest first."""
    chain = []
    current: DatasetVersion | None = version
    while current is not None:
        chain.append(current)
        current = current.parent
    return chain


def bound_evaluation(model_version: ModelVersion) -> Evaluation | None:
    """The newest finished evaluation of the model on its own held-out rows: the one the board reads."""
    return (
        model_version.evaluations.filter(status=Evaluation.Status.SUCCEEDED, kind=Evaluation.Kind.HELD_OUT)
        .order_by("-created_at")
        .first()
    )


def usecase_bindings(usecase: UseCase) -> dict[str, Any]:
    revision = usecase.revisions.order_by("-number").first()
    policies = {"fairness": usecase.fairness_policy, "privacy": usecase.privacy_policy}
    if usecase.monitoring_plan:
        # Only a plan that was set joins the digest: every review bound before plans existed (or of a use case
        # without one) keeps the digest it was bound to, instead of all turning stale at once.
        policies["monitoring"] = usecase.monitoring_plan
    bound: dict[str, Any] = {
        "usecase": {
            "id": str(usecase.id),
            "reference": usecase.reference,
            "revision": revision.number if revision else usecase.revision,
            "sha256": revision.sha256 if revision else "",
        },
        "dpia": {"revision": usecase.revision, "sha256": _digest(usecase.dpia or {})},
        "policies": {"sha256": _digest(policies)},
    }
    third_party = list(usecase.third_party_models.all())
    if third_party:
        # Only a use case that records a supplier's model gets the key, so every digest bound before third-party
        # models existed stays as it was; the board reads (and binds) each one's version and documentation hash.
        bound["third_party_models"] = third_party_review_binding(third_party)
    return bound


def model_bindings(model_version: ModelVersion) -> dict[str, Any]:
    run = model_version.training_run
    trained_on = run.dataset_version
    sheet = trained_on.datasheets.order_by("-number").first()
    evaluation = bound_evaluation(model_version)
    card = model_version.card_revisions.order_by("-number").first()
    return {
        "datasets": [
            {"id": str(v.id), "dataset": v.dataset.name, "label": v.label, "sha256": v.sha256}
            for v in lineage(trained_on)
        ],
        "datasheet": {"revision": sheet.number, "sha256": sheet.sha256} if sheet else None,
        "model": {"id": str(model_version.id), "number": model_version.number, "sha256": model_version.sha256},
        "evaluation": (
            {
                "id": str(evaluation.id),
                "verdict": evaluation.verdict,
                "sha256": _digest({"results": evaluation.results, "audit": evaluation.audit}),
            }
            if evaluation
            else None
        ),
        "model_card": {"revision": card.number, "sha256": card.sha256} if card else None,
        # Only a mitigated candidate has the key, so the bindings (and open reviews) of other models are unchanged.
        **({"mitigation": mitigation_binding(model_version)} if model_version.parent_id else {}),
    }


def mitigation_binding(model_version: ModelVersion) -> dict[str, Any]:
    """A candidate's parent and what was done to it (method, constraint, and a digest of the fitted record)."""
    parent = model_version.parent
    mitigation = model_version.mitigation or {}
    return {
        "parent": {"id": str(parent.id), "number": parent.number, "sha256": parent.sha256},
        "method": mitigation.get("method"),
        "constraint": mitigation.get("constraint"),
        "attribute": mitigation.get("attribute"),
        "sha256": _digest(mitigation),
    }


def bindings_for(usecase: UseCase, model_version: ModelVersion | None) -> tuple[dict[str, Any], str]:
    bound = usecase_bindings(usecase)
    if model_version is not None:
        bound.update(model_bindings(model_version))
    return bound, _digest(bound)


def changed_artifacts(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return sorted(key for key in set(before) | set(after) if before.get(key) != after.get(key))
