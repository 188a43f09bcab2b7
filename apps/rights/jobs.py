"""The rights app's job kinds: tracing a person through the lineage, and carrying a request out."""

from __future__ import annotations

from typing import Any

from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from apps.rights import execution
from workers import task_names


def run_trace(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return execution.trace_run(spec["request_id"])


def run_execute(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    ctx.progress(0.05, "Tracing the person's rows again")
    return execution.execute_run(spec)


def execute_succeeded(*, job: Any, result: dict[str, Any]) -> None:
    execution.execute_succeeded(job, result)


def execute_failed(*, job: Any) -> None:
    execution.execute_failed(job)


register(
    JobKind(
        kind="rights_trace",
        label="Data-subject trace",
        task_name=task_names.RIGHTS_TRACE,
        run=run_trace,
        max_attempts=3,
    ),
    JobKind(
        kind="rights_execute",
        label="Data-subject request execution",
        task_name=task_names.RIGHTS_EXECUTE,
        run=run_execute,
        on_success=execute_succeeded,
        on_failure=execute_failed,
        max_attempts=1,
        private_result=False,
    ),
)
