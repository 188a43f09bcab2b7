"""The shapes of the deployment pages' forms (the services decide what is allowed)."""

from __future__ import annotations

from django import forms

from apps.deployments.models import Alert, Feedback

REASON_HELP = "Recorded in the audit trail and shown on the deployment's history."


class DeployForm(forms.Form):
    environment = forms.SlugField(max_length=40, initial="production", help_text="pilot, production, or your own name")
    system = forms.CharField(max_length=200, help_text="The system it runs in, e.g. 'Benefits case-management'.")
    deployed_on = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class ReasonForm(forms.Form):
    reason = forms.CharField(max_length=500, help_text=REASON_HELP)


class PromoteForm(forms.Form):
    model_version = forms.UUIDField()


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100)


class PeriodForm(forms.Form):
    """Two dates; ``reports.services.report_request`` refuses a period that ends before it starts or in the future."""

    period_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    period_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class CommentForm(forms.Form):
    body = forms.CharField(max_length=4000, widget=forms.Textarea)


class ResolveForm(forms.Form):
    resolution = forms.CharField(max_length=500)


class AssignForm(forms.Form):
    assignee = forms.UUIDField(required=False)


class TriageForm(forms.Form):
    category = forms.ChoiceField(choices=[c for c in Feedback.Category.choices if c[0] != "untriaged"])
    severity = forms.ChoiceField(choices=Alert.Severity.choices)
    alert = forms.UUIDField(required=False)
    response = forms.CharField(max_length=4000, required=False, widget=forms.Textarea)


class FeedbackForm(forms.Form):
    kind = forms.ChoiceField(choices=Feedback.Kind.choices)
    body = forms.CharField(max_length=4000, widget=forms.Textarea)


class RetrainingOpenForm(forms.Form):
    reason = forms.CharField(max_length=4000, widget=forms.Textarea)
