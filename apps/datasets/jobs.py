"""Datasets' job kinds: profiling a version, preparing it against consent, and anonymising it (search, apply).

Derived versions are written by ``store_derived_version`` in one step that leaves no file and no row on failure, and
searches record their result in one transaction at the end, so none of these needs a failure hook: the pages read
the failure from the job.
"""

from __future__ import annotations

from typing import Any

from apps.datasets import anonymisation, services
from apps.jobs.registry import JobKind, register
from apps.jobs.runner import JobContext
from workers import task_names


def run_profile(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return services.dataset_version_profile(version_id=spec["version_id"], progress=ctx.progress_callback())


def run_prepare(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return services.dataset_version_prepare(
        version_id=spec["version_id"], actor_id=ctx.job.created_by_id, progress=ctx.progress_callback()
    )


def run_anonymise(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return anonymisation.anonymisation_run(anonymisation_id=spec["anonymisation_id"], progress=ctx.progress_callback())


def run_anonymise_apply(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    return anonymisation.anonymisation_apply(
        anonymisation_id=spec["anonymisation_id"], actor_id=ctx.job.created_by_id, progress=ctx.progress_callback()
    )


register(
    JobKind(kind="profile", label="Dataset profiling", task_name=task_names.DATASET_PROFILE, run=run_profile),
    JobKind(kind="prepare", label="Dataset preparation", task_name=task_names.DATASET_PREPARE, run=run_prepare),
    JobKind(kind="anonymise", label="Anonymisation search", task_name=task_names.DATASET_ANONYMISE, run=run_anonymise),
    JobKind(
        kind="anonymise_apply",
        label="Anonymisation apply",
        task_name=task_names.DATASET_ANONYMISE_APPLY,
        run=run_anonymise_apply,
    ),
)
