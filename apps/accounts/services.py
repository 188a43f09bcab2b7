"""Writes about organisations, members, auditor grants, API tokens and users. Each writes one audit event."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.accounts.authentication import TOKEN_PREFIX, hash_token
from apps.accounts.models import ApiToken, AuditorGrant, Membership, Organisation, Role, User
from apps.accounts.permissions import can
from apps.accounts.selectors import roles_in
from apps.audit.services import audit_record
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed

ORGANISATION_FIELDS = (
    "name",
    "country",
    "address",
    "controller_contact",
    "dpo_name",
    "dpo_email",
    "processing_purposes",
    "min_cell_size",
)


def _require_admin(actor: User | None, organisation: Organisation, what: str) -> None:
    if actor is None:  # the system (seed, management commands)
        return
    if not roles_in(actor, organisation):
        raise NotFound()
    if not can(actor, "manage", organisation):
        raise PermissionDenied(f"Only org admins can {what}.")


def organisation_update(*, actor: User | None, organisation: Organisation, data: dict[str, Any]) -> Organisation:
    _require_admin(actor, organisation, "change the organisation")
    unknown = set(data) - set(ORGANISATION_FIELDS)
    if unknown:
        raise ValidationFailed("Unknown fields.", {field: ["cannot be changed"] for field in sorted(unknown)})
    purposes = data.get("processing_purposes")
    if purposes is not None and (
        not isinstance(purposes, list) or not all(isinstance(p, str) and p.strip() for p in purposes)
    ):
        raise ValidationFailed(
            "Processing purposes must be a list of names.", {"processing_purposes": ["a list of non-empty strings"]}
        )
    with transaction.atomic():
        locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
        before = {field: getattr(locked, field) for field in data}
        for field, value in data.items():
            setattr(locked, field, [p.strip() for p in value] if field == "processing_purposes" else value)
        locked.full_clean(exclude=["slug"])
        locked.save()
        audit_record(
            actor=actor,
            organisation=locked,
            action="organisation.update",
            target=locked,
            before=before,
            after={field: getattr(locked, field) for field in data},
        )
    return locked


def membership_add(*, actor: User | None, organisation: Organisation, user: User, role: str) -> Membership:
    _require_admin(actor, organisation, "add members")
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", {"role": [f"one of {', '.join(Role.values)}"]})
    with transaction.atomic():
        try:
            with transaction.atomic():
                membership = Membership.objects.create(user=user, organisation=organisation, role=role)
        except IntegrityError:
            raise AttestError("conflict", f"{user} already holds the role {Role(role).label}.") from None
        audit_record(
            actor=actor,
            organisation=organisation,
            action="membership.add",
            target=membership,
            after={"user": user.username, "role": role},
        )
    return membership


def membership_remove(*, actor: User | None, membership: Membership) -> None:
    organisation = membership.organisation
    _require_admin(actor, organisation, "remove members")
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)  # serialise "last admin" checks
        if (
            membership.role == Role.ADMIN
            and Membership.objects.filter(organisation=organisation, role=Role.ADMIN).count() <= 1
        ):
            raise InvalidState("An organisation must keep at least one org admin.")
        snapshot = {"user": membership.user.username, "role": membership.role}
        membership_id = membership.pk
        membership.delete()
        audit_record(
            actor=actor,
            organisation=organisation,
            action="membership.remove",
            object_type="accounts.membership",
            object_id=str(membership_id),
            before=snapshot,
        )


def auditor_grant_create(
    *, actor: User | None, organisation: Organisation, user: User, expires_at: datetime | None = None, reason: str = ""
) -> AuditorGrant:
    _require_admin(actor, organisation, "grant auditor access")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", {"expires_at": ["in the past"]})
    with transaction.atomic():
        grant = AuditorGrant.objects.create(
            user=user, organisation=organisation, granted_by=actor, expires_at=expires_at, reason=reason.strip()[:300]
        )
        audit_record(
            actor=actor,
            organisation=organisation,
            action="auditor_grant.create",
            target=grant,
            after={"user": user.username, "expires_at": expires_at, "reason": grant.reason},
        )
    return grant


def auditor_grant_revoke(*, actor: User | None, grant: AuditorGrant) -> AuditorGrant:
    _require_admin(actor, grant.organisation, "revoke auditor access")
    if grant.revoked_at is not None:
        raise InvalidState("This grant is already revoked.")
    with transaction.atomic():
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=actor,
            organisation=grant.organisation,
            action="auditor_grant.revoke",
            target=grant,
            after={"user": grant.user.username, "revoked_at": grant.revoked_at},
        )
    return grant


def api_token_create(*, actor: User, name: str, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Create a token for the actor; returns it with its secret, which is never stored or shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Name the token after what uses it.", {"name": ["This field is required."]})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", {"expires_at": ["in the past"]})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=actor, name=name[:100], prefix=raw[:12], key_hash=hash_token(raw), expires_at=expires_at
        )
        audit_record(
            actor=actor,
            action="api_token.create",
            target=token,
            after={"name": token.name, "prefix": token.prefix, "expires_at": expires_at},
        )
    return token, raw


def api_token_revoke(*, actor: User, token: ApiToken) -> ApiToken:
    if token.user_id != actor.id:
        raise NotFound()
    if token.revoked_at is not None:
        raise InvalidState("This token is already revoked.")
    with transaction.atomic():
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at", "updated_at"])
        audit_record(
            actor=actor, action="api_token.revoke", target=token, after={"name": token.name, "prefix": token.prefix}
        )
    return token


def user_create(
    *,
    actor: User | None,
    organisation: Organisation,
    username: str,
    email: str,
    full_name: str,
    password: str,
    roles: list[str] | tuple[str, ...],
) -> User:
    """Create a person with roles in ``organisation`` (admins; ``actor=None`` is the system, e.g. the demo seed)."""
    _require_admin(actor, organisation, "create users")
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise ValidationFailed("Unknown role.", {"roles": [f"unknown: {', '.join(unknown)}"]})
    candidate = User(username=username.strip(), email=email.strip().lower(), full_name=full_name.strip())
    errors: dict[str, list[str]] = {}
    if not candidate.username:
        errors["username"] = ["This field is required."]
    elif User.objects.filter(username=candidate.username).exists():
        errors["username"] = ["This username is taken."]
    if not candidate.email:
        errors["email"] = ["This field is required."]
    elif User.objects.filter(email=candidate.email).exists():
        errors["email"] = ["This e-mail address is already used."]
    try:
        validate_password(password, candidate)
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationFailed("The user cannot be created.", errors)
    with transaction.atomic():
        candidate.set_password(password)
        candidate.save()
        for role in roles:
            Membership.objects.create(user=candidate, organisation=organisation, role=role)
        audit_record(
            actor=actor,
            organisation=organisation,
            action="user.create",
            target=candidate,
            after={"username": candidate.username, "email": candidate.email, "roles": list(roles)},
        )
    return candidate
