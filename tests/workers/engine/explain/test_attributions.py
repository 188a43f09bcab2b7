import copy

import numpy as np
import pytest
import shap
import torch
from torch import nn

from tests.workers.engine.explain.conftest import columns_of
from workers.engine.explain._model import ExplanationError
from workers.engine.explain.attributions import (
    attributions,
    explanation_baseline,
    integrated_gradients,
    sum_per_feature,
)
from workers.engine.training.models import build_model


def per_feature(prep, column_values):
    return np.stack([column_values[:, columns_of(prep, name)].sum(axis=1) for name in prep.feature_order], axis=1)


def riemann_integrated_gradients(model, inputs, baseline, steps):
    """Midpoint-rule IG written out independently of the engine."""
    x = torch.as_tensor(inputs, dtype=torch.float64)
    origin = torch.as_tensor(baseline, dtype=torch.float64)
    double = copy.deepcopy(model).double()
    total = torch.zeros_like(x)
    for start in range(0, steps, 1000):
        alphas = (torch.arange(start, min(start + 1000, steps), dtype=torch.float64) + 0.5) / steps
        points = (origin + alphas[None, :, None] * (x - origin)[:, None, :]).requires_grad_(True)
        (gradients,) = torch.autograd.grad(double(points.reshape(-1, x.shape[1])).sum(), points)
        total += gradients.sum(dim=1)
    return ((x - origin) * total / steps).numpy()


def test_baseline_is_the_mean_encoded_input(logistic):
    baseline = explanation_baseline(logistic.prep, logistic.held_out)
    assert baseline.shape == (logistic.prep.input_width,)
    np.testing.assert_allclose(baseline, logistic.inputs().astype(np.float64).mean(axis=0), atol=1e-12)


def test_linear_shapley_values_equal_shaps_exact_linear_explainer(logistic):
    rows = logistic.held_out
    background = logistic.inputs().astype(np.float64)
    layer = logistic.model[0]
    coef = layer.weight.detach().double().numpy()[0]
    intercept = float(layer.bias.detach().double()[0])
    # The Independent masker is shap's interventional setting; by default it would keep only 100 background rows.
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.LinearExplainer((coef, intercept), masker)
    assert explainer.feature_perturbation == "interventional"
    expected = per_feature(logistic.prep, explainer.shap_values(background))

    result = attributions(logistic.model, logistic.prep, rows, baseline=explanation_baseline(logistic.prep, rows))
    values, names, row_logits, baseline_logit = result.values, result.features, result.logits, result.baseline_logit
    assert names == logistic.prep.feature_order
    assert values.shape == (len(rows), len(names))
    np.testing.assert_allclose(values, expected, atol=1e-6, rtol=0)
    assert baseline_logit == pytest.approx(float(explainer.expected_value), abs=1e-6)
    np.testing.assert_allclose(row_logits, logistic.logits(logistic.inputs()), atol=1e-4)
    # A categorical feature is one number: the sum over its one-hot columns, which shap reports one by one.
    assert columns_of(logistic.prep, "occupation").stop - columns_of(logistic.prep, "occupation").start > 2


def test_integrated_gradients_are_complete_on_an_mlp(mlp):
    rows = mlp.held_out
    for baseline in (explanation_baseline(mlp.prep, rows), mlp.inputs(rows.iloc[[7]])[0]):
        result = attributions(mlp.model, mlp.prep, rows, baseline=baseline)
        assert result.method == "integrated_gradients"
        own_logits = mlp.logits(mlp.inputs())
        own_baseline_logit = mlp.logits(np.asarray(baseline, np.float32)[None, :])[0]
        gaps = np.abs(result.values.sum(axis=1) - (own_logits - own_baseline_logit))
        assert gaps.max() < 1e-4
        assert result.completeness_gap < 1e-4
        # Not complete by construction of a trivial answer: the attributions are spread over several features.
        assert (np.abs(result.values) > 1e-3).sum(axis=1).mean() > 3


def test_exact_segment_integration_matches_a_fine_riemann_sum(mlp):
    inputs = mlp.inputs(mlp.held_out.iloc[:15])
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    exact, info = integrated_gradients(mlp.model, inputs, baseline, method="segments")
    assert info["integration"] == "activation_segments"
    reference = riemann_integrated_gradients(mlp.model, inputs, baseline, steps=20_000)
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(exact, reference, atol=1e-3, rtol=0)


def test_quadrature_raises_the_step_count_until_attributions_are_complete(mlp):
    torch.manual_seed(3)
    smooth = nn.Sequential(nn.Linear(mlp.prep.input_width, 12), nn.Tanh(), nn.Linear(12, 1))
    with torch.no_grad():
        smooth[0].weight.mul_(4)  # a curved logit, so one Gauss-Legendre panel is not enough for every row
    inputs = mlp.inputs(mlp.held_out.iloc[:200])
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    loose, loose_info = integrated_gradients(smooth, inputs, baseline, tolerance=1e-2)
    strict, strict_info = integrated_gradients(smooth, inputs, baseline, tolerance=1e-9)
    assert loose_info["integration"] == strict_info["integration"] == "gauss_legendre"
    assert strict_info["max_panels"] > loose_info["max_panels"]
    assert strict_info["completeness_gap"] < 1e-9
    target = smooth(torch.as_tensor(inputs)).detach().double().numpy()[:, 0]
    target -= smooth(torch.as_tensor(baseline, dtype=torch.float32)[None, :]).detach().double().numpy()[0, 0]
    assert np.abs(strict.sum(axis=1) - target).max() < 1e-4
    np.testing.assert_allclose(strict, riemann_integrated_gradients(smooth, inputs, baseline, 4000), atol=1e-5)


@pytest.mark.parametrize("method", ["segments", "quadrature"])
def test_integrated_gradients_equal_linear_shapley_values_when_the_model_is_linear(logistic, method):
    inputs = logistic.inputs()
    baseline = explanation_baseline(logistic.prep, logistic.held_out)
    ig, _info = integrated_gradients(logistic.model, inputs, baseline, method=method)
    shapley = attributions(logistic.model, logistic.prep, logistic.held_out, baseline=baseline).values
    np.testing.assert_allclose(sum_per_feature(ig, logistic.prep), shapley, atol=1e-8)


def test_integrated_gradients_of_a_network_without_nonlinearity_are_its_linear_shapley_values(mlp):
    # Two Linear layers with nothing between them compute one linear function; the engine does not know that.
    torch.manual_seed(0)
    network = nn.Sequential(nn.Linear(mlp.prep.input_width, 6), nn.Linear(6, 1))
    weights = (network[1].weight @ network[0].weight).detach().double().numpy()[0]
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    values = attributions(network, mlp.prep, mlp.held_out, baseline=baseline).values
    expected = per_feature(mlp.prep, (mlp.inputs().astype(np.float64) - baseline) * weights)
    np.testing.assert_allclose(values, expected, atol=1e-8)


def test_a_baseline_of_the_wrong_width_is_refused(logistic):
    with pytest.raises(ExplanationError, match="baseline"):
        attributions(logistic.model, logistic.prep, logistic.held_out, baseline=np.zeros(3))


def test_a_multiclass_model_is_refused(logistic):
    model = build_model("mlp", logistic.prep.input_width, 3, (8,))
    prep = copy.deepcopy(logistic.prep)
    prep.classes = ["a", "b", "c"]
    with pytest.raises(ExplanationError, match="binary"):
        attributions(model, prep, logistic.held_out, baseline=np.zeros(prep.input_width))


def test_a_batch_too_large_for_memory_is_split_without_changing_the_result(mlp, monkeypatch):
    from workers.engine.explain import attributions as module

    inputs = mlp.inputs(mlp.held_out.iloc[:60])
    baseline = explanation_baseline(mlp.prep, mlp.held_out)
    whole, _info = integrated_gradients(mlp.model, inputs, baseline, method="segments")
    calls = []
    original = module._segment_integrated_gradients
    monkeypatch.setattr(module, "SEGMENT_VALUES_PER_BATCH", 2000)
    monkeypatch.setattr(module, "_segment_integrated_gradients", lambda *a: calls.append(len(a[1])) or original(*a))
    split, info = integrated_gradients(mlp.model, inputs, baseline, method="segments")
    assert info["integration"] == "activation_segments"
    assert calls[0] == len(inputs) and min(calls) < len(inputs)  # tried whole, then split
    np.testing.assert_allclose(split, whole, atol=1e-12)
