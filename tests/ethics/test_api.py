"""The board through the API: a deployment review from request to decision, and the one error shape for refusals."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Membership, Role
from apps.usecases.services import usecase_tighten_gate
from tests.ethics.conftest import reevaluate
from tests.ethics.factories import set_board_rules

pytestmark = pytest.mark.django_db


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_deployment_review_through_the_api(org, owner, trained_model, board_member, board2, board3):
    set_board_rules(org, quorum=2)
    created = client_for(owner).post("/api/v1/reviews/", {"model_version": str(trained_model.id)}, format="json")
    assert created.status_code == 201, created.json()
    review = created.json()
    assert review["kind"] == "deployment"
    assert review["bindings"]["model"]["sha256"] == trained_model.sha256
    assert review["bindings"]["model_card"]["revision"] == 1
    url = f"/api/v1/reviews/{review['id']}/"
    assert (
        client_for(board3)
        .post(url + "recusal/", {"reason": "I built the feature pipeline."}, format="json")
        .status_code
        == 201
    )
    for member in (board_member, board2):
        response = client_for(member).post(
            url + "votes/", {"choice": "approve", "reason": "Gates pass."}, format="json"
        )
        assert response.status_code == 201, response.json()
    detail = client_for(owner).get(url).json()
    assert detail["status"] == "decided"
    assert detail["decision"]["outcome"] == "approved"
    assert detail["state"]["recused"] == [board3.username]
    assert [v["voter"] for v in detail["votes"]] == [board_member.username, board2.username]


def test_refusals_share_one_error_shape(org, owner, steward, approved_usecase, trained_model, board_member):
    Membership.objects.create(user=steward, organisation=org, role=Role.BOARD)
    usecase_tighten_gate(
        actor=owner, usecase=approved_usecase, metric="demographic_parity_difference", threshold=0.0001
    )
    reevaluate(trained_model, actor=owner)
    review = client_for(owner).post("/api/v1/reviews/", {"model_version": str(trained_model.id)}, format="json").json()
    url = f"/api/v1/reviews/{review['id']}/votes/"
    sod = client_for(steward).post(url, {"choice": "reject", "reason": "x"}, format="json")
    assert sod.status_code == 403
    assert sod.json()["error"]["code"] == "separation_of_duties"
    gate = client_for(board_member).post(url, {"choice": "approve", "reason": "ok"}, format="json")
    assert gate.status_code == 409
    assert gate.json()["error"]["code"] == "gate_failed"
    assert gate.json()["error"]["details"]["blocking"][0]["key"] == "gate:demographic_parity_difference"
    missing = client_for(board_member).post(url, {"choice": "approve"}, format="json")
    assert missing.status_code == 400 and "reason" in missing.json()["error"]["details"]
    waiver = client_for(owner).post(
        f"/api/v1/reviews/{review['id']}/waivers/",
        {
            "justification": "Known sampling noise; monthly monitoring agreed.",
            "expires_on": (timezone.localdate() + timedelta(days=400)).isoformat(),
        },
        format="json",
    )
    assert waiver.status_code == 400 and "expires_on" in waiver.json()["error"]["details"]
