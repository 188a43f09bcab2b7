"""Models whose DP noise came from the published seed (before the CSPRNG) are marked wherever their privacy guarantee
is shown, and a deployment review refuses to approve them."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.errors import AttestError
from apps.ethics.services import review_request_deployment, vote_cast
from apps.reports.content import annex_iv, model_card
from apps.training.models import ModelVersion, TrainingRun
from tests.ethics.factories import set_board_rules

pytestmark = pytest.mark.django_db


def as_trained_before_the_csprng(model: ModelVersion) -> ModelVersion:
    """Test set-up: rewrite the stored privacy records the way training wrote them before, without a noise source."""
    run = model.training_run
    privacy = {k: v for k, v in run.privacy.items() if k != "noise_source"}
    TrainingRun.objects.filter(pk=run.pk).update(privacy=privacy)
    ModelVersion.objects.filter(pk=model.pk).update(manifest={**model.manifest, "privacy": privacy})
    return ModelVersion.objects.select_related("training_run").get(pk=model.pk)


def report_text(content) -> str:
    return repr(content.sections)


def test_a_new_model_records_its_csprng_noise_source_and_is_not_marked(trained_model):
    assert trained_model.manifest["privacy"]["noise_source"] == "csprng-chacha20"
    assert trained_model.training_run.privacy["noise_source"] == "csprng-chacha20"
    assert trained_model.noise_is_seeded is False and trained_model.privacy_warning == ""
    assert "SEEDED NOISE" not in report_text(model_card(trained_model))


def test_a_deployment_review_refuses_to_approve_a_model_trained_with_seeded_noise(
    org, owner, trained_model, board_member
):
    set_board_rules(org, quorum=1, threshold=0.5, decides="settled")
    legacy = as_trained_before_the_csprng(trained_model)
    review = review_request_deployment(actor=owner, model_version=legacy)
    with pytest.raises(AttestError) as caught:
        vote_cast(actor=board_member, review=review, choice="approve", reason="Looks fine.")
    assert caught.value.code == "seeded_noise"
    assert "published seed" in caught.value.message
    assert not review.votes.exists()
    # Rejecting stays possible: the refusal is of approval only.
    vote_cast(actor=board_member, review=review, choice="reject", reason="Retrain with secure noise.")


def test_the_seeded_noise_mark_shows_in_the_api_pages_and_reports(org, owner, trained_model, board_member):
    legacy = as_trained_before_the_csprng(trained_model)
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/model-versions/{legacy.id}/").json()
    assert body["noise_is_seeded"] is True and "published seed" in body["privacy_warning"]
    run_body = api.get(f"/api/v1/training-runs/{legacy.training_run_id}/").json()
    assert run_body["noise_is_seeded"] is True

    browser = Client()
    browser.force_login(owner)
    for url in (
        reverse("training:run", args=[legacy.training_run_id]),
        reverse("training:home"),
        reverse("modelcards:edit", args=[legacy.id]),
    ):
        page = browser.get(url)
        assert page.status_code == 200
        assert "Seeded noise" in page.content.decode() or "seeded noise" in page.content.decode(), url

    review = review_request_deployment(actor=owner, model_version=legacy)
    member = Client()
    member.force_login(board_member)
    assert "published seed" in member.get(reverse("ethics:review", args=[review.id])).content.decode()

    assert "SEEDED NOISE" in report_text(model_card(legacy))
    assert "SEEDED NOISE" in report_text(annex_iv(legacy))
    assert model_card(legacy).evidence["training_run"]["noise_is_seeded"] is True
