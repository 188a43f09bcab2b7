from __future__ import annotations

from django import forms


class AuditFilterForm(forms.Form):
    action = forms.CharField(required=False, max_length=100, help_text="e.g. usecase or usecase.submit")
    actor = forms.CharField(required=False, max_length=200, label="Actor (username)")
    object_id = forms.CharField(required=False, max_length=64, label="Object id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Until (exclusive)")
