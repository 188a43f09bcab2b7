"""Forms of the rights pages: shape only; the services decide."""

from __future__ import annotations

from django import forms

from apps.rights.models import ModelDecision, SubjectRequest


class RegisterForm(forms.Form):
    kind = forms.ChoiceField(label="Kind of request", choices=SubjectRequest.Kind.choices)
    identifier = forms.CharField(
        label="The person's identifier",
        max_length=300,
        help_text="As it appears in the subject-key column (e.g. an applicant number). It is turned into the "
        "organisation's pseudonym at once and never stored.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    identity_verification = forms.CharField(
        label="How the identity was verified",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For example: signed letter checked against the application file on record.",
    )
    received_on = forms.DateField(
        label="Received on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The deadline is one month from this day. Today when empty.",
    )
    purposes = forms.CharField(
        label="Purposes objected to (objection only)",
        required=False,
        max_length=2000,
        help_text="One per line; leave empty to withdraw consent for every purpose.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    assignee = forms.ChoiceField(label="Assignee", required=False)

    def __init__(self, *args, officers=(), **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Nobody yet")] + [(str(u.pk), u.display_name) for u in officers]


class AssignForm(forms.Form):
    assignee = forms.ChoiceField(label="Assignee", required=False)

    def __init__(self, *args, officers=(), **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Nobody")] + [(str(u.pk), u.display_name) for u in officers]


class ExtendForm(forms.Form):
    reason = forms.CharField(
        label="Reason for the extension",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Art. 12(3): once, by two further months, given the complexity and number of requests.",
    )


class DecideForm(forms.Form):
    model_version = forms.UUIDField(widget=forms.HiddenInput)
    decision = forms.ChoiceField(label="Decision", choices=ModelDecision.Decision.choices)
    justification = forms.CharField(
        label="Note", required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RectifyForm(forms.Form):
    corrections = forms.CharField(
        label="Corrected values",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line as column=value. Used once for the new versions and never kept on the request.",
    )

    def clean_corrections(self) -> dict[str, str]:
        corrections = {}
        for line in self.cleaned_data["corrections"].splitlines():
            if not line.strip():
                continue
            if "=" not in line:
                raise forms.ValidationError(f"Write each correction as column=value (line: {line[:40]!r}).")
            column, value = line.split("=", 1)
            corrections[column.strip()] = value.strip()
        if not corrections:
            raise forms.ValidationError("Give at least one corrected value.")
        return corrections
