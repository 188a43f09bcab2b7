"""What each report says, built from the same records the pages show (reads only).

A builder returns the title, the sections (headings and blocks the one document template lays out) and the evidence:
every figure, identifier and hash in the report, embedded as ``evidence.json`` so a regulator's tools read what a
person reads. User text goes into blocks as plain strings: the template escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from apps.core import charts
from apps.core.forms import chart_html


@dataclass
class Content:
    title: str
    subject_label: str
    sections: list[dict[str, Any]] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def section(self, heading: str) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        self.sections.append({"heading": heading, "blocks": blocks})
        return blocks


def text(value: Any) -> dict[str, Any]:
    return {"type": "text", "text": str(value or "-")}


def note(value: str) -> dict[str, Any]:
    return {"type": "note", "text": value}


def sub(value: str) -> dict[str, Any]:
    return {"type": "subheading", "text": value}


def facts(items: list[tuple[str, Any]]) -> dict[str, Any]:
    return {
        "type": "facts",
        "items": [(label, "-" if value in (None, "", []) else str(value)) for label, value in items],
    }


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(columns: list[str | tuple[str, bool]], rows: list[list[Any]]) -> dict[str, Any]:
    specs = [{"label": c, "num": False} if isinstance(c, str) else {"label": c[0], "num": c[1]} for c in columns]
    cells = []
    for row in rows:
        cells.append(
            [
                {"value": fmt(value), "num": spec["num"], "css": _cell_class(value)}
                for value, spec in zip(row, specs, strict=False)
            ]
        )
    return {"type": "table", "columns": specs, "rows": cells}


def _cell_class(value: Any) -> str:
    if value in ("pass", "fail"):
        return str(value)
    if isinstance(value, str) and len(value) >= 32 and all(c in "0123456789abcdef" for c in value):
        return "hash"  # hashes may break anywhere; words may not
    return ""


def chart(svg: str) -> dict[str, Any]:
    return {"type": "chart", "svg": chart_html(svg)}


# ------------------------------------------------------------------------------------------------ shared pieces


def _usecase_facts(usecase: Any) -> dict[str, Any]:
    return facts(
        [
            ("Reference", f"{usecase.reference}, revision {usecase.revision}"),
            ("Purpose", usecase.purpose),
            ("Description", usecase.description),
            ("Lawful basis (GDPR Art. 6)", usecase.get_lawful_basis_display()),
            ("Art. 9 condition", usecase.get_art9_condition_display() if usecase.special_category else "none"),
            ("Data subjects", ", ".join(usecase.data_subject_categories)),
            ("Personal data", ", ".join(usecase.personal_data_categories)),
            ("Recipients", ", ".join(usecase.recipients)),
            (
                "Third-country transfers",
                "; ".join(f"{t.get('country')} ({t.get('safeguard')})" for t in usecase.third_country_transfers)
                or "none",
            ),
            ("Retention", usecase.retention),
            ("Security measures", usecase.security_measures),
            (
                "EU AI Act risk tier",
                usecase.get_risk_tier_display()
                + (f", Annex III area {usecase.get_annex_iii_area_display()}" if usecase.annex_iii_area else ""),
            ),
            ("Risk justification", usecase.risk_justification),
            ("Affected groups", ", ".join(usecase.affected_groups)),
            ("Status", usecase.get_status_display()),
        ]
    )


def _dpia_blocks(usecase: Any) -> list[tuple[str, list[dict[str, Any]]]]:
    from apps.usecases.dpia import SIGN_OFF_FIELDS, STEPS

    dpia = usecase.dpia or {}
    chapters = []
    for key, title, questions in STEPS:
        answers = dpia.get(key) or {}
        chapters.append((title, [facts([(label, answers.get(name)) for name, label in questions])]))
    risks = dpia.get("risks") or []
    chapters.append(
        (
            "Step 5: Identify and assess risks",
            [
                table(
                    ["Risk", "Description", "Likelihood", "Severity", "Overall"],
                    [[r["id"], r["description"], r["likelihood"], r["severity"], r["overall"]] for r in risks],
                )
            ],
        )
    )
    measures = dpia.get("measures") or []
    chapters.append(
        (
            "Step 6: Identify measures to reduce risk",
            [
                table(
                    ["Risk", "Measure", "Effect", "Residual risk"],
                    [[m["risk"], m["measure"], m["effect"], m["residual_risk"]] for m in measures],
                )
            ],
        )
    )
    sign_off = dpia.get("sign_off") or {}
    chapters.append(
        (
            "Step 7: Sign off and record outcomes",
            [
                table(
                    ["Item", "Name / date / notes"],
                    [[label, sign_off.get(name) or "-"] for name, label in SIGN_OFF_FIELDS],
                )
            ],
        )
    )
    return chapters


VERDICTS = {
    "pass": "pass",
    "fail": "fail",
    "unknown": "not a pass: some gates cannot be evaluated (approval needs a waiver)",
}


def _interval_text(entry: dict[str, Any], results: dict[str, Any]) -> str:
    """A 95% interval, with the resamples left out because the metric was undefined in them."""
    ci = entry.get("ci")
    if not ci or ci[0] is None:
        return "–"
    left_out = entry.get("ci_excluded")
    note = f" ({left_out} of {results.get('resamples')} resamples left out: undefined)" if left_out else ""
    return f"[{fmt(ci[0])}, {fmt(ci[1])}]{note}"


def _evaluation_blocks(evaluation: Any) -> list[dict[str, Any]]:
    from apps.evaluation.views import gate_chart, selection_chart

    results = evaluation.results or {}
    blocks: list[dict[str, Any]] = []
    overall = results.get("overall") or {}
    if overall:
        matrix = overall.get("confusion_matrix") or {}
        blocks.append(
            facts(
                [
                    ("Held-out rows", results.get("rows")),
                    (
                        "Accuracy / balanced accuracy",
                        f"{fmt(overall.get('accuracy'))} / {fmt(overall.get('balanced_accuracy'))}",
                    ),
                    (
                        "Precision / recall / F1",
                        f"{fmt(overall.get('precision'))} / {fmt(overall.get('recall'))} / {fmt(overall.get('f1'))}",
                    ),
                    ("ROC AUC", fmt(overall.get("roc_auc"))),
                    ("Calibration error (ECE)", fmt(overall.get("calibration_error"))),
                    (
                        "Confusion matrix",
                        f"TN {fmt(matrix.get('tn'), 0)}, FP {fmt(matrix.get('fp'), 0)}, "
                        f"FN {fmt(matrix.get('fn'), 0)}, TP {fmt(matrix.get('tp'), 0)}",
                    ),
                    ("Verdict of the policy gates", VERDICTS.get(evaluation.verdict, evaluation.verdict)),
                    ("Evaluated", f"{evaluation.updated_at:%d %b %Y %H:%M %Z}, seed {evaluation.seed}"),
                ]
            )
        )
    gates = results.get("gates") or []
    if gates:
        blocks.append(sub("Fairness gates"))
        blocks.append(
            table(
                ["Metric", "Worst grouping", ("Value", True), "95% interval", "Threshold", "Result"],
                [
                    [
                        g["metric"],
                        g.get("grouping") or "-",
                        "undefined" if g.get("value") is None else g["value"],
                        _interval_text(g, results),
                        f"{'at most' if g['direction'] == 'max' else 'at least'} {g['threshold']}",
                        g.get("reason") or "cannot be evaluated"
                        if g.get("passed") is None
                        else "pass"
                        if g["passed"]
                        else "fail",
                    ]
                    for g in gates
                ],
            )
        )
        for gate in gates:
            blocks.append(chart(gate_chart(gate, results.get("groupings", []))))
    for grouping in results.get("groupings", []):
        blocks.append(sub(f"By {grouping['name']}"))
        blocks.append(chart(selection_chart(grouping)))
        blocks.append(
            table(
                [
                    "Group",
                    ("Rows", True),
                    ("Selection rate", True),
                    ("Accuracy", True),
                    ("TPR", True),
                    ("FPR", True),
                    ("Precision", True),
                    ("ROC AUC", True),
                    "Judged",
                ],
                [
                    [
                        row["group"],
                        row["count"],
                        row.get("selection_rate"),
                        row.get("accuracy"),
                        row.get("recall"),
                        row.get("false_positive_rate"),
                        row.get("precision"),
                        row.get("roc_auc"),
                        "too small" if row.get("too_small") else "yes",
                    ]
                    for row in grouping["groups"]
                ],
            )
        )
        fairness = grouping.get("fairness") or {}
        blocks.append(
            table(
                ["Fairness metric", ("Value", True), "95% interval"],
                [
                    [
                        name,
                        "undefined" if entry.get("value") is None else entry["value"],
                        entry.get("undefined") or "–" if entry.get("value") is None else _interval_text(entry, results),
                    ]
                    for name, entry in fairness.items()
                ],
            )
        )
    return blocks


def _audit_blocks(audit: dict[str, Any]) -> list[dict[str, Any]]:
    if not audit:
        return [text("No membership-inference audit (external test set).")]
    blocks = [
        facts(
            [
                ("Proven epsilon (accountant)", f"{fmt(audit.get('proven_epsilon'))} at delta {audit.get('delta')}"),
                (
                    "Empirical lower bound (95%)",
                    fmt(audit.get("empirical_epsilon_lower_bound"))
                    + (
                        " (threshold chosen on one random half of the rows, bound computed on the other half)"
                        if audit.get("certification")
                        else ""
                    ),
                ),
                (
                    "Accounting fault",
                    "YES: the lower bound exceeds the proven epsilon" if audit.get("accounting_fault") else "none",
                ),
            ]
        )
    ]
    blocks.append(
        table(
            [
                "Attack",
                ("Members", True),
                ("Non-members", True),
                ("ROC AUC", True),
                ("TPR @ 0.1% FPR", True),
                ("TPR @ 1% FPR", True),
                ("Epsilon lower bound", True),
            ],
            [
                [
                    a["attack"],
                    a["members"],
                    a["nonmembers"],
                    a["auc"],
                    a["tpr_at_fpr_0_001"],
                    a["tpr_at_fpr_0_01"],
                    a["empirical_epsilon_lower_bound"],
                ]
                for a in audit.get("attacks", [audit])
            ],
        )
    )
    return blocks


def _lineage_table(version: Any) -> dict[str, Any]:
    from apps.ethics.bindings import lineage

    return table(
        ["Version", "Kind", ("Rows", True), "sha256", "Made by", "Date"],
        [
            [
                f"{v.dataset.name} v{v.number}",
                v.get_kind_display(),
                v.row_count,
                v.sha256,
                v.created_by.display_name,
                f"{v.created_at:%d %b %Y}",
            ]
            for v in lineage(version)
        ],
    )


def _decision_rows(model_version: Any) -> list[list[Any]]:
    rows = []
    for review in model_version.reviews.select_related("decision").order_by("created_at"):
        decision = getattr(review, "decision", None) if review.status == "decided" else None
        rows.append(
            [
                review.reference,
                review.get_kind_display(),
                review.get_status_display(),
                decision.get_outcome_display() if decision else "-",
                f"{decision.created_at:%d %b %Y}" if decision else "-",
                review.bindings_sha256,
            ]
        )
    return rows


# ---------------------------------------------------------------------------------------------------- the kinds


def model_card(model_version: Any) -> Content:
    from apps.ethics.bindings import bound_evaluation
    from apps.ethics.selectors import deployment_status
    from apps.modelcards.services import NARRATIVE_SECTIONS, current_card

    run = model_version.training_run
    usecase = model_version.usecase
    evaluation = bound_evaluation(model_version)
    card = current_card(model_version)
    narrative = card.narrative if card else {}
    content = Content(f"Model card: {usecase.title}, model v{model_version.number}", str(model_version))
    privacy = run.privacy or {}
    content.section("Model details").extend(
        [
            facts(
                [
                    (
                        "Model",
                        f"{run.spec.get('model')} for '{run.spec.get('label')}' ({usecase.reference} v{model_version.number})",
                    ),
                    ("Artifact sha256", model_version.sha256),
                    ("Trained", f"{run.updated_at:%d %b %Y} by {run.created_by.display_name}"),
                    (
                        "Training",
                        "non-private baseline"
                        if run.non_private
                        else f"DP-SGD: epsilon {fmt(privacy.get('epsilon'))} at delta {privacy.get('delta')} "
                        f"({privacy.get('accountant_label') or privacy.get('accountant')}), noise multiplier "
                        f"{fmt(privacy.get('noise_multiplier'))}, sampling rate {fmt(privacy.get('sample_rate'), 4)}, "
                        f"{privacy.get('steps')} steps, clipping norm {privacy.get('max_grad_norm')}"
                        + (f". SEEDED NOISE: {model_version.privacy_warning}" if model_version.noise_is_seeded else ""),
                    ),
                    ("Features", ", ".join(run.spec.get("features", []))),
                    (
                        "Libraries",
                        ", ".join(f"{k} {v}" for k, v in (model_version.manifest.get("libraries") or {}).items()),
                    ),
                    ("Model card revision", f"{card.number} (sha256 {card.sha256})" if card else "none"),
                ]
            )
        ]
    )
    content.section("Intended use").extend(
        [
            facts(
                [
                    (NARRATIVE_SECTIONS["intended_use"], narrative.get("intended_use")),
                    (NARRATIVE_SECTIONS["out_of_scope"], narrative.get("out_of_scope")),
                ]
            )
        ]
    )
    policy = usecase.fairness_policy or {}
    content.section("Factors").extend(
        [
            text(narrative.get("factors")),
            facts(
                [
                    ("Sensitive attributes audited", ", ".join(policy.get("sensitive_attributes", []))),
                    ("Intersections", "yes" if policy.get("intersections") else "no"),
                    ("Minimum group size judged", policy.get("min_group_size")),
                ]
            ),
        ]
    )
    content.section("Metrics").extend(
        [
            text(
                "Performance overall and per group (accuracy, balanced accuracy, precision, recall, F1, ROC AUC, "
                "calibration error); fairness as demographic parity, equalized odds, equal opportunity and predictive parity "
                "differences and ratios, with 95% bootstrap intervals. Gated metrics and thresholds come from the use case's "
                "fairness policy."
            ),
            table(["Gated metric", "Threshold"], [[g["metric"], g["threshold"]] for g in policy.get("gates", [])]),
        ]
    )
    content.section("Evaluation data").extend(
        [
            text(
                f"{len((run.split or {}).get('test', []))} held-out rows of the training run's seeded, stratified split "
                f"(split sha256 {(run.metrics or {}).get('split_sha256', '')}), never used in training."
            )
        ]
    )
    content.section("Training data").extend(
        [
            _lineage_table(run.dataset_version),
            facts(
                [
                    (
                        "Consent snapshot",
                        f"{run.dataset_version.consent_snapshot_hash} as of {run.dataset_version.consent_as_of}",
                    ),
                ]
            ),
        ]
    )
    content.section("Quantitative analyses").extend(
        _evaluation_blocks(evaluation) if evaluation else [text("No finished evaluation.")]
    )
    content.section("Privacy audit").extend(_audit_blocks(evaluation.audit if evaluation else {}))
    from apps.reports.evaluation_insights import explanation_blocks, mitigation_blocks, robustness_blocks

    content.section("Explanations").extend(explanation_blocks(evaluation))
    content.section("Robustness").extend(robustness_blocks(evaluation))
    content.section("Bias mitigation").extend(mitigation_blocks(model_version))
    content.section("Ethical considerations").extend([text(narrative.get("ethical_considerations"))])
    status = deployment_status(model_version)
    content.section("Caveats and recommendations").extend(
        [
            text(narrative.get("caveats")),
            facts(
                [
                    ("Deployment status", status["label"]),
                    (
                        "Waivers in force",
                        "; ".join(
                            f"until {w.expires_on}: " + ", ".join(i["label"] for i in w.waived)
                            for w in status["waivers"]
                        )
                        or "none",
                    ),
                ]
            ),
        ]
    )
    content.evidence = {
        "model_version": {
            "id": str(model_version.id),
            "number": model_version.number,
            "sha256": model_version.sha256,
            "manifest": model_version.manifest,
        },
        "training_run": {
            "id": str(run.id),
            "spec": run.spec,
            "privacy": privacy,
            "metrics": run.metrics,
            "noise_is_seeded": model_version.noise_is_seeded,
        },
        "model_card": {"revision": card.number, "sha256": card.sha256, "narrative": narrative} if card else None,
        "mitigation": {
            "parent": str(model_version.parent_id) if model_version.parent_id else None,
            "record": model_version.mitigation or {},
        },
        "evaluation": {
            "id": str(evaluation.id),
            "verdict": evaluation.verdict,
            "results": evaluation.results,
            "audit": evaluation.audit,
        }
        if evaluation
        else None,
        "deployment_status": status["label"],
    }
    return content


def datasheet(version: Any) -> Content:
    from apps.datasets.datasheet import SECTIONS
    from apps.datasets.selectors import version_coverage

    sheet = version.datasheets.order_by("-number").first()
    answers = sheet.content if sheet else {}
    content = Content(f"Datasheet: {version.dataset.name} v{version.number}", str(version))
    content.section("Identity and lineage").extend(
        [
            facts(
                [
                    ("Dataset", version.dataset.name),
                    ("Version", f"v{version.number}, {version.get_kind_display()}"),
                    ("Content sha256", version.sha256),
                    ("Rows", version.row_count),
                    ("Columns", ", ".join(version.column_names)),
                    ("Datasheet revision", f"{sheet.number} (sha256 {sheet.sha256})" if sheet else "none"),
                ]
            ),
            _lineage_table(version),
        ]
    )
    if version.profile:  # redacted in one place: no personal-data values, no quasi-identifier cell below the minimum
        from apps.datasets.profiles import column_profiles, profile_summary

        columns = list(version.columns.all())
        profiles = column_profiles(version, columns)
        content.section("Column profile").append(
            table(
                ["Column", "Role", ("Missing", True), ("Distinct", True), "Values"],
                [
                    [
                        c.name,
                        c.get_role_display() or f"{c.get_suggested_role_display()} (suggested)",
                        profiles[c.name].get("missing"),
                        profiles[c.name].get("distinct"),
                        profile_summary(profiles[c.name]),
                    ]
                    for c in columns
                ],
            )
        )
    for key, title, questions in SECTIONS:
        content.section(title).extend(
            [facts([(label, (answers.get(key) or {}).get(name)) for name, label in questions])]
        )
    coverage = version_coverage(version) if version.kind != "raw" else None
    if coverage:
        content.section("Consent coverage now").extend(
            [
                table(
                    ["Consent state", ("Rows", True), ("Share", True)],
                    [[name, count, coverage["shares"][name]] for name, count in coverage["counts"].items()],
                )
            ]
        )
    content.evidence = {
        "dataset_version": {
            "id": str(version.id),
            "sha256": version.sha256,
            "rows": version.row_count,
            "transform": version.transform,
        },
        "datasheet": {"revision": sheet.number, "sha256": sheet.sha256, "content": answers} if sheet else None,
        "consent_coverage": coverage,
    }
    return content


def dpia(usecase: Any) -> Content:
    content = Content(f"DPIA: {usecase.title}", f"{usecase.reference} {usecase.title}")
    content.section("The processing").append(_usecase_facts(usecase))
    for title, blocks in _dpia_blocks(usecase):
        content.section(title).extend(blocks)
    revision = usecase.revisions.order_by("-number").first()
    content.evidence = {
        "usecase": {
            "id": str(usecase.id),
            "reference": usecase.reference,
            "revision": revision.number if revision else usecase.revision,
            "sha256": revision.sha256 if revision else "",
        },
        "dpia": usecase.dpia,
    }
    return content


def art30(organisation: Any) -> Content:
    content = Content(f"Record of processing activities: {organisation.name}", organisation.name)
    content.section("Controller").append(
        facts(
            [
                ("Controller", organisation.name),
                ("Address", organisation.address),
                ("Contact", organisation.controller_contact),
                ("Data protection officer", f"{organisation.dpo_name} {organisation.dpo_email}".strip()),
            ]
        )
    )
    records = []
    for usecase in organisation.usecases.exclude(status="draft").order_by("reference"):
        blocks = content.section(f"{usecase.reference} {usecase.title}")
        blocks.append(_usecase_facts(usecase))
        records.append(
            {
                "usecase": usecase.reference,
                "purpose": usecase.purpose,
                "lawful_basis": usecase.lawful_basis,
                "data_subjects": usecase.data_subject_categories,
                "personal_data": usecase.personal_data_categories,
                "recipients": usecase.recipients,
                "transfers": usecase.third_country_transfers,
                "retention": usecase.retention,
                "security": usecase.security_measures,
            }
        )
    content.evidence = {"organisation": {"id": str(organisation.id), "name": organisation.name}, "records": records}
    return content


def decision(review: Any) -> Content:
    decision_row = getattr(review, "decision", None) if review.status == "decided" else None
    content = Content(
        f"Ethics decision record: {review.reference}",
        f"{review.reference} {review.get_kind_display()} of {review.model_version or review.usecase}",
    )
    content.section("Summary").append(
        facts(
            [
                ("Review", f"{review.reference}, {review.get_kind_display()}"),
                ("Subject", str(review.model_version or review.usecase)),
                ("Requested by", f"{review.requested_by.display_name}, {review.created_at:%d %b %Y}"),
                ("Status", review.get_status_display()),
                ("Decision", decision_row.get_outcome_display() if decision_row else "none yet"),
                ("Decided", f"{decision_row.created_at:%d %b %Y %H:%M}" if decision_row else "-"),
                (
                    "Rule",
                    f"quorum {decision_row.quorum}, approval threshold {decision_row.approval_threshold}"
                    if decision_row
                    else "-",
                ),
                ("Bound artifacts (sha256)", review.bindings_sha256),
            ]
        )
    )
    content.section("What was reviewed").append(
        table(
            ["Artifact", "Identity", "sha256"],
            [
                [
                    name,
                    ", ".join(f"{k} {v}" for k, v in value.items() if k != "sha256")
                    if isinstance(value, dict)
                    else f"{len(value)} versions"
                    if isinstance(value, list)
                    else "-",
                    value.get("sha256") if isinstance(value, dict) else "",
                ]
                for name, value in review.bindings.items()
            ],
        )
    )
    content.section("Votes").append(
        table(
            ["Member", "Vote", "Reason", "When"],
            [
                [v.voter.display_name, v.get_choice_display(), v.reason, f"{v.created_at:%d %b %Y %H:%M}"]
                for v in review.votes.select_related("voter")
            ],
        )
    )
    content.section("Recusals").append(
        table(["Member", "Declared conflict"], [[r.member.display_name, r.reason] for r in review.recusals.all()])
    )
    conditions = list(decision_row.conditions.select_related("owner")) if decision_row else []
    content.section("Conditions").append(
        table(
            ["Condition", "Owner", "Due", "Status"],
            [[c.text, c.owner.display_name, f"{c.due_on}", c.get_status_display()] for c in conditions],
        )
    )
    waivers = list(review.waivers.select_related("requested_by").prefetch_related("votes__voter"))
    waiver_blocks = content.section("Waivers")
    waiver_blocks.append(
        table(
            ["Waived", "Justification", "Expires", "Status"],
            [
                ["; ".join(i["label"] for i in w.waived), w.justification, f"{w.expires_on}", w.get_status_display()]
                for w in waivers
            ],
        )
    )
    for waiver in waivers:
        # Who granted an exception to a failing gate, and why, is as much the record as the review's own votes.
        waiver_blocks.append(
            sub(
                f"Votes on the waiver of {'; '.join(i['label'] for i in waiver.waived)} "
                f"(requested by {waiver.requested_by.display_name}, "
                f"{waiver.get_status_display().lower()})"
            )
        )
        waiver_blocks.append(
            table(
                ["Member", "Vote", "Reason", "When"],
                [
                    [v.voter.display_name, v.get_choice_display(), v.reason, f"{v.created_at:%d %b %Y %H:%M}"]
                    for v in waiver.votes.all()
                ],
            )
        )
    stances = {}
    for stance in review.stances.select_related("member"):
        stances.setdefault(stance.item_key, []).append(f"{stance.member.display_name}: {stance.stance}")
    content.section("Checklist").append(
        table(
            ["Item", "Answer", "Reviewers"],
            [
                [
                    item["text"],
                    (review.answers.get(item["key"]) or {}).get("answer", "not answered"),
                    "; ".join(stances.get(item["key"], [])),
                ]
                for item in review.checklist
            ],
        )
    )
    content.section("Discussion").append(
        table(
            ["Section", "Author", "Comment"],
            [[c.section, c.author.display_name, c.body] for c in review.comments.select_related("author")],
        )
    )
    content.evidence = {
        "review": {
            "id": str(review.id),
            "reference": review.reference,
            "kind": review.kind,
            "bindings": review.bindings,
            "bindings_sha256": review.bindings_sha256,
        },
        "decision": {
            "outcome": decision_row.outcome,
            "tally": decision_row.tally,
            "quorum": decision_row.quorum,
            "approval_threshold": decision_row.approval_threshold,
            "waivers": decision_row.waivers,
        }
        if decision_row
        else None,
        "votes": [
            {"member": v.voter.username, "choice": v.choice, "reason": v.reason, "conditions": v.conditions}
            for v in review.votes.select_related("voter")
        ],
        "waivers": [
            {
                "id": str(w.id),
                "status": w.status,
                "waived": w.waived,
                "expires_on": str(w.expires_on),
                "votes": [{"member": v.voter.username, "choice": v.choice, "reason": v.reason} for v in w.votes.all()],
            }
            for w in waivers
        ],
    }
    return content


def audit_extract(organisation: Any, events_limit: int = 2000) -> Content:
    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_head_publish
    from apps.audit.verify import audit_chain_verify

    # The organisation's own chain: its head and sequence numbers count only its own events.
    verification = audit_chain_verify(organisation=organisation)
    if verification.ok:  # the extract carries this head out of the database: record it as published
        audit_head_publish(
            organisation=organisation, source="report", sequence=verification.head_sequence, hash=verification.head_hash
        )
    events = list(AuditEvent.objects.filter(organisation=organisation).order_by("-sequence")[:events_limit])
    content = Content(f"Audit-trail extract: {organisation.name}", organisation.name)
    content.section("Chain verification").append(
        facts(
            [
                ("Result", "intact" if verification.ok else f"BROKEN at event {verification.broken_sequence}"),
                ("Chain", f"{organisation.name} ({verification.chain})"),
                ("Events checked", verification.checked),
                ("Head sequence", verification.head_sequence),
                ("Head hash", verification.head_hash),
            ]
        )
    )
    content.section("Events (newest first)").append(
        table(
            [("Seq.", True), "Time (UTC)", "Actor", "Action", "Object", "Event sha256"],
            [
                [
                    e.sequence,
                    f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                    e.actor_label,
                    e.action,
                    f"{e.object_type} {e.object_id[:8]}",
                    e.hash,
                ]
                for e in events
            ],
        )
    )
    content.evidence = {
        "verification": {
            "ok": verification.ok,
            "chain": verification.chain,
            "checked": verification.checked,
            "head_sequence": verification.head_sequence,
            "head_hash": verification.head_hash,
        },
        "events": [{"sequence": e.sequence, "hash": e.hash, "action": e.action} for e in events],
    }
    return content


def annex_iv(model_version: Any) -> Content:
    """EU AI Act Annex IV technical documentation: the nine headings, then the appendices that carry the evidence."""
    from apps.ethics.bindings import bound_evaluation
    from apps.ethics.models import ReviewRequest
    from apps.training.models import BudgetEntry

    run = model_version.training_run
    usecase = model_version.usecase
    evaluation = bound_evaluation(model_version)
    card = model_card(model_version)
    content = Content(f"Technical documentation (EU AI Act Annex IV): {usecase.title}", str(model_version))
    content.section("General description of the AI system").extend(
        [
            _usecase_facts(usecase),
            text(
                card.evidence["model_card"]["narrative"].get("intended_use") if card.evidence.get("model_card") else ""
            ),
        ]
    )
    details = content.section("Detailed description of the elements and of the development process")
    details.extend(card.sections[0]["blocks"])
    details.extend([sub("Data requirements (datasheets)"), _lineage_table(run.dataset_version)])
    details.extend(
        [
            sub("Human oversight"),
            text(
                "Deployment requires the ethics board's approval bound to the exact artifacts; caseworkers review the "
                "decisions the model informs (see the DPIA's measures)."
            ),
        ]
    )
    details.extend([sub("Validation and testing")] + (_evaluation_blocks(evaluation) if evaluation else []))
    from apps.reports.evaluation_insights import explanation_blocks, mitigation_blocks, robustness_blocks

    details.extend([sub("Explanations of the model's decisions"), *explanation_blocks(evaluation)])
    details.extend([sub("Robustness testing"), *robustness_blocks(evaluation)])
    details.extend([sub("Bias mitigation"), *mitigation_blocks(model_version)])
    details.extend(
        [
            sub("Test report sign-off"),
            {
                "type": "table",
                "css": "signatures",
                "columns": [
                    {"label": "Role", "num": False},
                    {"label": "Name", "num": False},
                    {"label": "Date and signature", "num": False},
                ],
                "rows": [
                    [
                        {"value": role, "num": False, "css": ""},
                        {"value": "", "num": False, "css": ""},
                        {"value": "", "num": False, "css": ""},
                    ]
                    for role in ("Use-case owner", "Data steward", "Ethics board chair", "Data protection officer")
                ],
            },
        ]
    )
    details.extend([sub("Cybersecurity"), text(usecase.security_measures)])
    content.section("Monitoring, functioning and control").extend(
        [
            text(
                "Production batches are scored by the signed model artifact (safetensors, loaded without pickle); each "
                "batch, decision and change is written to the hash-chained audit log."
            ),
            facts(
                [
                    (
                        "Proven epsilon",
                        fmt((run.privacy or {}).get("epsilon"))
                        + (
                            f" (SEEDED NOISE: {model_version.privacy_warning})" if model_version.noise_is_seeded else ""
                        ),
                    ),
                    (
                        "Accuracy on held-out rows",
                        fmt(((evaluation.results or {}).get("overall") or {}).get("accuracy")) if evaluation else "–",
                    ),
                ]
            ),
        ]
    )
    content.section("Appropriateness of the performance metrics").extend(
        [
            text(
                "Metrics are reported per sensitive attribute and intersection with 95% bootstrap intervals; groups below "
                "the policy's minimum size are listed as too small to judge instead of being dropped."
            )
        ]
    )
    risk_section = content.section("Risk-management system")
    for title, blocks in _dpia_blocks(usecase)[4:6]:
        risk_section.extend([sub(title)] + blocks)
    revisions = usecase.revisions.select_related("author").order_by("number")
    content.section("Changes through the lifecycle").extend(
        [
            table(
                [("Revision", True), "Changed", "By", "Date", "sha256"],
                [
                    [
                        r.number,
                        ", ".join(r.changed_fields) or "created",
                        r.author.display_name if r.author else "system",
                        f"{r.created_at:%d %b %Y}",
                        r.sha256,
                    ]
                    for r in revisions
                ],
            ),
            sub("Board reviews"),
            table(["Review", "Kind", "Status", "Decision", "Date", "Bound sha256"], _decision_rows(model_version)),
        ]
    )
    content.section("Standards and specifications applied").extend(
        [
            table(
                ["Area", "Applied"],
                [
                    ["Data protection", "GDPR Arts. 5, 6, 9, 30 and 35; UK ICO DPIA template"],
                    [
                        "Differential privacy",
                        "DP-SGD (Abadi et al. 2016) with Poisson sampling and noise from a CSPRNG; "
                        "privacy-loss-distribution accountant with pessimistic discretisation (dp_accounting)",
                    ],
                    ["Fairness", "Group metrics cross-checked against fairlearn MetricFrame"],
                    [
                        "Documents",
                        "Model cards (Mitchell et al. 2019); datasheets (Gebru et al. 2021); PDF/A-3b; PAdES",
                    ],
                ],
            )
        ]
    )
    content.section("EU declaration of conformity").extend(
        [
            text(
                "A copy of the EU declaration of conformity referred to in Article 47 is to be attached by the provider once "
                "the conformity assessment is complete. This report records the technical evidence it relies on."
            )
        ]
    )
    entries = BudgetEntry.objects.filter(run__usecase=usecase).select_related("run").order_by("created_at")
    content.section("Post-market monitoring plan").extend(
        [
            *_annex_iv_monitoring_blocks(usecase),
            sub("Privacy-budget ledger"),
            table(
                ["Date", "Run", "Entry", ("Epsilon", True), ("Composed after", True)],
                [
                    [
                        f"{e.created_at:%d %b %Y %H:%M}",
                        str(e.run_id)[:8],
                        e.get_kind_display(),
                        e.epsilon,
                        e.composed_after,
                    ]
                    for e in entries
                ],
            ),
        ]
    )
    appendix = content.section("Appendix A: training curve and privacy spent")
    curve = run.curve or []
    if curve:
        appendix.append(
            chart(
                charts.line_chart(
                    {"loss": [(p["step"], p["loss"]) for p in curve if p.get("loss") is not None]},
                    title="Training loss",
                    x_label="step",
                    y_label="loss",
                )
            )
        )
        appendix.append(
            table(
                [("Step", True), ("Epoch", True), ("Loss", True), ("Epsilon spent", True)],
                [[p.get("step"), p.get("epoch"), p.get("loss"), p.get("epsilon")] for p in curve],
            )
        )
    content.section("Appendix B: privacy audit").extend(_audit_blocks(evaluation.audit if evaluation else {}))
    from apps.audit.models import AuditEvent

    related_ids = {str(usecase.id), str(model_version.id), str(run.id)}
    related_ids |= {str(r.id) for r in ReviewRequest.objects.filter(usecase=usecase)}
    if evaluation:
        related_ids.add(str(evaluation.id))
    events = list(AuditEvent.objects.filter(organisation=usecase.organisation).order_by("sequence"))
    content.section("Appendix C: the organisation's audit trail (events about this system marked)").append(
        table(
            [("Seq.", True), "Time (UTC)", "Actor", "Action", "This system", "Event sha256"],
            [
                [
                    e.sequence,
                    f"{e.created_at:%Y-%m-%d %H:%M:%S}",
                    e.actor_label,
                    e.action,
                    "yes" if e.object_id in related_ids else "",
                    e.hash,
                ]
                for e in events
            ],
        )
    )
    # The documents Annex IV refers to, in full: the DPIA, the training data's datasheet, the board's decisions.
    for title, blocks in _dpia_blocks(usecase):
        content.section(f"Appendix D: DPIA, {title}").extend(blocks)
    sheet = datasheet(run.dataset_version)
    for section in sheet.sections:
        content.section(f"Appendix E: datasheet, {section['heading']}").extend(section["blocks"])
    for review in ReviewRequest.objects.filter(usecase=usecase).order_by("created_at"):
        record = decision(review)
        for section in record.sections[:4]:
            content.section(f"Appendix F: {review.reference}, {section['heading'].lower()}").extend(section["blocks"])
    baseline = model_version.usecase.model_versions.filter(non_private=True).order_by("-number").first()
    baseline_evaluation = bound_evaluation(baseline) if baseline else None
    if baseline_evaluation:
        content.section("Appendix G: the non-private baseline, for the cost of privacy").extend(
            _evaluation_blocks(baseline_evaluation)
        )
    content.evidence = {
        **card.evidence,
        "usecase": {"id": str(usecase.id), "reference": usecase.reference, "revision": usecase.revision},
        "audit_events": [{"sequence": e.sequence, "hash": e.hash} for e in events],
    }
    return content


# ------------------------------------------------------------------------------------- post-market monitoring


def _plan_blocks(plan: dict[str, Any], *first: tuple[str, Any]) -> list[dict[str, Any]]:
    """A monitoring plan as the deployment page shows it: its settings, then each monitor family and its levels."""
    from apps.deployments.pages import plan_rows

    return [
        facts(
            [
                *first,
                ("Window", plan.get("window")),
                ("Minimum rows per window", plan.get("min_rows")),
                ("Minimum labelled rows", plan.get("min_labelled")),
                ("Raw production rows kept", "yes" if plan.get("keep_raw_rows") else "no: aggregates only"),
            ]
        ),
        table(
            ["Monitor", "Enabled", "Settings"],
            [[row["family"], "yes" if row["enabled"] else "no", row["details"]] for row in plan_rows(plan)],
        ),
    ]


def _annex_iv_monitoring_blocks(usecase: Any) -> list[dict[str, Any]]:
    """Annex IV section 9: the use case's monitoring plan and what its deployments' monitoring found so far."""
    from apps.deployments.figures import STATUS_WORDS
    from apps.deployments.models import Deployment, MonitoringWindow
    from apps.deployments.pages import last_windows, with_monitoring_state

    plan = usecase.monitoring_plan or {}
    blocks: list[dict[str, Any]] = [
        text(
            "Each deployment is monitored against the reference fixed at training time, window by window, under the "
            "use case's monitoring plan (bound into the board's deployment reviews like the other policies): data "
            "drift per feature, prediction drift, data quality, performance and fairness per group with bootstrap "
            "intervals once labels arrive, and privacy compliance (consent withdrawn since training, retention dates "
            "passed, budget state). A window with too few rows is reported as insufficient data, never as a pass. "
            "Failing monitors open alerts that are acknowledged, assigned and resolved on the record; affected persons "
            "contest decisions on a public page; retraining goes back through training, evaluation and the board."
        ),
        sub("The monitoring plan"),
    ]
    if plan:
        blocks.extend(_plan_blocks(plan))
    else:
        blocks.append(note("No monitoring plan is recorded in the use case's policies yet: the default plan applies."))
    deployments = list(
        with_monitoring_state(Deployment.objects.filter(usecase=usecase))
        .select_related("model_version__usecase")  # str(model_version) names its use case
        .annotate(windows_evaluated=Count("windows", filter=Q(windows__status=MonitoringWindow.Status.EVALUATED)))
    )
    last = last_windows(deployments)
    blocks.append(sub("Deployments and their monitoring results"))
    blocks.append(
        table(
            [
                "Environment",
                "Model",
                "Deployed on",
                "Status",
                "Plan sha256",
                ("Windows evaluated", True),
                "Last window",
                ("Open alerts", True),
            ],
            [
                [
                    d.environment,
                    str(d.model_version),
                    f"{d.deployed_on:%d %b %Y}",
                    d.get_status_display(),
                    d.plan_sha256,
                    d.windows_evaluated,
                    (
                        f"{last[d.pk]['window'].starts_at:%d %b %Y}: "
                        f"{STATUS_WORDS.get(last[d.pk]['worst'], last[d.pk]['worst'] or '-')}"
                        if d.pk in last
                        else "none yet"
                    ),
                    d.open_alerts,
                ]
                for d in deployments
            ],
        )
    )
    return blocks


def _figure_blocks(figure: Any) -> list[dict[str, Any]]:
    """A monitoring figure as the page shows it: the chart, then every value in a table."""
    return [sub(figure.title), chart(figure.svg), table(figure.columns, figure.rows)]


def monitoring(deployment: Any, period_start: Any, period_end: Any) -> Content:
    """The post-market monitoring report (EU AI Act Art. 72) of one deployment over one period (both days included):
    what runs where under which approval and plan, every window's results with the charts the deployment page shows,
    the alerts and how they were handled, feedback and contestations counted by category (never their text), and the
    retraining requests."""
    from apps.deployments.figures import STATUS_WORDS, window_period
    from apps.deployments.models import Alert, Feedback, MonitoringWindow, RetrainingRequest
    from apps.deployments.pages import figures_for, waivers_relied_on, window_rows

    start = timezone.make_aware(datetime.combine(period_start, time.min))
    end = timezone.make_aware(datetime.combine(period_end + timedelta(days=1), time.min))
    model = deployment.model_version
    usecase = deployment.usecase
    review = deployment.review
    decision = getattr(review, "decision", None)
    content = Content(
        f"Post-market monitoring report: {usecase.title}, {deployment.environment}",
        f"{deployment} ({period_start:%d %b %Y} to {period_end:%d %b %Y})",
    )
    content.section("The deployment").extend(
        [
            facts(
                [
                    ("Use case", f"{usecase.reference} {usecase.title}"),
                    ("Environment", deployment.environment),
                    ("System it runs in", deployment.system),
                    ("Model version", f"{model} (sha256 {model.sha256})"),
                    ("Owner", deployment.owner.display_name),
                    ("Deployed on", f"{deployment.deployed_on:%d %b %Y}"),
                    ("Status", deployment.get_status_display()),
                    (
                        "Ended",
                        f"{deployment.ended_at:%d %b %Y}: {deployment.end_reason}" if deployment.ended_at else "",
                    ),
                    ("Replaced", str(deployment.previous) if deployment.previous_id else "none"),
                    ("Period of this report", f"{period_start:%d %b %Y} to {period_end:%d %b %Y}, both included"),
                    ("Legal basis of this report", "EU AI Act Art. 72 (post-market monitoring by providers)"),
                ]
            )
        ]
    )
    waivers = waivers_relied_on([deployment]).get(deployment.pk, [])
    content.section("Approval and waivers relied on").extend(
        [
            facts(
                [
                    ("Deployment review", f"{review.reference} ({review.get_status_display()})"),
                    (
                        "Decision",
                        f"{decision.get_outcome_display()} on {decision.created_at:%d %b %Y}" if decision else "none",
                    ),
                    ("Artifacts bound (sha256)", review.bindings_sha256),
                ]
            ),
            table(
                ["Waiver", "Expires", "Waives", "In force at the period's end"],
                [
                    [
                        str(w.id)[:8],
                        f"{w.expires_on:%d %b %Y}",
                        "; ".join(str(item.get("label") or item.get("key")) for item in w.waived) or "-",
                        "yes" if w.expires_on >= period_end else "no: expired",
                    ]
                    for w in waivers
                ],
            ),
        ]
    )
    plan = deployment.plan or {}
    content.section("Monitoring plan").extend(_plan_blocks(plan, ("Plan sha256", deployment.plan_sha256)))
    windows = list(
        MonitoringWindow.objects.filter(deployment=deployment, starts_at__gte=start, starts_at__lt=end).order_by(
            "starts_at"
        )
    )
    evaluated = [w for w in windows if w.status == MonitoringWindow.Status.EVALUATED]
    results_section = content.section("Results per window")
    results_section.append(
        table(
            [
                "Window",
                ("Rows", True),
                ("Labelled", True),
                "Status",
                "Worst result",
                ("Alerts", True),
                ("Warnings", True),
                ("Insufficient", True),
            ],
            [
                [
                    window_period(row.window),
                    row.window.rows,
                    row.window.labelled_rows,
                    row.window.get_status_display(),
                    STATUS_WORDS.get(row.worst, row.worst or "-"),
                    row.counts.get("fail", 0),
                    row.counts.get("warn", 0),
                    row.counts.get("insufficient", 0),
                ]
                for row in window_rows(windows)
            ],
        )
    )
    results_section.append(
        note(
            "A monitor with too few rows in a window is reported as insufficient data: it neither passes nor fails, "
            "and the charts leave a gap there."
        )
    )
    results_section.append(sub("Results that did not pass"))
    results_section.append(
        table(
            ["Window", "Monitor", "Result", ("Value", True), ("Threshold", True), "Interval", ("Rows", True)],
            [
                [
                    f"{w.starts_at:%d %b %Y}",
                    r.get("monitor"),
                    STATUS_WORDS.get(r.get("status", ""), r.get("status")),
                    r.get("value"),
                    r.get("threshold"),
                    (
                        f"[{fmt(r['interval'][0])}, {fmt(r['interval'][1])}]"
                        if r.get("interval") and r["interval"][0] is not None
                        else "–"
                    ),
                    r.get("rows"),
                ]
                for w in evaluated
                for r in (w.results or [])
                if r.get("status") in ("warn", "fail")
            ],
        )
    )
    figures = figures_for(deployment, evaluated)
    if figures:
        charts_section = content.section("Charts")
        charts_section.append(
            note(
                "Dashed lines are the plan's thresholds; shaded bands are 95% intervals; grey columns are windows with "
                "insufficient data (no value drawn); triangles mark the windows where alerts opened."
            )
        )
        for figure in figures:
            charts_section.extend(_figure_blocks(figure))
    in_period = Q(created_at__gte=start, created_at__lt=end) | Q(resolved_at__gte=start, resolved_at__lt=end)
    alerts = list(
        Alert.objects.filter(deployment=deployment)
        .filter(in_period)
        .select_related("acknowledged_by", "resolved_by", "assignee", "window")
        .annotate(comment_count=Count("comments"))
        .order_by("created_at")
    )
    content.section("Alerts opened or resolved in the period").extend(
        [
            table(
                [
                    "Alert",
                    "Severity",
                    "Opened",
                    ("Windows failed", True),
                    "Acknowledged",
                    "Assigned to",
                    "Resolved",
                    "Resolution",
                    ("Comments", True),
                ],
                [
                    [
                        a.title,
                        a.get_severity_display(),
                        f"{a.created_at:%d %b %Y}",
                        a.occurrences,
                        f"{a.acknowledged_at:%d %b %Y} by {a.acknowledged_by.display_name}"
                        if a.acknowledged_at
                        else "no",
                        a.assignee.display_name if a.assignee else "-",
                        f"{a.resolved_at:%d %b %Y} by {a.resolved_by.display_name}" if a.resolved_at else "no",
                        a.resolution or "-",
                        a.comment_count,
                    ]
                    for a in alerts
                ],
            )
        ]
    )
    feedback = (
        Feedback.objects.filter(deployment=deployment, created_at__gte=start, created_at__lt=end)
        .values("kind", "category", "status")
        .annotate(n=Count("id"))
        .order_by("kind", "category", "status")
    )
    kinds, categories, statuses = (
        dict(Feedback.Kind.choices),
        dict(Feedback.Category.choices),
        dict(Feedback.Status.choices),
    )
    feedback_rows = [[kinds[f["kind"]], categories[f["category"]], statuses[f["status"]], f["n"]] for f in feedback]
    content.section("Feedback and contestations").extend(
        [
            note("Counted by category; what people wrote stays in the portal and is not reproduced here."),
            table(["Kind", "Category", "Status", ("Count", True)], feedback_rows),
        ]
    )
    retraining = list(
        RetrainingRequest.objects.filter(deployment=deployment)
        .filter(
            Q(created_at__lt=end)
            & ~Q(
                status__in=[RetrainingRequest.Status.CLOSED, RetrainingRequest.Status.PROMOTED],
                updated_at__lt=start,
            )
        )
        .select_related("opened_by", "alert", "review", "training_run")
        .order_by("created_at")
    )
    content.section("Retraining requests").append(
        table(
            ["Opened", "By", "From alert", "Status", "Training run", "Board review"],
            [
                [
                    f"{r.created_at:%d %b %Y}",
                    r.opened_by.display_name,
                    r.alert.title if r.alert_id else "-",
                    r.get_status_display(),
                    str(r.training_run_id)[:8] if r.training_run_id else "-",
                    r.review.reference if r.review_id else "-",
                ]
                for r in retraining
            ],
        )
    )
    content.evidence = {
        "deployment": {
            "id": str(deployment.id),
            "usecase": usecase.reference,
            "environment": deployment.environment,
            "system": deployment.system,
            "model_version": str(model.id),
            "model_sha256": model.sha256,
            "deployed_on": deployment.deployed_on.isoformat(),
            "status": deployment.status,
            "review": review.reference,
            "review_bindings_sha256": review.bindings_sha256,
            "decision": decision.outcome if decision else None,
            "waivers": [{"id": str(w.id), "expires_on": w.expires_on.isoformat()} for w in waivers],
        },
        "period": {"from": period_start.isoformat(), "to": period_end.isoformat()},
        "plan": {"sha256": deployment.plan_sha256, "spec": plan},
        "windows": [
            {
                "id": str(w.id),
                "starts_at": w.starts_at.isoformat(),
                "ends_at": w.ends_at.isoformat(),
                "status": w.status,
                "rows": w.rows,
                "labelled_rows": w.labelled_rows,
                "results": w.results or [],
            }
            for w in windows
        ],
        "alerts": [
            {
                "id": str(a.id),
                "monitor": a.monitor,
                "severity": a.severity,
                "status": a.status,
                "window": str(a.window_id) if a.window_id else None,
                "opened_at": a.created_at.isoformat(),
                "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
                "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                "occurrences": a.occurrences,
            }
            for a in alerts
        ],
        "feedback": [
            {"kind": f["kind"], "category": f["category"], "status": f["status"], "count": f["n"]} for f in feedback
        ],
        "retraining_requests": [
            {
                "id": str(r.id),
                "status": r.status,
                "alert": str(r.alert_id) if r.alert_id else None,
                "training_run": str(r.training_run_id) if r.training_run_id else None,
                "review": r.review.reference if r.review_id else None,
            }
            for r in retraining
        ],
    }
    return content
