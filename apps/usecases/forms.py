"""HTML forms of the use-case register: shape only; the services check meaning."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.usecases.dpia import LIKELIHOOD, MEASURE_EFFECTS, RATINGS, SEVERITY, SIGN_OFF_FIELDS, STEPS
from apps.usecases.vocab import FAIRNESS_METRICS, AnnexIIIArea, Article9Condition, LawfulBasis, RiskTier, metric_label
from workers.engine.robustness.gates import ACCURACY_DROP, KIND_LABELS, KINDS, validate_robustness_gates

LIST_HELP = "One per line."


def _lines(value: Any) -> str:
    return "\n".join(value) if isinstance(value, list) else (value or "")


class UseCaseForm(forms.Form):
    title = forms.CharField(max_length=200)
    purpose = forms.ChoiceField(help_text="From your organisation's list of processing purposes.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    lawful_basis = forms.ChoiceField(
        choices=[("", "Choose...")] + LawfulBasis.choices, label="Lawful basis (GDPR Art. 6)"
    )
    special_category = forms.BooleanField(required=False, label="Special-category data is involved (GDPR Art. 9)")
    art9_condition = forms.ChoiceField(
        choices=[("", "Not applicable")] + Article9Condition.choices, required=False, label="Art. 9(2) condition"
    )
    data_subject_categories = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=LIST_HELP,
        label="Categories of data subjects",
    )
    personal_data_categories = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text=LIST_HELP,
        label="Categories of personal data",
    )
    recipients = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text=LIST_HELP)
    third_country_transfers = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        label="Third-country transfers",
        help_text="One per line as 'country: safeguard', e.g. 'US: EU-US Data Privacy Framework'. Empty when none.",
    )
    retention = forms.CharField(max_length=300, label="Retention period (time limit for erasure)")
    security_measures = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    risk_tier = forms.ChoiceField(choices=[("", "Choose...")] + RiskTier.choices, label="EU AI Act risk tier")
    annex_iii_area = forms.ChoiceField(
        choices=[("", "Not high-risk")] + AnnexIIIArea.choices, required=False, label="Annex III area"
    )
    risk_justification = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    affected_groups = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text=LIST_HELP)
    automated_decisions = forms.BooleanField(
        required=False,
        label="Solely automated decisions with legal or similarly significant effects (GDPR Art. 22)",
    )
    ai_act_role = forms.ChoiceField(
        choices=[("provider", "Provider"), ("deployer", "Deployer"), ("both", "Provider and deployer")],
        initial="both",
        label="Our role under the EU AI Act",
        help_text="Provider: we develop the system or have it developed under our name. Deployer: we use it.",
    )

    def __init__(self, *args: Any, purposes: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["purpose"].choices = [("", "Choose...")] + [(p, p) for p in purposes]

    @classmethod
    def initial_from(cls, usecase: Any) -> dict[str, Any]:
        initial = {name: getattr(usecase, name) for name in cls.base_fields}
        for name in ("data_subject_categories", "personal_data_categories", "recipients", "affected_groups"):
            initial[name] = _lines(initial[name])
        initial["third_country_transfers"] = "\n".join(
            f"{item['country']}: {item['safeguard']}" for item in usecase.third_country_transfers or []
        )
        return initial

    def to_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        for name in ("data_subject_categories", "personal_data_categories", "recipients", "affected_groups"):
            data[name] = [line.strip() for line in data[name].splitlines() if line.strip()]
        transfers = []
        for line in data["third_country_transfers"].splitlines():
            if line.strip():
                country, _, safeguard = line.partition(":")
                transfers.append({"country": country.strip(), "safeguard": safeguard.strip()})
        data["third_country_transfers"] = transfers
        return data


def dpia_from_post(post: Any) -> dict[str, Any]:
    """Rebuild the DPIA JSON from the editor's field names (step.question, risks-N-field, measures-N-field)."""
    dpia: dict[str, Any] = {}
    for step_key, _title, questions in STEPS:
        dpia[step_key] = {key: post.get(f"{step_key}.{key}", "") for key, _label in questions}
    dpia["risks"] = []
    dpia["measures"] = []
    for kind, fields in (
        ("risks", ("description", "likelihood", "severity")),
        ("measures", ("risk", "measure", "effect", "residual_risk", "approved")),
    ):
        index = 0
        while f"{kind}-{index}-{fields[0]}" in post:
            row = {field: post.get(f"{kind}-{index}-{field}", "") for field in fields}
            if kind == "measures":
                row["approved"] = row["approved"] == "on"
            if any(
                value
                for key, value in row.items()
                if key not in ("likelihood", "severity", "effect", "residual_risk", "approved", "risk")
            ):
                dpia[kind].append(row)
            index += 1
    dpia["sign_off"] = {key: post.get(f"sign_off.{key}", "") for key, _label in SIGN_OFF_FIELDS}
    return dpia


DPIA_CHOICES = {
    "likelihood": list(LIKELIHOOD),
    "severity": list(SEVERITY),
    "effect": list(MEASURE_EFFECTS),
    "residual_risk": list(RATINGS),
}


# Empty rows under a policy's robustness gates, so a new gate can be added without scripts.
EMPTY_ROBUSTNESS_ROWS = 2


class PolicyForm(forms.Form):
    sensitive_attributes = forms.CharField(
        help_text="Column names to audit for fairness, comma separated (e.g. sex, race).", required=False
    )
    intersections = forms.BooleanField(required=False, initial=True, label="Also audit intersections of attributes")
    min_group_size = forms.IntegerField(min_value=1, initial=30, label="Minimum group size to judge")
    epsilon_cap = forms.FloatField(
        min_value=0.01, max_value=100, initial=3.0, label="Privacy budget: epsilon cap per dataset"
    )
    delta = forms.FloatField(required=False, label="Delta (empty: 1/(10 n) rounded down to a power of ten)")
    accountant = forms.ChoiceField(
        choices=[("pld", "Privacy-loss distribution, pessimistic (the tightest sound figure)")], initial="pld"
    )
    max_consent_age_days = forms.IntegerField(
        min_value=0, initial=30, label="Largest age of the consent snapshot at training (days)"
    )

    proxies = forms.CharField(
        required=False,
        label="Known proxies of a sensitive attribute",
        help_text="Column names, comma separated (e.g. marital-status, relationship). The counterfactual probe flips "
        "them as it flips the sensitive attributes.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Rows for robustness gates: those submitted, or the policy's gates and two empty rows to add more.
        if self.is_bound:
            rows = sum(1 for key in self.data if key.startswith("robustness_") and key.endswith("_kind"))
        else:
            rows = len((self.initial or {}).get("robustness_gates") or []) + EMPTY_ROBUSTNESS_ROWS
        self.robustness_row_count = rows
        for index in range(1, rows + 1):
            where = f"Robustness gate {index}"
            self.fields[f"robustness_{index}_kind"] = forms.ChoiceField(
                choices=[("", "No gate")]
                + [(kind, KIND_LABELS[kind][:1].upper() + KIND_LABELS[kind][1:]) for kind in KINDS],
                required=False,
                label=f"{where}: perturbation",
            )
            self.fields[f"robustness_{index}_level"] = forms.FloatField(required=False, label=f"{where}: level")
            self.fields[f"robustness_{index}_metric"] = forms.ChoiceField(
                choices=[(ACCURACY_DROP, metric_label(ACCURACY_DROP))]
                + [(metric, metric_label(metric)) for metric in FAIRNESS_METRICS],
                required=False,
                label=f"{where}: metric",
            )
            self.fields[f"robustness_{index}_max"] = forms.FloatField(
                required=False, label=f"{where}: largest worsening allowed"
            )
        for metric, direction in FAIRNESS_METRICS.items():
            label = metric_label(metric)
            self.fields[f"gate_{metric}"] = forms.BooleanField(required=False, label=f"Gate: {label}")
            self.fields[f"threshold_{metric}"] = forms.FloatField(
                required=False,
                min_value=0,
                label=f"{label} threshold ({'at most' if direction == 'max' else 'at least'})",
            )

    @classmethod
    def initial_from(cls, usecase: Any) -> dict[str, Any]:
        fairness, privacy = usecase.fairness_policy or {}, usecase.privacy_policy or {}
        initial: dict[str, Any] = {
            "sensitive_attributes": ", ".join(fairness.get("sensitive_attributes", [])),
            "intersections": fairness.get("intersections", True),
            "min_group_size": fairness.get("min_group_size", 30),
            **{key: privacy.get(key) for key in ("epsilon_cap", "delta", "accountant", "max_consent_age_days")},
        }
        for gate in fairness.get("gates", []):
            initial[f"gate_{gate['metric']}"] = True
            initial[f"threshold_{gate['metric']}"] = gate["threshold"]
        initial["proxies"] = ", ".join(fairness.get("proxies", []))
        initial["robustness_gates"] = fairness.get("robustness_gates", [])
        for index, gate in enumerate(initial["robustness_gates"], start=1):
            for key in ("kind", "level", "metric", "max"):
                initial[f"robustness_{index}_{key}"] = gate.get(key)
        return initial

    def gate_rows(self) -> list[tuple[Any, Any]]:
        return [(self[f"gate_{metric}"], self[f"threshold_{metric}"]) for metric in FAIRNESS_METRICS]

    def robustness_rows(self) -> list[list[Any]]:
        return [
            [self[f"robustness_{index}_{key}"] for key in ("kind", "level", "metric", "max")]
            for index in range(1, self.robustness_row_count + 1)
        ]

    def _robustness_gates(self) -> tuple[list[dict[str, Any]], list[int]]:
        """The gates of the rows with a perturbation chosen, and the row each came from."""
        data = self.cleaned_data
        gates, rows = [], []
        for index in range(1, self.robustness_row_count + 1):
            if data.get(f"robustness_{index}_kind"):
                gates.append({key: data.get(f"robustness_{index}_{key}") for key in ("kind", "level", "metric", "max")})
                rows.append(index)
        return gates, rows

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The engine's own rules, shown beside the row they concern (the service checks them again).
        gates, rows = self._robustness_gates()
        for problem in validate_robustness_gates(gates):
            where, _, text = problem.partition(": ")
            position = int(where[where.index("[") + 1 : -1]) if "[" in where else 1
            field = next((key for key in ("level", "max") if text.startswith(key)), "kind")
            if text.startswith("unknown metric"):
                field = "metric"
            name = f"robustness_{rows[position - 1]}_{field}"
            if not self.has_error(name):  # a level typed as text is already reported as "Enter a number."
                self.add_error(name, text)
        return cleaned

    def to_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        gates = [
            {"metric": metric, "threshold": data.get(f"threshold_{metric}")}
            for metric in FAIRNESS_METRICS
            if data.get(f"gate_{metric}")
        ]
        return {
            "fairness_policy": {
                "sensitive_attributes": data["sensitive_attributes"],
                "intersections": data["intersections"],
                "min_group_size": data["min_group_size"],
                "gates": gates,
                "proxies": data["proxies"],
                "robustness_gates": self._robustness_gates()[0],
            },
            "privacy_policy": {
                "epsilon_cap": data["epsilon_cap"],
                "delta": data["delta"],
                "accountant": data["accountant"],
                "max_consent_age_days": data["max_consent_age_days"],
            },
        }
