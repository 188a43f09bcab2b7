"""The evidence Attest already holds for use cases, gathered for many use cases at once in a fixed number of queries.

Each piece is an ``Item`` with its kind (``evidence_kinds.EVIDENCE_KINDS``), a label, the sha256 that identifies its
content (a signed report's PDF hash, a decision's bindings hash, the hash of a DPIA or monitoring plan as stored...),
where it can be opened, and when it expires, if it does. Only current evidence counts: superseded reports, revoked
approvals and withdrawn deployments are left out, so a requirement confirmed on them reopens.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.apps import apps as django_apps
from django.urls import reverse

REPORT_KINDS = {
    "dpia": "dpia",
    "model_card": "model_card",
    "annex_iv": "annex_iv",
    "datasheet": "datasheet",
    "decision": "board_decision",
    "monitoring": "monitoring_report",
}
ORGANISATION_REPORT_KINDS = {"art30": "art30", "audit_extract": "audit_extract"}


@dataclass(frozen=True)
class Item:
    kind: str
    label: str
    sha256: str
    url: str = ""
    expires_on: date | None = None
    source: str = "attest"  # attest | upload | link
    link_id: str = ""


@dataclass
class Held:
    """Everything gathered for one use case: evidence by kind, hand-linked evidence by requirement, confirmations."""

    by_kind: dict[str, list[Item]] = field(default_factory=lambda: defaultdict(list))
    linked: dict[tuple[str, str], list[Item]] = field(default_factory=lambda: defaultdict(list))
    confirmations: dict[tuple[str, str], Any] = field(default_factory=dict)
    uses_third_party_model: bool = False


def digest_of(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str, separators=(",", ":")).encode()).hexdigest()


def _dpia_filled(dpia: dict[str, Any]) -> bool:
    return bool(dpia) and any(value for key, value in dpia.items() if key != "sign_off")


def gather(usecases: list[Any]) -> dict[Any, Held]:
    """Evidence held for each use case (keyed by id). Query count does not grow with the number of use cases."""
    from apps.compliance.models import Confirmation, EvidenceLink
    from apps.datasets.models import DatasetVersion
    from apps.deployments.models import Deployment
    from apps.ethics.models import Decision
    from apps.evaluation.models import Evaluation
    from apps.reports.models import Report

    held: dict[Any, Held] = {usecase.id: Held() for usecase in usecases}
    if not held:
        return held
    ids = list(held)

    for usecase in usecases:
        bucket = held[usecase.id].by_kind
        if _dpia_filled(usecase.dpia or {}):
            bucket["dpia"].append(
                Item(
                    "dpia",
                    f"DPIA as recorded (revision {usecase.revision})",
                    digest_of(usecase.dpia),
                    reverse("usecases:detail", args=[usecase.id]) + "#dpia-heading",
                )
            )
        if usecase.monitoring_plan:
            bucket["monitoring_plan"].append(
                Item(
                    "monitoring_plan",
                    "Post-market monitoring plan",
                    digest_of(usecase.monitoring_plan),
                    reverse("deployments:plan", args=[usecase.id]),
                )
            )

    reports = Report.objects.filter(usecase_id__in=ids, status=Report.Status.READY, superseded_by__isnull=True).only(
        "id", "usecase_id", "kind", "reference", "version", "sha256"
    )
    for report in reports:
        item_args = (
            f"{report.get_kind_display()} {report.reference} v{report.version}",
            report.sha256,
            reverse("reports:detail", args=[report.id]),
        )
        kind = REPORT_KINDS.get(report.kind)
        if kind:
            held[report.usecase_id].by_kind[kind].append(Item(kind, *item_args))
        held[report.usecase_id].by_kind["signed_report"].append(Item("signed_report", *item_args))

    organisation_ids = {usecase.organisation_id for usecase in usecases}
    org_reports = Report.objects.filter(
        organisation_id__in=organisation_ids,
        kind__in=list(ORGANISATION_REPORT_KINDS),
        status=Report.Status.READY,
        superseded_by__isnull=True,
    ).only("id", "organisation_id", "kind", "reference", "version", "sha256")
    for report in org_reports:
        kind = ORGANISATION_REPORT_KINDS[report.kind]
        item = Item(
            kind,
            f"{report.get_kind_display()} {report.reference} v{report.version}",
            report.sha256,
            reverse("reports:detail", args=[report.id]),
        )
        for usecase in usecases:
            if usecase.organisation_id == report.organisation_id:
                held[usecase.id].by_kind[kind].append(item)

    decisions = Decision.objects.filter(review__usecase_id__in=ids, revocation__isnull=True).select_related("review")
    for decision in decisions:
        if decision.approved:
            held[decision.review.usecase_id].by_kind["board_decision"].append(
                Item(
                    "board_decision",
                    f"Board decision on {decision.review.reference}: {decision.get_outcome_display()}",
                    decision.bindings_sha256,
                    reverse("ethics:review", args=[decision.review_id]),
                )
            )

    newest_evaluation: set[Any] = set()
    newest_audit: set[Any] = set()
    evaluations = (
        Evaluation.objects.filter(model_version__usecase_id__in=ids, status=Evaluation.Status.SUCCEEDED)
        .exclude(verdict="")
        .order_by("-created_at")
        .values("id", "verdict", "audit", "results__gates", "model_version__usecase_id", "model_version__number")
    )
    for row in evaluations:
        usecase_id = row["model_version__usecase_id"]
        url = reverse("evaluation:detail", args=[row["id"]])
        if usecase_id not in newest_evaluation:
            newest_evaluation.add(usecase_id)
            held[usecase_id].by_kind["evaluation_gates"].append(
                Item(
                    "evaluation_gates",
                    f"Evaluation of model v{row['model_version__number']}: gates {row['verdict']}",
                    digest_of({"id": row["id"], "gates": row["results__gates"], "verdict": row["verdict"]}),
                    url,
                )
            )
        if row["audit"] and usecase_id not in newest_audit:
            newest_audit.add(usecase_id)
            held[usecase_id].by_kind["privacy_audit"].append(
                Item(
                    "privacy_audit",
                    f"Privacy audit of model v{row['model_version__number']}",
                    digest_of(row["audit"]),
                    url,
                )
            )

    for deployment in Deployment.objects.filter(usecase_id__in=ids, status=Deployment.Status.ACTIVE).only(
        "id", "usecase_id", "environment", "plan_sha256", "model_version_id"
    ):
        held[deployment.usecase_id].by_kind["deployment"].append(
            Item(
                "deployment",
                f"Deployment in {deployment.environment}",
                deployment.plan_sha256 or digest_of({"id": deployment.id, "model": deployment.model_version_id}),
                reverse("deployments:detail", args=[deployment.id]),
            )
        )

    seen_snapshot: set[Any] = set()
    for row in (
        DatasetVersion.objects.filter(dataset__usecase_id__in=ids)
        .exclude(consent_snapshot_hash="")
        .order_by("-created_at")
        .values("consent_snapshot_hash", "dataset__usecase_id", "dataset_id", "number", "dataset__name")
    ):
        usecase_id = row["dataset__usecase_id"]
        if usecase_id not in seen_snapshot:
            seen_snapshot.add(usecase_id)
            held[usecase_id].by_kind["consent_snapshot"].append(
                Item(
                    "consent_snapshot",
                    f"Consent snapshot of {row['dataset__name']} v{row['number']}",
                    row["consent_snapshot_hash"],
                    reverse("datasets:detail", args=[row["dataset_id"]]),
                )
            )

    if django_apps.is_installed("apps.thirdparty"):
        from apps.thirdparty.selectors import third_party_models_for_usecases

        for usecase_id, models in third_party_models_for_usecases(ids).items():
            held[usecase_id].uses_third_party_model = bool(models)
            for model in models:
                if model.documentation_sha256:
                    held[usecase_id].by_kind["third_party_documentation"].append(
                        Item(
                            "third_party_documentation",
                            f"{model.supplier} {model.name} {model.version}: documentation",
                            model.documentation_sha256,
                            reverse("thirdparty:detail", args=[model.id]),
                            expires_on=model.review_due_on,
                        )
                    )

    for link in EvidenceLink.objects.filter(usecase_id__in=ids, removed_at__isnull=True):
        held[link.usecase_id].linked[(link.framework_key, link.requirement_code)].append(
            Item(
                "manual",
                link.label,
                link.sha256,
                link.url,
                link.expires_on,
                "link" if link.url else "upload",
                str(link.id),
            )
        )

    for confirmation in (
        Confirmation.objects.filter(usecase_id__in=ids, withdrawn_at__isnull=True)
        .select_related("confirmed_by")
        .order_by("created_at")
    ):
        # newest wins: later rows overwrite earlier ones
        held[confirmation.usecase_id].confirmations[(confirmation.framework_key, confirmation.requirement_code)] = (
            confirmation
        )
    return held
