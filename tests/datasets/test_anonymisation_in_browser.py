"""The steward anonymises the prepared Adult version to 5-anonymity in Chromium, with a real worker: risk falls, the
new version appears in the lineage, and its records really are 5-anonymous."""

import re

import pytest

from apps.datasets.models import Anonymisation, DatasetVersion
from apps.datasets.services import read_version_table
from tests.conftest import PASSWORD
from tests.fixtures.browser import login
from tests.training.conftest import approved_usecase, prepared_version, private_storage  # noqa: F401
from tests.web.test_dashboards_in_browser import UNLABELLED_CONTROLS_JS
from tests.web.test_journeys_in_browser import wait_for_text

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

QIS = ["age", "sex", "race", "marital-status", "education"]


def test_the_steward_anonymises_adult_to_5_anonymity(page, live_server, steward, prepared_version, celery_worker):  # noqa: F811 - the shared fixture
    celery_worker()
    login(page, live_server, steward.username, PASSWORD)
    page.goto(f"{live_server.url}/datasets/versions/{prepared_version.id}/")
    page.get_by_role("link", name="Anonymise this version").click()
    assert page.evaluate(UNLABELLED_CONTROLS_JS) == []
    for column in QIS:
        page.get_by_label(f"{column} is a quasi-identifier").check()
    page.get_by_label("No sensitive attribute").check()
    page.get_by_label("k (each record").fill("5")
    page.get_by_label("Records that may be suppressed (%)").fill("5")
    page.get_by_role("button", name="Find the best generalisation").click()

    wait_for_text(page, "Risk and utility, before and after", reload=False, timeout_s=60)
    risk = page.get_by_role("row", name=re.compile("Highest prosecutor risk")).inner_text()
    before, after = (float(x) for x in re.findall(r"\d\.\d{3}", risk))
    assert before == 1.0 and after <= 0.2
    assert page.get_by_role("img", name=re.compile("Prosecutor re-identification risk")).is_visible()
    assert page.get_by_text("independent check (passed)").is_visible()

    page.get_by_role("button", name="Apply: create the anonymised version").click()
    wait_for_text(page, "Applied:", reload=False, timeout_s=60)
    page.get_by_role("link", name=re.compile(r"version \d+ \(anonymised\)")).click()
    assert page.get_by_text("Generalised to k = 5").is_visible()
    page.get_by_role("link", name=prepared_version.dataset.name).first.click()
    lineage = page.get_by_role("region", name="Versions and lineage").inner_text()
    assert "Anonymised" in lineage and f"from v{prepared_version.number}" in lineage

    child = Anonymisation.objects.get().output
    assert child.kind == DatasetVersion.Kind.ANONYMISED and child.parent_id == prepared_version.id
    assert read_version_table(child).to_pandas().groupby(QIS).size().min() >= 5
