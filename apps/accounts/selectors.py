"""Reads about users, organisations and roles. Every other app scopes its querysets with these."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.accounts.models import AuditorGrant, Invitation, Membership, Organisation, Role, User, UserSession


def _active_grants(user: User) -> QuerySet[AuditorGrant]:
    now = timezone.now()
    return AuditorGrant.objects.filter(user=user, revoked_at__isnull=True).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )


def organisation_ids_for(user: User, roles: Iterable[str] | None = None) -> set:
    """Ids of organisations where ``user`` holds one of ``roles`` (any role when None).

    An active auditor grant counts as the auditor role.
    """
    if not user or not user.is_authenticated or not user.is_active:
        return set()
    role_set = set(roles) if roles is not None else None
    memberships = Membership.objects.filter(user=user)
    if role_set is not None:
        memberships = memberships.filter(role__in=role_set)
    ids = set(memberships.values_list("organisation_id", flat=True))
    if role_set is None or Role.AUDITOR in role_set:
        ids |= set(_active_grants(user).values_list("organisation_id", flat=True))
    return ids


def roles_in(user: User, organisation: Organisation | None) -> set[str]:
    """The roles ``user`` holds in ``organisation`` (an active auditor grant adds ``auditor``)."""
    if organisation is None or not user or not user.is_authenticated or not user.is_active:
        return set()
    roles = set(Membership.objects.filter(user=user, organisation=organisation).values_list("role", flat=True))
    if _active_grants(user).filter(organisation=organisation).exists():
        roles.add(Role.AUDITOR)
    return roles


def has_role(user: User, organisation: Organisation | None, *roles: str) -> bool:
    return bool(roles_in(user, organisation) & set(roles))


def organisations_visible_to(user: User) -> QuerySet[Organisation]:
    return Organisation.objects.filter(id__in=organisation_ids_for(user))


def organisation_members(organisation: Organisation, role: str | None = None) -> QuerySet[User]:
    memberships = Membership.objects.filter(organisation=organisation)
    if role:
        memberships = memberships.filter(role=role)
    return User.objects.filter(id__in=memberships.values("user_id"), is_active=True).order_by("username")


def invitation_token_hash(raw: str) -> str:
    """Invitations store only this digest of their single-use token."""
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def invitation_by_token(raw: str | None) -> Invitation | None:
    """The invitation a link's token opens (any status; callers check ``is_open``), or None."""
    if not raw:
        return None
    return (
        Invitation.objects.select_related("organisation", "invited_by")
        .filter(token_hash=invitation_token_hash(raw))
        .first()
    )


def sessions_of(user: User) -> QuerySet[UserSession]:
    """The person's sessions still within both limits (rows of sessions that ended by timing out are left out)."""
    now = timezone.now()
    return UserSession.objects.filter(
        user=user,
        signed_in_at__gt=now - timedelta(seconds=settings.SESSION_COOKIE_AGE),
        # The stored last-seen lags activity by up to a minute (apps/accounts/sessions.py).
        last_seen_at__gt=now - timedelta(seconds=settings.SESSION_IDLE_SECONDS + 60),
    ).order_by("-last_seen_at")
