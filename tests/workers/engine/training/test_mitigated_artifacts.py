"""Mitigated candidates as artifacts: the manifest records the mitigation (a new sha256), loading applies it, and a
model without one loads and decides exactly as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from workers.engine.mitigation.thresholds import fit_group_thresholds, positive_probability
from workers.engine.training.artifacts import (
    MixtureModel,
    constant_network,
    decide,
    load_model,
    mitigated_decisions,
    save_model,
    score,
)
from workers.engine.training.data import DataError, fit_preprocess, transform
from workers.engine.training.models import build_model, predict_proba

FEATURES = ["age", "education-num", "hours-per-week", "sex"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return pd.read_csv("data/adult.csv", nrows=600)


@pytest.fixture(scope="module")
def prep(rows):
    return fit_preprocess(rows, label="class", features=FEATURES)


def network(prep, seed: int, kind: str = "logistic_regression") -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(kind, prep.input_width, 2, (8, 4))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4.0)  # spread the scores so the thresholds and members disagree on some rows
    return model.eval()


def save(folder, model, prep, kind="logistic_regression", **manifest):
    return save_model(folder, model=model, spec=prep, model_kind=kind, hidden=[8, 4], manifest=manifest)


def test_a_model_without_mitigation_loads_and_decides_as_before(tmp_path, rows, prep):
    model = network(prep, 0)
    save(tmp_path, model, prep, privacy={"epsilon": 1.0})
    loaded, spec, manifest = load_model(tmp_path)
    assert type(loaded) is type(model) and "mitigation" not in manifest
    probabilities = predict_proba(model, torch.from_numpy(transform(rows, prep))).numpy()
    scored = score(rows, tmp_path)
    assert np.allclose(scored[["p_<=50K", "p_>50K"]].to_numpy(), probabilities)
    assert list(scored["prediction"]) == [spec.classes[i] for i in probabilities.argmax(axis=1)]
    assert mitigated_decisions(loaded, spec, manifest, rows, probabilities[:, 1], seed=0) is None


def test_a_thresholds_candidate_has_its_own_sha256_and_decides_with_its_fitted_thresholds(tmp_path, rows, prep):
    model = network(prep, 1)
    parent = save(tmp_path / "parent", model, prep, privacy={"epsilon": 1.0})
    scores = predict_proba(model, torch.from_numpy(transform(rows, prep))).numpy()[:, 1]
    labels = (rows["class"].astype(str) == ">50K").to_numpy().astype(int)
    fitted = fit_group_thresholds(labels, scores, rows["sex"].to_numpy(), constraint="demographic_parity")
    mitigation = {"method": "thresholds", "constraint": "demographic_parity", "attribute": "sex", "fitted": fitted}
    candidate = save(tmp_path / "candidate", model, prep, privacy={"epsilon": 1.0}, mitigation=mitigation)
    assert candidate["weights_sha256"] == parent["weights_sha256"]  # the same weights ...
    assert candidate["model_sha256"] != parent["model_sha256"]  # ... but another model

    loaded, spec, manifest = load_model(tmp_path / "candidate")
    probabilities = np.stack([1 - scores, scores], axis=1)
    first = decide(loaded, spec, manifest, rows, probabilities, rng=np.random.default_rng(5))
    again = decide(loaded, spec, manifest, rows, probabilities, rng=np.random.default_rng(5))
    assert (first == again).all()  # one generator per call: the same seed, the same draws
    expected = positive_probability(scores, rows["sex"].to_numpy(), fitted)
    assert (first[expected == 1] == 1).all() and (first[expected == 0] == 0).all()
    assert (first != probabilities.argmax(axis=1)).any()  # the thresholds are not 0.5
    scored = score(rows, tmp_path / "candidate", rng=np.random.default_rng(5))
    assert list(scored["prediction"]) == [spec.classes[i] for i in first]
    with pytest.raises(DataError, match="sex"):
        decide(loaded, spec, manifest, rows.drop(columns=["sex"]), probabilities)


def test_a_mixture_scores_the_weighted_probability_and_decides_as_a_randomised_classifier(tmp_path, rows, prep):
    members = [network(prep, 2, "mlp"), network(prep, 3, "mlp"), constant_network("mlp", prep, [8, 4], True)]
    weights = [0.5, 0.3, 0.2]
    mixture = MixtureModel(members, weights)
    inputs = torch.from_numpy(transform(rows, prep))
    with torch.no_grad():
        member_probabilities = torch.cat([torch.sigmoid(m(inputs)) for m in members], dim=1).double().numpy()
        logits = mixture(inputs)[:, 0].double().numpy()
    expected = member_probabilities @ np.array(weights)
    assert np.allclose(1 / (1 + np.exp(-logits)), expected, atol=1e-6)
    assert (member_probabilities[:, 2] > 1 - 1e-9).all()  # the constant member answers positive everywhere

    save(tmp_path, mixture, prep, kind="mlp", mitigation={"method": "reductions", "weights": weights})
    loaded, spec, manifest = load_model(tmp_path)
    with torch.no_grad():
        assert torch.allclose(loaded(inputs), mixture(inputs))
    probabilities = np.stack([1 - expected, expected], axis=1)
    pmf = (member_probabilities >= 0.5).astype(float) @ np.array(weights)
    draws = np.stack(
        [decide(loaded, spec, manifest, rows, probabilities, rng=np.random.default_rng(seed)) for seed in range(300)]
    )
    assert (draws[:, pmf == 1] == 1).all() and (draws[:, pmf == 0] == 0).all()
    middle = (pmf > 0) & (pmf < 1)
    assert middle.any()
    assert np.abs(draws[:, middle].mean(axis=0) - pmf[middle]).max() < 0.1


def test_target_labels_change_what_is_learnt_but_not_the_rows_or_the_encoding(rows):
    from workers.engine.training.trainer import TrainingConfig, train

    config = TrainingConfig(
        label="class", features=FEATURES, model="logistic_regression", epochs=8, batch_size=64, private=False, seed=4
    )
    plain = train(rows, config)
    labels = (rows["class"].astype(str) == ">50K").to_numpy().astype(np.int64)
    flipped = train(rows, config, target_labels=1 - labels)
    assert flipped.metrics["split_sha256"] == plain.metrics["split_sha256"]
    assert flipped.spec.to_dict() == plain.spec.to_dict()
    inputs = torch.from_numpy(transform(rows.iloc[plain.split["train"]], plain.spec))
    truth = labels[plain.split["train"]]
    plain_agreement = (predict_proba(plain.model, inputs).numpy().argmax(axis=1) == truth).mean()
    flipped_agreement = (predict_proba(flipped.model, inputs).numpy().argmax(axis=1) == truth).mean()
    assert plain_agreement > 0.7 and flipped_agreement < 0.3  # it learnt the labels it was given
    with pytest.raises(DataError):
        train(rows, config, target_labels=np.full(len(rows), 2))
