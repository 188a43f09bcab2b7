"""The API of mitigation and row explanations on a real model: the budget preview, the confirmation a reduction
needs, and an explanation read back by a steward but by no auditor or board member (it shows one person's values)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from apps.training.models import BudgetEntry, PrivacyBudget, TrainingRun
from tests.conftest import run_inline

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_reduction_is_previewed_then_launched_only_with_the_previewed_epsilon(original, steward):
    api = client_for(steward)
    body = {"model_version": str(original.id), "method": "reductions", "max_calls": 3, "epsilon_per_call": 0.3}
    preview = api.post("/api/v1/mitigations/preview/", body, format="json")
    assert preview.status_code == 200
    plan = preview.json()
    budget = PrivacyBudget.objects.get()
    assert plan["calls"] == 3 and plan["fits"] is True
    assert plan["budget"]["remaining"] == pytest.approx(budget.remaining)
    assert plan["per_call"]["epsilon"] <= 0.3 < plan["epsilon"] < 3 * 0.3
    assert plan["dataset_composed_after"] > budget.composed_spent

    refused = api.post("/api/v1/mitigations/", body, format="json")
    assert refused.status_code == 409 and refused.json()["error"]["details"]["plan"]["epsilon"] == plan["epsilon"]
    assert not TrainingRun.objects.filter(spec__mitigation__isnull=False).exists()

    launched = api.post("/api/v1/mitigations/", {**body, "confirm_epsilon": plan["epsilon"]}, format="json")
    assert launched.status_code == 202
    run = TrainingRun.objects.get(id=launched.json()["id"])
    assert run.spec["mitigation"]["parent"] == str(original.id) and run.spec["target_epsilon"] == 0.3
    assert BudgetEntry.objects.get(run=run, kind="reserve").epsilon == pytest.approx(plan["epsilon"])


def test_thresholds_preview_spends_nothing_and_names_the_validation_rows(original, owner):
    body = {"model_version": str(original.id), "method": "thresholds", "constraint": "equalized_odds"}
    plan = client_for(owner).post("/api/v1/mitigations/preview/", body, format="json").json()
    assert plan["epsilon"] == 0 and plan["fits"] is True and plan["attribute"] == "sex"
    assert plan["validation_rows"] == len(original.training_run.split["validation"])
    assert "validation rows" in plan["note"] and "not protected by epsilon" in plan["note"]


def test_a_steward_reads_a_row_explanation_while_auditors_and_board_members_neither_read_nor_ask(
    original, owner, steward, auditor, board_member
):
    asked = client_for(owner).post(
        "/api/v1/row-explanations/", {"model_version": str(original.id), "position": 2}, format="json"
    )
    assert asked.status_code == 202 and asked.json()["position"] == 2 and asked.json()["status"] == "queued"
    run_inline(asked.json()["id"])
    url = f"/api/v1/row-explanations/{asked.json()['id']}/"
    read = client_for(steward).get(url)
    assert read.status_code == 200
    explanation = read.json()["explanation"]
    assert explanation["position"] == 2 and explanation["model_version"] == str(original.id)
    assert len(explanation["contributions"]) == len(original.training_run.spec["features"])
    for reader in (auditor, board_member):
        assert client_for(reader).get(url).status_code == 404
        denied = client_for(reader).post(
            "/api/v1/row-explanations/", {"model_version": str(original.id)}, format="json"
        )
        assert denied.status_code == 403
