import copy

import numpy as np
import pytest
import torch

from tests.workers.engine.explain.conftest import columns_of
from workers.engine.explain.counterfactual import counterfactual_probe


def with_sex_weight(trained, weight):
    model = copy.deepcopy(trained.model)
    cols = columns_of(trained.prep, "sex")
    categories = trained.prep.categorical["sex"]
    with torch.no_grad():
        model[0].weight[0, cols] = torch.tensor(
            [weight if c == "Male" else -weight if c == "Female" else 0.0 for c in [*categories, "unknown"]]
        )
    return model


def test_an_attribute_the_model_does_not_use_is_reported_as_not_a_feature(logistic_without_sex):
    trained = logistic_without_sex
    assert counterfactual_probe(trained.model, trained.prep, trained.held_out, attributes=["sex"]) == [
        {"attribute": "sex", "not_a_feature": True}
    ]


def test_a_large_weight_on_the_attribute_changes_most_decisions(logistic):
    result = counterfactual_probe(
        with_sex_weight(logistic, 10.0), logistic.prep, logistic.held_out, attributes=["sex"]
    )[0]
    assert result["rows"] == len(logistic.held_out)
    assert result["changed_share"] > 0.9
    assert result["interval"][0] <= result["changed_share"] <= result["interval"][1]
    assert {g["group"] for g in result["by_group"]} == {"Female", "Male"}
    for group in result["by_group"]:
        assert group["changed_share"] > 0.85
    assert sum(g["rows"] for g in result["by_group"]) == result["rows"]


def test_a_feature_with_no_weight_changes_nothing(logistic):
    result = counterfactual_probe(with_sex_weight(logistic, 0.0), logistic.prep, logistic.held_out, attributes=["sex"])[
        0
    ]
    assert result["changed_share"] == 0.0
    assert result["interval"][0] == 0.0 < result["interval"][1] < 0.01


def test_the_changed_share_is_what_rescoring_the_flipped_rows_gives(logistic):
    rows = logistic.held_out
    result = counterfactual_probe(logistic.model, logistic.prep, rows, attributes=["race"], min_group_size=40)[0]
    before = logistic.logits(logistic.inputs(rows)) >= 0
    changed = np.zeros(len(rows), dtype=bool)
    for value in rows["race"].unique():
        flipped = rows.assign(race=value)
        changed |= (logistic.logits(logistic.inputs(flipped)) >= 0) != before
    assert changed.any()
    assert result["changed_share"] == pytest.approx(changed.mean(), abs=2 / len(rows))
    assert result["values_tried"] == rows["race"].nunique()
    for group in result["by_group"]:
        members = (rows["race"] == group["group"]).to_numpy()
        assert group["rows"] == members.sum()
        if members.sum() < 40:
            assert group["too_small"] is True and group["changed_share"] is None and group["interval"] is None
        else:
            assert group["changed_share"] == pytest.approx(changed[members].mean(), abs=2 / members.sum())
