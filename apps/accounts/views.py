"""HTML pages of the accounts app: sign-in, the organisation switcher, members and API tokens."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from apps.accounts import services
from apps.accounts.forms import (
    AuditorGrantForm,
    MemberAddForm,
    ThrottledAuthenticationForm,
    TokenCreateForm,
    UserCreateForm,
)
from apps.accounts.middleware import SESSION_KEY
from apps.accounts.models import ApiToken, AuditorGrant, Membership, Role, User
from apps.accounts.permissions import can
from apps.accounts.selectors import organisations_visible_to
from apps.core.errors import AttestError
from apps.core.forms import add_service_errors


class LoginView(auth_views.LoginView):
    """Sign-in with throttling; Django rotates the session key on login."""

    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True


@login_required
@require_POST
def switch_organisation(request: HttpRequest) -> HttpResponse:
    organisation = get_object_or_404(organisations_visible_to(request.user), id=request.POST.get("organisation"))
    request.session[SESSION_KEY] = str(organisation.id)
    messages.success(request, f"You are now working in {organisation.name}.")
    return redirect("dashboard")


def _end_of_day(day: Any) -> datetime | None:
    return timezone.make_aware(datetime.combine(day, time(23, 59, 59))) if day else None


def _find_user(identifier: str) -> User | None:
    identifier = identifier.strip()
    return User.objects.filter(Q(username=identifier) | Q(email__iexact=identifier), is_active=True).first()


@login_required
def members(request: HttpRequest) -> HttpResponse:
    organisation = request.organisation  # type: ignore[attr-defined]
    if organisation is None or not can(request.user, "view", organisation):
        raise Http404
    is_admin = can(request.user, "manage", organisation)
    add_form, create_form, grant_form = (
        MemberAddForm(prefix="add"),
        UserCreateForm(prefix="create"),
        AuditorGrantForm(prefix="grant"),
    )
    if request.method == "POST":
        if not is_admin:
            raise Http404
        action = request.POST.get("action")
        try:
            if action == "add":
                add_form = MemberAddForm(request.POST, prefix="add")
                if add_form.is_valid():
                    user = _find_user(add_form.cleaned_data["user"])
                    if user is None:
                        add_form.add_error("user", "No active user with that username or e-mail.")
                    else:
                        services.membership_add(
                            actor=request.user, organisation=organisation, user=user, role=add_form.cleaned_data["role"]
                        )
                        messages.success(
                            request, f"{user} now holds the role {Role(add_form.cleaned_data['role']).label}."
                        )
                        return redirect("accounts:members")
            elif action == "create":
                create_form = UserCreateForm(request.POST, prefix="create")
                if create_form.is_valid():
                    user = services.user_create(
                        actor=request.user, organisation=organisation, **create_form.cleaned_data
                    )
                    messages.success(request, f"{user.username} was created.")
                    return redirect("accounts:members")
            elif action == "remove":
                membership = get_object_or_404(Membership, id=request.POST.get("membership"), organisation=organisation)
                services.membership_remove(actor=request.user, membership=membership)
                messages.success(request, "Role removed.")
                return redirect("accounts:members")
            elif action == "grant":
                grant_form = AuditorGrantForm(request.POST, prefix="grant")
                if grant_form.is_valid():
                    user = _find_user(grant_form.cleaned_data["user"])
                    if user is None:
                        grant_form.add_error("user", "No active user with that username or e-mail.")
                    else:
                        services.auditor_grant_create(
                            actor=request.user,
                            organisation=organisation,
                            user=user,
                            reason=grant_form.cleaned_data["reason"],
                            expires_at=_end_of_day(grant_form.cleaned_data["expires_at"]),
                        )
                        messages.success(request, f"{user} may now read {organisation.name} as an auditor.")
                        return redirect("accounts:members")
            elif action == "revoke":
                grant = get_object_or_404(AuditorGrant, id=request.POST.get("grant"), organisation=organisation)
                services.auditor_grant_revoke(actor=request.user, grant=grant)
                messages.success(request, "Auditor access revoked.")
                return redirect("accounts:members")
        except AttestError as exc:
            target = {"add": add_form, "create": create_form, "grant": grant_form}.get(action or "")
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
    return render(
        request,
        "accounts/members.html",
        {
            "rows": list(rows.values()),
            "grants": grants if is_admin else [],
            "is_admin": is_admin,
            "add_form": add_form,
            "create_form": create_form,
            "grant_form": grant_form,
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
