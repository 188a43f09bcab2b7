"""The closed list of evidence kinds a catalogue requirement may name (the loader rejects any other)."""

from __future__ import annotations

EVIDENCE_KINDS: dict[str, str] = {
    "dpia": "Data protection impact assessment",
    "art30": "GDPR Art. 30 record of processing",
    "board_decision": "Ethics board decision",
    "evaluation_gates": "Evaluation with fairness gates",
    "privacy_audit": "Membership-inference privacy audit",
    "monitoring_plan": "Post-market monitoring plan",
    "model_card": "Model card (signed)",
    "annex_iv": "Annex IV technical documentation (signed)",
    "datasheet": "Datasheet (signed)",
    "consent_snapshot": "Consent snapshot bound to a dataset version",
    "signed_report": "Any signed report about the use case",
    "audit_extract": "Audit-trail extract (signed)",
    "monitoring_report": "Post-market monitoring report (signed)",
    "deployment": "Deployment record",
    "third_party_documentation": "Supplier documentation of a third-party model",
    "manual": "Uploaded file or link",
}
