"""HTML pages of the accounts app: sign-in, passwords, the organisation chooser, invitations, members, API tokens."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.contrib.auth import logout as auth_logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache

from apps.accounts import services
from apps.accounts.forms import (
    AuditorInviteForm,
    InvitationAccountForm,
    InviteForm,
    MemberRoleForm,
    ThrottledAuthenticationForm,
    ThrottledPasswordChangeForm,
    ThrottledPasswordResetForm,
    TokenCreateForm,
)
from apps.accounts.middleware import SESSION_KEY
from apps.accounts.models import ApiToken, AuditorGrant, Invitation, Membership, Role, User, UserSession
from apps.accounts.permissions import can
from apps.accounts.selectors import (
    invitation_by_token,
    organisation_members,
    organisations_visible_to,
    roles_in,
    sessions_of,
)
from apps.accounts.sessions import SIGNED_OUT_REASON, session_key_hash, session_started, signed_out_message
from apps.accounts.throttling import attempt_succeeded, client_address, throttle_keys
from apps.core.errors import AttestError
from apps.core.forms import add_service_errors

INVITATION_SESSION_KEY = "attest_invitation_token"


class LoginView(auth_views.LoginView):
    """Sign-in with throttling; Django rotates the session key on login, and the organisation is chosen afresh."""

    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # Read once: why the previous session ended (idle or absolute limit), set by SessionActivityMiddleware.
        reason = self.request.session.pop(SIGNED_OUT_REASON, None) if hasattr(self.request, "session") else None
        return {**super().get_context_data(**kwargs), "signed_out_message": signed_out_message(reason)}

    def form_valid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        auth_login(self.request, form.get_user())
        # Never carry an organisation over a sign-in: a person with several chooses (CurrentOrganisationMiddleware).
        self.request.session.pop(SESSION_KEY, None)
        session_started(self.request, form.get_user())
        return HttpResponseRedirect(self.get_success_url())


class LogoutView(auth_views.LogoutView):
    """Signing out deletes the session (Django) and its row in the person's list of sessions."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.session.session_key:
            UserSession.objects.filter(key_hash=session_key_hash(request.session.session_key)).delete()
        return super().post(request, *args, **kwargs)


class PasswordChangeView(auth_views.PasswordChangeView):
    """Change with the current password (throttled like sign-in); other sessions end, this one stays."""

    form_class = ThrottledPasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:password_change_done")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form: ThrottledPasswordChangeForm) -> HttpResponse:
        # Django's view saves the password and calls update_session_auth_hash for this session; every other session
        # of the person carries the old password's hash and is refused on its next request.
        response = super().form_valid(form)
        services.password_changed_record(user=form.user, how="change")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/email/password_reset.txt"
    subject_template_name = "accounts/email/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_sent")

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def form_valid(self, form: ThrottledPasswordResetForm) -> HttpResponse:
        # Links are built from SITE_URL, never from the request's Host header.
        self.extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
        return super().form_valid(form)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        services.password_changed_record(user=form.user, how="reset")
        # Whoever holds the e-mailed link owns the account: lift the lock on it (other addresses' locks stay).
        attempt_succeeded(throttle_keys("login", form.user.get_username(), client_address(self.request)))
        return response


@never_cache
@login_required
def choose_organisation(request: HttpRequest) -> HttpResponse:
    """The organisation chooser: shown after sign-in to a person with several, and the only way to switch."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = ""
    if request.method == "POST":
        organisation = get_object_or_404(organisations_visible_to(request.user), id=request.POST.get("organisation"))
        request.session[SESSION_KEY] = str(organisation.id)
        messages.success(request, f"You are now working in {organisation.name}.")
        return redirect(target or "dashboard")
    choices = [
        {"organisation": organisation, "roles": [Role(r).label for r in sorted(roles_in(request.user, organisation))]}
        for organisation in organisations_visible_to(request.user).order_by("name")
    ]
    return render(request, "accounts/choose_organisation.html", {"choices": choices, "next": target})


def invitation_open(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the e-mail: keep the token in the session and continue without it in the address bar (so it
    leaks into no referrer, history or access log beyond this one request)."""
    request.session[INVITATION_SESSION_KEY] = token
    return redirect("accounts:invitation_accept")


@never_cache
def invitation_accept(request: HttpRequest) -> HttpResponse:
    """Accept signed in, sign in first, or open an account with the invited address."""
    invitation = invitation_by_token(request.session.get(INVITATION_SESSION_KEY))
    if invitation is None or not invitation.is_open:
        return render(
            request, "accounts/invitation.html", {"invitation": None}, status=404 if invitation is None else 410
        )
    account_form = InvitationAccountForm(prefix="account")
    if request.method == "POST":
        if request.POST.get("action") == "decline":
            request.session.pop(INVITATION_SESSION_KEY, None)
            messages.info(request, "You did not accept the invitation; nothing changed.")
            return redirect("dashboard" if request.user.is_authenticated else "accounts:login")
        person = None
        try:
            if request.user.is_authenticated:
                person = services.invitation_accept(actor=request.user, invitation=invitation)  # type: ignore[arg-type]
            else:
                account_form = InvitationAccountForm(request.POST, prefix="account")
                if account_form.is_valid():
                    data = account_form.cleaned_data
                    person = services.invitation_accept(
                        actor=None,
                        invitation=invitation,
                        new_account={key: data[key] for key in ("username", "full_name", "password")},
                    )
                    auth_login(request, person, backend="django.contrib.auth.backends.ModelBackend")
        except AttestError as exc:
            add_service_errors(request, account_form, exc)
        if person is not None:
            request.session.pop(INVITATION_SESSION_KEY, None)
            what = (
                "external auditor" if invitation.kind == Invitation.Kind.AUDITOR_GRANT else Role(invitation.role).label
            )
            messages.success(request, f"You joined {invitation.organisation.name} as {what}.")
            # Joining is not switching: someone with several organisations picks where to work.
            several = len(organisations_visible_to(person)) > 1
            return redirect("accounts:switch_organisation" if several else "dashboard")
    return render(request, "accounts/invitation.html", {"invitation": invitation, "account_form": account_form})


def _end_of_day(day: Any) -> datetime | None:
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59))) if day else None


@login_required
def members(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(request.user, "view", organisation):
        raise Http404
    is_admin = can(request.user, "manage", organisation)
    people = organisation_members(organisation)
    role_form = MemberRoleForm(prefix="role", members=people)
    invite_form, auditor_form = InviteForm(prefix="invite"), AuditorInviteForm(prefix="auditor")
    if request.method == "POST":
        if not is_admin:
            raise Http404
        action = request.POST.get("action")
        try:
            if action == "role":
                role_form = MemberRoleForm(request.POST, prefix="role", members=people)
                if role_form.is_valid():
                    user, role = role_form.cleaned_data["user"], role_form.cleaned_data["role"]
                    services.membership_add(actor=request.user, organisation=organisation, user=user, role=role)
                    messages.success(request, f"{user} now holds the role {Role(role).label}.")
                    return redirect("accounts:members")
            elif action == "invite":
                invite_form = InviteForm(request.POST, prefix="invite")
                if invite_form.is_valid():
                    services.invitation_create(
                        actor=request.user, organisation=organisation, **invite_form.cleaned_data
                    )
                    # The same words whoever the address belongs to: the admin learns nothing about other accounts.
                    messages.success(request, "Invitation sent. It takes effect when it is accepted.")
                    return redirect("accounts:members")
            elif action == "invite_auditor":
                auditor_form = AuditorInviteForm(request.POST, prefix="auditor")
                if auditor_form.is_valid():
                    services.invitation_create(
                        actor=request.user,
                        organisation=organisation,
                        email=auditor_form.cleaned_data["email"],
                        kind=Invitation.Kind.AUDITOR_GRANT,
                        reason=auditor_form.cleaned_data["reason"],
                        access_expires_at=_end_of_day(auditor_form.cleaned_data["expires_at"]),
                    )
                    messages.success(request, "Invitation sent. Access begins when it is accepted.")
                    return redirect("accounts:members")
            elif action == "revoke_invitation":
                invitation = get_object_or_404(Invitation, id=request.POST.get("invitation"), organisation=organisation)
                services.invitation_revoke(actor=request.user, invitation=invitation)
                messages.success(request, "Invitation revoked.")
                return redirect("accounts:members")
            elif action == "remove":
                membership = get_object_or_404(Membership, id=request.POST.get("membership"), organisation=organisation)
                services.membership_remove(actor=request.user, membership=membership)
                messages.success(request, "Role removed.")
                return redirect("accounts:members")
            elif action == "end_sessions":
                member = get_object_or_404(User, id=request.POST.get("user"))
                ended = services.member_sessions_revoke(actor=request.user, organisation=organisation, member=member)
                if member == request.user:  # an admin who ended their own sessions, this one included
                    auth_logout(request)
                    return redirect("accounts:login")
                messages.success(request, f"{member} was signed out of {ended} session(s).")
                return redirect("accounts:members")
            elif action == "revoke":
                grant = get_object_or_404(AuditorGrant, id=request.POST.get("grant"), organisation=organisation)
                services.auditor_grant_revoke(actor=request.user, grant=grant)
                messages.success(request, "Auditor access revoked.")
                return redirect("accounts:members")
        except AttestError as exc:
            target = {"role": role_form, "invite": invite_form, "invite_auditor": auditor_form}.get(action or "")
            if target is not None:
                add_service_errors(request, target, exc)
            else:
                messages.error(request, exc.message)
    rows: dict[Any, dict[str, Any]] = {}
    for membership in (
        Membership.objects.filter(organisation=organisation).select_related("user").order_by("user__username", "role")
    ):
        rows.setdefault(membership.user_id, {"user": membership.user, "memberships": []})["memberships"].append(
            membership
        )
    grants = AuditorGrant.objects.filter(organisation=organisation).select_related("user", "granted_by")
    invitations = Invitation.objects.filter(organisation=organisation, status=Invitation.Status.PENDING).select_related(
        "invited_by"
    )
    return render(
        request,
        "accounts/members.html",
        {
            "rows": list(rows.values()),
            "grants": grants if is_admin else [],
            "invitations": invitations if is_admin else [],
            "is_admin": is_admin,
            "role_form": role_form,
            "invite_form": invite_form,
            "auditor_form": auditor_form,
        },
    )


@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    secret = None
    if request.method == "POST":
        if request.POST.get("action") == "revoke":
            token = get_object_or_404(ApiToken, id=request.POST.get("token"), user=request.user)
            try:
                services.api_token_revoke(actor=request.user, token=token)
                messages.success(request, f"Token {token.name} revoked.")
            except AttestError as exc:
                messages.error(request, exc.message)
            return redirect("accounts:tokens")
        if form.is_valid():
            try:
                _token, secret = services.api_token_create(
                    actor=request.user,
                    name=form.cleaned_data["name"],
                    expires_at=_end_of_day(form.cleaned_data["expires_at"]),
                    scope=form.cleaned_data["scope"],
                )
            except AttestError as exc:
                add_service_errors(request, form, exc)
            else:
                form = TokenCreateForm()
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "secret": secret,
            "tokens": ApiToken.objects.filter(user=request.user),
        },
    )


@never_cache
@login_required
def sessions(request: HttpRequest) -> HttpResponse:
    """The person's signed-in sessions, with this one marked; end any one, or every other."""
    current = session_key_hash(request.session.session_key or "")
    if request.method == "POST":
        if request.POST.get("action") == "end_others":
            ended = services.user_sessions_revoke_others(actor=request.user, current_key_hash=current)
            messages.success(request, f"Signed out of {ended} other session(s).")
            return redirect("accounts:sessions")
        row = get_object_or_404(UserSession, id=request.POST.get("session"), user=request.user)
        services.user_session_revoke(actor=request.user, user_session=row)
        if row.key_hash == current:
            # Its row is gone already; flushing keeps the end of this request from saving into a deleted session.
            auth_logout(request)
            return redirect("accounts:login")
        messages.success(request, "Session ended.")
        return redirect("accounts:sessions")
    return render(
        request,
        "accounts/sessions.html",
        {
            "rows": sessions_of(request.user),
            "current": current,
            "idle_minutes": settings.SESSION_IDLE_SECONDS // 60,
            "absolute_hours": settings.SESSION_COOKIE_AGE / 3600,
        },
    )
