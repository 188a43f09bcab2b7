import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from opacus import GradSampleModule
from torch import nn

from workers.engine.training.artifacts import load_model, save_model, score
from workers.engine.training.data import DataError
from workers.engine.training.fastclip import FastClipper, UnsupportedLayer
from workers.engine.training.models import build_model, loss_per_sample
from workers.engine.training.trainer import TrainingCancelled, TrainingConfig, train

ADULT = "data/adult.csv"
FEATURES = [
    "age",
    "workclass",
    "education-num",
    "marital-status",
    "occupation",
    "sex",
    "hours-per-week",
    "capital-gain",
]


@pytest.fixture(scope="module")
def adult():
    return pd.read_csv(ADULT, nrows=3000)


@pytest.mark.parametrize("classes", [2, 4])
def test_fast_clipping_equals_opacus_per_sample_clipping(classes):
    torch.manual_seed(0)
    model = build_model("mlp", 12, classes, (16, 8))
    x = torch.randn(64, 12) * 3
    y = torch.randint(0, classes, (64,))
    max_norm = 0.5
    # Opacus: materialised per-sample gradients (hooks mode), flat clipping, summed.
    reference = GradSampleModule(build_model("mlp", 12, classes, (16, 8)), loss_reduction="sum")
    reference._module.load_state_dict(model.state_dict())
    loss_per_sample(reference(x), y).sum().backward()
    params = [p for p in reference.parameters()]
    per_sample_norms = torch.stack([p.grad_sample.reshape(64, -1).norm(dim=1) for p in params], dim=1).norm(dim=1)
    factors = (max_norm / (per_sample_norms + 1e-6)).clamp(max=1.0)
    expected = [torch.einsum("i,i...->...", factors, p.grad_sample) for p in params]
    clipper = FastClipper(model)
    ours, norms = clipper.clipped_sum(loss_per_sample(model(x), y), max_norm)
    assert torch.allclose(norms, per_sample_norms, atol=1e-5)
    for mine, theirs in zip(ours, expected, strict=True):
        assert torch.allclose(mine, theirs, atol=1e-5)


def test_layers_fast_clipping_cannot_handle_are_refused():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 1))
    with pytest.raises(UnsupportedLayer):
        FastClipper(model)


def test_private_training_on_adult_beats_the_majority_class(adult):
    config = TrainingConfig(
        label="class",
        features=FEATURES,
        model="logistic_regression",
        epochs=3,
        batch_size=128,
        learning_rate=0.05,
        target_epsilon=3.0,
        delta=1e-5,
        seed=1,
    )
    result = train(adult, config)
    assert result.privacy["epsilon"] == pytest.approx(3.0, abs=0.05)
    assert result.privacy["accountant"] == "pld" and result.privacy["noise_multiplier"] > 0
    assert result.privacy["noise_source"] == "csprng-chacha20"
    assert result.metrics["validation_accuracy"] > result.metrics["majority_rate"] + 0.02
    assert set(result.split) == {"train", "validation", "test"}
    all_rows = np.concatenate(list(result.split.values()))
    assert len(all_rows) == len(set(all_rows)) == len(adult)  # the test rows are never trained on


def _flat(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_two_private_runs_with_the_same_seed_and_spec_release_different_models(adult):
    """The seed is published (manifest, pages, report evidence): it must not reproduce the noise or the batches."""
    config = TrainingConfig(label="class", features=FEATURES, model="mlp", epochs=1, batch_size=256, seed=5)
    first, second = train(adult, config), train(adult, config)
    assert not torch.equal(_flat(first.model), _flat(second.model))
    assert first.metrics["split_sha256"] == second.metrics["split_sha256"]
    assert first.privacy["noise_source"] == second.privacy["noise_source"] == "csprng-chacha20"


def test_the_seed_still_fixes_the_split_and_the_initialisation(adult):
    # With a zero learning rate the released parameters are the initial ones, whatever the noise.
    config = TrainingConfig(label="class", features=FEATURES, model="mlp", epochs=1, learning_rate=0.0, seed=7)
    first, second = train(adult, config), train(adult, config)
    assert torch.equal(_flat(first.model), _flat(second.model))
    for part in ("train", "validation", "test"):
        assert np.array_equal(first.split[part], second.split[part])
    other = train(adult, dataclasses.replace(config, seed=8))
    assert not torch.equal(_flat(first.model), _flat(other.model))


def test_the_non_private_baseline_stays_reproducible_from_its_seed(adult):
    config = TrainingConfig(label="class", features=FEATURES, epochs=1, seed=5, private=False)
    first, second = train(adult, config), train(adult, config)
    assert torch.equal(_flat(first.model), _flat(second.model))
    assert first.privacy["noise_source"] == "none"


def test_on_neighbouring_datasets_noise_not_the_seed_explains_the_difference(adult):
    """An attacker who knows the seed and every row but one replays training on both candidate datasets. With seeded
    noise the replay on the true dataset equals the release exactly, so the missing row is revealed. With the
    CSPRNG, the replay on the true data is about as far from the release as the replay on the neighbour: the
    difference is noise, far more than the one-row data difference explains."""
    config = TrainingConfig(
        label="class", features=FEATURES, model="mlp", epochs=2, batch_size=128, seed=5, hidden=(16,)
    )
    neighbour = adult.drop(index=adult.index[-1])
    release = _flat(train(adult, config).model)
    replay_same = _flat(train(adult, config).model)
    replay_neighbour = _flat(train(neighbour, config).model)
    same_data = float((release - replay_same).norm())
    neighbouring = float((release - replay_neighbour).norm())
    assert same_data > 0.5 * neighbouring


def test_secure_noise_is_gaussian_with_the_asked_deviation_and_masks_have_the_asked_rate():
    from scipy import stats

    from workers.engine.training.noise import SecureRandom

    source = SecureRandom()
    noise = source.gaussian(200_000, 2.5).numpy()
    assert stats.kstest(noise / 2.5, "norm").pvalue > 1e-4
    mask = source.poisson_mask(200_000, 0.01)
    assert abs(float(mask.float().mean()) - 0.01) < 5 * (0.01 * 0.99 / 200_000) ** 0.5
    assert not torch.equal(SecureRandom().uniform(8), SecureRandom().uniform(8))  # keyed per instance


def test_cancelling_reports_the_steps_already_taken(adult):
    calls = {"n": 0}

    def cancel_after_five():
        calls["n"] += 1
        return calls["n"] > 5

    with pytest.raises(TrainingCancelled) as caught:
        train(adult, TrainingConfig(label="class", features=FEATURES, epochs=2), should_cancel=cancel_after_five)
    assert caught.value.steps_done == 5


def test_progress_reports_epsilon_growing_to_the_final_value(adult):
    points = []
    result = train(
        adult,
        TrainingConfig(label="class", features=FEATURES, epochs=2, batch_size=512, accountant="rdp"),
        on_progress=points.append,
        progress_every_s=0.0,
    )
    epsilons = [p["epsilon"] for p in points]
    assert epsilons == sorted(epsilons) and epsilons[-1] == pytest.approx(result.privacy["epsilon"])
    assert points[-1]["step"] == result.privacy["steps"]


def test_multiclass_and_a_non_private_baseline(adult):
    config = TrainingConfig(label="race", features=["age", "sex", "education-num"], epochs=1, private=False)
    result = train(adult, config)
    assert len(result.spec.classes) == 5 and result.privacy["epsilon"] is None
    assert result.privacy["accountant_label"].startswith("not private")


def test_tiny_batches_with_empty_poisson_draws_still_train(adult):
    result = train(adult.head(200), TrainingConfig(label="class", features=["age"], epochs=1, batch_size=1))
    assert result.privacy["steps"] == len(result.split["train"])


def test_a_missing_column_is_named(adult):
    with pytest.raises(DataError, match="salary"):
        train(adult, TrainingConfig(label="class", features=["age", "salary"]))


def test_safetensors_round_trip_gives_identical_predictions(adult, tmp_path):
    config = TrainingConfig(label="class", features=FEATURES, epochs=1)
    result = train(adult, config)
    manifest = save_model(
        tmp_path,
        model=result.model,
        spec=result.spec,
        model_kind=config.model,
        hidden=list(config.hidden),
        manifest={"privacy": result.privacy},
    )
    assert len(manifest["model_sha256"]) == 64
    assert b"pickle" not in (tmp_path / "model.safetensors").read_bytes()[:200]
    model, spec, _ = load_model(tmp_path)
    scored = score(adult.head(50), tmp_path)
    from workers.engine.training.data import transform
    from workers.engine.training.models import predict_proba

    direct = predict_proba(result.model, torch.from_numpy(transform(adult.head(50), result.spec))).numpy()
    assert np.allclose(scored[[f"p_{c}" for c in spec.classes]].to_numpy(), direct)
    (tmp_path / "model.safetensors").write_bytes(b"x" + (tmp_path / "model.safetensors").read_bytes()[1:])
    with pytest.raises(ValueError, match="sha256"):
        load_model(tmp_path)
