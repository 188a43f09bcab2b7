"""Robustness gates and proxies in the fairness policy: validated by the robustness engine's own rules, edited beside
the fairness gates, refused in the form (next to the row) and in the API (in the one error shape), and saved through
the use case's revisions so the board's bindings notice."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core.errors import ValidationFailed
from apps.ethics.bindings import usecase_bindings
from apps.usecases.models import UseCase
from apps.usecases.policies import normalise_fairness_policy
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

GATE = {"kind": "gaussian_noise", "level": 0.25, "metric": "accuracy_drop", "max": 0.05}


def test_gates_typed_as_text_are_normalised_and_proxies_drop_repeats_and_sensitive_attributes():
    policy = normalise_fairness_policy(
        {
            "sensitive_attributes": ["sex"],
            "proxies": "marital-status, sex, relationship, marital-status",
            "robustness_gates": [{"kind": "fgsm", "level": "0.1", "metric": "demographic_parity_ratio", "max": "0.2"}],
        }
    )
    assert policy["proxies"] == ["marital-status", "relationship"]
    assert policy["robustness_gates"] == [
        {"kind": "fgsm", "level": 0.1, "metric": "demographic_parity_ratio", "max": 0.2}
    ]


def test_a_policy_without_them_keeps_its_old_shape_so_its_revision_hash_does_not_move():
    policy = normalise_fairness_policy({"sensitive_attributes": ["sex"]})
    assert "proxies" not in policy and "robustness_gates" not in policy


def test_the_engines_rules_name_each_bad_gate():
    with pytest.raises(ValidationFailed) as caught:
        normalise_fairness_policy(
            {
                "robustness_gates": [
                    GATE,
                    {"kind": "earthquake", "level": 0.1, "metric": "accuracy_drop", "max": 0.1},
                    {"kind": "missing", "level": 1.5, "metric": "accuracy_drop", "max": 0.1},
                    dict(GATE),
                ],
                "proxies": [3],
            }
        )
    errors = caught.value.details["fairness_policy"]
    assert set(errors) == {"robustness_gates", "proxies"}
    problems = errors["robustness_gates"]
    assert len(problems) == 3
    assert problems[0].startswith("robustness_gates[2]: unknown kind 'earthquake'")
    assert problems[1].startswith("robustness_gates[3]: level is a share of cells")
    assert problems[2].startswith("robustness_gates[4]:") and "gated twice" in problems[2]


@pytest.fixture
def draft(org, owner):
    return usecase_create(actor=owner, organisation=org, data=usecase_data())


def policy_form(usecase, **rows):
    """The policies form as the page posts it: the current policy, plus robustness rows given as row=(kind, level,
    metric, max)."""
    data = {
        "sensitive_attributes": "sex, race",
        "intersections": "on",
        "min_group_size": "30",
        "gate_demographic_parity_difference": "on",
        "threshold_demographic_parity_difference": "0.1",
        "epsilon_cap": "3.0",
        "delta": "",
        "accountant": "pld",
        "max_consent_age_days": "30",
        "proxies": "",
    }
    for index in range(1, 3):
        kind, level, metric, bound = rows.get(f"row{index}", ("", "", "accuracy_drop", ""))
        data.update(
            {
                f"robustness_{index}_kind": kind,
                f"robustness_{index}_level": level,
                f"robustness_{index}_metric": metric,
                f"robustness_{index}_max": bound,
            }
        )
    return data


@pytest.mark.django_db
def test_the_form_shows_the_engines_error_beside_the_row_and_saves_nothing(client, owner, draft):
    client.force_login(owner)
    url = reverse("usecases:policies", args=[draft.id])
    page = client.get(url).content.decode()
    # Labelled controls for every cell of the empty rows.
    for label in ("Robustness gate 1: perturbation", "Robustness gate 2: largest worsening allowed"):
        assert f">{label}</label>" in page
    data = policy_form(draft, row1=("", "", "accuracy_drop", ""), row2=("category_flip", "2", "accuracy_drop", "0.1"))
    response = client.post(url, data)
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["robustness_2_level"] == ["level is a share of cells for category_flip: at most 1"]
    assert "level is a share of cells for category_flip: at most 1" in response.content.decode()
    draft.refresh_from_db()
    assert draft.revision == 1 and "robustness_gates" not in draft.fairness_policy


@pytest.mark.django_db
def test_saving_gates_and_proxies_writes_a_revision_that_changes_the_bound_policies(client, owner, draft):
    before = usecase_bindings(draft)["policies"]["sha256"]
    client.force_login(owner)
    data = policy_form(draft, row2=("pgd", "0.1", "equalized_odds_difference", "0.05"))
    data["proxies"] = "marital-status"
    response = client.post(reverse("usecases:policies", args=[draft.id]), data)
    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.fairness_policy["robustness_gates"] == [
        {"kind": "pgd", "level": 0.1, "metric": "equalized_odds_difference", "max": 0.05}
    ]
    assert draft.fairness_policy["proxies"] == ["marital-status"]
    revision = draft.revisions.order_by("-number").first()
    assert revision.number == 2 and revision.changed_fields == ["fairness_policy"]
    assert usecase_bindings(draft)["policies"]["sha256"] != before
    # The page offers the saved gate for editing, plus empty rows to add more.
    form = client.get(reverse("usecases:policies", args=[draft.id])).context["form"]
    assert form["robustness_1_kind"].value() == "pgd" and form.robustness_row_count == 3
    detail = client.get(reverse("usecases:detail", args=[draft.id])).content.decode()
    assert "Equalised odds difference under PGD at level 0.1" in detail


@pytest.mark.django_db
def test_the_api_refuses_a_bad_gate_in_the_one_error_shape(owner, draft):
    client = APIClient()
    client.force_authenticate(owner)
    policy = {**draft.fairness_policy, "robustness_gates": [{**GATE, "max": 2}]}
    response = client.patch(f"/api/v1/usecases/{draft.id}/", {"fairness_policy": policy}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert error["details"]["fairness_policy"]["robustness_gates"] == [
        "robustness_gates[1]: max must be a number between 0 and 1"
    ]
    assert UseCase.objects.get(pk=draft.pk).revision == 1
    good = client.patch(
        f"/api/v1/usecases/{draft.id}/", {"fairness_policy": {**policy, "robustness_gates": [GATE]}}, format="json"
    )
    assert good.status_code == 200 and good.json()["fairness_policy"]["robustness_gates"] == [GATE]
