"""The Celery app.

Rules (see docs/architecture.md, "Jobs"): JSON only; queues ``default`` and ``gpu``; late acks and requeue when a worker
dies, with attempts capped by the job row; a broker visibility timeout above the longest job's hard limit; tasks are
enqueued by name after the transaction commits (``apps.jobs.services.job_enqueue``).
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import beat_embedded_init
from kombu import Queue

from portal.lifeline import beat_exits_with_its_worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("attest")


def _configure(app: Celery) -> None:
    from django.conf import settings

    transport_options: dict[str, object] = {
        # A message not acknowledged within this time is handed to another worker: keep it above the longest job.
        "visibility_timeout": settings.JOB_HARD_TIME_LIMIT_SECONDS + 3600,
    }
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        # The demo broker: plain folders, no server. Both directions use one folder so any process can consume.
        folder = settings.CELERY_BROKER_FOLDER
        for sub in ("queue", "processed"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport_options.update(
            {
                "data_folder_in": str(folder / "queue"),
                "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"),
                "store_processed": False,
                # kombu's default is ./control: broadcast state belongs beside the queue, not in the working tree.
                "control_folder": str(folder / "control"),
            }
        )
    app.conf.update(
        broker_url=settings.CELERY_BROKER_URL,
        broker_transport_options=transport_options,
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_queues=[Queue("default"), Queue("gpu")],
        task_default_queue="default",
        task_routes={"attest.training.*": {"queue": "gpu"}, "attest.evaluation.*": {"queue": "gpu"}},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_time_limit=settings.JOB_HARD_TIME_LIMIT_SECONDS,
        task_soft_time_limit=settings.JOB_SOFT_TIME_LIMIT_SECONDS,
        worker_prefetch_multiplier=1,
        # Heavy jobs leak memory in native libraries: give each worker child a bounded life.
        worker_max_tasks_per_child=50,
        worker_hijack_root_logger=False,
        timezone="UTC",
        beat_schedule={
            "reap-expired-jobs": {
                "task": "attest.default.reap_expired_jobs",
                "schedule": 60.0,
                # An entry that could not run within its minute is dropped, not stacked behind the next one.
                "options": {"queue": "default", "expires": 55},
            },
            "remind-board-votes-due": {
                "task": "attest.default.review_reminders",
                "schedule": 3600.0,
                "options": {"queue": "default", "expires": 3000},
            },
            "sweep-abandoned-uploads": {
                "task": "attest.default.incoming_sweep",
                "schedule": 3600.0,
                "options": {"queue": "default", "expires": 3000},
            },
            "erase-expired-feedback": {
                "task": "attest.default.feedback_retention",
                "schedule": 24 * 3600.0,
                "options": {"queue": "default", "expires": 3600},
            },
            "monitoring-round": {
                "task": "attest.default.monitoring_tick",
                "schedule": 3600.0,
                "options": {"queue": "default", "expires": 3000},
            },
            "resume-waiting-rights-requests": {
                "task": "attest.default.rights_resume",
                "schedule": 300.0,
                "options": {"queue": "default", "expires": 280},
            },
            "erase-expired-dataset-versions": {
                "task": "attest.default.dataset_retention",
                "schedule": 24 * 3600.0,
                "options": {"queue": "default", "expires": 3600},
            },
        },
    )


_configure(app)
app.autodiscover_tasks(["workers"], related_name="tasks", force=True)
# The demo's embedded beat (worker -B) ends when its worker does, even a worker killed with SIGKILL (portal/lifeline.py).
beat_embedded_init.connect(beat_exits_with_its_worker, weak=False)
