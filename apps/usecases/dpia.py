"""The DPIA, following the UK ICO template's seven steps, kept as structured JSON on the use case.

``normalise_dpia`` validates an answer set and fills derived values (each risk's overall rating from the ICO
likelihood x severity matrix); ``dpia_missing`` lists what still blocks submission.
"""

from __future__ import annotations

from typing import Any

from apps.core.errors import ValidationFailed

STEPS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "need",
        "Step 1: Identify the need for a DPIA",
        [
            ("aims", "What the project aims to achieve and what type of processing it involves"),
            ("why_dpia", "Why the need for a DPIA was identified"),
        ],
    ),
    (
        "processing",
        "Step 2: Describe the processing",
        [
            (
                "nature",
                "Nature: how data is collected, used, stored and deleted; sources; sharing; high-risk processing",
            ),
            ("scope", "Scope: nature of the data, special categories, volume, frequency, retention, individuals, area"),
            ("context", "Context: relationship with individuals, their control and expectations, vulnerable groups"),
            ("purposes", "Purposes: what you want to achieve, intended effect on individuals, benefits"),
        ],
    ),
    (
        "consultation",
        "Step 3: Consultation process",
        [
            ("consultation", "How stakeholders, individuals, processors and security experts were consulted"),
        ],
    ),
    (
        "necessity",
        "Step 4: Assess necessity and proportionality",
        [
            ("lawful_basis_rationale", "Lawful basis and why the processing actually achieves the purpose"),
            ("alternatives", "Is there another way to achieve the same outcome"),
            ("minimisation", "How function creep is prevented and data minimised; data quality"),
            ("information_and_rights", "Information given to individuals; how their rights are supported"),
            (
                "processors_and_transfers",
                "Measures to ensure processors comply; safeguards for international transfers",
            ),
        ],
    ),
]

LIKELIHOOD = {"remote": 1, "possible": 2, "probable": 3}
SEVERITY = {"minimal": 1, "significant": 2, "severe": 3}
RATINGS = ("low", "medium", "high")
MEASURE_EFFECTS = ("eliminated", "reduced", "accepted")

SIGN_OFF_FIELDS: list[tuple[str, str]] = [
    ("measures_approved_by", "Measures approved by"),
    ("residual_risks_approved_by", "Residual risks approved by"),
    ("dpo_advice", "DPO advice provided"),
    ("dpo_advice_accepted", "DPO advice accepted or overruled (with reasons if overruled)"),
    ("consultation_responses_reviewed_by", "Consultation responses reviewed by"),
    ("kept_under_review_by", "This DPIA will be kept under review by"),
]


def overall_risk(likelihood: str, severity: str) -> str:
    """The ICO matrix: likelihood x severity scores 1-2 low, 3-4 medium, 6-9 high."""
    score = LIKELIHOOD[likelihood] * SEVERITY[severity]
    if score <= 2:
        return "low"
    if score <= 4:
        return "medium"
    return "high"


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def normalise_dpia(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a DPIA answer set and return it with derived ratings; unknown keys are dropped."""
    raw = raw or {}
    errors: dict[str, list[str]] = {}
    result: dict[str, Any] = {}
    for step_key, _title, questions in STEPS:
        answers = raw.get(step_key) or {}
        if not isinstance(answers, dict):
            errors[step_key] = ["must be an object of answers"]
            continue
        result[step_key] = {key: _text(answers.get(key)) for key, _label in questions}

    risks_in = raw.get("risks") or []
    risks: list[dict[str, Any]] = []
    if not isinstance(risks_in, list):
        errors["risks"] = ["must be a list"]
        risks_in = []
    for index, risk in enumerate(risks_in, start=1):
        if not isinstance(risk, dict):
            errors[f"risks[{index}]"] = ["must be an object"]
            continue
        likelihood, severity = risk.get("likelihood"), risk.get("severity")
        problems = []
        if not _text(risk.get("description")):
            problems.append("description is required")
        if likelihood not in LIKELIHOOD:
            problems.append(f"likelihood must be one of {', '.join(LIKELIHOOD)}")
        if severity not in SEVERITY:
            problems.append(f"severity must be one of {', '.join(SEVERITY)}")
        if problems:
            errors[f"risks[{index}]"] = problems
            continue
        risks.append(
            {
                "id": f"R{index}",
                "description": _text(risk.get("description")),
                "likelihood": likelihood,
                "severity": severity,
                "overall": overall_risk(likelihood, severity),
            }
        )
    result["risks"] = risks

    measures_in = raw.get("measures") or []
    measures: list[dict[str, Any]] = []
    risk_ids = {risk["id"] for risk in risks}
    if not isinstance(measures_in, list):
        errors["measures"] = ["must be a list"]
        measures_in = []
    for index, measure in enumerate(measures_in, start=1):
        if not isinstance(measure, dict):
            errors[f"measures[{index}]"] = ["must be an object"]
            continue
        problems = []
        if measure.get("risk") not in risk_ids:
            problems.append("risk must name a risk of the register (R1, R2, ...)")
        if not _text(measure.get("measure")):
            problems.append("measure is required")
        if measure.get("effect") not in MEASURE_EFFECTS:
            problems.append(f"effect must be one of {', '.join(MEASURE_EFFECTS)}")
        if measure.get("residual_risk") not in RATINGS:
            problems.append(f"residual_risk must be one of {', '.join(RATINGS)}")
        if problems:
            errors[f"measures[{index}]"] = problems
            continue
        measures.append(
            {
                "risk": measure["risk"],
                "measure": _text(measure.get("measure")),
                "effect": measure["effect"],
                "residual_risk": measure["residual_risk"],
                "approved": bool(measure.get("approved")),
            }
        )
    result["measures"] = measures

    sign_off_in = raw.get("sign_off") or {}
    if not isinstance(sign_off_in, dict):
        errors["sign_off"] = ["must be an object"]
        sign_off_in = {}
    result["sign_off"] = {key: _text(sign_off_in.get(key)) for key, _label in SIGN_OFF_FIELDS}

    if errors:
        raise ValidationFailed("The DPIA has invalid answers.", {"dpia": errors})
    return result


def dpia_missing(dpia: dict[str, Any]) -> list[str]:
    """What a complete DPIA still lacks (empty list when it can be submitted)."""
    missing = []
    for step_key, title, questions in STEPS:
        for key, label in questions:
            if not (dpia.get(step_key) or {}).get(key):
                missing.append(f"{title}: {label}")
    risks = dpia.get("risks") or []
    if not risks:
        missing.append("Step 5: the risk register has no risk")
    covered = {measure["risk"] for measure in dpia.get("measures") or []}
    for risk in risks:
        if risk["overall"] != "low" and risk["id"] not in covered:
            missing.append(f"Step 6: risk {risk['id']} ({risk['overall']}) has no measure")
    sign_off = dpia.get("sign_off") or {}
    for key, label in SIGN_OFF_FIELDS[:3]:
        if not sign_off.get(key):
            missing.append(f"Step 7: {label}")
    return missing


def residual_risk(dpia: dict[str, Any]) -> str | None:
    """The highest residual risk after measures (a risk without a measure keeps its overall rating)."""
    ratings = []
    by_risk: dict[str, list[str]] = {}
    for measure in dpia.get("measures") or []:
        by_risk.setdefault(measure["risk"], []).append(measure["residual_risk"])
    for risk in dpia.get("risks") or []:
        residuals = by_risk.get(risk["id"])
        ratings.append(min(residuals, key=RATINGS.index) if residuals else risk["overall"])
    if not ratings:
        return None
    return max(ratings, key=RATINGS.index)
