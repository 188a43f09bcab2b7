"""Consent's job kind: importing an uploaded consent CSV in one transaction."""

from __future__ import annotations

from typing import Any

from apps.consent import services
from apps.consent.models import ConsentImport
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from workers import task_names


def run_import(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return services.consent_import_run(consent_import_id=spec["consent_import_id"], progress=ctx.progress_callback())


def import_failed(*, job: Any) -> None:
    consent_import = ConsentImport.objects.filter(job=job).first()
    if consent_import is not None:
        services.consent_import_discard_file(consent_import=consent_import)


register(
    JobKind(
        kind="consent_import",
        label="Consent import",
        task_name=task_names.CONSENT_IMPORT,
        run=run_import,
        on_failure=import_failed,
    )
)
