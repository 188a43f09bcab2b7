"""Reports' job kind: gather the figures, lay out a PDF/A-3b with its evidence, sign, store and supersede."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from apps.reports import services
from apps.reports.models import Report
from workers import task_names


def run_report(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return services.report_render(report_id=spec["report_id"], progress=ctx.progress_callback())


def report_failed(*, job: Any) -> None:
    """A render that died between writing its file and recording it leaves no orphan PDF behind."""
    report = Report.objects.filter(job=job).first()
    if report is None or report.status == Report.Status.READY:
        return
    (services.report_storage_root() / Path(services.report_relative_path(report))).unlink(missing_ok=True)


register(
    JobKind(
        kind="report",
        label="Report rendering and signing",
        task_name=task_names.REPORT_RENDER,
        run=run_report,
        on_failure=report_failed,
    )
)
