"""Complete, submittable use-case data for tests."""

from __future__ import annotations

from typing import Any


def complete_dpia() -> dict[str, Any]:
    return {
        "need": {"aims": "Triage benefit claims for manual review.", "why_dpia": "Profiling with significant effects."},
        "processing": {
            "nature": "Claims data from the case system.",
            "scope": "120,000 claimants a year.",
            "context": "Claimants may be vulnerable.",
            "purposes": "Faster, fairer review.",
        },
        "consultation": {"consultation": "Claimant panel, DPO, security team."},
        "necessity": {
            "lawful_basis_rationale": "Public task under the Social Security Act.",
            "alternatives": "Manual triage is slower and less consistent.",
            "minimisation": "Only the fields the model needs.",
            "information_and_rights": "Privacy notice; human review on request.",
            "processors_and_transfers": "No processors; no transfers.",
        },
        "risks": [
            {"description": "Discrimination against a protected group", "likelihood": "possible", "severity": "severe"},
            {"description": "Re-identification from model outputs", "likelihood": "remote", "severity": "minimal"},
        ],
        "measures": [
            {
                "risk": "R1",
                "measure": "Fairness gates and board review",
                "effect": "reduced",
                "residual_risk": "medium",
                "approved": True,
            }
        ],
        "sign_off": {
            "measures_approved_by": "Head of Benefits",
            "residual_risks_approved_by": "Deputy Director",
            "dpo_advice": "Proceed with the gates in place.",
        },
    }


def usecase_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "title": "Benefit claim triage",
        "purpose": "Benefit fraud triage",
        "description": "Ranks incoming claims for manual review.",
        "lawful_basis": "public_task",
        "special_category": False,
        "data_subject_categories": ["Claimants"],
        "personal_data_categories": ["Income", "Household composition"],
        "recipients": ["Benefits caseworkers"],
        "third_country_transfers": [],
        "retention": "24 months after the claim closes",
        "risk_tier": "high",
        "annex_iii_area": "5",
        "risk_justification": "Access to essential public services and benefits.",
        "affected_groups": ["Claimants", "Households"],
        "dpia": complete_dpia(),
        "fairness_policy": {
            "sensitive_attributes": ["sex", "race"],
            "min_group_size": 30,
            "gates": [{"metric": "demographic_parity_difference", "threshold": 0.1}],
        },
        "privacy_policy": {"epsilon_cap": 3.0, "accountant": "pld", "max_consent_age_days": 30},
    }
    data.update(overrides)
    return data
