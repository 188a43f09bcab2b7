"""Explanations, the counterfactual probe and the robustness suite inside the evaluation job: held-out rows only,
aggregates only, robustness gates in the verdict (a failing one fails it, one that cannot be evaluated is never a
pass), and the sections on the evaluation page and in the API."""

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_request
from apps.training.services import training_run_request
from apps.usecases.services import usecase_create
from tests.conftest import run_inline
from tests.ethics.factories import approve_by_board
from tests.training.conftest import FEATURES, run_spec
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db

# Noise of four standard deviations on every numeric feature: no informative model keeps its accuracy there.
LOUD_NOISE = 4.0


@pytest.fixture
def robustness_gates():
    return [{"kind": "gaussian_noise", "level": 0.25, "metric": "accuracy_drop", "max": 0.5}]


@pytest.fixture
def approved_usecase(org, owner, board_member, robustness_gates):
    """The shared fixture's use case, with a declared proxy and robustness gates (overridden per test)."""
    usecase = usecase_create(
        actor=owner,
        organisation=org,
        data=usecase_data(
            purpose="Service improvement",
            privacy_policy={"epsilon_cap": 5.0, "accountant": "pld", "max_consent_age_days": 30},
            fairness_policy={
                "sensitive_attributes": ["sex", "race"],
                "min_group_size": 30,
                "gates": [{"metric": "demographic_parity_difference", "threshold": 0.9}],
                "proxies": ["marital-status", "relationship", "no-such-column"],
                "robustness_gates": robustness_gates,
            },
        ),
    )
    return approve_by_board(usecase, board_member)


def train_and_evaluate(owner, version, **spec):
    # More epochs and a looser budget than the shared spec: a model that has learnt something, so noise can hurt it.
    run = training_run_request(
        actor=owner, version=version, spec=run_spec(target_epsilon=4.0, epochs=4, learning_rate=0.1, **spec)
    )
    run_inline(run.job_id)
    run.refresh_from_db()
    item = Evaluation.objects.get(model_version=run.model_version)
    run_inline(item.job_id)
    item.refresh_from_db()
    return run, item


def lists_in(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from lists_in(value)
    elif isinstance(node, list):
        yield node
        for value in node:
            yield from lists_in(value)


def test_the_job_explains_probes_and_perturbs_the_held_out_rows_only_and_keeps_aggregates(owner, prepared_version):
    run, item = train_and_evaluate(owner, prepared_version)
    results = item.results
    held_out = len(run.split["test"])
    assert item.status == "succeeded"
    explanations = results["explanations"]
    assert explanations["rows"] == held_out == results["rows"]
    assert explanations["method"] == "exact_linear_shapley"  # a logistic regression
    assert sorted(f["feature"] for f in explanations["features"]) == sorted(FEATURES)
    for feature in explanations["features"]:
        low, high = feature["permutation_importance"]["interval"]
        assert low <= feature["permutation_importance"]["mean"] <= high
    # Per group of each sensitive attribute (not intersections), sizes adding up to the held-out rows; a group under
    # the policy's minimum carries its size and nothing else.
    by_group = explanations["by_group"]
    assert {g["attribute"] for g in by_group} == {"sex", "race"}
    assert sum(g["rows"] for g in by_group if g["attribute"] == "race") == held_out
    small = [g for g in by_group if g["rows"] < 30]
    assert small, "the 2,000-row Adult sample has race groups under 30 held-out rows"
    assert all(g["too_small"] and g["features"] is None and g["largest_gap"] is None for g in small)
    # Aggregates only: no list as long as the rows (no per-row attribution, prediction or score is stored).
    assert max(len(values) for values in lists_in(explanations)) < held_out

    probes = {entry["attribute"]: entry for entry in results["counterfactual"]}
    assert list(probes) == ["sex", "race", "marital-status", "relationship", "no-such-column"]
    assert probes["sex"]["rows"] == held_out and 0 <= probes["sex"]["changed_share"] <= 1
    assert sum(g["rows"] for g in probes["sex"]["by_group"]) == held_out
    assert probes["marital-status"]["rows"] == held_out  # a declared proxy the model uses
    assert probes["race"]["not_a_feature"] and probes["relationship"]["not_a_feature"]  # in the data, not features
    assert probes["no-such-column"] == {"attribute": "no-such-column", "not_a_feature": True, "not_in_data": True}

    robustness = results["robustness"]
    assert robustness["rows"] == held_out
    assert robustness["baseline"]["accuracy"] == pytest.approx(results["overall"]["accuracy"])
    kinds = {entry["kind"] for entry in robustness["perturbations"]}
    assert kinds == {"gaussian_noise", "category_flip", "missing", "fgsm", "pgd"}
    # The gated fairness metric is followed under every perturbation.
    assert all("demographic_parity_difference" in entry["fairness"] for entry in robustness["perturbations"])
    [gate] = results["robustness_gates"]
    assert gate["status"] == "pass" and results["robustness_verdict"] == "pass"
    assert results["verdict"] == item.verdict == results["fairness_verdict"] == "pass"


def test_an_external_test_set_is_explained_and_perturbed_on_its_own_rows(owner, prepared_version):
    run, _held_out = train_and_evaluate(owner, prepared_version)
    external = prepared_version.parent  # the raw upload: every column the model needs, rows it may have seen or not
    item = evaluation_request(actor=owner, model_version=run.model_version, dataset_version=external)
    run_inline(item.job_id)
    item.refresh_from_db()
    assert item.kind == "external" and item.audit == {}
    results = item.results
    assert results["rows"] == results["explanations"]["rows"] == results["robustness"]["rows"] == external.row_count
    assert results["counterfactual"][0]["rows"] == external.row_count


@pytest.mark.parametrize(
    "robustness_gates",
    [[{"kind": "gaussian_noise", "level": LOUD_NOISE, "metric": "accuracy_drop", "max": 0.0}]],
)
def test_a_tight_robustness_gate_fails_the_verdict_while_the_fairness_gates_pass(owner, prepared_version):
    _run, item = train_and_evaluate(owner, prepared_version)
    results = item.results
    [gate] = results["robustness_gates"]
    [loud] = [
        e for e in results["robustness"]["perturbations"] if e["kind"] == "gaussian_noise" and e["level"] == LOUD_NOISE
    ]  # the gate's level is tried even though it is not one of the defaults
    assert gate["value"] == pytest.approx(results["robustness"]["baseline"]["accuracy"] - loud["accuracy"])
    assert gate["value"] > 0 and gate["status"] == "fail"
    assert results["fairness_verdict"] == "pass" and results["robustness_verdict"] == "fail"
    assert item.verdict == "fail"


@pytest.mark.parametrize(
    "robustness_gates", [[{"kind": "category_flip", "level": 0.1, "metric": "accuracy_drop", "max": 0.5}]]
)
def test_a_robustness_gate_that_cannot_be_evaluated_is_unknown_never_a_pass(owner, prepared_version):
    # Numeric features only: there is no category to flip, so the gate cannot be judged.
    _run, item = train_and_evaluate(owner, prepared_version, features=["age", "education-num", "hours-per-week"])
    results = item.results
    [gate] = results["robustness_gates"]
    assert gate["status"] == "unknown" and gate["value"] is None
    assert "categorical" in gate["reason"]
    assert results["fairness_verdict"] == "pass"
    assert item.verdict == "unknown"


@pytest.mark.parametrize("robustness_gates", [[]])
def test_a_multiclass_model_says_explanations_are_out_of_scope_and_still_gets_robustness(owner, prepared_version):
    run, item = train_and_evaluate(owner, prepared_version, label="marital-status", features=["age", "sex"])
    results = item.results
    assert item.status == "succeeded"
    assert results["explanations"] is None and results["counterfactual"] == []
    assert any("out of scope" in note for note in results["notes"])
    assert results["robustness"]["rows"] == len(run.split["test"])
    assert all(entry["fairness"] == {} for entry in results["robustness"]["perturbations"])


@pytest.mark.parametrize(
    "robustness_gates",
    [[{"kind": "gaussian_noise", "level": LOUD_NOISE, "metric": "accuracy_drop", "max": 0.0}]],
)
def test_the_page_and_the_api_show_the_sections_with_small_groups_hidden(client, owner, outsider, prepared_version):
    _run, item = train_and_evaluate(owner, prepared_version)
    client.force_login(owner)
    page = client.get(reverse("evaluation:detail", args=[item.id])).content.decode()
    assert "Explanations: what the model weighs" in page
    assert "Exact Shapley values (linear model)" in page  # the method, named and explained
    assert page.count('role="img"') >= 6  # importance, two group comparisons, the probes, five perturbation kinds
    # Each small race group is listed as too few rows, with its size and no figure.
    small = [g for g in item.results["explanations"]["by_group"] if g["too_small"]]
    for group in small:
        row = page[page.index(f'<th scope="row">{group["group"]}</th><td class="num">{group["rows"]}</td>') :]
        assert row[: row.index("</tr>")].count("too few rows") == 1
    assert "Counterfactual probe" in page and "declared proxy" in page
    assert "Gaussian noise: accuracy and fairness by level" in page
    assert "Accuracy drop under Gaussian noise at 4" in page and "badge-fail" in page
    assert "robustness gates (some fail)" in page

    api = APIClient()
    api.force_authenticate(owner)
    body = api.get(f"/api/v1/evaluations/{item.id}/").json()
    assert body["explanations"] == item.results["explanations"]
    assert body["robustness_gates"][0]["status"] == "fail"
    assert [p["attribute"] for p in body["counterfactual"]][:2] == ["sex", "race"]
    from tests.api.test_schema_matches_responses import openapi, validate

    documented = openapi()["paths"]["/api/v1/evaluations/{id}/"]["get"]["responses"]["200"]["content"]
    assert validate(json.loads(json.dumps(body)), documented["application/json"]["schema"]) == []
    api.force_authenticate(outsider)
    assert api.get(f"/api/v1/evaluations/{item.id}/").status_code == 404
