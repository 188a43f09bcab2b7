"""What people read: human labels instead of internal keys, one date format, one subject list on the report form,
and sensitive attributes left unticked as training features."""

import datetime as dt
import re
from types import SimpleNamespace

import pytest
from django.template import Context, Template
from django.utils import timezone

from apps.training.forms import TrainingForm
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def render(source, **context):
    return Template("{% load attest %}" + source).render(Context(context))


def test_internal_keys_are_shown_as_words():
    assert render("{{ m|metric_label }}", m="demographic_parity_difference") == "Demographic parity difference"
    assert render("{{ m|model_label }}", m="ethics.reviewrequest") == "Review request"
    assert render("{{ k|words }}", k="queue_to_finish_seconds") == "Queue to finish seconds"


def test_one_date_format_on_every_page():
    moment = timezone.make_aware(dt.datetime(2026, 11, 30, 14, 5))
    assert Template('{{ d|date:"DATETIME_FORMAT" }}').render(Context({"d": moment})) == "30 Nov 2026, 14:05"
    assert Template('{{ d|date:"DATE_FORMAT" }}').render(Context({"d": moment.date()})) == "30 Nov 2026"
    assert Template("{{ d }}").render(Context({"d": moment.date()})) == "30 Nov 2026"  # unfiltered dates too


def test_sensitive_attributes_are_offered_but_not_ticked_as_features():
    def column(name, role):
        return SimpleNamespace(name=name, role=role, kind="numeric", get_role_display=lambda: role)

    form = TrainingForm(
        columns=[
            column("id", "subject_key"),
            column("age", "feature"),
            column("sex", "sensitive"),
            column("zip", "quasi_identifier"),
            column("income", "label"),
        ]
    )
    assert form.fields["features"].initial == ["age", "zip"]
    assert "sex" in dict(form.fields["features"].choices)


def test_the_issue_form_has_one_subject_list_grouped_by_kind(client, org, admin_user):
    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get("/reports/").content.decode()
    assert page.count('name="subject"') == 1 and "Subject of a" not in page
    groups = re.findall(r'<optgroup label="([^"]+)" data-kind="([^"]+)"', page)
    assert ("GDPR Art. 30 record of processing", "art30") in groups and len(groups) == 7
    assert "report-issue.js" in page


def test_the_job_page_shows_its_result_in_words_not_a_python_dict(client, org, admin_user):
    from apps.jobs.models import Job

    job = Job.objects.create(
        organisation=org,
        kind="report",
        task_name="attest.default.report_render",
        created_by=admin_user,
        result={"report_id": "abc", "pages": 3, "sha256": "f" * 64},
    )
    client.login(username=admin_user.username, password=PASSWORD)
    page = client.get(f"/jobs/{job.id}/").content.decode()
    assert "Report id" in page and "{&#x27;" not in page and "{'" not in page
