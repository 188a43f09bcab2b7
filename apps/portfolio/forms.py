"""HTML forms of the risk register: shape only; the services check meaning."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.accounts.models import Organisation
from apps.accounts.selectors import organisation_members
from apps.portfolio.models import Risk
from apps.portfolio.selectors import LIKELIHOOD_LABELS, SEVERITY_LABELS
from apps.usecases.models import UseCase


class RiskForm(forms.Form):
    title = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    likelihood = forms.TypedChoiceField(
        coerce=int, choices=[(n, f"{n} - {label}") for n, label in LIKELIHOOD_LABELS.items()]
    )
    severity = forms.TypedChoiceField(
        coerce=int, choices=[(n, f"{n} - {label}") for n, label in SEVERITY_LABELS.items()]
    )
    owner = forms.ModelChoiceField(queryset=None, label="Risk owner")  # type: ignore[arg-type]
    treatment = forms.ChoiceField(choices=[("", "Choose...")] + Risk.Treatment.choices)
    treatment_plan = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required when the risk is mitigated or transferred: what is done, by whom, by when.",
    )
    review_on = forms.DateField(label="Next review on", widget=forms.DateInput(attrs={"type": "date"}))
    usecase = forms.ModelChoiceField(queryset=None, required=False, label="Use case (optional)")  # type: ignore[arg-type]

    def __init__(self, *args: Any, organisation: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        owner_field: Any = self.fields["owner"]
        owner_field.queryset = organisation_members(organisation)
        owner_field.label_from_instance = lambda user: user.display_name
        usecase_field: Any = self.fields["usecase"]
        usecase_field.queryset = UseCase.objects.filter(organisation=organisation).order_by("reference")

    @staticmethod
    def initial_from(risk: Risk) -> dict[str, Any]:
        return {
            "title": risk.title,
            "description": risk.description,
            "likelihood": risk.likelihood,
            "severity": risk.severity,
            "owner": risk.owner_id,
            "treatment": risk.treatment,
            "treatment_plan": risk.treatment_plan,
            "review_on": risk.review_on,
            "usecase": risk.usecase_id,
        }


class CloseRiskForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Why is the risk closed?")
