import math

import numpy as np
import pytest

from workers.engine.explain._model import ExplanationError
from workers.engine.explain.attributions import explanation_baseline
from workers.engine.explain.local import explain_row, plain_value, reason_codes


def sigmoid(value):
    return 1 / (1 + math.exp(-value))


def test_reason_codes_lead_with_the_largest_contribution(mlp):
    rows = mlp.held_out.iloc[:25]
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    codes = reason_codes(mlp.model, mlp.prep, rows, baseline=baseline, top_k=3)
    assert len(codes) == len(rows)
    for i, row_codes in enumerate(codes):
        full = explain_row(mlp.model, mlp.prep, rows.iloc[[i]], baseline=baseline)["contributions"]
        largest = max(full, key=lambda c: abs(c["contribution"]))
        assert len(row_codes) == 3
        assert row_codes[0]["feature"] == largest["feature"]
        sizes = [abs(c["contribution"]) for c in row_codes]
        assert sizes == sorted(sizes, reverse=True)
        # The three shown are the three largest of all features.
        assert min(sizes) >= sorted((abs(c["contribution"]) for c in full), reverse=True)[2] - 1e-12
        for code in row_codes:
            assert code["direction"] == ("raises" if code["contribution"] > 0 else "lowers")
            assert code["value"] == plain_value(rows.iloc[i][code["feature"]])
            assert isinstance(code["value"], str)


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_contributions_and_the_baseline_reconstruct_the_rows_logit(kind, request):
    trained = request.getfixturevalue(kind)
    baseline = explanation_baseline(trained.prep, trained.held_out)
    baseline_logit = trained.logits(baseline.astype(np.float32)[None, :])[0]
    for index in (0, 11, 402):
        row = trained.held_out.iloc[[index]]
        explained = explain_row(trained.model, trained.prep, row, baseline=baseline)
        logit = trained.logits(trained.inputs(row))[0]
        total = sum(c["contribution"] for c in explained["contributions"])
        assert total + explained["baseline_logit"] == pytest.approx(logit, abs=1e-4)
        assert explained["prediction"] == pytest.approx(sigmoid(logit), abs=1e-6)
        assert explained["baseline_probability"] == pytest.approx(sigmoid(baseline_logit), abs=1e-6)
        assert explained["completeness_gap"] < 1e-4
        assert sorted(c["feature"] for c in explained["contributions"]) == sorted(trained.prep.feature_order)
        sizes = [abs(c["contribution"]) for c in explained["contributions"]]
        assert sizes == sorted(sizes, reverse=True)


def test_values_are_shown_as_the_person_gave_them(mlp):
    row = mlp.held_out.iloc[[3]].copy()
    row["age"] = 41.0
    row["occupation"] = None
    explained = explain_row(mlp.model, mlp.prep, row, baseline=explanation_baseline(mlp.prep, mlp.held_out))
    values = {c["feature"]: c["value"] for c in explained["contributions"]}
    assert values["age"] == "41"
    assert values["occupation"] == "(missing)"
    assert values["sex"] == row["sex"].iloc[0]


def test_a_baseline_stored_as_json_gives_the_same_reason_codes(mlp):
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    rows = mlp.held_out.iloc[:5]
    assert reason_codes(mlp.model, mlp.prep, rows, baseline=baseline.tolist()) == reason_codes(
        mlp.model, mlp.prep, rows, baseline=baseline
    )


def test_explain_row_takes_one_row(mlp):
    with pytest.raises(ExplanationError, match="one row"):
        explain_row(mlp.model, mlp.prep, mlp.held_out.iloc[:2], baseline=explanation_baseline(mlp.prep, mlp.held_out))
