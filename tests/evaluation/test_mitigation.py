"""Mitigated candidates and explanations of held-out rows, through the real services and job lifecycle.

Every expected figure is computed here independently from the stored artifacts (a torch forward pass, fairlearn's
metrics, the fitted thresholds read back from the manifest), never copied from the code's own output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from django.conf import settings
from fairlearn.metrics import demographic_parity_difference

from apps.audit.models import AuditEvent
from apps.core.errors import AttestError, NotFound, PermissionDenied
from apps.datasets.services import read_version_table
from apps.ethics.bindings import model_bindings
from apps.evaluation.mitigation import mitigation_plan, mitigation_request, row_explanation_request
from apps.evaluation.models import Evaluation
from apps.evaluation.selectors import comparison, explanation_baseline_for
from apps.training.models import BudgetEntry, ModelVersion, PrivacyBudget
from tests.conftest import run_inline
from workers.engine.training.artifacts import decide, load_model
from workers.engine.training.data import encode_labels, transform
from workers.engine.training.noise import SOURCE as NOISE_SOURCE

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def frame_of(model: ModelVersion) -> pd.DataFrame:
    return read_version_table(model.training_run.dataset_version).to_pandas()


def logits_of(model: ModelVersion, rows: pd.DataFrame) -> np.ndarray:
    """The stored network's logit for each row: a plain forward pass of its weights, nothing of the engine's."""
    network, prep, _manifest = load_model(Path(settings.STORAGE_ROOT) / model.storage_path)
    with torch.no_grad():
        return network(torch.from_numpy(transform(rows, prep)))[:, 0].double().numpy()


def positive_probability(scores: np.ndarray, groups: np.ndarray, fitted: dict) -> np.ndarray:
    """fairlearn's InterpolatedThresholder, written out from the fitted record: per group, positive with probability
    (1 - p_ignore) * (p_high [s > t_high] + (1 - p_high) [s > t_low]) + p_ignore * constant."""
    out = np.full(len(scores), np.nan)
    for name, group in fitted["groups"].items():
        rows = groups == name
        p_high, p_ignore = group["p_high"], group["p_ignore"] or 0.0
        mixed = p_high * (scores[rows] > float(group["threshold_high"])) + (1 - p_high) * (
            scores[rows] > float(group["threshold_low"])
        )
        out[rows] = (1 - p_ignore) * mixed + p_ignore * (group["prediction_constant"] or 0.0)
    return out


def sigmoid(values: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-values))


def test_a_threshold_candidate_is_its_own_version_fitted_on_validation_rows_and_its_evaluation_applies_them(
    original, steward
):
    run = mitigation_request(
        actor=steward, model_version=original, method="thresholds", constraint="demographic_parity", attribute="sex"
    )
    assert BudgetEntry.objects.filter(run=run).count() == 0  # post-processing reserves nothing
    run_inline(run.job_id)
    run.refresh_from_db()
    candidate = run.model_version

    # Its own version: new number, new artifact identity, the parent named, the same held-out rows.
    assert candidate.parent == original and candidate.number == original.number + 1
    assert candidate.sha256 != original.sha256 and candidate.storage_path != original.storage_path
    assert candidate.manifest["mitigation"] == candidate.mitigation
    assert candidate.manifest["parent_model_sha256"] == original.sha256
    assert run.split == original.training_run.split
    assert candidate.manifest["privacy"]["epsilon"] == pytest.approx(original.training_run.privacy["epsilon"])
    assert PrivacyBudget.objects.get().composed_spent == pytest.approx(original.training_run.privacy["epsilon"])

    # Fitted on the validation rows, and only them: the per-group counts are the validation rows' groups.
    split = original.training_run.split
    frame = frame_of(original)
    validation, test = frame.iloc[split["validation"]], frame.iloc[split["test"]]
    fitted = candidate.mitigation["fitted"]
    assert candidate.mitigation["fitted_on"] == {
        "part": "validation",
        "rows": len(validation),
        "split_sha256": split["sha256"],
    }
    assert {name: g["count"] for name, g in fitted["groups"].items()} == validation["sex"].value_counts().to_dict()

    # The candidate's evaluation judges the same test rows with the thresholds applied.
    evaluation = Evaluation.objects.get(model_version=candidate)
    run_inline(evaluation.job_id)
    evaluation.refresh_from_db()
    parent_results = original.evaluations.get().results
    results = evaluation.results
    assert results["rows"] == len(test) and results["decided_by"] == "mitigation"
    scores = sigmoid(logits_of(original, test))
    sex = test["sex"].astype(str).to_numpy()
    probability = positive_probability(scores, sex, fitted)
    assert not np.isnan(probability).any()
    by_sex = next(g for g in results["groupings"] if g["name"] == "sex")
    for row in by_sex["groups"]:
        members = sex == row["group"]
        selected = round(row["selection_rate"] * row["count"])
        # Rows certain to be positive are, rows that cannot be are not; the random middle is drawn as fitted.
        assert (probability[members] == 1).sum() <= selected <= (probability[members] > 0).sum()
        expected = probability[members].sum()
        spread = np.sqrt((probability[members] * (1 - probability[members])).sum())
        assert abs(selected - expected) <= 4 * spread + 1
    parent_positive = int((scores >= 0.5).sum())  # the parent decides at 0.5, as its own evaluation recorded
    matrix = parent_results["overall"]["confusion_matrix"]
    assert matrix["tp"] + matrix["fp"] == parent_positive
    candidate_matrix = results["overall"]["confusion_matrix"]
    assert candidate_matrix != matrix  # the thresholds changed decisions

    # On the validation rows it was fitted on, the disparity it targets drops (fairlearn's metric, independent).
    labels = encode_labels(validation, load_model(Path(settings.STORAGE_ROOT) / original.storage_path)[1])
    validation_scores = sigmoid(logits_of(original, validation))
    before = demographic_parity_difference(
        labels, (validation_scores >= 0.5).astype(int), sensitive_features=validation["sex"]
    )
    network, prep, manifest = load_model(Path(settings.STORAGE_ROOT) / candidate.storage_path)
    decided = decide(
        network,
        prep,
        manifest,
        validation,
        np.stack([1 - validation_scores, validation_scores], axis=1),
        rng=np.random.default_rng(1),
    )
    after = demographic_parity_difference(labels, decided, sensitive_features=validation["sex"])
    assert after < before / 2
    expected_rates = pd.Series(
        positive_probability(validation_scores, validation["sex"].astype(str).to_numpy(), fitted)
    )
    assert np.ptp(expected_rates.groupby(validation["sex"].to_numpy()).mean()) < 0.02

    # The comparison reads both evaluations; the candidate can go to review with its parent in the bindings.
    compared = comparison(candidate)
    assert [row["model"] for row in compared["rows"]] == [original, candidate]
    assert compared["rows"][1]["accuracy"] == results["overall"]["accuracy"]
    binding = model_bindings(candidate)["mitigation"]
    assert binding["parent"]["sha256"] == original.sha256 and binding["method"] == "thresholds"
    assert "mitigation" not in model_bindings(original)


def test_mitigation_is_for_stewards_owners_and_admins_of_the_organisation(original, board_member, outsider):
    with pytest.raises(PermissionDenied):
        mitigation_request(actor=board_member, model_version=original, method="thresholds")
    with pytest.raises(NotFound):
        mitigation_request(actor=outsider, model_version=original, method="thresholds")


def test_a_reduction_says_what_it_spends_and_is_refused_when_the_budget_cannot_cover_it(original, owner):
    budget = PrivacyBudget.objects.get()
    remaining = budget.remaining
    plan = mitigation_plan(actor=owner, model_version=original, method="reductions", max_calls=5, epsilon_per_call=1.5)
    # Five calls of epsilon 1.5 compose to more than one call and less than the plain sum (PLD composition).
    assert plan["calls"] == 5 and plan["per_call"]["epsilon"] <= 1.5
    assert 1.5 < plan["epsilon"] < 5 * 1.5 and plan["epsilon"] > remaining and plan["fits"] is False
    with pytest.raises(AttestError) as unconfirmed:
        mitigation_request(actor=owner, model_version=original, method="reductions", max_calls=5, epsilon_per_call=1.5)
    assert unconfirmed.value.code == "conflict"
    with pytest.raises(AttestError) as refused:
        mitigation_request(
            actor=owner,
            model_version=original,
            method="reductions",
            max_calls=5,
            epsilon_per_call=1.5,
            confirm_epsilon=plan["epsilon"],
        )
    assert refused.value.code == "budget_exceeded"
    budget.refresh_from_db()
    assert (
        budget.reserved == 0
        and not BudgetEntry.objects.filter(kind="reserve").exclude(run=original.training_run).exists()
    )


def test_the_explanation_of_a_held_out_row_reconstructs_its_logit_and_the_audit_keeps_only_its_position(
    original, owner
):
    before = AuditEvent.objects.order_by("-id").first().id
    job = row_explanation_request(actor=owner, model_version=original, position=7)
    ended = run_inline(job)
    result = ended.result
    frame = frame_of(original)
    row = frame.iloc[[original.training_run.split["test"][6]]]  # position 7 is the seventh held-out row

    # The stored network's logit for the row and for the evaluation's baseline input, computed here.
    network, prep, _manifest = load_model(Path(settings.STORAGE_ROOT) / original.storage_path)
    baseline = explanation_baseline_for(original)
    assert baseline is not None and result["baseline_source"] == "evaluation"
    with torch.no_grad():
        network = network.double()
        row_logit = float(network(torch.from_numpy(transform(row, prep)).double())[0, 0])
        baseline_logit = float(network(torch.tensor([baseline], dtype=torch.float64))[0, 0])
    contributions = sum(item["contribution"] for item in result["contributions"])
    assert contributions + baseline_logit == pytest.approx(row_logit, abs=1e-4)
    assert result["prediction"] == pytest.approx(1 / (1 + np.exp(-row_logit)), abs=1e-6)
    assert {item["feature"] for item in result["contributions"]} == set(original.training_run.spec["features"])
    assert result["reasons"] and len(result["reasons"]) <= 3
    assert abs(result["reasons"][0]["contribution"]) == max(abs(i["contribution"]) for i in result["contributions"])

    # The request's event names the model and the position; no event holds the row's values or the explanation.
    events = list(AuditEvent.objects.filter(id__gt=before))
    request_event = next(e for e in events if e.action == "model.explain_row")
    assert request_event.after["position"] == 7 and request_event.object_id == str(original.id)
    text = json.dumps([e.after for e in events] + [e.before for e in events], default=str)
    assert str(row["marital-status"].iloc[0]) not in text
    assert f"{result['prediction']}" not in text and f"{result['contributions'][0]['contribution']}" not in text


def test_a_random_row_is_chosen_among_the_held_out_rows_and_a_position_outside_them_is_refused(original, steward):
    held_out = len(original.training_run.split["test"])
    job = row_explanation_request(actor=steward, model_version=original)
    assert 1 <= job.spec["position"] <= held_out
    with pytest.raises(AttestError):
        row_explanation_request(actor=steward, model_version=original, position=held_out + 1)


def pld_epsilon(mechanisms: list[tuple[float, float, int]], delta: float) -> float:
    """dp_accounting's PLD of the Poisson-subsampled Gaussian, composed here on a fine fixed grid (not the project's
    adaptive accountant): an independent figure for the ledger to match."""
    from dp_accounting.pld import privacy_loss_distribution as pld

    composed = None
    for sigma, rate, steps in mechanisms:
        run = pld.from_gaussian_mechanism(
            standard_deviation=sigma,
            sensitivity=1.0,
            sampling_prob=rate,
            use_connect_dots=True,
            pessimistic_estimate=True,
            value_discretization_interval=1e-4,
        ).self_compose(steps)
        composed = run if composed is None else composed.compose(run)
    return float(composed.get_epsilon_for_delta(delta))


def test_a_reduction_within_the_budget_commits_the_composed_spend_of_its_private_trainings(original, owner):
    parent_privacy = original.training_run.privacy
    plan = mitigation_plan(actor=owner, model_version=original, method="reductions", max_calls=2, epsilon_per_call=0.5)
    assert plan["fits"] and plan["constraint"] == "demographic_parity"  # the policy's gate is on demographic parity
    run = mitigation_request(
        actor=owner,
        model_version=original,
        method="reductions",
        max_calls=2,
        epsilon_per_call=0.5,
        confirm_epsilon=plan["epsilon"],
    )
    reserve = BudgetEntry.objects.get(run=run, kind="reserve")
    assert reserve.epsilon == pytest.approx(plan["epsilon"])
    assert PrivacyBudget.objects.get().reserved == pytest.approx(plan["epsilon"])
    run_inline(run.job_id)
    run.refresh_from_db()
    candidate = run.model_version
    calls = candidate.mitigation["calls"]
    assert 1 <= calls <= 2 and len(run.planned["calls"]) == calls
    # Every learner call drew its sampling and noise from the CSPRNG, never from the published seed.
    assert all(call["noise_source"] == NOISE_SOURCE for call in run.planned["calls"])
    assert run.privacy["noise_source"] == NOISE_SOURCE and not candidate.noise_is_seeded
    assert candidate.parent == original and candidate.sha256 != original.sha256
    weights = candidate.mitigation["weights"]
    assert weights and sum(weights) == pytest.approx(1.0)

    # The ledger: the reservation is replaced by a commit of every call composed; the dataset's spend composes the
    # original run and these calls.
    commit = BudgetEntry.objects.get(run=run, kind="commit")
    per_call = plan["per_call"]
    assert commit.noise_multiplier == pytest.approx(per_call["noise_multiplier"])
    assert commit.sample_rate == pytest.approx(per_call["sample_rate"])
    assert commit.steps == calls * per_call["steps"]
    delta = PrivacyBudget.objects.get().delta
    alone = pld_epsilon([(per_call["noise_multiplier"], per_call["sample_rate"], calls * per_call["steps"])], delta)
    assert commit.epsilon == pytest.approx(alone, abs=0.01)
    assert commit.epsilon <= plan["epsilon"] + 1e-9  # never more than was reserved and confirmed
    budget = PrivacyBudget.objects.get()
    together = pld_epsilon(
        [
            (parent_privacy["noise_multiplier"], parent_privacy["sample_rate"], parent_privacy["steps"]),
            (per_call["noise_multiplier"], per_call["sample_rate"], calls * per_call["steps"]),
        ],
        delta,
    )
    assert budget.composed_spent == pytest.approx(together, abs=0.01) and budget.reserved == 0
    assert parent_privacy["epsilon"] < budget.composed_spent < parent_privacy["epsilon"] + commit.epsilon

    # The mixture loads as its members and is evaluated on the same held-out rows with its randomised decisions.
    network, _prep, manifest = load_model(Path(settings.STORAGE_ROOT) / candidate.storage_path)
    assert len(list(network.members)) == len(weights) and manifest["mitigation"]["method"] == "reductions"
    evaluation = Evaluation.objects.get(model_version=candidate)
    run_inline(evaluation.job_id)
    evaluation.refresh_from_db()
    assert evaluation.results["decided_by"] == "mitigation"
    assert evaluation.results["rows"] == len(original.training_run.split["test"])
    assert evaluation.audit["proven_epsilon"] == pytest.approx(commit.epsilon)


def test_a_reduction_that_fails_after_one_training_commits_that_training_and_releases_the_rest(original, owner):
    from apps.jobs import registry
    from apps.training.services import training_run_started

    plan = mitigation_plan(actor=owner, model_version=original, method="reductions", max_calls=3, epsilon_per_call=0.4)
    run = mitigation_request(
        actor=owner,
        model_version=original,
        method="reductions",
        max_calls=3,
        epsilon_per_call=0.4,
        confirm_epsilon=plan["epsilon"],
    )
    per_call = plan["per_call"]
    kind = registry.get("mitigation")
    original_run = kind.run

    def one_call_then_crash(ctx, spec):
        # As the worker records a call before its first step, then dies in the middle of it.
        mechanism = {k: per_call[k] for k in ("noise_multiplier", "sample_rate", "steps")}
        mechanism["noise_source"] = NOISE_SOURCE
        training_run_started(run=run, planned={"calls": [mechanism], "calls_started": 1})
        raise KeyError("worker lost")

    object.__setattr__(kind, "run", one_call_then_crash)
    try:
        run_inline(run.job_id, expect="failed")
    finally:
        object.__setattr__(kind, "run", original_run)
    run.refresh_from_db()
    assert run.status == "stopped" and "1 learner call(s) ran" in run.error
    assert run.privacy["noise_source"] == NOISE_SOURCE and not run.noise_is_seeded  # no false "seeded noise" badge
    assert not ModelVersion.objects.filter(training_run=run).exists()
    commit = BudgetEntry.objects.get(run=run, kind="commit")
    delta = PrivacyBudget.objects.get().delta
    one_call = pld_epsilon([(per_call["noise_multiplier"], per_call["sample_rate"], per_call["steps"])], delta)
    assert commit.steps == per_call["steps"] and commit.epsilon == pytest.approx(one_call, abs=0.01)
    assert commit.epsilon < plan["epsilon"]  # the two calls that never started are released
    budget = PrivacyBudget.objects.get()
    assert budget.reserved == 0 and budget.naive_spent == pytest.approx(
        original.training_run.privacy["epsilon"] + commit.epsilon
    )
