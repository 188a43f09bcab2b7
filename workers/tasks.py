"""Celery entry points: thin wrappers that claim a job row, call a service or the engine, and record results."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

import celery
from celery import shared_task

from workers import task_names
from workers.runtime import JobContext, job_task

# Upper bound for the diagnostics job's optional pause (tests use it to kill a worker mid-job).
DIAGNOSTICS_MAX_SLEEP = 60


@job_task(task_names.DIAGNOSTICS)
def diagnostics(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Proves web -> broker -> worker -> database: each step reports progress; the result names the worker."""
    from django.db import connection

    started = time.monotonic()
    ctx.progress(0.1, "Worker received the task", force=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    ctx.progress(0.3, "Database reachable from the worker", force=True)
    sleep_seconds = min(float(spec.get("sleep_seconds", 0) or 0), DIAGNOSTICS_MAX_SLEEP)
    deadline = time.monotonic() + sleep_seconds
    while time.monotonic() < deadline:
        ctx.raise_if_cancelled({"stopped_after_seconds": round(time.monotonic() - started, 2)})
        remaining = deadline - time.monotonic()
        ctx.progress(0.3 + 0.6 * (1 - remaining / sleep_seconds), f"Waiting ({remaining:.0f}s left)")
        time.sleep(min(0.2, max(remaining, 0)))
    queued_at = ctx.job.created_at.timestamp()
    return {
        "worker_hostname": socket.gethostname(),
        "worker_pid": os.getpid(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "database": connection.vendor,
        "queue": ctx.job.queue,
        "attempt": ctx.job.attempt,
        "queue_to_finish_seconds": round(time.time() - queued_at, 3),
    }


@job_task(task_names.CONSENT_IMPORT)
def consent_import(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.consent.services import consent_import_run

    return consent_import_run(
        consent_import_id=spec["consent_import_id"], progress=lambda fraction, message: ctx.progress(fraction, message)
    )


@shared_task(name=task_names.REAP_EXPIRED_JOBS, expires=55)
def reap_expired_jobs() -> dict[str, int]:
    """Beat, every minute: jobs whose worker died go back to the queue or fail; none stays running."""
    from apps.jobs.services import job_reap_expired

    outcome = job_reap_expired()
    outcome["training_runs_settled"] = settle_lost_training()
    return outcome


@job_task(task_names.DATASET_PROFILE)
def dataset_profile(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.services import dataset_version_profile

    return dataset_version_profile(
        version_id=spec["version_id"], progress=lambda fraction, message: ctx.progress(fraction, message, force=True)
    )


@job_task(task_names.DATASET_PREPARE)
def dataset_prepare(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.services import dataset_version_prepare

    return dataset_version_prepare(
        version_id=spec["version_id"],
        actor_id=ctx.job.created_by_id,
        progress=lambda fraction, message: ctx.progress(fraction, message, force=True),
    )


@job_task(task_names.DATASET_ANONYMISE)
def dataset_anonymise(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.anonymisation import anonymisation_run

    return anonymisation_run(
        anonymisation_id=spec["anonymisation_id"],
        progress=lambda fraction, message: ctx.progress(fraction, message, force=True),
    )


@job_task(task_names.DATASET_ANONYMISE_APPLY)
def dataset_anonymise_apply(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.datasets.anonymisation import anonymisation_apply

    return anonymisation_apply(
        anonymisation_id=spec["anonymisation_id"],
        actor_id=ctx.job.created_by_id,
        progress=lambda fraction, message: ctx.progress(fraction, message, force=True),
    )


@shared_task(name=task_names.DATASET_RETENTION, expires=3600)
def dataset_retention() -> list[str]:
    """Beat, daily: erase dataset versions past their retention date (their data keys are destroyed)."""
    from apps.datasets.services import dataset_version_erase_expired

    return dataset_version_erase_expired()


@job_task(task_names.REPORT_RENDER)
def report_render(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    from apps.reports.services import report_render as render

    return render(report_id=spec["report_id"],
                  progress=lambda fraction, message: ctx.progress(fraction, message, force=True))


@shared_task(name=task_names.REVIEW_REMINDERS, expires=3000)
def review_reminders() -> int:
    """Beat, hourly: remind board members whose vote on an open review is due within two days (once a day each)."""
    from apps.ethics.services import reviews_remind_due

    return reviews_remind_due()


@job_task(task_names.TRAINING)
def training(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """DP-SGD on a prepared version: the engine trains; apps' services record progress, budget and the model."""
    import shutil
    import time as clock
    from pathlib import Path

    from django.conf import settings

    from apps.core.errors import ValidationFailed
    from apps.datasets.services import read_version_table
    from apps.training import services
    from apps.training.models import TrainingRun
    from workers.engine.training.accounting import Mechanism, epsilon_spent
    from workers.engine.training.artifacts import save_model
    from workers.engine.training.data import DataError
    from workers.engine.training.trainer import TrainingCancelled, TrainingConfig, TrainingError, train
    from workers.runtime import JobCancelled

    run = TrainingRun.objects.select_related("dataset_version__dataset", "usecase").get(id=spec["run_id"])
    config = TrainingConfig(
        **{k: v for k, v in run.spec.items() if k in TrainingConfig.__dataclass_fields__}, private=not run.non_private
    )
    budget = services.budget_for(run.dataset_version)
    planned: dict[str, Any] = {}
    last_cancel_check = [0.0]

    def composed_with(mechanism: dict[str, Any] | None) -> float | None:
        history = [
            Mechanism(m["noise_multiplier"], m["sample_rate"], m["steps"])
            for m in services.committed_mechanisms(budget)
        ]
        if mechanism:
            history.append(Mechanism(mechanism["noise_multiplier"], mechanism["sample_rate"], mechanism["steps"]))
        return epsilon_spent(history, budget.delta, budget.accountant).epsilon if history else 0.0

    def spent_after(steps: int) -> dict[str, Any] | None:
        if run.non_private or not planned or steps == 0:
            return None
        report = epsilon_spent(
            [Mechanism(planned["noise_multiplier"], planned["sample_rate"], steps)], config.delta, config.accountant
        )
        return {
            **planned,
            "steps": steps,
            "epsilon": report.epsilon,
            "accountant": report.accountant,
            "accountant_label": report.label,
            "delta": config.delta,
        }

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
        now = clock.monotonic()
        if now - last_cancel_check[0] < 1.0:
            return False
        last_cancel_check[0] = now
        return ctx.cancel_requested()

    ctx.progress(0.01, "Loading the prepared data", force=True)
    frame = read_version_table(run.dataset_version).to_pandas()

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

    try:
        result = train(frame, config, on_progress=on_progress, should_cancel=should_cancel, on_plan=before_training)
    except TrainingCancelled as exc:
        spent = spent_after(exc.steps_done)
        services.training_run_stop(
            run=run,
            status="cancelled",
            message=f"Cancelled after {exc.steps_done} steps.",
            spent=spent,
            composed=composed_with(spent),
        )
        raise JobCancelled({"steps_done": exc.steps_done}) from None
    except (TrainingError, DataError) as exc:
        steps = getattr(exc, "steps_done", 0)
        spent = spent_after(steps)
        services.training_run_stop(
            run=run, status="failed", message=str(exc), spent=spent, composed=composed_with(spent)
        )
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
    composed = None if run.non_private else composed_with(privacy)
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
    return {
        "model_version": str(model.id),
        "model_sha256": model.sha256,
        "epsilon": privacy.get("epsilon"),
        "validation_accuracy": result.metrics["validation_accuracy"],
    }


@shared_task(name=task_names.SETTLE_LOST_TRAINING, expires=55)
def settle_lost_training() -> int:
    """Beat, every minute after the reaper: a run whose worker died commits its completed steps' spend."""
    from apps.training import services
    from workers.engine.training.accounting import Mechanism, epsilon_spent

    settled = 0
    for run in services.lost_runs():
        spent = None
        planned = run.planned or {}
        if run.steps_completed and planned.get("noise_multiplier") and not run.non_private:
            budget = services.budget_for(run.dataset_version)
            mechanism = {
                "noise_multiplier": planned["noise_multiplier"],
                "sample_rate": planned["sample_rate"],
                "steps": run.steps_completed,
            }
            report = epsilon_spent([Mechanism(**mechanism)], budget.delta, budget.accountant)
            spent = {**mechanism, "epsilon": report.epsilon, "accountant": report.accountant}
            history = [Mechanism(**m) for m in services.committed_mechanisms(budget)] + [Mechanism(**mechanism)]
            composed = epsilon_spent(history, budget.delta, budget.accountant).epsilon
        else:
            composed = None
        services.training_run_stop(
            run=run,
            status="failed",
            spent=spent,
            composed=composed,
            message=(run.job.error or {}).get("message", "The job ended unexpectedly.")
            + " The partial model was discarded.",
        )
        settled += 1
    return settled


SCORE_MAX_ROWS = 10_000


@job_task(task_names.SCORE)
def score_batch(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Predictions for a small CSV batch with a model version (weights loaded from safetensors, no pickle)."""
    import io
    from pathlib import Path

    import pandas as pd
    from django.conf import settings

    from apps.core.errors import ValidationFailed
    from apps.training.models import ModelVersion
    from workers.engine.training.artifacts import score
    from workers.engine.training.data import DataError

    model = ModelVersion.objects.get(id=spec["model_version_id"])
    try:
        frame = pd.read_csv(io.StringIO(spec["csv"]), nrows=SCORE_MAX_ROWS + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationFailed(f"The batch is not a readable CSV: {exc}") from None
    if len(frame) > SCORE_MAX_ROWS:
        raise ValidationFailed(f"Score at most {SCORE_MAX_ROWS:,} rows at a time.")
    try:
        scored = score(frame, Path(settings.STORAGE_ROOT) / model.storage_path)
    except DataError as exc:
        raise ValidationFailed(str(exc)) from None
    return {
        "model_version": str(model.id),
        "model_sha256": model.sha256,
        "rows": len(scored),
        "non_private_model": model.non_private,
        "predictions": scored.to_dict(orient="records"),
    }


def _membership_audit(item: Any, run: Any, model: Any, prep: Any, frame: Any, member_rows: Any,
                      test_rows: Any) -> dict[str, Any]:
    """Members (training rows) against non-members (held-out test rows), balanced; reference models trained on the
    run's validation rows (audited by neither side) calibrate the stronger attack when there are enough of them."""
    import numpy as np
    import torch

    from workers.engine.evaluation.privacy_audit import membership_audit
    from workers.engine.evaluation.reference_models import reference_losses
    from workers.engine.training.data import DataError, encode_labels, transform
    from workers.engine.training.models import loss_per_sample
    from workers.engine.training.trainer import TrainingConfig

    rng = np.random.default_rng(item.seed)
    size = min(len(member_rows), len(test_rows), 5000)
    members = member_rows.iloc[rng.permutation(len(member_rows))[:size]]
    nonmembers = test_rows.iloc[rng.permutation(len(test_rows))[:size]]

    def target_loss(rows: Any) -> Any:
        with torch.no_grad():
            return loss_per_sample(model(torch.from_numpy(transform(rows, prep))),
                                   torch.from_numpy(encode_labels(rows, prep))).numpy()

    config = TrainingConfig(**{k: v for k, v in run.spec.items() if k in TrainingConfig.__dataclass_fields__})
    try:
        references = reference_losses(frame.iloc[run.split.get("validation", [])], config, [members, nonmembers],
                                      seed=item.seed)
    except DataError:  # a reference sample without one of the classes: the loss attack alone is reported
        references = None
    return membership_audit(
        target_loss(members), target_loss(nonmembers),
        proven_epsilon=run.privacy.get("epsilon"), delta=run.privacy.get("delta") or 1e-5,
        reference_member_losses=references[0] if references else None,
        reference_nonmember_losses=references[1] if references else None,
        seed=item.seed,
    )


@job_task(task_names.EVALUATION)
def evaluation(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Performance and fairness by group on rows the model never trained on, and the membership audit."""
    from pathlib import Path

    import torch
    from django.conf import settings

    from apps.core.errors import ValidationFailed
    from apps.datasets.services import read_version_table
    from apps.evaluation import services
    from apps.evaluation.models import Evaluation
    from workers.engine.evaluation.evaluate import Policy, evaluate, privacy_cost
    from workers.engine.evaluation.groups import group_codes
    from workers.engine.evaluation.metrics import multiclass_by_group, multiclass_summary
    from workers.engine.training.artifacts import load_model
    from workers.engine.training.data import DataError, encode_labels, transform

    item = Evaluation.objects.select_related("model_version__training_run", "dataset_version").get(
        id=spec["evaluation_id"]
    )
    Evaluation.objects.filter(pk=item.pk).update(status=Evaluation.Status.RUNNING)
    run = item.model_version.training_run
    model, prep, _manifest = load_model(Path(settings.STORAGE_ROOT) / item.model_version.storage_path)
    ctx.progress(0.1, "Loading the evaluation rows", force=True)
    frame = read_version_table(item.dataset_version).to_pandas()
    if item.kind == Evaluation.Kind.HELD_OUT:
        test_rows = frame.iloc[run.split["test"]]
        member_rows = frame.iloc[run.split["train"]]
    else:
        test_rows, member_rows = frame, None
    policy = item.policy or {}
    try:
        inputs = torch.from_numpy(transform(test_rows, prep))
        labels = encode_labels(test_rows, prep)
    except DataError as exc:
        services.evaluation_fail(evaluation=item, message=str(exc))
        raise ValidationFailed(str(exc)) from None
    with torch.no_grad():
        logits = model(inputs)
    ctx.progress(0.4, "Computing performance and fairness by group", force=True)
    if logits.shape[1] == 1:
        scores = torch.sigmoid(logits[:, 0]).numpy()
        try:
            results = evaluate(
                y_true=labels,
                y_score=scores,
                sensitive=test_rows,
                seed=item.seed,
                resamples=200,
                policy=Policy(
                    sensitive_attributes=policy.get("sensitive_attributes", []),
                    gates=policy.get("gates", []),
                    min_group_size=policy.get("min_group_size", 30),
                    intersections=policy.get("intersections", True),
                ),
            )
        except ValueError as exc:
            services.evaluation_fail(evaluation=item, message=str(exc))
            raise ValidationFailed(str(exc)) from None
        results["positive_class"] = prep.classes[1]
    else:
        predictions = logits.argmax(dim=1).numpy()
        results = {
            "multiclass": multiclass_summary(labels, predictions, len(prep.classes)),
            "multiclass_groups": multiclass_by_group(
                labels, predictions, len(prep.classes),
                group_codes(test_rows, [a for a in policy.get("sensitive_attributes", []) if a in test_rows.columns],
                            policy.get("intersections", True)),
                policy.get("min_group_size", 30),
            ),
            "groupings": [],
            "gates": [],
            "verdict": "fail" if policy.get("gates") else "pass",
            "note": "Fairness gates are defined for binary outcomes; multiclass models show performance.",
        }
    audit: dict[str, Any] = {}
    if member_rows is not None:
        ctx.progress(0.6, "Membership-inference audit", force=True)
        audit = _membership_audit(item, run, model, prep, frame, member_rows, test_rows)
    cost: list[dict[str, Any]] = []
    baseline = Evaluation.objects.filter(
        model_version__training_run__non_private=True,
        model_version__usecase=item.model_version.usecase,
        dataset_version=item.dataset_version,
        status=Evaluation.Status.SUCCEEDED,
    ).first()
    if baseline is not None and not run.non_private and results.get("groupings"):
        cost = privacy_cost(results, baseline.results)
    services.evaluation_record(evaluation=item, results=results, audit=audit, privacy_cost=cost)
    return {"verdict": results.get("verdict"), "audit_epsilon_lower_bound": audit.get("empirical_epsilon_lower_bound")}
