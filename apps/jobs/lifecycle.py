"""How a domain row reads its in-flight and failure state from its job (the job row is the only source of it).

A domain row (training run, evaluation, report, anonymisation, consent import, dataset version) stores only its
domain outcome ("succeeded", "ready", "applied", ...). Until it has one, what people see is its job's status; an
ended job without an outcome is the failure, with the job's message. Pages poll only while :func:`is_live`.
"""

from __future__ import annotations

from typing import Any

LIVE = ("queued", "running")
LABELS = {
    "queued": "Queued",
    "running": "Running",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def state_of(job: Any, outcome: str | None) -> str:
    """The domain outcome when there is one, else the job's status ("queued" before any job exists)."""
    if outcome:
        return outcome
    return getattr(job, "status", None) or "queued"


def is_live(state: str) -> bool:
    return state in LIVE


def failure_of(job: Any, outcome: str | None) -> str:
    """Why the work ended without an outcome, in the job's own plain words; empty otherwise."""
    if outcome or job is None or job.status not in ("failed", "cancelled"):
        return ""
    message = (job.error or {}).get("message") if job.error else ""
    if job.status == "cancelled":
        return message or "Cancelled before it finished."
    return message or "The job failed."


class JobStateMixin:
    """``state``, ``state_label``, ``is_live`` and ``failure`` for a model with ``job`` and ``status`` fields whose one
    domain outcome is ``OUTCOME`` (read everything else from the job)."""

    OUTCOME = "succeeded"
    OUTCOME_LABEL = "Finished"
    RUNNING_LABEL = "Running"

    def _outcome(self) -> str | None:
        return self.OUTCOME if self.status == self.OUTCOME else None  # type: ignore[attr-defined]

    @property
    def state(self) -> str:
        """The outcome, or its job's queued / running / failed / cancelled."""
        return state_of(self.job, self._outcome())  # type: ignore[attr-defined]

    @property
    def state_label(self) -> str:
        labels = {self.OUTCOME: self.OUTCOME_LABEL, "running": self.RUNNING_LABEL}
        return labels.get(self.state) or LABELS.get(self.state, self.state)

    @property
    def is_live(self) -> bool:
        return is_live(self.state)

    @property
    def failure(self) -> str:
        return failure_of(self.job, self._outcome())  # type: ignore[attr-defined]
