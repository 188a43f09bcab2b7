"""Training's job kind: DP-SGD (or a non-private baseline) on a prepared version. Scoring is per deployment
(``apps.deployments.jobs``).

The engine (torch, opacus, the accountant) is imported inside the run functions only: the web process imports this
module to learn the kinds, never the engine.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from django.conf import settings

from apps.core.errors import ValidationFailed
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobCancelled, JobContext
from apps.training import services
from apps.training.models import TrainingRun
from workers import task_names


def _accountant() -> Any:
    from workers.engine.training import accounting

    return accounting


def composed_epsilon(budget: Any, mechanism: dict[str, Any] | None) -> float:
    """The dataset's composed spend if ``mechanism`` is committed after what is already committed."""
    accounting = _accountant()
    history = [
        accounting.Mechanism(m["noise_multiplier"], m["sample_rate"], m["steps"])
        for m in services.committed_mechanisms(budget)
    ]
    if mechanism:
        history.append(
            accounting.Mechanism(mechanism["noise_multiplier"], mechanism["sample_rate"], mechanism["steps"])
        )
    return accounting.epsilon_spent(history, budget.delta, budget.accountant).epsilon if history else 0.0


def spent_after(run: TrainingRun, planned: dict[str, Any], steps: int) -> dict[str, Any] | None:
    """What ``steps`` completed steps of the planned mechanism spent (None for a baseline or nothing done)."""
    if run.non_private or not planned.get("noise_multiplier") or steps == 0:
        return None
    from workers.engine.training.noise import SOURCE as NOISE_SOURCE

    accounting = _accountant()
    delta = run.spec.get("delta") or services.budget_for(run.dataset_version).delta
    report = accounting.epsilon_spent(
        [accounting.Mechanism(planned["noise_multiplier"], planned["sample_rate"], steps)],
        delta,
        run.spec.get("accountant", "pld"),
    )
    return {
        "noise_multiplier": planned["noise_multiplier"],
        "sample_rate": planned["sample_rate"],
        "max_grad_norm": planned.get("max_grad_norm"),
        "steps": steps,
        "epsilon": report.epsilon,
        "accountant": report.accountant,
        "accountant_label": report.label,
        "delta": delta,
        # Every run draws its noise from the CSPRNG: a stopped run's record must say so, or it reads as seeded noise.
        "noise_source": NOISE_SOURCE,
    }


def run_training(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """DP-SGD on a prepared version: the engine trains; the services record progress, budget and the model."""
    from apps.datasets.services import read_version_table
    from workers.engine.training.artifacts import save_model
    from workers.engine.training.data import DataError
    from workers.engine.training.trainer import TrainingCancelled, TrainingConfig, TrainingError, train

    run = TrainingRun.objects.select_related("dataset_version__dataset", "usecase").get(id=spec["run_id"])
    config = TrainingConfig(
        **{k: v for k, v in run.spec.items() if k in TrainingConfig.__dataclass_fields__}, private=not run.non_private
    )
    planned: dict[str, Any] = {}
    last_cancel_check = [0.0]

    def on_progress(point: dict[str, Any]) -> None:
        services.training_run_progress(
            run=run, steps=point["step"], curve_point={k: point[k] for k in ("step", "epoch", "loss", "epsilon")}
        )
        ctx.progress(
            point["step"] / point["total_steps"],
            f"Epoch {point['epoch']}, step {point['step']:,} of {point['total_steps']:,}",
            force=True,
            step=point["step"],
            epoch=point["epoch"],
            loss=point["loss"],
            epsilon=point["epsilon"],
            seconds_left=round(point["seconds_left"]),
            total_steps=point["total_steps"],
        )

    def should_cancel() -> bool:
        now = time.monotonic()
        if now - last_cancel_check[0] < 1.0:
            return False
        last_cancel_check[0] = now
        return ctx.cancel_requested()

    def before_training(noise_multiplier: float, sample_rate: float, total_steps: int) -> None:
        planned.update(
            {
                "noise_multiplier": noise_multiplier,
                "sample_rate": sample_rate,
                "total_steps": total_steps,
                "max_grad_norm": config.max_grad_norm,
            }
        )
        services.training_run_started(run=run, planned=planned)

    ctx.progress(0.01, "Loading the prepared data", force=True)
    frame = read_version_table(run.dataset_version).to_pandas()
    try:
        result = train(frame, config, on_progress=on_progress, should_cancel=should_cancel, on_plan=before_training)
    except TrainingCancelled as exc:
        # The failure hook settles the budget from the steps recorded by on_progress.
        raise JobCancelled({"steps_done": exc.steps_done}) from None
    except (TrainingError, DataError) as exc:
        raise ValidationFailed(str(exc)) from None
    # Artifacts go under a key made of the job id and attempt; recorded only after every file is written.
    relative = f"models/{run.organisation_id}/{ctx.job.id}-{ctx.job.attempt}"
    folder = Path(settings.STORAGE_ROOT) / relative
    shutil.rmtree(folder, ignore_errors=True)
    version = run.dataset_version
    manifest = save_model(
        folder,
        model=result.model,
        spec=result.spec,
        model_kind=config.model,
        hidden=list(config.hidden),
        manifest={
            "training_run": str(run.id),
            "usecase": run.usecase.reference,
            "dataset_version": str(version.id),
            "dataset_sha256": version.sha256,
            "consent_snapshot_hash": version.consent_snapshot_hash,
            "seed": config.seed,
            "privacy": result.privacy,
            "split_sha256": result.metrics["split_sha256"],
            "non_private": run.non_private,
            "config": run.spec,
        },
    )
    privacy = {**result.privacy}
    budget = services.budget_for(run.dataset_version)
    composed = None if run.non_private else composed_epsilon(budget, privacy)
    try:
        model = services.training_run_succeed(
            run=run,
            privacy=privacy,
            metrics=result.metrics,
            split={name: [int(i) for i in rows] for name, rows in result.split.items()}
            | {"sha256": result.metrics["split_sha256"]},
            curve=result.curve,
            manifest=manifest,
            storage_path=relative,
            composed=composed,
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing recorded: leave no orphan artifact
        raise
    return {
        "model_version": str(model.id),
        "model_sha256": model.sha256,
        "epsilon": privacy.get("epsilon"),
        "validation_accuracy": result.metrics["validation_accuracy"],
    }


def training_failed(*, job: Any) -> None:
    """Failed, cancelled or lost: commit what the completed steps spent (or release the reservation); no model."""
    run = TrainingRun.objects.select_related("dataset_version__dataset").filter(job=job).first()
    if run is None or run.status != TrainingRun.Status.PENDING:
        return
    spent = spent_after(run, run.planned or {}, run.steps_completed)
    composed = composed_epsilon(services.budget_for(run.dataset_version), spent) if spent else None
    services.training_run_stop(run=run, job=job, spent=spent, composed=composed)


register(
    JobKind(
        kind="training",
        label="Private training",
        task_name=task_names.TRAINING,
        queue="gpu",
        run=run_training,
        on_failure=training_failed,
        max_attempts=1,  # a rerun would spend budget twice: a lost run is settled, never retried
    ),
)
