"""The model page: who sees what, the comparison with candidates, a reduction previewed before it spends, and the
explanation of a held-out row as the person concerned would read it."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils.html import escape

from apps.evaluation.mitigation import mitigation_request
from apps.evaluation.models import Evaluation
from apps.jobs.models import Job
from apps.training.models import BudgetEntry, TrainingRun
from tests.conftest import run_inline

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def candidate(original, steward):
    run = mitigation_request(
        actor=steward, model_version=original, method="thresholds", constraint="demographic_parity", attribute="sex"
    )
    run_inline(run.job_id)
    run.refresh_from_db()
    run_inline(Evaluation.objects.get(model_version=run.model_version).job_id)
    return run.model_version


def test_the_page_compares_the_candidates_and_offers_actions_only_to_those_who_may_take_them(
    client, original, candidate, steward, board_member, auditor, outsider
):
    url = reverse("evaluation:model", args=[original.id])
    client.force_login(steward)
    page = client.get(url).content.decode()
    assert "Mitigated candidates against the original" in page
    assert re.search(r'<svg[^>]*role="img"', page) and "Accuracy against demographic parity difference" in page
    table = page.split('aria-label="Candidates compared"')[1].split("</table>")[0]
    assert str(original) in table and str(candidate) in table and "group thresholds" in table
    assert "Run the mitigation" in page and "Explain this row" in page

    for reader in (board_member, auditor):
        client.force_login(reader)
        page = client.get(url).content.decode()
        assert "Mitigated candidates against the original" in page
        assert "Run the mitigation" not in page and "Explain this row" not in page
    # A candidate is not mitigated again; its page says what was done and on which rows.
    client.force_login(steward)
    page = client.get(reverse("evaluation:model", args=[candidate.id])).content.decode()
    assert "Run the mitigation" not in page and "What was mitigated" in page
    assert f"{candidate.mitigation['fitted_on']['rows']} validation rows" in page

    client.force_login(outsider)
    assert client.get(url).status_code == 404


def test_a_reduction_is_previewed_with_its_epsilon_and_runs_only_once_confirmed(client, original, owner):
    client.force_login(owner)
    url = reverse("evaluation:mitigate", args=[original.id])
    form = {"method": "reductions", "constraint": "demographic_parity", "attribute": "sex", "max_calls": "2"}
    form["epsilon_per_call"] = "0.5"
    preview = client.post(url, form)
    page = preview.content.decode()
    assert preview.status_code == 200 and "This retraining spends privacy budget" in page
    confirm = re.search(r'name="confirm_epsilon" value="([^"]+)"', page).group(1)
    assert f"Spend epsilon {float(confirm):.3f} and retrain" in page
    assert not TrainingRun.objects.filter(spec__mitigation__isnull=False).exists()  # nothing queued yet

    wrong = client.post(url, {**form, "step": "confirm", "confirm_epsilon": "0.01"}, follow=True)
    assert "confirm that figure" in wrong.content.decode()
    assert not TrainingRun.objects.filter(spec__mitigation__isnull=False).exists()

    launched = client.post(url, {**form, "step": "confirm", "confirm_epsilon": confirm})
    run = TrainingRun.objects.get(spec__mitigation__method="reductions")
    assert launched.status_code == 302 and launched["Location"] == reverse("training:run", args=[run.id])
    assert BudgetEntry.objects.get(run=run, kind="reserve").epsilon == pytest.approx(float(confirm))


def test_an_explained_row_shows_its_contributions_and_what_the_person_is_told(
    client, original, owner, board_member, auditor
):
    client.force_login(owner)
    response = client.post(reverse("evaluation:explain_row", args=[original.id]), {"choice": "position", "position": 3})
    job = Job.objects.get(kind="row_explanation")
    assert job.spec["position"] == 3 and f"explanation={job.id}" in response["Location"]
    # While it runs, the section polls itself; once finished it shows the explanation and stops polling.
    running = client.get(reverse("evaluation:row_explanation", args=[original.id, job.id])).content.decode()
    assert 'hx-trigger="every 2s"' in running
    run_inline(job)
    page = client.get(f"{reverse('evaluation:model', args=[original.id])}?explanation={job.id}").content.decode()
    assert "Explanation of held-out row 3" in page and 'hx-trigger="every 2s"' not in page
    result = Job.objects.get(pk=job.pk).result
    first = result["reasons"][0]
    words = first["feature"].replace("-", " ")
    verb = "raised" if first["direction"] == "raises" else "lowered"
    assert f"Your {words} ({first['value']}) {verb} the score the most." in page
    assert "Contributions to the log-odds" in page  # the bar chart
    for item in result["contributions"]:
        assert f'<th scope="row">{item["feature"]}</th>' in page
    value = result["contributions"][0]["value"]
    assert f"<td>{escape(value)}</td>" in page  # the row's own values, shown to those who may see the data

    # The row is one person's: a board member or an auditor who has its address reads neither it nor its values.
    for reader in (board_member, auditor):
        client.force_login(reader)
        page = client.get(f"{reverse('evaluation:model', args=[original.id])}?explanation={job.id}").content.decode()
        assert "Explanation of held-out row" not in page and "This row's value" not in page
        assert client.get(reverse("evaluation:row_explanation", args=[original.id, job.id])).status_code == 404
