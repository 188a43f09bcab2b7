"""The signed compliance statement of a use case against one framework: every requirement, its status with the
reason, and the sha256 of each piece of evidence, built from the same selectors the pages use."""

from __future__ import annotations

from typing import Any

from apps.compliance.rules import describe
from apps.compliance.selectors import NOT_APPLICABLE, STATUS_LABELS, requirement_statuses
from apps.reports.content import Content, facts, note, table


def build(assessment: Any) -> Content:
    usecase, framework = assessment.usecase, assessment.framework
    version = framework.current
    statuses = requirement_statuses(usecase, framework.key)
    content = Content(
        f"Compliance statement: {usecase.title} against {framework.name}",
        f"{usecase.reference} {usecase.title}: {framework.name}",
    )
    counts = {key: sum(1 for s in statuses if s.status == key) for key in STATUS_LABELS}
    summary = content.section("Summary")
    summary.append(
        facts(
            [
                ("Use case", f"{usecase.reference} {usecase.title}, revision {usecase.revision}"),
                ("EU AI Act risk tier", usecase.get_risk_tier_display()),
                ("Role under the EU AI Act", usecase.get_ai_act_role_display()),
                ("Framework", f"{framework.name}, catalogue version {version.version}"),
                ("Source", " ".join(str(version.source.get(k, "")) for k in ("title", "date", "url")).strip()),
                ("Catalogue sha256", version.sha256),
                *((label, counts[key]) for key, label in STATUS_LABELS.items()),
            ]
        )
    )
    summary.append(
        note(
            "A requirement is met when a person confirmed its evidence and that evidence is unchanged and unexpired "
            "today; requirement texts are summaries, not the legal text."
        )
    )
    groups: dict[str, list[Any]] = {}
    for status in statuses:
        groups.setdefault(status.requirement.group or "Requirements", []).append(status)
    for group, members in groups.items():
        content.section(group).append(
            table(
                ["Requirement", "Status", "Reason", "Evidence (sha256)"],
                [
                    [
                        f"{s.code} {s.requirement.title}",
                        s.status_label,
                        s.reason,
                        "; ".join(f"{item.label}: {item.sha256}" for item in s.evidence) or "-",
                    ]
                    for s in members
                ],
            )
        )
    content.evidence = {
        "usecase": {"id": str(usecase.id), "reference": usecase.reference, "revision": usecase.revision},
        "framework": {
            "key": framework.key,
            "name": framework.name,
            "version": version.version,
            "sha256": version.sha256,
            "source": version.source,
        },
        "counts": counts,
        "requirements": [
            {
                "id": s.code,
                "title": s.requirement.title,
                "applies": describe(s.requirement.applies),
                "status": s.status,
                "reason": s.reason,
                "evidence": [{"kind": i.kind, "label": i.label, "sha256": i.sha256} for i in s.evidence],
                "confirmation": None
                if s.confirmation is None or s.status == NOT_APPLICABLE
                else {
                    "by": s.confirmation.confirmed_by.display_name,
                    "at": s.confirmation.created_at.isoformat(),
                    "evidence_digest": s.confirmation.evidence_digest,
                },
                "via": s.via,
            }
            for s in statuses
        ],
    }
    return content
