"""The audit log is append-only and cannot be erased, so it must never hold personal data: after the whole demo seed
(upload, consent import, preparation, training, scoring, anonymisation, reviews, reports), no audit event carries a
value of the demo data's subject-key or direct-identifier columns, nor any row of an uploaded or scored CSV."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from apps.audit.models import AuditEvent
from apps.core.demo import ADULT_PATH, adult_with_applicant_ids
from apps.datasets.models import ColumnRole, DatasetColumn
from apps.jobs.models import Job

pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def strings_in(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)
    elif value is not None:
        yield str(value)


def test_after_the_demo_seed_no_audit_event_holds_identifiers_rows_or_predictions(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    call_command("seed_demo", stdout=io.StringIO())

    uploaded = adult_with_applicant_ids().decode().splitlines()
    header = uploaded[0].split(",")
    identifying = set(
        DatasetColumn.objects.filter(role__in=[ColumnRole.SUBJECT_KEY, ColumnRole.DIRECT_IDENTIFIER]).values_list(
            "name", flat=True
        )
    )
    assert "applicant_id" in identifying  # the demo's subject key, linked to consent records
    positions = [header.index(name) for name in identifying if name in header]
    identifier_values = {line.split(",")[i] for line in uploaded[1:] for i in positions}
    assert len(identifier_values) > 30_000
    # Rows as they were uploaded, as the raw extract has them, and as the scoring batch sent them.
    rows = set(uploaded[1:]) | set(ADULT_PATH.read_text().splitlines()[1:])
    score_jobs = Job.objects.filter(kind="deployment_scoring")
    assert score_jobs.exists() and all(job.result["predictions"] for job in score_jobs)
    rows |= {line for job in score_jobs for line in job.spec["csv"].splitlines()[1:]}
    predictions = {json.dumps(p, sort_keys=True) for job in score_jobs for p in job.result["predictions"]}
    prediction_ids = {p["prediction_id"] for job in score_jobs for p in job.result["predictions"]}

    events = list(AuditEvent.objects.values("action", "before", "after"))
    assert len(events) > 50
    for event in events:
        for text in strings_in([event["before"], event["after"]]):
            assert text not in identifier_values, (event["action"], text)
            assert text.strip() not in rows, (event["action"], text[:80])
            for line in text.splitlines():
                assert line.strip() not in rows, (event["action"], line[:80])
        payload = json.dumps([event["before"], event["after"]], sort_keys=True, default=str)
        assert "predictions" not in payload, event["action"]
        assert not any(p in payload for p in predictions), event["action"]
        assert not any(i in payload for i in prediction_ids), event["action"]
