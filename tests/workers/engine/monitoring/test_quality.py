"""Data-quality expectations from the training reference: schema, missing share, range, new categories."""

import numpy as np
import pytest

from tests.workers.engine.monitoring.conftest import FEATURES, make_rows
from workers.engine.monitoring.quality import check_schema, quality_checks, sketch_schema_problems
from workers.engine.monitoring.reference import build_reference
from workers.engine.monitoring.sketch import WindowSketch

TOLERANCES = {"missing_increase": 0.05, "out_of_range": 0.05, "new_categories": 0.02}


@pytest.fixture(scope="module")
def reference(training):
    return build_reference(training, features=FEATURES)


def batch_columns(frame):
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


def test_a_batch_with_the_training_schema_passes(reference):
    columns = batch_columns(make_rows(1, 50))
    assert check_schema(reference, {**columns, "prediction_id": "object"}, allowed_extra=["prediction_id"]) == []


def test_schema_check_names_every_column_at_fault(reference):
    frame = make_rows(1, 50).drop(columns=["age", "region"]).assign(ssn="x", income=lambda f: f["income"].astype(str))
    problems = check_schema(reference, batch_columns(frame))
    text = " ".join(problems)
    assert len(problems) == 3
    assert "age" in problems[0] and "region" in problems[0]
    assert "ssn" in problems[1]
    assert "income" in problems[2] and "object" in problems[2]
    assert "hours" not in text and "workclass" not in text


def test_a_categorical_column_may_arrive_as_numbers_but_a_numeric_one_not_as_text(reference):
    columns = {**batch_columns(make_rows(1, 50)), "workclass": "int64", "hours": "category"}
    problems = check_schema(reference, columns)
    assert len(problems) == 1 and "hours" in problems[0]


def checks_by_feature(reference, frame):
    sketch = WindowSketch.empty(reference).add(frame)
    return {(c["check"], c["feature"]): c for c in quality_checks(reference, sketch, TOLERANCES)}, sketch


def test_a_window_like_training_passes_every_expectation(reference):
    checks, _ = checks_by_feature(reference, make_rows(2, 5000))
    assert not [key for key, check in checks.items() if check["failed"]]
    assert checks[("out_of_range", "income")]["expected"] == pytest.approx(0.01, abs=0.002)


def test_missing_values_above_training_plus_tolerance_fail(reference, training):
    frame = make_rows(3, 5000)
    frame.loc[frame.index[:600], "age"] = np.nan  # +12% missing
    checks, _ = checks_by_feature(reference, frame)
    age = checks[("missing", "age")]
    assert age["failed"] and age["value"] == pytest.approx(frame["age"].isna().mean())
    assert age["expected"] == pytest.approx(training["age"].isna().mean())
    assert not checks[("missing", "income")]["failed"]


def test_values_outside_the_training_range_fail(reference):
    frame = make_rows(4, 5000, shift=0.5)  # incomes well above the training's 99.5% quantile
    checks, _ = checks_by_feature(reference, frame)
    income = checks[("out_of_range", "income")]
    low, high = reference["features"]["income"]["expected_range"]
    incomes = frame["income"].dropna()
    assert income["failed"] and income["value"] == pytest.approx(((incomes < low) | (incomes > high)).mean())
    assert not checks[("out_of_range", "age")]["failed"]


def test_new_categories_beyond_the_rare_training_share_fail_and_are_named(reference):
    checks, _ = checks_by_feature(reference, make_rows(5, 5000, new_region=0.05))
    region = checks[("new_categories", "region")]
    assert region["failed"] and set(region["new_categories"]) == {"island", "abroad"}
    assert not checks[("new_categories", "workclass")]["failed"]


def test_schema_problems_that_reached_a_window_are_reported(reference):
    frame = make_rows(6, 100).drop(columns=["hours"]).astype({"age": object})
    frame.loc[frame.index[:3], "age"] = "unknown"
    _, sketch = checks_by_feature(reference, frame.assign(badge="x"))
    problems = sketch_schema_problems(reference, sketch)
    assert any("hours" in p for p in problems) and any("badge" in p for p in problems)
    assert any("age (3)" in p for p in problems)
