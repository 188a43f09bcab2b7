"""Monitoring's job kinds: the reference fixed at training time, production batches folded into their window,
scoring per deployment, and the evaluation of a window that has ended.

The model (torch) is loaded only inside the run functions of the reference and scoring kinds: the web process
imports this module to learn the kinds, never the engine that needs torch. The monitoring engine itself
(``workers.engine.monitoring``) is pure numpy and pandas.
"""

from __future__ import annotations

import io
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.errors import ValidationFailed
from apps.datasets.services import read_version_table
from apps.deployments import services, sketching
from apps.deployments.alerts import alerts_sync
from apps.deployments.models import Deployment, MonitoringReference, MonitoringWindow, ProductionBatch
from apps.deployments.selectors import model_schema, privacy_inputs, reference_of, sensitive_attributes
from apps.deployments.sketching import PREDICTION_ID
from apps.deployments.webhooks import ALERT_WEBHOOK
from apps.ethics.bindings import bound_evaluation
from apps.evaluation.models import Evaluation
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from apps.training.models import ModelVersion
from workers import task_names
from workers.engine.monitoring.reference import build_reference as engine_reference


def _load(model_version: ModelVersion) -> tuple[Any, Any, dict[str, Any]]:
    from workers.engine.training.artifacts import load_model

    return load_model(Path(settings.STORAGE_ROOT) / model_version.storage_path)


def _probabilities(model: Any, prep: Any, frame: Any) -> Any:
    import torch

    from workers.engine.training.data import DataError, transform
    from workers.engine.training.models import predict_proba

    try:
        inputs = torch.from_numpy(transform(frame, prep))
    except DataError as exc:
        raise ValidationFailed(str(exc)) from None
    return predict_proba(model, inputs).numpy()


def build_reference(model_version: ModelVersion, progress: Any = None) -> MonitoringReference:
    """The reference of a model: its training rows (the run's train split), its features typed as the model encodes
    them, and its scores on those rows, summarised by the engine (bins fixed now, aggregates only)."""
    existing = reference_of(model_version)
    if existing is not None:
        return existing
    run = model_version.training_run
    model, prep, _manifest = _load(model_version)
    if progress:
        progress(0.2, "Reading the model's training rows")
    frame = read_version_table(run.dataset_version).to_pandas()
    train = frame.iloc[run.split["train"]].reset_index(drop=True)
    features = {name: "numeric" if name in prep.numeric else "categorical" for name in prep.feature_order}
    probabilities = _probabilities(model, prep, train)
    scores = probabilities[:, 1] if probabilities.shape[1] == 2 else None
    if progress:
        progress(0.6, f"Summarising {len(train):,} training rows")
    reference = engine_reference(
        train[list(features)],
        features=features,
        scores=scores,
        min_cell=int(model_version.organisation.min_cell_size or 10),
    )
    return services.monitoring_reference_record(model_version=model_version, reference=reference, rows=len(train))


def run_monitoring_reference(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    model_version = ModelVersion.objects.select_related("training_run__dataset_version", "organisation").get(
        id=spec["model_version_id"]
    )
    item = build_reference(model_version, progress=ctx.progress_callback())
    return {"reference": str(item.id), "sha256": item.sha256, "rows": item.rows}


def run_production_batch(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    batch = ProductionBatch.objects.get(id=spec["batch_id"])
    return services.production_batch_process(batch=batch, progress=ctx.progress_callback())


def production_batch_failed(*, job: Any) -> None:
    batch = ProductionBatch.objects.filter(job=job).first()
    if batch is not None:
        services.production_batch_discard(batch=batch)


def _reasons(model: Any, prep: Any, deployment: Deployment, frame: Any, top_k: int) -> tuple[list[Any] | None, str]:
    """Reason codes per row against the stored explanation baseline of the model's newest evaluation, or why not."""
    evaluation = (
        Evaluation.objects.filter(model_version=deployment.model_version, status=Evaluation.Status.SUCCEEDED)
        .order_by("-created_at")
        .first()
    )
    baseline = ((evaluation.results or {}).get("explanations") or {}).get("baseline") if evaluation else None
    if baseline is None:
        return None, (
            "No reasons: the model's newest evaluation has no explanation baseline (it predates explanations); "
            "evaluate the model again to get reason codes."
        )
    from workers.engine.explain._model import ExplanationError
    from workers.engine.explain.local import reason_codes

    try:
        return reason_codes(model, prep, frame, baseline=baseline, top_k=top_k), ""
    except ExplanationError as exc:
        return None, f"No reasons: {exc}"


def run_deployment_scoring(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Score a batch with the deployment's model, answer the predictions (on the job row), and fold the scored rows
    into the deployment's open window."""
    batch = ProductionBatch.objects.select_related("deployment__model_version__training_run").get(id=spec["batch_id"])
    deployment = batch.deployment
    model_version = deployment.model_version
    try:
        frame = pd.read_csv(io.StringIO(spec["csv"]), nrows=services.SCORE_MAX_ROWS + 1)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"The batch is not a readable CSV: {exc}") from None
    if len(frame) > services.SCORE_MAX_ROWS:
        raise ValidationFailed(f"Score at most {services.SCORE_MAX_ROWS:,} rows at a time.")
    reference = build_reference(model_version, progress=ctx.progress_callback())  # normally built at deployment
    schema = model_schema(model_version)
    if schema is None:
        raise ValidationFailed(f"The files of {model_version} cannot be read.")
    problems = sketching.schema_problems(
        reference.reference, frame, sensitive=sensitive_attributes(deployment), needs_prediction=False
    )
    if problems:
        raise ValidationFailed("The batch's columns do not fit the model: " + "; ".join(problems) + ".")
    if PREDICTION_ID in frame.columns:
        ids = frame[PREDICTION_ID].astype(str).str.strip()
        if (ids == "").any() or frame[PREDICTION_ID].isna().any():
            raise ValidationFailed("Every row needs its prediction_id when the column is sent.")
        frame[PREDICTION_ID] = ids
    else:
        frame[PREDICTION_ID] = [uuid.uuid4().hex for _ in range(len(frame))]
    ctx.progress(0.5, f"Scoring {len(frame):,} rows", force=True)
    from workers.engine.training.artifacts import decide

    model, prep, manifest = _load(model_version)
    probabilities = _probabilities(model, prep, frame)
    try:
        # The model's own decision rule: the most probable class, or a mitigated candidate's group thresholds.
        decided = decide(model, prep, manifest, frame, probabilities)
    except (KeyError, ValueError) as exc:
        raise ValidationFailed(f"The rows cannot be decided by this model: {exc}") from None
    frame["prediction"] = [prep.classes[i] for i in decided]
    reasons, reasons_note = (None, "")
    if spec.get("reasons"):
        reasons, reasons_note = _reasons(model, prep, deployment, frame, int(spec["reasons"]))
    scores = probabilities[:, 1] if probabilities.shape[1] == 2 else None
    summary = services.scored_batch_record(batch=batch, frame=frame, scores=scores)
    predictions = []
    for i, prediction_id in enumerate(frame[PREDICTION_ID]):
        item: dict[str, Any] = {"prediction_id": prediction_id, "prediction": frame["prediction"].iloc[i]}
        item.update({f"p_{name}": float(probabilities[i, j]) for j, name in enumerate(prep.classes)})
        if reasons is not None:
            item["reasons"] = reasons[i]
        predictions.append(item)
    result: dict[str, Any] = {
        "deployment": str(deployment.id),
        "model_version": str(model_version.id),
        "model_sha256": model_version.sha256,
        "rows": len(frame),
        "window": summary.get("window"),
        "predictions": predictions,
    }
    if spec.get("reasons"):
        result["reasons_note"] = reasons_note
    return result


def run_monitoring_window(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a window that has ended: every monitor of the deployment's plan against the training reference, the
    model's bound evaluation and the privacy state of its training data; then open or update alerts."""
    from workers.engine.monitoring.monitors import evaluate_window  # imports scipy: not at the web's start-up

    window = MonitoringWindow.objects.select_related("deployment__model_version__training_run", "job").get(
        id=spec["window_id"]
    )
    deployment = window.deployment
    reference = reference_of(deployment.model_version)
    if reference is None:
        raise ValidationFailed(f"The monitoring reference of {deployment.model_version} is missing.")
    ctx.progress(0.2, "Reading the privacy state of the training data", force=True)
    privacy = privacy_inputs(deployment)
    evaluation = bound_evaluation(deployment.model_version)
    ctx.progress(0.6, "Evaluating the monitors", force=True)
    results = evaluate_window(
        reference=reference.reference,
        sketch=sketching.sketch_of(reference.reference, window.sketch),
        plan=deployment.plan,
        baseline=evaluation.results if evaluation is not None else None,
        privacy=privacy,
        today=timezone.localdate(),
    )
    with transaction.atomic():
        services.monitoring_window_record(window=window, results=results)
        alerts = alerts_sync(deployment=deployment, window=window, results=results)
    return {
        "window": str(window.id),
        "monitors": len(results),
        "failing": sum(1 for r in results if r.get("status") == "fail"),
        "alerts": len(alerts),
    }


register(
    JobKind(
        kind="monitoring_reference",
        label="Monitoring reference",
        task_name=task_names.MONITORING_REFERENCE,
        run=run_monitoring_reference,
    ),
    JobKind(
        kind="production_batch",
        label="Production batch",
        task_name=task_names.PRODUCTION_BATCH,
        run=run_production_batch,
        on_failure=production_batch_failed,
    ),
    JobKind(
        kind="deployment_scoring",
        label="Scoring",
        task_name=task_names.DEPLOYMENT_SCORING,
        queue="gpu",
        run=run_deployment_scoring,
        private_result=True,  # predictions: read only through the deployment's token-authenticated poll
    ),
    JobKind(
        kind="monitoring_window",
        label="Monitoring window evaluation",
        task_name=task_names.MONITORING_WINDOW,
        run=run_monitoring_window,
    ),
    # The signed delivery of an alert to the organisation's webhook (apps/deployments/webhooks.py).
    ALERT_WEBHOOK,
)
