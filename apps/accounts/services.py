"""Writes about organisations, members, invitations, auditor grants, API tokens, passwords and users.

Each writes one audit event, except the security events about a person (lock-outs, API tokens, password changes),
which are written once into the chain of each organisation that answers for that person (see
``security_event_record``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.accounts.authentication import TOKEN_PREFIX, hash_token
from apps.accounts.models import (
    ApiToken,
    AuditorGrant,
    Invitation,
    Membership,
    Organisation,
    Role,
    User,
    UserSession,
)
from apps.accounts.permissions import can
from apps.accounts.selectors import invitation_token_hash, roles_in
from apps.accounts.sessions import delete_django_sessions
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


def keyed_digest(value: str) -> str:
    """What the never-erased audit log keeps of an identifier (an e-mail, a client address, a mistyped username):
    HMAC-SHA256 under the site's secret key. With the key an operator can confirm a known value and see that two
    events share one; without it, a reader of the log cannot test guesses against it as with a plain hash."""
    return hmac.new(settings.SECRET_KEY.encode(), value.encode("utf-8"), hashlib.sha256).hexdigest()


def email_digest(email: str) -> str:
    return keyed_digest(email.strip().lower())


def security_event_record(
    *, actor: User | None, subject: User | None, action: str, target: Any = None, after: dict[str, Any]
) -> None:
    """Record an event about ``subject``'s security (lock-out, API token, password) where someone answers for it.

    One event in the chain of each organisation the person belongs to (membership or auditor grant), so each
    organisation's admins and auditors see it on their own trail and verify it with their own chain; an event that
    carried a list of organisation ids would have to live in the shared platform chain, whose sequence numbers count
    every organisation's activity, and would tell each organisation where else the person works. A person in no
    organisation (or an unknown username) is recorded on the platform chain, for superusers.
    """
    organisation_ids: list[Any] = [None]
    if subject is not None:
        ids = set(Membership.objects.filter(user=subject).values_list("organisation_id", flat=True))
        ids |= set(
            AuditorGrant.objects.filter(user=subject, revoked_at__isnull=True)
            .exclude(expires_at__lte=timezone.now())
            .values_list("organisation_id", flat=True)
        )
        organisation_ids = sorted(ids, key=str) or [None]
    with transaction.atomic():
        for organisation_id in organisation_ids:
            audit_record(actor=actor, organisation=organisation_id, action=action, target=target, after=after)


def login_lockout_record(*, username: str, ip_address: str | None, limit: str) -> None:
    """A run of failed password checks reached a limit (``limit``: pair, account or address): one lock-out event."""
    user = User.objects.filter(username=username).first() or User.objects.filter(username__iexact=username).first()
    # The address is personal data and the log is never erased: a keyed digest still lets an admin see that two
    # lock-outs came from one address, without the address itself.
    after: dict[str, Any] = {
        "address_digest": keyed_digest(ip_address) if ip_address else None,
        "limit": limit,
        "window_seconds": settings.LOGIN_FAILURE_WINDOW_SECONDS,
    }
    if limit == "address":
        # One address guessing across accounts (spraying): about no one person, so a platform event.
        audit_record(actor=None, action="login.locked", object_type="accounts.user", after=after)
        return
    if user is None:
        # People type passwords into the username field: keep only a digest of a username that matches nobody.
        after["username_digest"] = email_digest(username)
        audit_record(actor=None, action="login.locked", object_type="accounts.user", after=after)
        return
    security_event_record(
        actor=None, subject=user, action="login.locked", target=user, after={"username": user.username, **after}
    )


def password_changed_record(*, user: User, how: str) -> None:
    """The person changed (``change``) or reset (``reset``) their password; their other sessions have ended."""
    security_event_record(
        actor=user, subject=user, action=f"user.password_{how}", target=user, after={"username": user.username}
    )


def membership_add(*, actor: User | None, organisation: Organisation, user: User, role: str) -> Membership:
    """Give a current member another role. Anyone else joins only by accepting an invitation (``invitation_create``)."""
    _require_admin(actor, organisation, "add members")
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", {"role": [f"one of {', '.join(Role.values)}"]})
    if actor is not None and not Membership.objects.filter(user=user, organisation=organisation).exists():
        raise ValidationFailed(
            "Only a member can be given another role directly; invite anyone else by e-mail.",
            {"user": ["not a member of this organisation"]},
        )
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
    """Give read access directly (the system: seed, commands). People are given it by accepting an invitation."""
    if actor is not None:
        raise PermissionDenied("Auditor access is given by invitation, which the person accepts.")
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


def api_token_create(
    *, actor: User, name: str, expires_at: datetime | None = None, scope: str = ApiToken.Scope.READ_WRITE
) -> tuple[ApiToken, str]:
    """Create a token for the actor; returns it with its secret, which is never stored or shown again.

    Every token expires: ``API_TOKEN_DEFAULT_DAYS`` from now unless a date is chosen, at most ``API_TOKEN_MAX_DAYS``.
    """
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Name the token after what uses it.", {"name": ["This field is required."]})
    if scope not in ApiToken.Scope.values:
        raise ValidationFailed("Choose read only or read and write.", {"scope": [f"one of {ApiToken.Scope.values}"]})
    now = timezone.now()
    if expires_at is None:
        expires_at = now + timedelta(days=settings.API_TOKEN_DEFAULT_DAYS)
    if expires_at <= now:
        raise ValidationFailed("The expiry must be in the future.", {"expires_at": ["in the past"]})
    if expires_at > now + timedelta(days=settings.API_TOKEN_MAX_DAYS, hours=24):
        # A day of slack: a date picked in the form means the end of that day.
        raise ValidationFailed(
            f"A token lasts at most {settings.API_TOKEN_MAX_DAYS} days.",
            {"expires_at": [f"at most {settings.API_TOKEN_MAX_DAYS} days from now"]},
        )
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=actor, name=name[:100], prefix=raw[:12], key_hash=hash_token(raw), expires_at=expires_at, scope=scope
        )
        security_event_record(
            actor=actor,
            subject=actor,
            action="api_token.create",
            target=token,
            after={"name": token.name, "prefix": token.prefix, "expires_at": expires_at, "scope": scope},
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
        security_event_record(
            actor=actor,
            subject=actor,
            action="api_token.revoke",
            target=token,
            after={"name": token.name, "prefix": token.prefix},
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
    """Create a person with roles in ``organisation``: the system only (``actor=None``: the demo seed, commands).

    Admins invite people instead (``invitation_create``): creating an account for an address told them whether it
    already had one, and gave roles without the person's agreement.
    """
    if actor is not None:
        raise PermissionDenied("People join by accepting an invitation; admins do not create accounts.")
    unknown = [role for role in roles if role not in Role.values]
    if unknown:
        raise ValidationFailed("Unknown role.", {"roles": [f"unknown: {', '.join(unknown)}"]})
    candidate = _new_user(username=username, email=email, full_name=full_name, password=password)
    with transaction.atomic():
        candidate.save()
        for role in roles:
            Membership.objects.create(user=candidate, organisation=organisation, role=role)
        audit_record(
            actor=actor,
            organisation=organisation,
            action="user.create",
            target=candidate,
            after={"username": candidate.username, "email_digest": email_digest(candidate.email), "roles": list(roles)},
        )
    return candidate


def _new_user(*, username: str, email: str, full_name: str, password: str) -> User:
    """A valid, unsaved user with its password set, or ValidationFailed with every field's problems."""
    candidate = User(username=username.strip(), email=email.strip().lower(), full_name=full_name.strip())
    errors: dict[str, list[str]] = {}
    if not candidate.username:
        errors["username"] = ["This field is required."]
    elif User.objects.filter(username__iexact=candidate.username).exists():
        errors["username"] = ["This username is taken."]
    if not candidate.email:
        errors["email"] = ["This field is required."]
    elif User.objects.filter(email__iexact=candidate.email).exists():
        errors["email"] = ["An account already uses this e-mail address: sign in to it instead."]
    try:
        validate_password(password, candidate)
    except DjangoValidationError as exc:
        errors["password"] = list(exc.messages)
    if errors:
        raise ValidationFailed("The account cannot be created.", errors)
    candidate.set_password(password)
    return candidate


# ------------------------------------------------------------------------------------------------------ invitations


def _send_invitation(invitation: Invitation, raw: str) -> None:
    link = settings.SITE_URL.rstrip("/") + reverse("accounts:invitation_open", kwargs={"token": raw})
    context = {"invitation": invitation, "link": link, "inviter": invitation.invited_by}
    subject = f"[Attest] Invitation to {invitation.organisation.name}"
    body = render_to_string("accounts/email/invitation.txt", context)
    address = invitation.email
    # After commit: a rolled-back invitation sends nothing, and a slow mail server holds no lock.
    transaction.on_commit(lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address], fail_silently=True))


def invitation_create(
    *,
    actor: User | None,
    organisation: Organisation,
    email: str,
    role: str = Role.OWNER,
    kind: str = Invitation.Kind.MEMBERSHIP,
    reason: str = "",
    access_expires_at: datetime | None = None,
) -> Invitation:
    """Invite someone, known to Attest or not, to a role (or to auditor access); the single-use link goes by e-mail
    only, so that only the owner of the address can accept or open an account with it.

    Nothing here depends on whether an account uses the address, so neither the answer nor the time it takes tells
    the admin.
    """
    _require_admin(actor, organisation, "invite people")
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError:
        raise ValidationFailed("Enter a valid e-mail address.", {"email": ["Enter a valid e-mail address."]}) from None
    if kind not in Invitation.Kind.values:
        raise ValidationFailed("Unknown kind of invitation.", {"kind": [f"one of {', '.join(Invitation.Kind.values)}"]})
    if kind == Invitation.Kind.AUDITOR_GRANT:
        role = Role.AUDITOR
        if access_expires_at is not None and access_expires_at <= timezone.now():
            raise ValidationFailed("The expiry must be in the future.", {"access_expires_at": ["in the past"]})
    else:
        access_expires_at, reason = None, ""
    if role not in Role.values:
        raise ValidationFailed("Unknown role.", {"role": [f"one of {', '.join(Role.values)}"]})
    digest = email_digest(email)
    raw = secrets.token_urlsafe(32)
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)  # one open invitation per address and role
        if Invitation.objects.filter(
            organisation=organisation,
            email_sha256=digest,
            kind=kind,
            role=role,
            status=Invitation.Status.PENDING,
            expires_at__gt=timezone.now(),
        ).exists():
            raise AttestError(
                "conflict", "An invitation to this address for this role is open: revoke it to send another."
            )
        invitation = Invitation.objects.create(
            organisation=organisation,
            kind=kind,
            role=role,
            email=email,
            email_sha256=digest,
            token_hash=invitation_token_hash(raw),
            invited_by=actor,
            expires_at=timezone.now() + timedelta(days=settings.INVITATION_DAYS),
            reason=reason.strip()[:300],
            access_expires_at=access_expires_at,
        )
        audit_record(
            actor=actor,
            organisation=organisation,
            action="invitation.create",
            target=invitation,
            after={
                "email_digest": digest,
                "kind": kind,
                "role": role,
                "expires_at": invitation.expires_at,
                "access_expires_at": access_expires_at,
                "reason": invitation.reason,
            },
        )
        _send_invitation(invitation, raw)
    return invitation


def invitation_revoke(*, actor: User | None, invitation: Invitation) -> Invitation:
    _require_admin(actor, invitation.organisation, "revoke invitations")
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if locked.status != Invitation.Status.PENDING:
            raise InvalidState("This invitation was already accepted or revoked.")
        locked.status, locked.decided_at = Invitation.Status.REVOKED, timezone.now()
        locked.save(update_fields=["status", "decided_at", "updated_at"])
        audit_record(
            actor=actor,
            organisation=locked.organisation,
            action="invitation.revoke",
            target=locked,
            after={"email_digest": locked.email_sha256, "kind": locked.kind, "role": locked.role},
        )
    return locked


def invitation_accept(
    *,
    actor: User | None,
    invitation: Invitation,
    new_account: dict[str, str] | None = None,
) -> User:
    """The invited person accepts: signed in as ``actor``, or, without an account, by opening one with the invited
    address (``new_account``: username, full_name, password). Returns the person who now holds the role.

    Single use: the invitation row is locked and must still be open, so two clicks cannot both succeed.
    """
    if (actor is None) == (new_account is None):
        raise ValidationFailed("Sign in to accept, or open an account.")
    with transaction.atomic():
        locked = Invitation.objects.select_for_update().select_related("organisation").get(pk=invitation.pk)
        if not locked.is_open:
            raise InvalidState("This invitation was used, revoked or has expired: ask for a new one.")
        if new_account is not None:
            person = _new_user(email=locked.email, **new_account)
            person.save()
        else:
            assert actor is not None
            person = actor
        if locked.kind == Invitation.Kind.AUDITOR_GRANT:
            AuditorGrant.objects.create(
                user=person,
                organisation=locked.organisation,
                granted_by=locked.invited_by,
                expires_at=locked.access_expires_at,
                reason=locked.reason,
            )
        else:
            Membership.objects.get_or_create(user=person, organisation=locked.organisation, role=locked.role)
        locked.status, locked.accepted_by, locked.decided_at = Invitation.Status.ACCEPTED, person, timezone.now()
        locked.save(update_fields=["status", "accepted_by", "decided_at", "updated_at"])
        audit_record(
            actor=person,
            organisation=locked.organisation,
            action="invitation.accept",
            target=locked,
            after={
                "user": person.username,
                "kind": locked.kind,
                "role": locked.role,
                "email_digest": locked.email_sha256,
                "account_created": new_account is not None,
            },
        )
    return person


def _sessions_end(*, actor: User, subject: User, rows: list[UserSession], action: str, after: dict[str, Any]) -> int:
    """Delete the tracking rows and the Django sessions behind them (the next request of each is anonymous)."""
    hashes = {row.key_hash for row in rows}
    with transaction.atomic():
        UserSession.objects.filter(key_hash__in=hashes).delete()
        ended = delete_django_sessions(hashes)
        # Digests of the session keys' hashes only: no device, address or key reaches the never-erased log.
        security_event_record(
            actor=actor,
            subject=subject,
            action=action,
            target=subject,
            after={**after, "sessions": len(rows), "ended": ended, "key_digests": sorted(h[:16] for h in hashes)},
        )
    return len(rows)


def user_session_revoke(*, actor: User, user_session: UserSession) -> int:
    """The person ends one of their own sessions (any device, this one included)."""
    if user_session.user_id != actor.id:
        raise NotFound()
    return _sessions_end(actor=actor, subject=actor, rows=[user_session], action="session.revoke", after={})


def user_sessions_revoke_others(*, actor: User, current_key_hash: str) -> int:
    """The person ends every session but the one they are using."""
    rows = list(UserSession.objects.filter(user=actor).exclude(key_hash=current_key_hash))
    return _sessions_end(actor=actor, subject=actor, rows=rows, action="session.revoke_others", after={})


def member_sessions_revoke(*, actor: User, organisation: Organisation, member: User) -> int:
    """An org admin signs a member out everywhere (a lost laptop, a departure); the member signs in again."""
    _require_admin(actor, organisation, "end a member's sessions")
    if not roles_in(member, organisation):
        raise NotFound()
    rows = list(UserSession.objects.filter(user=member))
    return _sessions_end(
        actor=actor, subject=member, rows=rows, action="session.revoke_member", after={"username": member.username}
    )
