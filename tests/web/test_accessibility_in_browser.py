"""axe-core (bundled by axe-playwright-python, no network) on every page reachable from the navigation and on the main
object pages, signed in as each demo role: no serious or critical violation anywhere, scrollable regions included."""

import io

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command

from apps.datasets.models import Anonymisation, Dataset, DatasetVersion
from apps.ethics.models import ReviewRequest
from apps.evaluation.models import Evaluation
from apps.jobs.models import Job
from apps.reports.models import Report
from apps.training.models import ModelVersion, TrainingRun
from apps.usecases.models import UseCase
from tests.fixtures.browser import login

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

ROLES = ["admin", "owner", "steward", "board1", "auditor", "privacy"]
NAV_JS = """() => [...document.querySelectorAll('nav.main-nav a, .header-tools a')]
  .map(a => a.getAttribute('href')).filter(h => h && h.startsWith('/') && !h.startsWith('/api/'))"""


def object_pages() -> list[str]:
    """One page of each main kind of object in the demo organisation."""
    pages = []
    organisation = {"organisation__slug": "mods"}
    if usecase := UseCase.objects.filter(**organisation).first():
        pages += [f"/usecases/{usecase.id}/", f"/usecases/{usecase.id}/dpia/"]
        pages += [f"/compliance/usecases/{usecase.id}/eu-ai-act/", "/compliance/frameworks/gdpr/"]
    if dataset := Dataset.objects.filter(**organisation).first():
        pages.append(f"/datasets/{dataset.id}/")
    for version in DatasetVersion.objects.filter(dataset__organisation__slug="mods").exclude(status="erased")[:3]:
        pages += [f"/datasets/versions/{version.id}/", f"/datasets/versions/{version.id}/datasheet/"]
    if anonymisation := Anonymisation.objects.filter(version__dataset__organisation__slug="mods").first():
        pages.append(f"/datasets/anonymisations/{anonymisation.id}/")
    if run := TrainingRun.objects.filter(**organisation).first():
        pages.append(f"/training/runs/{run.id}/")
    if model := ModelVersion.objects.filter(**organisation, non_private=False).first():
        pages.append(f"/modelcards/{model.id}/")
    if original := ModelVersion.objects.filter(**organisation, non_private=False, parent__isnull=True).first():
        pages.append(f"/evaluation/models/{original.id}/")  # explanations, mitigation, the candidates compared
    if evaluation := Evaluation.objects.filter(model_version__organisation__slug="mods").first():
        pages.append(f"/evaluation/{evaluation.id}/")
    for review in ReviewRequest.objects.filter(**organisation)[:2]:
        pages.append(f"/reviews/{review.id}/")
    if report := Report.objects.filter(**organisation, status="ready").first():
        pages.append(f"/reports/{report.id}/")
    if job := Job.objects.filter(**organisation).first():
        pages.append(f"/jobs/{job.id}/")
    from apps.rights.models import SubjectRequest

    for subject_request in SubjectRequest.objects.filter(**organisation)[:2]:  # the open access, the erasure done
        pages.append(f"/rights/{subject_request.id}/")
    pages.append("/rights/register/")
    from apps.thirdparty.models import ThirdPartyModel

    if third_party := ThirdPartyModel.objects.filter(**organisation).first():
        pages += ["/third-party/", f"/third-party/{third_party.id}/"]
    pages.append("/search/?q=benefit")  # results of several kinds, grouped
    return pages + ["/reviews/board/", "/reports/verify/", "/reports/signing/"]


def serious(results) -> list[str]:
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_page_has_a_serious_accessibility_violation_for_any_role(browser, live_server, settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    axe = Axe()
    objects = object_pages()
    assert len(objects) >= 12
    failures: dict[str, list[str]] = {}
    checked = 0
    for username in ROLES:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15000)
        page = context.new_page()
        login(page, live_server, username, f"attest-demo-{username}-2026")
        paths = ["/", *page.evaluate(NAV_JS), *objects]
        for path in dict.fromkeys(paths):
            response = page.goto(f"{live_server.url}{path}")
            if response is None or response.status >= 400:
                continue  # a page this role may not open (403/404) has nothing to check
            checked += 1
            found = serious(axe.run(page))
            if found:
                failures[f"{username} {path}"] = found
        context.close()
    assert checked >= 80
    assert not failures, "\n".join(f"{page}: {problems}" for page, problems in failures.items())
