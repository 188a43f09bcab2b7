"""The job kinds of the model page: a mitigated candidate (group thresholds or exponentiated gradient) and the
explanation of one held-out row. Registered by ``apps/evaluation/jobs.py``; the engine (torch, the explainers, the
mitigation algorithms) is imported inside the run functions only."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.evaluation import mitigation as services
from apps.evaluation.selectors import explanation_baseline_for
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobCancelled, JobContext
from apps.training.models import ModelVersion, TrainingRun
from workers import task_names

# What save_model computes itself: a candidate's manifest starts from its parent's without them.
COMPUTED_KEYS = ("engine_version", "libraries", "weights_sha256", "preprocess_sha256", "model_sha256")
PERSON_REASONS = 3


def _folder(model: ModelVersion) -> Path:
    return Path(settings.STORAGE_ROOT) / model.storage_path


def _disparities(labels: Any, decisions: Any, groups: Any, min_group_size: int) -> dict[str, float | None]:
    """Accuracy and the between-group fairness metrics of 0/1 decisions, by one attribute's groups."""
    import numpy as np

    from workers.engine.evaluation.metrics import confusion_counts, fairness_from_metrics, metrics_from_counts

    names, codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
    counts = confusion_counts(np.asarray(labels), np.asarray(decisions), codes.ravel(), len(names))
    per_group = metrics_from_counts(counts)
    fairness = fairness_from_metrics(per_group, per_group["count"] >= min_group_size)
    overall = counts.sum(axis=0)
    out: dict[str, float | None] = {"accuracy": float((overall[0] + overall[3]) / max(overall.sum(), 1))}
    for metric, value in fairness.items():
        out[metric] = float(value) if np.isfinite(value) else None
    return out


def _thresholds(
    ctx: JobContext, run: TrainingRun, plan: dict[str, Any], frame: Any, loaded: Any, parent: ModelVersion
) -> dict[str, Any]:
    """Fit a threshold per group on the validation rows; the weights, and so their privacy record, are the parent's."""
    import numpy as np

    from workers.engine.evaluation.scoring import predict, sigmoid
    from workers.engine.mitigation.thresholds import fit_group_thresholds
    from workers.engine.training.artifacts import decide, group_values
    from workers.engine.training.data import DataError

    model, prep, _manifest = loaded
    if len(prep.classes) != 2:
        raise ValidationFailed("Group thresholds are defined for binary outcomes; this model has more classes.")
    validation = frame.iloc[run.split["validation"]]
    ctx.progress(
        0.3, f"Fitting a threshold per {plan['attribute']} group on {len(validation):,} validation rows", force=True
    )
    try:
        labels, logits = predict(model, prep, validation)
        groups = group_values(validation, plan["attribute"])
    except DataError as exc:
        raise ValidationFailed(str(exc)) from None
    scores = sigmoid(logits[:, 0])
    fitted = fit_group_thresholds(labels, scores, groups, constraint=plan["constraint"])
    mitigation = {
        "method": "thresholds",
        "constraint": plan["constraint"],
        "attribute": plan["attribute"],
        "objective": "accuracy_score",
        "fitted": fitted,
        "fitted_on": {"part": "validation", "rows": len(validation), "split_sha256": run.split.get("sha256")},
        "epsilon_spent": 0.0,
    }
    # What the fit did on the rows it was fitted on (the evaluation then judges the candidate on the test rows).
    min_group_size = int((run.usecase.fairness_policy or {}).get("min_group_size", 30))
    before = _disparities(labels, (scores >= 0.5).astype(np.int64), groups, min_group_size)
    probabilities = np.stack([1 - scores, scores], axis=1)
    candidate = {"mitigation": mitigation}
    after_decisions = decide(model, prep, candidate, validation, probabilities, rng=np.random.default_rng(0))
    after = _disparities(labels, after_decisions, groups, min_group_size)
    return {
        "model": model,
        "mitigation": mitigation,
        "privacy": dict(parent.manifest.get("privacy") or parent.training_run.privacy or {}),
        "metrics": {
            "validation_accuracy": after["accuracy"],
            "majority_rate": float(np.bincount(labels).max() / max(len(labels), 1)),
            "validation": {"rows": len(validation), "original": before, "candidate": after},
        },
        "spent": None,
    }


def run_mitigation(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Make a mitigated candidate of the run's parent model, save it as an artifact and record it."""
    from apps.datasets.services import read_version_table
    from apps.training.jobs import composed_epsilon
    from apps.training.services import budget_for
    from workers.engine.training.artifacts import load_model, save_model

    run = TrainingRun.objects.select_related("dataset_version__dataset", "usecase").get(id=spec["run_id"])
    plan = run.spec["mitigation"]
    parent = ModelVersion.objects.get(id=plan["parent"])
    loaded = load_model(_folder(parent))
    ctx.progress(0.05, "Loading the prepared data", force=True)
    frame = read_version_table(run.dataset_version).to_pandas()
    if plan["method"] == "thresholds":
        made = _thresholds(ctx, run, plan, frame, loaded, parent)
    else:
        made = _reductions(ctx, run, plan, frame, loaded)
    _parent_network, prep, parent_manifest = loaded
    ctx.progress(0.95, "Saving the candidate's artifact and queueing its evaluation", force=True)
    relative = f"models/{run.organisation_id}/{ctx.job.id}-{ctx.job.attempt}"
    folder = Path(settings.STORAGE_ROOT) / relative
    shutil.rmtree(folder, ignore_errors=True)
    manifest = save_model(
        folder,
        model=made["model"],
        spec=prep,
        model_kind=parent_manifest["model_kind"],
        hidden=list(parent_manifest["hidden"]),
        manifest={
            **{k: v for k, v in parent_manifest.items() if k not in COMPUTED_KEYS},
            "training_run": str(run.id),
            "parent_model_version": str(parent.id),
            "parent_model_sha256": parent.sha256,
            "privacy": made["privacy"],
            "mitigation": made["mitigation"],
        },
    )
    spent = made["spent"]
    composed = composed_epsilon(budget_for(run.dataset_version), spent) if spent else None
    try:
        model = services.mitigation_succeed(
            run=run,
            mitigation=made["mitigation"],
            privacy=made["privacy"],
            metrics={
                **made["metrics"],
                "rows": {part: len(run.split.get(part, [])) for part in ("train", "validation", "test")},
                "split_sha256": run.split.get("sha256"),
            },
            manifest=manifest,
            storage_path=relative,
            spent=spent,
            composed=composed,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing recorded: leave no orphan artifact
        raise
    return {
        "model_version": str(model.id),
        "model_sha256": model.sha256,
        "method": plan["method"],
        "epsilon": (spent or {}).get("epsilon", 0.0),
    }


def _cells(labels: Any, groups: Any) -> list[tuple[int, str]]:
    return [(int(y), str(g)) for y, g in zip(labels, groups, strict=True)]


def _reductions(ctx: JobContext, run: TrainingRun, plan: dict[str, Any], frame: Any, loaded: Any) -> dict[str, Any]:
    """Exponentiated gradient whose learner is DP-SGD on the training rows.

    The reduction's game (multipliers, errors and disparities of each classifier, the mixture weights) is played on
    the VALIDATION rows. Each best response asks for a weighted, relabelled problem in which every row of one
    (label, group) cell gets the same weight and label (they depend on the row's own label and group and on the
    multipliers only), so the training rows of that cell get them too, and a DP-SGD run learns it. A training row's
    weight and label thus depend on its own values and on validation statistics, never on other training rows:
    each call's DP-SGD accounting covers the training rows, and the calls compose.
    """
    import numpy as np

    from apps.training.services import training_run_started
    from workers.engine.evaluation.scoring import predict
    from workers.engine.mitigation.reductions import ConstantPredictor, exponentiated_gradient
    from workers.engine.training.artifacts import MixtureModel, constant_network, group_values
    from workers.engine.training.data import DataError, encode_labels
    from workers.engine.training.noise import SOURCE as NOISE_SOURCE
    from workers.engine.training.trainer import TrainingCancelled, TrainingConfig, TrainingError, train

    model, prep, manifest = loaded
    if len(prep.classes) != 2:
        raise ValidationFailed("Exponentiated gradient is defined for binary outcomes; this model has more classes.")
    split = run.split
    validation = frame.iloc[split["validation"]]
    training = frame.iloc[split["train"]]
    try:
        validation_labels = encode_labels(validation, prep)
        validation_groups = group_values(validation, plan["attribute"])
        training_cells = _cells(encode_labels(training, prep), group_values(training, plan["attribute"]))
    except DataError as exc:
        raise ValidationFailed(str(exc)) from None
    validation_cells = _cells(validation_labels, validation_groups)
    config = TrainingConfig(
        **{k: v for k, v in run.spec.items() if k in TrainingConfig.__dataclass_fields__}, private=True
    )
    per_call = plan["per_call"]
    calls: list[dict[str, Any]] = []
    noise_sources: set[str] = set()
    networks: dict[int, Any] = {}
    last_cancel_check = [0.0]

    def should_cancel() -> bool:
        import time

        now = time.monotonic()
        if now - last_cancel_check[0] < 1.0:
            return False
        last_cancel_check[0] = now
        return ctx.cancel_requested()

    def fit_weighted(weights: Any, labels: Any) -> Any:
        by_cell: dict[tuple[int, str], tuple[float, int]] = {}
        for cell, weight, label in zip(validation_cells, weights, labels, strict=True):
            known = by_cell.setdefault(cell, (float(weight), int(label)))
            if abs(known[0] - float(weight)) > 1e-9 * max(1.0, abs(known[0])) or known[1] != int(label):
                raise ValidationFailed("The reduction gave one (label, group) cell two weights: it cannot be mapped.")
        top = max(weight for weight, _label in by_cell.values())
        sample_weight = np.zeros(len(frame))
        targets = np.zeros(len(frame), dtype=np.int64)
        for row, cell in zip(split["train"], training_cells, strict=True):
            # A training cell absent from the validation rows has no weight: its rows sit this call out.
            weight, label = by_cell.get(cell, (0.0, cell[0]))
            sample_weight[row], targets[row] = weight / top, label
        number = len(calls) + 1

        def on_plan(noise_multiplier: float, sample_rate: float, total_steps: int) -> None:
            # The reservation is the plan's: a call with less noise, another rate or more steps than planned would
            # spend more than was shown and confirmed, so it stops before its first step (nothing spent).
            planned = (per_call["noise_multiplier"], per_call["sample_rate"], per_call["steps"])
            if noise_multiplier < planned[0] * (1 - 1e-9) or sample_rate != planned[1] or total_steps != planned[2]:
                raise ValidationFailed("A learner call was calibrated differently from the confirmed plan.")
            # The reservation covers plan["calls"] calls: one more would spend what nobody confirmed.
            if len(calls) >= plan["calls"]:
                raise ValidationFailed("The reduction asked for more learner calls than the confirmed plan allows.")
            # Recorded before the first step: a call that starts may spend all of it, even if the worker is lost. A
            # private call draws its sampling and noise from the trainer's CSPRNG, named so a stopped run's record
            # says so too (a record naming none reads as seeded noise).
            calls.append(
                {
                    "noise_multiplier": noise_multiplier,
                    "sample_rate": sample_rate,
                    "steps": total_steps,
                    "noise_source": NOISE_SOURCE,
                }
            )
            training_run_started(run=run, planned={"calls": calls, "calls_started": len(calls)})

        def on_progress(point: dict[str, Any]) -> None:
            done = (number - 1 + point["step"] / point["total_steps"]) / plan["calls"]
            ctx.progress(
                0.1 + 0.8 * done,
                f"Private training {number} of at most {plan['calls']}: step {point['step']:,} of "
                f"{point['total_steps']:,}",
            )

        try:
            result = train(
                frame,
                config,
                on_plan=on_plan,
                on_progress=on_progress,
                should_cancel=should_cancel,
                sample_weight=sample_weight,
                target_labels=targets,
            )
        except TrainingCancelled:
            raise JobCancelled({"calls_started": len(calls)}) from None
        except (TrainingError, DataError) as exc:
            raise ValidationFailed(str(exc)) from None
        if result.metrics["split_sha256"] != split["sha256"] or result.spec.to_dict() != prep.to_dict():
            raise ValidationFailed("A learner call did not train on the original run's rows and encoding.")
        network = result.model.eval()
        noise_sources.add(str(result.privacy.get("noise_source")))

        def predictor(rows: Any) -> Any:
            return (predict(network, prep, rows)[1][:, 0] >= 0).astype(np.int64)

        networks[id(predictor)] = network
        return predictor

    ctx.progress(0.1, f"Exponentiated gradient on {len(validation):,} validation rows, DP-SGD learner", force=True)
    try:
        reduction = exponentiated_gradient(
            fit_weighted,
            validation,
            validation_labels,
            validation_groups,
            constraint=plan["constraint"],
            max_iter=services.REDUCTION_ITERATIONS,
            max_calls=plan["calls"],
        )
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    members, weights = [], []
    for predictor, weight in zip(reduction["predictors"], reduction["weights"], strict=True):
        if weight <= 0:
            continue
        if isinstance(predictor, ConstantPredictor):
            network = constant_network(manifest["model_kind"], prep, manifest["hidden"], bool(predictor.value))
        else:
            network = networks[id(predictor)]
        members.append(network)
        weights.append(float(weight))
    spent = _spent(calls, run)
    if spent is None or not networks:
        raise ValidationFailed("The reduction trained no model: every best response was a constant answer.")
    mitigation = {
        "method": "reductions",
        "constraint": plan["constraint"],
        "attribute": plan["attribute"],
        "eps": reduction["eps"],
        "weights": weights,
        "calls": reduction["calls"],
        "stopped": reduction["stopped"],
        "validation_disparity": reduction["disparity"],
        "validation_error": reduction["error"],
        "fitted_on": {
            "learners": {"part": "train", "rows": len(training)},
            "lagrangian": {"part": "validation", "rows": len(validation)},
            "split_sha256": split.get("sha256"),
        },
        "epsilon_spent": (spent or {}).get("epsilon", 0.0),
    }
    # The calls' own sampling and noise source (a CSPRNG per call): what the guarantee rests on.
    privacy = {**spent, "noise_source": " / ".join(sorted(noise_sources))}
    return {
        "model": MixtureModel(members, weights),
        "mitigation": mitigation,
        "privacy": privacy,
        "metrics": {
            # The mixture's expected accuracy on the validation rows, where the reduction measured it.
            "validation_accuracy": 1.0 - reduction["error"],
            "majority_rate": float(np.bincount(validation_labels).max() / max(len(validation_labels), 1)),
            "validation": {"rows": len(validation), "disparity": reduction["disparity"]},
        },
        "spent": spent,
    }


def _spent(calls: list[dict[str, Any]], run: TrainingRun) -> dict[str, Any] | None:
    """What the learner calls that started spent, each counted in full, composed by the accountant. Every call has
    the same mechanism (the trainer calibrates each with the same arguments); were one noisier, the least noise is
    taken for all of them, an upper bound."""
    from workers.engine.training import accounting

    if not calls:
        return None
    sigma = min(call["noise_multiplier"] for call in calls)
    sample_rate = max(call["sample_rate"] for call in calls)
    steps = sum(int(call["steps"]) for call in calls)
    sources = sorted({str(call.get("noise_source") or "unrecorded") for call in calls})
    delta = run.spec.get("delta") or 1e-5
    report = accounting.epsilon_spent([accounting.Mechanism(sigma, sample_rate, steps)], delta)
    return {
        "private": True,
        "noise_multiplier": sigma,
        "sample_rate": sample_rate,
        "steps": steps,
        "calls": len(calls),
        "max_grad_norm": run.spec.get("max_grad_norm"),
        "epsilon": report.epsilon,
        "accountant": report.accountant,
        "accountant_label": report.label,
        "delta": delta,
        "noise_source": " / ".join(sources),
    }


def mitigation_failed(*, job: Any) -> None:
    """Failed, cancelled or lost: commit what the learner calls that ran spent (or release the reservation)."""
    run = TrainingRun.objects.select_related("dataset_version__dataset").filter(job=job).first()
    if run is None or run.status != TrainingRun.Status.PENDING:
        return
    spent = spent_by_calls(run)
    from apps.training.jobs import composed_epsilon
    from apps.training.services import budget_for

    composed = composed_epsilon(budget_for(run.dataset_version), spent) if spent else None
    services.mitigation_stop(run=run, job=job, spent=spent, composed=composed)


def spent_by_calls(run: TrainingRun) -> dict[str, Any] | None:
    """What the learner calls recorded as started spent: a call that started may have taken every step of its
    mechanism, so a failed, cancelled or lost run's calls are committed in full (never under-counted)."""
    return _spent(list((run.planned or {}).get("calls") or []), run)


def run_row_explanation(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Explain one held-out test row: the model's probability, the baseline's, each feature's contribution to the
    log-odds, the decision, and the reasons an affected person would read. The row's values stay on this job row."""
    import numpy as np

    from apps.datasets.services import read_version_table
    from workers.engine.evaluation.scoring import predict, sigmoid
    from workers.engine.explain._model import ExplanationError
    from workers.engine.explain.attributions import explanation_baseline
    from workers.engine.explain.local import explain_row
    from workers.engine.training.artifacts import decide, load_model
    from workers.engine.training.data import DataError

    model_version = ModelVersion.objects.select_related("training_run__dataset_version").get(
        id=spec["model_version_id"]
    )
    run = model_version.training_run
    position = int(spec["position"])
    model, prep, manifest = load_model(_folder(model_version))
    ctx.progress(0.2, "Loading the held-out rows", force=True)
    frame = read_version_table(run.dataset_version).to_pandas()
    held_out = frame.iloc[run.split["test"]]
    if not 1 <= position <= len(held_out):
        raise ValidationFailed(f"The model has {len(held_out):,} held-out rows; there is no row {position}.")
    row = held_out.iloc[[position - 1]]
    baseline = explanation_baseline_for(model_version)
    baseline_source = "evaluation"
    try:
        if baseline is None:
            # As the evaluation computes it: the mean encoded input of the same held-out rows.
            baseline = explanation_baseline(prep, held_out).tolist()
            baseline_source = "held-out rows"
        ctx.progress(0.5, f"Explaining held-out row {position:,}", force=True)
        explained = explain_row(model, prep, row, baseline=baseline)
        positive = sigmoid(predict(model, prep, row)[1][:, 0])
        probabilities = np.stack([1 - positive, positive], axis=1)
        decided = decide(model, prep, manifest, row, probabilities, rng=np.random.default_rng())
    except (ExplanationError, DataError) as exc:
        raise ValidationFailed(str(exc)) from None
    reasons = [
        {**item, "direction": "raises" if item["contribution"] > 0 else "lowers"}
        for item in explained["contributions"]
        if item["contribution"] != 0
    ][:PERSON_REASONS]
    return {
        "model_version": str(model_version.id),
        "model_sha256": model_version.sha256,
        "position": position,
        "held_out_rows": len(held_out),
        "baseline_source": baseline_source,
        "decision": prep.classes[int(decided[0])],
        "mitigated": bool(manifest.get("mitigation")),
        **explained,
        "reasons": reasons,
    }


register(
    JobKind(
        kind="mitigation",
        label="Bias mitigation",
        task_name=task_names.MITIGATION,
        queue="gpu",
        run=run_mitigation,
        on_failure=mitigation_failed,
        max_attempts=1,  # a rerun of a reduction would spend budget twice: a lost run is settled, never retried
    ),
    JobKind(
        kind="row_explanation",
        label="Explanation of a held-out row",
        task_name=task_names.ROW_EXPLANATION,
        queue="gpu",
        run=run_row_explanation,
        private_result=True,  # a held-out person's row: read only through the row-explanation selectors
    ),
)
