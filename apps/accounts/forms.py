"""Forms of the accounts pages: shape only, services decide; and Django's auth forms with throttled password checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, PasswordResetForm
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.utils import timezone

from apps.accounts.models import ApiToken, Role, User
from apps.accounts.services import login_lockout_record
from apps.accounts.throttling import (
    ThrottleKey,
    attempt_begin,
    attempt_failed,
    attempt_succeeded,
    client_address,
    throttle_keys,
)

THROTTLED = "Too many failed sign-ins. Try again in %(minutes)s minute(s), or ask an org admin."


def _minutes(seconds: int) -> int:
    return max(1, (seconds + 59) // 60)


def checked_password(request: Any, username: str, check: Any) -> Any:
    """Run ``check()`` (which raises ValidationError on a wrong password) as one counted attempt on ``username``.

    The attempt is counted before the check (``attempt_begin``), so parallel guesses beyond the limit never reach
    the password hasher; the failure that reaches a limit records the lock-out.
    """
    address = client_address(request)
    keys = throttle_keys("login", username, address)
    wait = attempt_begin(keys)
    if wait:
        raise forms.ValidationError(THROTTLED, code="throttled", params={"minutes": _minutes(wait)})
    try:
        result = check()
    except forms.ValidationError:
        locked: list[ThrottleKey] = attempt_failed(keys)
        for key in locked:
            login_lockout_record(username=username, ip_address=address, limit=key.kind)
        raise
    attempt_succeeded(keys)
    return result


class ThrottledAuthenticationForm(AuthenticationForm):
    """Django's login form; each check of a password is a counted attempt, refused beyond the limits even when the
    password is right."""

    error_messages = {**AuthenticationForm.error_messages, "throttled": THROTTLED}

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        if not username or not self.cleaned_data.get("password"):
            return super().clean()  # a missing field: no password is checked
        return checked_password(self.request, username, super().clean)


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's change form; guesses of the current password count against the same limits as sign-ins."""

    def __init__(self, user: User, *args: Any, request: Any = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(user, *args, **kwargs)

    def clean_old_password(self) -> str:
        return checked_password(self.request, self.user.get_username(), super().clean_old_password)


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's reset form: requests are counted per address asked for (any address, known or not) and per client.

    The answer never depends on whether an account uses the address: the page is the same, and an address without
    an account gets an e-mail too (saying so), which also keeps the response time alike.
    """

    error_messages = {"throttled": "Too many reset requests for this address. Try again in %(minutes)s minute(s)."}

    def __init__(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        wait = attempt_begin(throttle_keys("reset", email, client_address(self.request)))
        if wait:
            raise forms.ValidationError(
                self.error_messages["throttled"], code="throttled", params={"minutes": _minutes(wait)}
            )
        return email

    def save(self, **kwargs: Any) -> None:  # type: ignore[override]
        email = self.cleaned_data["email"]
        if any(True for _user in self.get_users(email)):
            super().save(**kwargs)
            return
        body = render_to_string("accounts/email/password_reset_no_account.txt", {"site_url": settings.SITE_URL})
        send_mail("[Attest] Password reset", body, settings.DEFAULT_FROM_EMAIL, [email], fail_silently=True)


class InvitationAccountForm(forms.Form):
    """Open an account from an invitation; the e-mail address is the invited one."""

    username = forms.CharField(max_length=150)
    full_name = forms.CharField(max_length=200, label="Full name")
    password = forms.CharField(widget=forms.PasswordInput, help_text="At least 12 characters, not a common password.")
    password_again = forms.CharField(widget=forms.PasswordInput, label="Password again")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("password") and cleaned.get("password") != cleaned.get("password_again"):
            self.add_error("password_again", "The two passwords differ.")
        return cleaned


class MemberRoleForm(forms.Form):
    """Another role for someone who is already a member (no look-up of anyone else)."""

    user = forms.ModelChoiceField(queryset=User.objects.none(), label="Member")
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args: Any, members: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if members is not None:
            self.fields["user"].queryset = members


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address", help_text="They receive a link and choose whether to join.")
    role = forms.ChoiceField(choices=Role.choices)


class AuditorInviteForm(forms.Form):
    email = forms.EmailField(label="E-mail address of the external auditor")
    reason = forms.CharField(max_length=300, required=False)
    expires_at = forms.DateField(label="Access ends on", required=False, widget=forms.DateInput(attrs={"type": "date"}))


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What will use it, e.g. 'CI pipeline'.")
    scope = forms.ChoiceField(
        label="Access",
        choices=ApiToken.Scope.choices,
        initial=ApiToken.Scope.READ,
        help_text="Read only tokens can list and download; they are refused for anything that changes data.",
    )
    expires_at = forms.DateField(
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Required; at most a year from today.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        today = timezone.localdate()
        self.fields["expires_at"].initial = today + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
        self.fields["expires_at"].widget.attrs.update(
            {
                "min": (today + timedelta(days=1)).isoformat(),
                "max": (today + timedelta(days=settings.API_TOKEN_MAX_DAYS)).isoformat(),
            }
        )
