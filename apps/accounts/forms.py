"""Forms of the accounts pages: shape only; services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from apps.accounts.models import Role
from apps.accounts.throttling import login_blocked_for, login_failure_record, login_failures_clear


def client_address(request: Any) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") if request is not None else None


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form, refusing further attempts after too many failures, even with the right password."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": "Too many failed sign-ins. Try again in %(minutes)s minute(s), or ask an org admin.",
    }

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        address = client_address(self.request)
        wait = login_blocked_for(username, address)
        if wait:
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": max(1, (wait + 59) // 60)}
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError:
            if username:
                login_failure_record(username=username, ip_address=address)
            raise
        login_failures_clear(username=username)
        return cleaned


class MemberAddForm(forms.Form):
    user = forms.CharField(label="Username or e-mail of an existing user", max_length=254)
    role = forms.ChoiceField(choices=Role.choices)


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    email = forms.EmailField(label="E-mail")
    full_name = forms.CharField(max_length=200, label="Full name")
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 12 characters, not a common password.")
    roles = forms.MultipleChoiceField(choices=Role.choices, widget=forms.CheckboxSelectMultiple)


class AuditorGrantForm(forms.Form):
    user = forms.CharField(label="Username or e-mail of the external auditor", max_length=254)
    reason = forms.CharField(max_length=300, required=False)
    expires_at = forms.DateField(label="Expires on", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'CI pipeline'.")
    expires_at = forms.DateField(label="Expires on", required=False, widget=forms.DateInput(attrs={"type": "date"}))
