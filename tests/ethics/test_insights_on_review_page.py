"""The board's one page shows the bound evaluation's explanations, counterfactual probe and robustness, and a failing
robustness gate blocks approval like a failing fairness gate until a waiver covers it."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.core.errors import AttestError
from apps.ethics.services import review_request_deployment, vote_cast, waiver_request
from tests.evaluation.test_explanations_in_evaluation import (  # noqa: F401 - fixtures used by name
    LOUD_NOISE,
    approved_usecase,
    robustness_gates,
    train_and_evaluate,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "robustness_gates", [[{"kind": "gaussian_noise", "level": LOUD_NOISE, "metric": "accuracy_drop", "max": 0.0}]]
)
def test_the_board_reads_explanations_and_robustness_and_a_failing_robustness_gate_blocks_approval(
    client, owner, board_member, prepared_version
):
    run, item = train_and_evaluate(owner, prepared_version)
    model = run.model_version
    assert item.results["fairness_verdict"] == "pass" and item.verdict == "fail"
    review = review_request_deployment(actor=owner, model_version=model)

    client.force_login(board_member)
    page = client.get(reverse("ethics:review", args=[review.id])).content.decode()
    evaluation_section = page[page.index('id="section-evaluation"') : page.index('id="section-modelcard"')]
    assert "Explanations: what the model weighs" in evaluation_section
    assert "Exact Shapley values (linear model)" in evaluation_section
    assert "Counterfactual probe" in evaluation_section
    assert "Gaussian noise: accuracy and fairness by level" in evaluation_section
    assert f"Accuracy drop under Gaussian noise at {LOUD_NOISE:g}" in evaluation_section
    # Headings sit one level under the section's own h2, and ids do not clash with the evaluation page's.
    assert '<h3 id="review-explanations-heading">' in evaluation_section
    small = [g for g in item.results["explanations"]["by_group"] if g["too_small"]]
    assert small and evaluation_section.count("too few rows</span> <span") == len(small)
    # The blocking list in the summary names the robustness gate.
    summary = page[: page.index('id="section-usecase"')]
    assert "Approval blocked" in summary and "Robustness: accuracy drop under gaussian noise at 4" in summary

    with pytest.raises(AttestError) as caught:
        vote_cast(actor=board_member, review=review, choice="approve", reason="Looks fine.")
    assert caught.value.code == "gate_failed" and "Robustness" in caught.value.message
    waiver = waiver_request(
        actor=owner,
        review=review,
        justification="Noise of four standard deviations is far outside the data's real measurement error.",
        expires_on=timezone.localdate() + timedelta(days=60),
    )
    assert [entry["key"] for entry in waiver.waived] == [f"robustness:gaussian_noise:{LOUD_NOISE:g}:accuracy_drop"]
