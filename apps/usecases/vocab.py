"""Fixed vocabularies of the use-case register: GDPR legal bases, EU AI Act tiers, fairness and privacy policy terms."""

from __future__ import annotations

from django.db import models


class LawfulBasis(models.TextChoices):
    CONSENT = "consent", "Art. 6(1)(a) consent"
    CONTRACT = "contract", "Art. 6(1)(b) contract"
    LEGAL_OBLIGATION = "legal_obligation", "Art. 6(1)(c) legal obligation"
    VITAL_INTERESTS = "vital_interests", "Art. 6(1)(d) vital interests"
    PUBLIC_TASK = "public_task", "Art. 6(1)(e) public task"
    LEGITIMATE_INTERESTS = "legitimate_interests", "Art. 6(1)(f) legitimate interests"


class Article9Condition(models.TextChoices):
    EXPLICIT_CONSENT = "a", "Art. 9(2)(a) explicit consent"
    EMPLOYMENT = "b", "Art. 9(2)(b) employment and social security law"
    VITAL_INTERESTS = "c", "Art. 9(2)(c) vital interests"
    NOT_FOR_PROFIT = "d", "Art. 9(2)(d) not-for-profit body"
    MADE_PUBLIC = "e", "Art. 9(2)(e) made public by the data subject"
    LEGAL_CLAIMS = "f", "Art. 9(2)(f) legal claims"
    SUBSTANTIAL_PUBLIC_INTEREST = "g", "Art. 9(2)(g) substantial public interest"
    HEALTH_CARE = "h", "Art. 9(2)(h) health or social care"
    PUBLIC_HEALTH = "i", "Art. 9(2)(i) public health"
    ARCHIVING_RESEARCH = "j", "Art. 9(2)(j) archiving, research or statistics"


class RiskTier(models.TextChoices):
    PROHIBITED = "prohibited", "Prohibited practice (Art. 5)"
    HIGH = "high", "High-risk (Annex III)"
    LIMITED = "limited", "Limited risk (transparency obligations)"
    MINIMAL = "minimal", "Minimal risk"


class AnnexIIIArea(models.TextChoices):
    BIOMETRICS = "1", "1. Biometrics"
    CRITICAL_INFRASTRUCTURE = "2", "2. Critical infrastructure"
    EDUCATION = "3", "3. Education and vocational training"
    EMPLOYMENT = "4", "4. Employment and workers management"
    ESSENTIAL_SERVICES = "5", "5. Access to essential private and public services and benefits"
    LAW_ENFORCEMENT = "6", "6. Law enforcement"
    MIGRATION = "7", "7. Migration, asylum and border control"
    JUSTICE = "8", "8. Administration of justice and democratic processes"


# Fairness metrics a policy may gate, and the direction that passes: differences must stay at or below the
# threshold, ratios at or above it. The evaluation engine computes exactly these names.
FAIRNESS_METRICS: dict[str, str] = {
    "demographic_parity_difference": "max",
    "demographic_parity_ratio": "min",
    "equalized_odds_difference": "max",
    "equalized_odds_ratio": "min",
    "equal_opportunity_difference": "max",
    "predictive_parity_difference": "max",
    "false_positive_rate_difference": "max",
    "false_negative_rate_difference": "max",
}

# What people read for each metric key: the one place the UI and the reports take metric names from.
FAIRNESS_METRIC_LABELS: dict[str, str] = {
    "demographic_parity_difference": "Demographic parity difference",
    "demographic_parity_ratio": "Demographic parity ratio",
    "equalized_odds_difference": "Equalised odds difference",
    "equalized_odds_ratio": "Equalised odds ratio",
    "equal_opportunity_difference": "Equal opportunity difference",
    "predictive_parity_difference": "Predictive parity difference",
    "false_positive_rate_difference": "False positive rate difference",
    "false_negative_rate_difference": "False negative rate difference",
    "accuracy": "Accuracy",
    "selection_rate": "Selection rate",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1 score",
    "false_positive_rate": "False positive rate",
    "false_negative_rate": "False negative rate",
    "accuracy_drop": "Accuracy drop",
}


def metric_label(key: str) -> str:
    return FAIRNESS_METRIC_LABELS.get(key, str(key).replace("_", " ").capitalize())


# One accountant for every size: a privacy-loss distribution with a pessimistic discretisation (dp_accounting).
# Policies saved when PRV and RDP were offered read as PLD: the figure can only get tighter, never looser.
ACCOUNTANTS = ("pld",)
LEGACY_ACCOUNTANTS = ("prv", "rdp")
