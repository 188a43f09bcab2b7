"""Forms of third-party models: input shape only; the services validate the rest."""

from __future__ import annotations

from typing import Any

from django import forms

from apps.thirdparty.models import ThirdPartyModel


class ThirdPartyModelForm(forms.Form):
    usecase = forms.ChoiceField(label="Use case", help_text="The use case whose AI system uses this model.")
    supplier = forms.CharField(max_length=200, help_text="Who supplies the model, e.g. the vendor or the provider.")
    name = forms.CharField(label="Model name", max_length=200)
    version = forms.CharField(max_length=100, help_text="The version, release or snapshot date in use.")
    kind = forms.ChoiceField(choices=ThirdPartyModel.Kind.choices)
    intended_use = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the use case uses it for, and what it must not be used for.",
    )
    licence = forms.CharField(max_length=200, required=False)
    data_location = forms.CharField(
        max_length=200, required=False, help_text="Where the supplier processes and stores what is sent to it."
    )
    contractual_terms = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Contract and data-processing agreement: retention, use of inputs for training, sub-processors.",
    )
    review_due_on = forms.DateField(
        label="Next re-assessment",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="When the supplier's model and terms are next checked.",
    )

    def __init__(self, *args: Any, usecases: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if usecases is None:
            del self.fields["usecase"]
        else:
            self.fields["usecase"].choices = usecases

    def to_data(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        data.pop("usecase", None)
        return data

    @staticmethod
    def initial_from(model: ThirdPartyModel) -> dict[str, Any]:
        return {
            name: getattr(model, name)
            for name in (
                "supplier",
                "name",
                "version",
                "kind",
                "intended_use",
                "licence",
                "data_location",
                "contractual_terms",
                "review_due_on",
            )
        }


class DocumentationForm(forms.Form):
    file = forms.FileField(
        label="Documentation file", required=False, help_text="Up to 10 MB; Attest keeps its sha256 and name."
    )
    url = forms.URLField(label="Or its link", required=False, max_length=500, assume_scheme="https")
    sha256 = forms.CharField(
        label="sha256 of the linked document",
        required=False,
        max_length=64,
        help_text="Needed with a link (e.g. the output of sha256sum), so a review binds exactly that document.",
    )
    received_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class StatusForm(forms.Form):
    status = forms.ChoiceField(choices=ThirdPartyModel.Status.choices)
    reason = forms.CharField(max_length=500, widget=forms.TextInput())
