"""FGSM and PGD against the Adversarial Robustness Toolbox on the same trained models, inputs, labels and mask."""

import numpy as np
import pandas as pd
import pytest
import torch
from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
from art.estimators.classification import PyTorchClassifier
from torch import nn

from workers.engine.robustness.adversarial import fgsm, pgd
from workers.engine.robustness.perturb import continuous_mask, input_bounds
from workers.engine.training.data import encode_labels, transform
from workers.engine.training.trainer import TrainingConfig, train

FEATURES = ["age", "workclass", "education-num", "marital-status", "sex", "hours-per-week", "capital-gain"]


class TwoLogits(nn.Module):
    """ART expects one logit per class: a one-logit binary model z becomes [0, z] (the same logistic loss)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x)
        return torch.cat([torch.zeros_like(z), z], dim=1)


@pytest.fixture(scope="module", params=["logistic_regression", "mlp"])
def trained(request):
    frame = pd.read_csv("data/adult.csv", nrows=2500)
    config = TrainingConfig(
        label="class", features=FEATURES, model=request.param, epochs=5, private=False, hidden=(16, 8), seed=3
    )
    result = train(frame, config)
    # A model that predicts the majority class everywhere would make "the attack lowers accuracy" vacuous.
    assert result.metrics["validation_accuracy"] > result.metrics["majority_rate"] + 0.03
    rows = frame.iloc[result.split["test"]]
    inputs = torch.from_numpy(transform(rows, result.spec))
    labels = torch.from_numpy(encode_labels(rows, result.spec))
    return result.model, result.spec, inputs, labels


def art_classifier(model, width, clip_values=None):
    return PyTorchClassifier(
        model=TwoLogits(model),
        loss=nn.CrossEntropyLoss(),
        input_shape=(width,),
        nb_classes=2,
        clip_values=clip_values,
    )


@pytest.mark.parametrize("eps", [0.05, 0.25])
def test_fgsm_equals_art_on_the_continuous_columns(trained, eps):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))
    ours = fgsm(model, inputs, labels, eps=eps, mask=mask)
    attack = FastGradientMethod(
        art_classifier(model, inputs.shape[1]), norm=np.inf, eps=eps, targeted=False, minimal=False
    )
    theirs = attack.generate(inputs.numpy(), y=labels.numpy(), mask=mask.numpy().astype(np.float32))
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-6)
    moved = (ours - inputs).abs()
    # The attack did something (a test that could pass with a no-op would prove nothing) ...
    assert (moved[:, mask.bool()] > eps / 2).float().mean() > 0.5
    # ... and nothing on the one-hot columns, nor beyond eps anywhere.
    assert moved[:, ~mask.bool()].max() == 0
    assert moved.max() <= eps + 1e-6


def test_fgsm_equals_art_with_the_preprocessing_bounds(trained):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))
    low, high = input_bounds(spec)
    ours = fgsm(model, inputs, labels, eps=0.5, mask=mask, bounds=(torch.from_numpy(low), torch.from_numpy(high)))
    attack = FastGradientMethod(
        art_classifier(model, inputs.shape[1], clip_values=(low, high)), norm=np.inf, eps=0.5, minimal=False
    )
    theirs = attack.generate(inputs.numpy(), y=labels.numpy(), mask=mask.numpy().astype(np.float32))
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-6)
    assert (ours.numpy() >= low - 1e-6).all() and (ours.numpy() <= high + 1e-6).all()


def test_fgsm_raises_the_loss_and_lowers_accuracy(trained):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))
    adversarial = fgsm(model, inputs, labels, eps=0.25, mask=mask)
    loss = nn.functional.binary_cross_entropy_with_logits
    with torch.no_grad():
        before = loss(model(inputs)[:, 0], labels.float())
        after = loss(model(adversarial)[:, 0], labels.float())
        accuracy_before = ((model(inputs)[:, 0] > 0).long() == labels).float().mean()
        accuracy_after = ((model(adversarial)[:, 0] > 0).long() == labels).float().mean()
    assert after > before
    assert accuracy_after < accuracy_before


def test_pgd_without_random_start_equals_art(trained):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))
    ours = pgd(model, inputs, labels, eps=0.25, step=0.0625, iterations=10, mask=mask)
    attack = ProjectedGradientDescent(
        art_classifier(model, inputs.shape[1]),
        norm=np.inf,
        eps=0.25,
        eps_step=0.0625,
        max_iter=10,
        targeted=False,
        num_random_init=0,
        verbose=False,
    )
    theirs = attack.generate(inputs.numpy(), y=labels.numpy(), mask=mask.numpy().astype(np.float32))
    np.testing.assert_allclose(ours.numpy(), theirs, rtol=0, atol=1e-6)
    assert (ours - inputs).abs().max() <= 0.25 + 1e-6


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))

    def loss(x):
        with torch.no_grad():
            return nn.functional.binary_cross_entropy_with_logits(model(x)[:, 0], labels.float()).item()

    one_step = fgsm(model, inputs, labels, eps=0.25, mask=mask)
    iterated = pgd(model, inputs, labels, eps=0.25, step=0.0625, iterations=10, mask=mask)
    # For a logistic model both reach the same corner of the box; for an MLP PGD may climb higher.
    assert loss(iterated) >= loss(one_step) - 1e-6


def test_pgd_random_start_stays_in_the_ball_and_follows_the_generator(trained):
    model, spec, inputs, labels = trained
    mask = torch.from_numpy(continuous_mask(spec))

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        return pgd(
            model, inputs, labels, eps=0.1, step=0.05, iterations=3, mask=mask, random_init=True, generator=generator
        )

    first, again = run(1), run(1)
    assert torch.equal(first, again)
    assert (first - inputs).abs().max() <= 0.1 + 1e-6
    assert (first - inputs)[:, ~mask.bool()].abs().max() == 0


def test_the_attacks_leave_the_model_as_they_found_it(trained):
    model, spec, inputs, labels = trained
    model.zero_grad(set_to_none=True)  # ART's own runs above leave gradients behind
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    model.train()
    fgsm(model, inputs, labels, eps=0.1, mask=torch.from_numpy(continuous_mask(spec)))
    assert model.training
    model.eval()
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name])
        assert p.grad is None
