import copy
import json

import numpy as np
import pytest
import torch

from tests.workers.engine.explain.conftest import columns_of
from workers.engine.explain._model import ExplanationError
from workers.engine.explain.attributions import attributions, explanation_baseline
from workers.engine.explain.global_ import explain_global
from workers.engine.training.data import encode_labels


def without_feature(trained, feature):
    """A copy of the model whose first layer ignores ``feature`` (its input weights set to zero)."""
    model = copy.deepcopy(trained.model)
    with torch.no_grad():
        model[0].weight[:, columns_of(trained.prep, feature)] = 0.0
    return model


def explain(trained, model=None, **kwargs):
    rows = trained.held_out
    arguments = {"labels": encode_labels(rows, trained.prep), "sensitive": ["sex", "race"], "seed": 0, **kwargs}
    return explain_global(model or trained.model, trained.prep, rows, **arguments)


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_permutation_importance_is_zero_for_an_ignored_feature_and_positive_for_an_influential_one(kind, request):
    trained = request.getfixturevalue(kind)
    result = explain(trained, without_feature(trained, "race"), repeats=20)
    by_name = {f["feature"]: f for f in result["features"]}
    ignored = by_name["race"]["permutation_importance"]
    assert ignored["repeats"] == 20
    assert abs(ignored["mean"]) < 1e-12
    assert ignored["interval"][0] <= 0.0 <= ignored["interval"][1]
    assert by_name["race"]["mean_abs_attribution"] < 1e-12
    top = result["features"][0]
    assert top["feature"] != "race"
    assert top["permutation_importance"]["interval"][0] > 0.01


def test_features_are_aggregates_of_the_attributions_sorted_by_importance(mlp):
    result = explain(mlp)
    rows = mlp.held_out
    baseline = explanation_baseline(mlp.prep, rows)
    result_of_rows = attributions(mlp.model, mlp.prep, rows, baseline=baseline)
    values, names, baseline_logit = result_of_rows.values, result_of_rows.features, result_of_rows.baseline_logit
    assert result["method"] == "integrated_gradients"
    assert result["rows"] == len(rows)
    assert result["baseline_logit"] == pytest.approx(baseline_logit)
    np.testing.assert_allclose(result["baseline"], baseline)
    importance = [f["mean_abs_attribution"] for f in result["features"]]
    assert importance == sorted(importance, reverse=True)
    expected = dict(zip(names, np.abs(values).mean(axis=0), strict=True))
    signed = dict(zip(names, values.mean(axis=0), strict=True))
    for entry in result["features"]:
        assert entry["mean_abs_attribution"] == pytest.approx(expected[entry["feature"]])
        assert entry["mean_attribution"] == pytest.approx(signed[entry["feature"]])
    assert {f["feature"] for f in result["features"]} == set(mlp.prep.feature_order)


def test_a_linear_model_is_explained_with_exact_shapley_values(logistic):
    assert explain(logistic)["method"] == "exact_linear_shapley"


def test_by_group_hides_groups_below_the_minimum_size(mlp):
    result = explain(mlp, min_group_size=40)
    rows = mlp.held_out
    per_row = attributions(mlp.model, mlp.prep, rows, baseline=explanation_baseline(mlp.prep, rows))
    values, names = per_row.values, per_row.features
    race = [g for g in result["by_group"] if g["attribute"] == "race"]
    counts = rows["race"].value_counts()
    assert {g["group"] for g in race} == set(counts.index)
    assert sum(g["rows"] for g in race) == len(rows)
    small = [g for g in race if g["rows"] < 40]
    assert small, "the held-out slice should have race groups under 40 rows"
    for group in race:
        assert group["rows"] == counts[group["group"]]
        if group["rows"] < 40:
            assert group["too_small"] is True
            assert group["features"] is None and group["largest_gap"] is None
        else:
            members = (rows["race"] == group["group"]).to_numpy()
            expected = dict(zip(names, np.abs(values[members]).mean(axis=0), strict=True))
            for entry in group["features"]:
                assert entry["mean_abs_attribution"] == pytest.approx(expected[entry["feature"]])


def test_only_aggregates_leave_the_function(mlp):
    result = explain(mlp)
    stored = json.loads(json.dumps(result))  # JSON-storable as it is
    longest = max(
        len(value)
        for entry in [stored, *stored["features"], *stored["by_group"]]
        for value in entry.values()
        if isinstance(value, list)
    )
    assert longest <= mlp.prep.input_width < len(mlp.held_out)  # the baseline vector, never a list per row


def test_largest_gap_names_the_feature_that_weighs_differently_in_a_group(logistic):
    # Only sex and age count. Women are a third of the rows, so their sex column is further from the mean and the
    # sex attribution weighs 1.5x more for them; age is spread alike in both groups.
    model = copy.deepcopy(logistic.model)
    keep = [columns_of(logistic.prep, "sex"), columns_of(logistic.prep, "age")]
    with torch.no_grad():
        mask = torch.zeros_like(model[0].weight)
        for cols in keep:
            mask[:, cols] = 1.0
        model[0].weight.mul_(mask)
        model[0].weight[:, columns_of(logistic.prep, "sex")] = torch.tensor([1.0, -1.0, 0.0])
    result = explain(logistic, model)
    women = next(g for g in result["by_group"] if g["attribute"] == "sex" and g["group"] == "Female")
    overall = {f["feature"]: f["mean_abs_attribution"] for f in result["features"]}
    in_group = {f["feature"]: f["mean_abs_attribution"] for f in women["features"]}
    assert women["largest_gap"]["feature"] == "sex"
    assert women["largest_gap"]["ratio_to_overall"] == pytest.approx(in_group["sex"] / overall["sex"])
    share_women = (logistic.held_out["sex"] == "Female").mean()
    # |attribution| of sex is 2 (1 - share) for a woman and 2 share for a man.
    assert in_group["sex"] == pytest.approx(2 * (1 - share_women))
    assert overall["sex"] == pytest.approx(4 * share_women * (1 - share_women))


def test_too_few_rows_are_refused(mlp):
    rows = mlp.held_out.iloc[:20]
    with pytest.raises(ExplanationError, match="at least 30 rows"):
        explain_global(mlp.model, mlp.prep, rows, labels=encode_labels(rows, mlp.prep), sensitive=["sex"], seed=0)
