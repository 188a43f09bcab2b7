import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import PermissionDenied, ValidationFailed
from apps.evaluation.models import Evaluation
from apps.evaluation.services import evaluation_request
from apps.training.services import training_run_request
from apps.usecases.services import usecase_tighten_gate
from tests.conftest import run_inline
from tests.training.conftest import run_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(prepared_version, owner):
    run = training_run_request(actor=owner, version=prepared_version, spec=run_spec(target_epsilon=2.0))
    run_inline(run.job_id)
    run.refresh_from_db()
    return run.model_version


def test_a_finished_run_is_evaluated_on_its_held_out_rows_with_gates_and_an_audit(trained):
    item = Evaluation.objects.get(model_version=trained)  # queued automatically by the training run
    run_inline(item.job_id)
    item.refresh_from_db()
    results = item.results
    assert item.status == "succeeded" and item.kind == "held_out"
    assert results["rows"] == len(trained.training_run.split["test"])  # rows training never saw
    names = [g["name"] for g in results["groupings"]]
    assert names == ["sex", "race", "sex x race"]
    assert {gate["metric"] for gate in results["gates"]} == {"demographic_parity_difference"}
    assert item.verdict == ("pass" if results["gates"][0]["passed"] else "fail")
    audit = item.audit
    assert audit["proven_epsilon"] == pytest.approx(trained.training_run.privacy["epsilon"])
    assert 0 <= audit["empirical_epsilon_lower_bound"] <= audit["proven_epsilon"]
    assert audit["accounting_fault"] is False
    # Both attacks ran (the run has ~300 validation rows for reference models), each with sane figures, and the
    # headline is the stronger one.
    assert [a["attack"].split(" ")[0] for a in audit["attacks"]] == ["loss", "calibrated"]
    for attack in audit["attacks"]:
        assert 0 <= attack["tpr_at_fpr_0_001"] <= attack["tpr_at_fpr_0_01"] <= 1 and 0 <= attack["auc"] <= 1
        assert attack["members"] == attack["nonmembers"] == len(trained.training_run.split["test"])
        assert attack["empirical_epsilon_lower_bound"] <= audit["empirical_epsilon_lower_bound"]
    assert AuditEvent.objects.filter(action="evaluation.record", object_id=str(item.id)).count() == 1


def test_a_stricter_gate_turns_the_next_evaluation_red(trained, owner):
    first = Evaluation.objects.get(model_version=trained)
    run_inline(first.job_id)
    first.refresh_from_db()
    assert first.verdict == "pass"
    value = first.results["gates"][0]["value"]
    usecase_tighten_gate(
        actor=owner, usecase=trained.usecase, metric="demographic_parity_difference", threshold=value / 2
    )
    with pytest.raises(ValidationFailed):  # loosening is not allowed outside a draft
        usecase_tighten_gate(
            actor=owner, usecase=trained.usecase, metric="demographic_parity_difference", threshold=0.9
        )
    second = evaluation_request(actor=owner, model_version=trained)
    run_inline(second.job_id)
    second.refresh_from_db()
    assert second.verdict == "fail" and second.results["gates"][0]["passed"] is False
    assert second.policy_revision > first.policy_revision


def test_the_same_seed_reproduces_the_evaluation(trained, owner):
    first = Evaluation.objects.get(model_version=trained)
    run_inline(first.job_id)
    second = evaluation_request(actor=owner, model_version=trained)
    run_inline(second.job_id)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.results == second.results and first.audit == second.audit


def test_only_owners_and_admins_request_evaluations(trained, steward):
    with pytest.raises(PermissionDenied):
        evaluation_request(actor=steward, model_version=trained)


def test_a_multiclass_model_is_evaluated_per_group_without_binary_gates(prepared_version, owner):
    features = ["age", "education-num", "sex", "hours-per-week"]
    run = training_run_request(
        actor=owner,
        version=prepared_version,
        spec=run_spec(label="marital-status", features=features, target_epsilon=2.0),
    )
    run_inline(run.job_id)
    run.refresh_from_db()
    item = Evaluation.objects.get(model_version=run.model_version)
    run_inline(item.job_id)
    item.refresh_from_db()
    results = item.results
    assert item.status == "succeeded"
    assert 0 <= results["multiclass"]["accuracy"] <= 1
    assert [g["name"] for g in results["multiclass_groups"]] == ["sex", "race", "sex x race"]
    sex = results["multiclass_groups"][0]
    assert sum(row["count"] for row in sex["groups"]) == len(run.split["test"])
    # Binary gates cannot judge a multiclass model: with gates in the policy, the verdict says so (fail).
    assert item.verdict == "fail" and "binary" in results["note"]
