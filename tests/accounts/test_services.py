import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiToken, Membership, Role, User
from apps.accounts.selectors import organisation_ids_for, roles_in
from apps.accounts.services import (
    api_token_create,
    api_token_revoke,
    auditor_grant_create,
    auditor_grant_revoke,
    invitation_accept,
    invitation_create,
    invitation_revoke,
    membership_add,
    membership_remove,
    organisation_update,
    user_create,
)
from apps.audit.models import AuditEvent
from apps.core.errors import AttestError, InvalidState, NotFound, PermissionDenied, ValidationFailed
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


def test_each_service_writes_exactly_one_audit_event(org, admin_user, steward):
    newcomer = make_user("nina_new")
    before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    organisation_update(actor=admin_user, organisation=org, data={"dpo_name": "Dee"})
    membership = membership_add(actor=admin_user, organisation=org, user=steward, role=Role.BOARD)
    membership_remove(actor=admin_user, membership=membership)
    invitation = invitation_create(actor=admin_user, organisation=org, email="Nina@Example.org", role=Role.BOARD)
    invitation_accept(actor=newcomer, invitation=invitation)
    revoked = invitation_create(actor=admin_user, organisation=org, email="x@example.org", role=Role.OWNER)
    invitation_revoke(actor=admin_user, invitation=revoked)
    grant = auditor_grant_create(actor=None, organisation=org, user=newcomer, reason="audit")
    auditor_grant_revoke(actor=admin_user, grant=grant)
    token, _ = api_token_create(actor=admin_user, name="ci")
    api_token_revoke(actor=admin_user, token=token)
    user_create(
        actor=None,
        organisation=org,
        username="fresh",
        email="fresh@example.org",
        full_name="F",
        password="a-long-enough-passphrase-77",
        roles=[Role.STEWARD],
    )
    # Events of several chains (the organisation's, the platform's for tokens): in the order they were written.
    actions = list(AuditEvent.objects.filter(id__gt=before).order_by("id").values_list("action", flat=True))
    assert actions == [
        "organisation.update",
        "membership.add",
        "membership.remove",
        "invitation.create",
        "invitation.accept",
        "invitation.create",
        "invitation.revoke",
        "auditor_grant.create",
        "auditor_grant.revoke",
        "api_token.create",
        "api_token.revoke",
        "user.create",
    ]


def test_non_admins_are_refused_and_outsiders_get_not_found(org, owner, steward, outsider):
    with pytest.raises(PermissionDenied):
        membership_add(actor=owner, organisation=org, user=steward, role=Role.ADMIN)
    with pytest.raises(NotFound):
        membership_add(actor=outsider, organisation=org, user=steward, role=Role.ADMIN)
    with pytest.raises(PermissionDenied):
        invitation_create(actor=owner, organisation=org, email="x@example.org", role=Role.ADMIN)
    assert not Membership.objects.filter(user=steward, role=Role.ADMIN).exists()


def test_the_last_org_admin_cannot_be_removed(org, admin_user):
    membership = Membership.objects.get(user=admin_user, role=Role.ADMIN)
    with pytest.raises(InvalidState):
        membership_remove(actor=admin_user, membership=membership)
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_a_role_cannot_be_given_twice(org, admin_user, steward):
    with pytest.raises(AttestError) as caught:
        membership_add(actor=admin_user, organisation=org, user=steward, role=Role.STEWARD)
    assert caught.value.code == "conflict"


def test_tokens_are_stored_only_as_hashes_and_the_secret_is_returned_once(admin_user):
    token, secret = api_token_create(actor=admin_user, name="ci")
    stored = ApiToken.objects.get(pk=token.pk)
    assert stored.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in str(stored.__dict__)
    event = AuditEvent.objects.get(action="api_token.create")
    assert secret not in str(event.after) and stored.key_hash not in str(event.after)


def test_a_weak_password_is_refused_with_the_validators_reasons(org, admin_user):
    with pytest.raises(ValidationFailed) as caught:
        user_create(
            actor=None,
            organisation=org,
            username="weak",
            email="w@example.org",
            full_name="W",
            password="password",
            roles=[Role.OWNER],
        )
    assert "password" in caught.value.details
    assert not User.objects.filter(username="weak").exists()


def test_an_auditor_grant_gives_read_access_until_it_expires_or_is_revoked(org, admin_user):
    regulator = make_user("rita_regulator")
    grant = auditor_grant_create(
        actor=None, organisation=org, user=regulator, expires_at=timezone.now() + timedelta(days=1)
    )
    assert roles_in(regulator, org) == {Role.AUDITOR}
    grant.expires_at = timezone.now() - timedelta(seconds=1)
    grant.save()
    assert org.id not in organisation_ids_for(regulator)
    with pytest.raises(ValidationFailed):
        auditor_grant_create(
            actor=None, organisation=org, user=regulator, expires_at=timezone.now() - timedelta(days=1)
        )
