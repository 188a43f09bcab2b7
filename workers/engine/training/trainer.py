"""The DP-SGD training loop: Poisson sampling, Attest's fast clipping, Gaussian noise, accounting, progress."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from workers.engine.training.accounting import EpsilonReport, Mechanism, epsilon_spent, noise_for_target
from workers.engine.training.data import (
    DataError,
    PreprocessSpec,
    encode_labels,
    fit_preprocess,
    split_digest,
    stratified_split,
    transform,
)
from workers.engine.training.fastclip import FastClipper
from workers.engine.training.models import build_model, loss_per_sample, predict_proba
from workers.engine.training.noise import SecureRandom

ProgressCallback = Callable[[dict[str, Any]], None]


class TrainingError(Exception):
    """Training cannot continue (bad data, divergence); ``steps_done`` privacy was already spent."""

    def __init__(self, message: str, steps_done: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.steps_done = steps_done


class TrainingCancelled(Exception):
    def __init__(self, steps_done: int) -> None:
        super().__init__("cancelled")
        self.steps_done = steps_done


@dataclass
class TrainingConfig:
    label: str
    features: list[str]
    model: str = "mlp"
    epochs: int = 5
    batch_size: int = 256  # expected batch size under Poisson sampling
    learning_rate: float = 0.01
    max_grad_norm: float = 1.0
    target_epsilon: float = 3.0
    delta: float = 1e-5
    seed: int = 0
    private: bool = True
    accountant: str = "pld"  # kept for stored specs; every run is accounted with PLD
    hidden: tuple[int, ...] = (64, 32)


@dataclass
class TrainingResult:
    model: torch.nn.Module
    spec: PreprocessSpec
    split: dict[str, np.ndarray]
    privacy: dict[str, Any]
    metrics: dict[str, Any]
    curve: list[dict[str, float]] = field(default_factory=list)


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _accuracy(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> float:
    if len(labels) == 0:
        return float("nan")
    return float((predict_proba(model, inputs).argmax(dim=1) == labels).float().mean())


def train(
    frame: pd.DataFrame,
    config: TrainingConfig,
    *,
    on_progress: ProgressCallback | None = None,
    should_cancel: Callable[[], bool] | None = None,
    progress_every_s: float = 0.5,
    on_plan: Callable[[float, float, int], None] | None = None,
    sample_weight: np.ndarray | None = None,
    target_labels: np.ndarray | None = None,
) -> TrainingResult:
    """Train; ``on_plan(noise_multiplier, sample_rate, total_steps)`` is called once before the first step.

    ``sample_weight``: optional, one weight in [0, 1] per row of ``frame`` (only the training rows' are used), each
    row's loss multiplied by it (e.g. the exponentiated-gradient reduction's learner calls).
    ``target_labels``: optional, one class index per row of ``frame`` (only the training rows' are used) that the
    model learns instead of the label column's (a reduction's cost-sensitive labels); the split, the preprocessing
    and the validation accuracy still come from the label column, so the rows are those of a run without it.
    """
    frame = frame.reset_index(drop=True)
    if config.label not in frame.columns:
        raise DataError(f"The label column {config.label!r} is not in the data.")
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (len(frame),):
            raise DataError(f"sample_weight needs one weight per row ({len(frame)}), not {sample_weight.shape}.")
        if not (np.isfinite(sample_weight).all() and (sample_weight >= 0).all() and (sample_weight <= 1).all()):
            raise DataError("Sample weights must be numbers between 0 and 1 (rescale larger ones by their maximum).")
    labels_raw = frame[config.label].astype(str).to_numpy()
    split = stratified_split(labels_raw, seed=config.seed)
    train_frame = frame.iloc[split["train"]]
    spec = fit_preprocess(train_frame, label=config.label, features=config.features)
    run_device = device()
    # The seed fixes the split (above) and the initialisation, nothing private: a private run's sampling and noise
    # come from a CSPRNG keyed per run and never recorded. A non-private baseline keeps seeded batches.
    torch.manual_seed(config.seed)
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    secure = SecureRandom() if config.private else None

    def tensors(part: str) -> tuple[torch.Tensor, torch.Tensor]:
        rows = frame.iloc[split[part]]
        return (
            torch.from_numpy(transform(rows, spec)).to(run_device),
            torch.from_numpy(encode_labels(rows, spec)).to(run_device),
        )

    x_train, y_train = tensors("train")
    x_val, y_val = tensors("validation")
    if target_labels is not None:
        targets = np.asarray(target_labels)
        if targets.shape != (len(frame),) or not np.isin(targets, np.arange(len(spec.classes))).all():
            raise DataError(f"target_labels needs one class index (0..{len(spec.classes) - 1}) per row.")
        y_train = torch.from_numpy(targets[split["train"]].astype(np.int64)).to(run_device)
    w_train = (
        None
        if sample_weight is None
        else torch.from_numpy(sample_weight[split["train"]].astype(np.float32)).to(run_device)
    )
    n = len(y_train)
    if n < 10:
        raise DataError("Fewer than 10 training rows.")
    model = build_model(config.model, spec.input_width, len(spec.classes), config.hidden).to(run_device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    sample_rate = min(1.0, config.batch_size / n)
    steps_per_epoch = max(1, int(round(1 / sample_rate)))
    total_steps = steps_per_epoch * config.epochs
    noise_multiplier, accountant = 0.0, "none"
    if config.private:
        noise_multiplier, accountant = noise_for_target(
            target_epsilon=config.target_epsilon,
            delta=config.delta,
            sample_rate=sample_rate,
            steps=total_steps,
            accountant=config.accountant,
        )
    if on_plan is not None:
        on_plan(noise_multiplier, sample_rate, total_steps)
    clipper = FastClipper(model) if config.private else None
    expected_batch = sample_rate * n
    curve: list[dict[str, float]] = []
    last_report = 0.0
    started = time.monotonic()
    step = 0
    running_loss = float("nan")

    def spent(steps: int) -> EpsilonReport | None:
        if not config.private:
            return None
        return epsilon_spent([Mechanism(noise_multiplier, sample_rate, steps)], config.delta, config.accountant)

    try:
        for epoch in range(1, config.epochs + 1):
            model.train()
            for _ in range(steps_per_epoch):
                if should_cancel is not None and should_cancel():
                    raise TrainingCancelled(step)
                # Poisson sampling: every row joins this batch independently with probability q.
                if secure is not None:
                    mask = secure.poisson_mask(n, sample_rate)
                else:
                    mask = torch.rand(n, generator=generator) < sample_rate
                index = torch.nonzero(mask).flatten().to(run_device)
                optimizer.zero_grad(set_to_none=True)
                if config.private:
                    if len(index):
                        per_sample = loss_per_sample(model(x_train[index]), y_train[index])
                        if w_train is not None:
                            # Weighting the loss BEFORE per-sample clipping scales each row's gradient by w <= 1, and
                            # clipping still bounds every row's contribution by max_grad_norm: the sensitivity, hence
                            # the accounting, is unchanged. (For weights given in advance: weights computed from
                            # the other rows, as a reduction's are, are a release the accounting does not cover.)
                            # A row whose weighted gradient still exceeds the clipping norm counts in full.
                            per_sample = per_sample * w_train[index]
                        clipper.clipped_sum(per_sample, config.max_grad_norm)
                        batch_loss = float(per_sample.detach().mean())
                    else:  # an empty Poisson batch still takes a (noise-only) step, as the accounting assumes
                        for parameter in model.parameters():
                            parameter.grad = torch.zeros_like(parameter)
                        batch_loss = running_loss
                    parameters = list(model.parameters())
                    assert secure is not None
                    noises = secure.noise_like(parameters, noise_multiplier * config.max_grad_norm)
                    for parameter, noise in zip(parameters, noises, strict=True):
                        parameter.grad = (parameter.grad + noise) / expected_batch
                else:
                    if not len(index):
                        step += 1
                        continue
                    per_sample = loss_per_sample(model(x_train[index]), y_train[index])
                    if w_train is not None:
                        per_sample = per_sample * w_train[index]
                    per_sample.mean().backward()
                    batch_loss = float(per_sample.detach().mean())
                optimizer.step()
                step += 1
                if not math.isnan(batch_loss):
                    if math.isinf(batch_loss) or batch_loss > 1e6:
                        raise TrainingError(
                            f"Training diverged at step {step} (loss {batch_loss:.3g}); lower the learning rate.", step
                        )
                    running_loss = batch_loss if math.isnan(running_loss) else 0.9 * running_loss + 0.1 * batch_loss
                if any(not torch.isfinite(p).all() for p in model.parameters()):
                    raise TrainingError(
                        f"Training diverged at step {step} (parameters are not finite); lower the learning rate.", step
                    )
                now = time.monotonic()
                if on_progress is not None and (now - last_report >= progress_every_s or step == total_steps):
                    last_report = now
                    report = spent(step)
                    point = {
                        "step": step,
                        "epoch": epoch,
                        "loss": running_loss,
                        "epsilon": report.epsilon if report else 0.0,
                    }
                    curve.append(point)
                    elapsed = now - started
                    on_progress(
                        {**point, "total_steps": total_steps, "seconds_left": elapsed / step * (total_steps - step)}
                    )
            model.eval()
    finally:
        if clipper is not None:
            clipper.remove()
    final = spent(step)
    privacy = {
        "private": config.private,
        "accountant": final.accountant if final else "none",
        "accountant_label": final.label if final else "not private: for comparison only",
        "noise_multiplier": noise_multiplier,
        "sample_rate": sample_rate,
        "steps": step,
        "max_grad_norm": config.max_grad_norm,
        "epsilon": final.epsilon if final else None,
        "delta": config.delta,
        "target_epsilon": config.target_epsilon if config.private else None,
        "expected_batch_size": expected_batch,
        "noise_accountant": accountant,
        # What the guarantee rests on: the sampling and noise source (never the seed, which is published).
        "noise_source": secure.source if secure is not None else "none",
    }
    metrics = {
        "train_accuracy": _accuracy(model, x_train, y_train),
        "validation_accuracy": _accuracy(model, x_val, y_val),
        "majority_rate": float(
            np.bincount(encode_labels(frame.iloc[split["validation"]], spec)).max() / max(len(y_val), 1)
        ),
        "final_loss": running_loss,
        "device": str(run_device),
        "rows": {k: len(v) for k, v in split.items()},
        "split_sha256": split_digest(split),
    }
    return TrainingResult(model=model.cpu(), spec=spec, split=split, privacy=privacy, metrics=metrics, curve=curve)
