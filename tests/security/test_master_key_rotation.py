"""Rotating the master key re-wraps every stored secret, so the old key can be retired without losing any of them."""

from __future__ import annotations

import base64
import os

import pytest
from django.core.management import call_command

from apps.consent.models import PseudonymKey
from apps.consent.services import pseudonym_secret
from apps.core.keys import unwrap_secret, wrap_secret, wrapped_secret_fields
from apps.datasets.models import DatasetVersion
from apps.deployments.models import AlertWebhook, ProductionBatch
from apps.reports.models import SigningIdentity
from apps.reports.services import signing_identity

pytestmark = pytest.mark.django_db


def new_master_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_every_wrapped_secret_field_is_found():
    found = {(model, name) for model, name in wrapped_secret_fields()}
    # The secrets known when this test was written; the registry scan must find them all (and any added later).
    for expected in [
        (DatasetVersion, "wrapped_key"),
        (PseudonymKey, "wrapped_key"),
        (SigningIdentity, "wrapped_key"),
        (ProductionBatch, "wrapped_key"),
        (AlertWebhook, "wrapped_secret"),
    ]:
        assert expected in found


def test_after_rotation_the_old_key_can_be_retired(org, settings):
    secret = pseudonym_secret(org)
    identity = signing_identity(org)
    signing_key = unwrap_secret(identity.wrapped_key)
    webhook_secret = b"webhook-signing-secret"
    webhook = AlertWebhook.objects.create(
        organisation=org, url="https://alerts.example.org/hook", wrapped_secret=wrap_secret(webhook_secret).encode()
    )

    old_keys = list(settings.MASTER_KEYS)
    new_key = new_master_key()
    settings.MASTER_KEYS = [new_key, *old_keys]
    call_command("rotate_master_key")
    settings.MASTER_KEYS = [new_key]  # the old key is gone: only re-wrapped secrets still open

    assert unwrap_secret(PseudonymKey.objects.get(organisation=org).wrapped_key) == secret
    assert unwrap_secret(SigningIdentity.objects.get(pk=identity.pk).wrapped_key) == signing_key
    webhook.refresh_from_db()
    assert unwrap_secret(bytes(webhook.wrapped_secret).decode("ascii")) == webhook_secret
    for model, name in wrapped_secret_fields():
        for value in model.objects.values_list(name, flat=True):
            if value:
                text = bytes(value).decode("ascii") if isinstance(value, (bytes, memoryview)) else value
                unwrap_secret(text)  # raises if anything was left under the retired key
