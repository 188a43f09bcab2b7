"""PRODUCT.md journeys 1 and 2 in Chromium, against the live server, a real redis-server and a real worker."""

import re

import pytest

from apps.core.demo import adult_with_applicant_ids
from apps.datasets.models import DatasetVersion
from apps.usecases.services import usecase_create
from tests.conftest import PASSWORD
from tests.fixtures.browser import login
from tests.usecases.factories import usecase_data

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shared_storage(settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path / "storage"


def wait_for_text(page, text, reload=True, timeout_s=90, exact=False):
    for _ in range(int(timeout_s * 2)):
        if page.get_by_text(text, exact=exact).count():
            return
        page.wait_for_timeout(500)
        if reload:
            page.reload()
    raise AssertionError(f"{text!r} did not appear")


def test_a_steward_uploads_profiles_links_consent_and_prepares_adult(
    page, live_server, org, owner, steward, shared_storage, celery_worker, tmp_path
):
    celery_worker()
    usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(purpose="Service improvement"))
    data_file = tmp_path / "adult-applicants.csv"
    data_file.write_bytes(adult_with_applicant_ids())
    consent_file = tmp_path / "consent.csv"
    rows = ["subject_id,purpose,status,timestamp"]
    rows += [
        f"A-{i:05d},Service improvement,{'withdrawn' if i % 10 == 0 else 'granted'},2026-01-01T00:00:00Z"
        for i in range(1, 30001)
    ]
    consent_file.write_text("\n".join(rows) + "\n")

    login(page, live_server, steward.username, PASSWORD)
    page.get_by_role("link", name="Datasets", exact=True).first.click()
    page.get_by_label("Use case the data is collected for").select_option(label=f"{usecase.reference} {usecase.title}")
    page.get_by_label("Name").fill("Applicants")
    page.get_by_role("button", name="Register dataset").click()

    page.get_by_label("Data file").set_input_files(str(data_file))
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r".*/datasets/versions/.*"))
    wait_for_text(page, "Profile and column roles")
    applicant_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="applicant_id"))
    assert applicant_row.get_by_text("subject_key").is_visible()
    assert page.get_by_label("Role of sex").input_value() == "sensitive"
    page.get_by_label("Role of class").select_option("label")
    page.get_by_role("button", name="Confirm roles").click()
    assert page.get_by_text("Column roles confirmed.").is_visible()
    version_url = page.url

    page.get_by_role("link", name="Consent", exact=True).click()
    page.get_by_label("Consent file (CSV, UTF-8)").set_input_files(str(consent_file))
    page.get_by_role("button", name="Import").click()
    wait_for_text(page, "Imported", exact=True)
    assert page.get_by_role("cell", name="30,000").first.is_visible()

    page.goto(version_url)
    coverage = page.get_by_role("region", name="Consent coverage")
    assert coverage.get_by_role("img").count() == 1
    assert coverage.get_by_role("cell", name="27,000").is_visible()  # 30,000 granted minus every tenth withdrawn
    assert coverage.get_by_role("cell", name="2,561").is_visible()  # rows with no consent record at all

    page.get_by_role("button", name="Prepare a version").click()
    wait_for_text(page, "Derived: v2")
    prepared = DatasetVersion.objects.get(kind="prepared")
    assert prepared.row_count == 27000 and prepared.parent.number == 1
    page.get_by_role("link", name=re.compile("v2 Prepared")).click()
    assert page.get_by_text("5,561 rows without valid consent removed").is_visible()
    page.get_by_role("link", name="Applicants").first.click()
    lineage = page.get_by_role("region", name="Versions and lineage")
    assert lineage.get_by_text("from v1").is_visible()


def test_an_owner_registers_a_use_case_with_its_dpia_and_policies_and_submits_it(page, live_server, org, owner):
    login(page, live_server, owner.username, PASSWORD)
    page.goto(f"{live_server.url}/usecases/new/")
    page.get_by_label("Title").fill("Housing repair triage")
    page.get_by_label("Purpose").select_option("Service improvement")
    page.get_by_label("Description").fill("Orders repair requests by urgency.")
    page.get_by_label("Lawful basis (GDPR Art. 6)").select_option("public_task")
    page.get_by_label("Categories of data subjects").fill("Tenants")
    page.get_by_label("Categories of personal data").fill("Address\nRepair history")
    page.get_by_label("Retention period (time limit for erasure)").fill("3 years")
    page.get_by_label("EU AI Act risk tier").select_option("limited")
    page.get_by_label("Risk justification").fill("Transparency duties only.")
    page.get_by_role("button", name="Register draft").click()
    assert page.get_by_text("registered as a draft").is_visible()

    for label in [
        "What the project aims",
        "Why the need for a DPIA",
        "Nature:",
        "Scope:",
        "Context:",
        "Purposes:",
        "How stakeholders",
        "Lawful basis and why",
        "Is there another way",
        "How function creep",
        "Information given",
        "Measures to ensure processors",
    ]:
        page.get_by_label(re.compile(re.escape(label))).fill(f"Answer: {label}")
    page.get_by_label("Risk R1 description").fill("Tenants in older homes deprioritised")
    page.get_by_label("Risk R1 likelihood").select_option("possible")
    page.get_by_label("Risk R1 severity").select_option("significant")
    page.get_by_label("Measure 1", exact=True).fill("Quarterly fairness review")
    page.get_by_label("Measure 1 residual risk").select_option("low")
    page.get_by_label("Measures approved by").fill("Head of Housing")
    page.get_by_label("Residual risks approved by").fill("Director")
    page.get_by_label("DPO advice provided").fill("Proceed")
    page.get_by_role("button", name="Save DPIA").click()
    assert page.get_by_text("DPIA saved as a new revision.").is_visible()

    page.get_by_role("link", name="Edit policies").click()
    page.get_by_label(re.compile("^Sensitive attributes")).fill("age_band, disability")
    page.get_by_label("Gate: Demographic parity difference", exact=True).check()
    page.get_by_label(re.compile("^Demographic parity difference threshold")).fill("0.1")
    page.get_by_role("button", name="Save revision").click()

    page.get_by_role("button", name="Submit").click()
    assert page.get_by_text("is now in review").is_visible()
    history = page.get_by_role("region", name="Revision history")
    assert history.get_by_text("Revision 3").is_visible()
