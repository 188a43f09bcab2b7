"""The job kinds every app declares, in one place each (``apps/<app>/jobs.py``).

A kind names what runs (``run``), what records a success (``on_success``, optional) and what undoes or settles the
domain side of a failure (``on_failure``, optional). The runner (``apps.jobs.runner``) calls ``on_failure`` on every
failure path: a domain error, a time limit, an unexpected exception, transient errors that used up their attempts, a
cancellation, and a lost worker found by the reaper. Domain rows never hold in-flight or failure state of their own:
they read it from their job, so a page never polls a job that has ended.

``run`` functions import heavy engines (torch, opacus, fairlearn) lazily, inside the function: the web process imports
these modules to find the kinds, never the engines.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps as django_apps

RunFunction = Callable[[Any, dict[str, Any]], dict[str, Any]]
Hook = Callable[..., None]


@dataclass(frozen=True)
class JobKind:
    """One kind of background work: its task name and queue, and the services that run it and settle its end."""

    kind: str
    label: str
    task_name: str
    run: RunFunction
    queue: str = "default"
    on_success: Hook | None = None  # (job, result) -> None, inside the transaction that marks the job succeeded
    on_failure: Hook | None = None  # (job) -> None, after the job row says failed or cancelled
    max_attempts: int | None = None
    # The result holds personal data (predictions, a person's row): the generic job page and the jobs API, which every
    # role of the organisation reads, never show it; the kind's own endpoint, with its own access rule, does.
    private_result: bool = False


_KINDS: dict[str, JobKind] = {}
_DISCOVERED = False


def register(*kinds: JobKind) -> None:
    for kind in kinds:
        existing = _KINDS.get(kind.kind)
        if existing is not None and existing != kind:
            raise ValueError(f"job kind {kind.kind!r} is declared twice")
        _KINDS[kind.kind] = kind


def autodiscover() -> None:
    """Import ``jobs`` of every installed app of ours; each registers its kinds at import."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    for config in django_apps.get_app_configs():
        if not config.name.startswith("apps."):
            continue
        try:
            importlib.import_module(f"{config.name}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.jobs":
                raise
    _DISCOVERED = True


def get(kind: str) -> JobKind:
    autodiscover()
    try:
        return _KINDS[kind]
    except KeyError:
        raise LookupError(f"no job kind {kind!r} is declared") from None


def all_kinds() -> list[JobKind]:
    autodiscover()
    return sorted(_KINDS.values(), key=lambda k: k.kind)


def by_task_name(task_name: str) -> JobKind:
    for kind in all_kinds():
        if kind.task_name == task_name:
            return kind
    raise LookupError(f"no job kind runs task {task_name!r}")


def shown_result(job: Any) -> dict[str, Any] | None:
    """What the generic job page and API may show of a job's result: nothing for a kind with a private result."""
    try:
        private = get(job.kind).private_result
    except LookupError:
        private = False
    return None if private else job.result


def label_of(kind: str) -> str:
    """What people read for a kind ("Dataset profiling"), never the internal name."""
    try:
        return get(kind).label
    except LookupError:
        return kind.replace("_", " ").capitalize()
