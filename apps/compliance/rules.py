"""The applicability rule grammar of catalogue requirements (see docs/compliance-catalogues.md).

A rule is a mapping whose clauses must all hold: ``risk_tier: [...]``, ``annex_iii_area: any | none | [...]``,
``personal_data``, ``special_category``, ``automated_decisions`` (booleans), ``ai_act_role: [provider|deployer]``,
and the combinators ``any: [rule, ...]``, ``all: [rule, ...]``, ``not: rule``. An empty rule always holds.
Evaluation returns the verdict and, when a requirement does not apply, the reason in words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RISK_TIERS = ("prohibited", "high", "limited", "minimal")
ANNEX_III_AREAS = tuple(str(n) for n in range(1, 9))
ROLES = ("provider", "deployer")
BOOLEAN_CLAUSES = {
    "personal_data": "personal data",
    "special_category": "special-category data (GDPR Art. 9)",
    "automated_decisions": "solely automated decisions (GDPR Art. 22)",
}
CLAUSES = ("risk_tier", "annex_iii_area", "ai_act_role", *BOOLEAN_CLAUSES, "any", "all", "not")


@dataclass(frozen=True)
class Answers:
    """The use case's answers that decide applicability."""

    risk_tier: str
    annex_iii_area: str
    personal_data: bool
    special_category: bool
    automated_decisions: bool
    roles: frozenset[str]

    @classmethod
    def of(cls, usecase: Any, *, uses_third_party_model: bool = False) -> Answers:
        role = usecase.ai_act_role or "both"
        roles = set(ROLES) if role == "both" else {role}
        if uses_third_party_model:
            roles.add("deployer")  # using a supplier's model makes the organisation its deployer (AI Act Art. 26)
        return cls(
            risk_tier=usecase.risk_tier,
            annex_iii_area=usecase.annex_iii_area or "",
            personal_data=bool(usecase.personal_data_categories) or bool(usecase.special_category),
            special_category=bool(usecase.special_category),
            automated_decisions=bool(usecase.automated_decisions),
            roles=frozenset(roles),
        )


def rule_errors(rule: Any, where: str = "applies") -> list[str]:
    """Every problem of a rule, each naming where it is; an empty list means the rule is well formed."""
    if rule is None:
        return []
    if not isinstance(rule, dict):
        return [f"{where}: must be a mapping of clauses"]
    errors: list[str] = []
    for key, value in rule.items():
        at = f"{where}.{key}"
        if key not in CLAUSES:
            errors.append(f"{at}: unknown clause (known: {', '.join(CLAUSES)})")
        elif key == "risk_tier":
            errors += _list_errors(value, RISK_TIERS, at)
        elif key == "annex_iii_area":
            if value not in ("any", "none"):
                errors += _list_errors(
                    [str(v) for v in value] if isinstance(value, list) else value, ANNEX_III_AREAS, at
                )
        elif key == "ai_act_role":
            errors += _list_errors(value, ROLES, at)
        elif key in BOOLEAN_CLAUSES:
            if not isinstance(value, bool):
                errors.append(f"{at}: must be true or false")
        elif key in ("any", "all"):
            if not isinstance(value, list) or not value:
                errors.append(f"{at}: must be a non-empty list of rules")
            else:
                for index, item in enumerate(value):
                    errors += rule_errors(item, f"{at}[{index}]") if item != {} else [f"{at}[{index}]: empty rule"]
        elif key == "not":
            errors += rule_errors(value, at) if value else [f"{at}: must be a rule"]
    return errors


def _list_errors(value: Any, allowed: tuple[str, ...], at: str) -> list[str]:
    if not isinstance(value, list) or not value:
        return [f"{at}: must be a non-empty list"]
    wrong = [str(v) for v in value if str(v) not in allowed]
    return [f"{at}: unknown value(s) {', '.join(wrong)} (allowed: {', '.join(allowed)})"] if wrong else []


def evaluate(rule: dict[str, Any] | None, answers: Answers) -> tuple[bool, str]:
    """Does the rule hold for these answers? When it does not, the reason names the first clause that failed."""
    for key, value in (rule or {}).items():
        holds, reason = _clause(key, value, answers)
        if not holds:
            return False, reason
    return True, ""


def _clause(key: str, value: Any, answers: Answers) -> tuple[bool, str]:
    if key == "risk_tier":
        return answers.risk_tier in value, (
            f"applies to risk tier {' or '.join(value)}; this system is {answers.risk_tier}"
        )
    if key == "annex_iii_area":
        area = answers.annex_iii_area
        if value == "any":
            return bool(area), "applies to Annex III (high-risk) systems; no Annex III area is set"
        if value == "none":
            return not area, f"does not apply to Annex III systems; this one is in area {area}"
        wanted = [str(v) for v in value]
        return area in wanted, f"applies to Annex III area {' or '.join(wanted)}; this system is in {area or 'none'}"
    if key == "ai_act_role":
        return bool(answers.roles & set(value)), (
            f"applies to the {' or '.join(value)}; the organisation is {' and '.join(sorted(answers.roles))}"
        )
    if key in BOOLEAN_CLAUSES:
        actual = getattr(answers, key)
        label = BOOLEAN_CLAUSES[key]
        return actual == value, (f"applies only with {label}" if value else f"applies only without {label}")
    if key == "all":
        for item in value:
            holds, reason = evaluate(item, answers)
            if not holds:
                return False, reason
        return True, ""
    if key == "any":
        reasons = []
        for item in value:
            holds, reason = evaluate(item, answers)
            if holds:
                return True, ""
            reasons.append(reason)
        return False, "; or ".join(reasons)
    if key == "not":
        holds, _reason = evaluate(value, answers)
        return not holds, f"does not apply when: {describe(value)}"
    raise ValueError(f"unknown clause {key!r}")


def describe(rule: dict[str, Any] | None) -> str:
    """The rule in words, for the requirements page."""
    if not rule:
        return "always"
    parts = []
    for key, value in rule.items():
        if key == "risk_tier":
            parts.append(f"risk tier {' or '.join(value)}")
        elif key == "annex_iii_area":
            parts.append(
                "any Annex III area"
                if value == "any"
                else "no Annex III area"
                if value == "none"
                else f"Annex III area {' or '.join(str(v) for v in value)}"
            )
        elif key == "ai_act_role":
            parts.append(f"the organisation is {' or '.join(value)}")
        elif key in BOOLEAN_CLAUSES:
            parts.append(("with " if value else "without ") + BOOLEAN_CLAUSES[key])
        elif key == "all":
            parts.append("(" + " and ".join(describe(item) for item in value) + ")")
        elif key == "any":
            parts.append("(" + " or ".join(describe(item) for item in value) + ")")
        elif key == "not":
            parts.append(f"not ({describe(value)})")
    return " and ".join(parts)
