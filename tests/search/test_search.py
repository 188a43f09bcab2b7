"""Global search: scoped to what each person may see, for every kind, on both matching paths, ranked sensibly."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import AuditorGrant
from apps.datasets.models import Dataset
from apps.ethics.models import ReviewRequest
from apps.reports.models import Report
from apps.search.selectors import search
from apps.thirdparty.models import ThirdPartyModel
from apps.thirdparty.services import thirdparty_register
from apps.training.models import ModelVersion
from apps.usecases.models import UseCase
from apps.usecases.services import usecase_create
from tests.api.test_permission_matrix import build_world
from tests.conftest import make_user
from tests.usecases.factories import usecase_data

pytestmark = pytest.mark.django_db

BOTH_PATHS = pytest.mark.parametrize("full_text", [True, False], ids=["postgres-full-text", "simple-icontains"])

# Words each organisation's world holds in every kind: use case titles, dataset names, the use cases models and
# reviews belong to, report kinds and references, and the third-party model added below.
QUERIES = ["Benefit claim", "Approved", "Matrix", "Trained", "art30", "Quill", "RV"]
MY_KINDS = {"usecases", "datasets", "models", "reviews", "reports"}


def ids_of(organisation) -> dict[str, set[str]]:
    """Every object of each kind that belongs to ``organisation``, read straight from the tables."""
    return {
        "usecases": {str(i) for i in UseCase.objects.filter(organisation=organisation).values_list("id", flat=True)},
        "datasets": {str(i) for i in Dataset.objects.filter(organisation=organisation).values_list("id", flat=True)},
        "models": {str(i) for i in ModelVersion.objects.filter(organisation=organisation).values_list("id", flat=True)}
        | {str(i) for i in ThirdPartyModel.objects.filter(organisation=organisation).values_list("id", flat=True)},
        "reviews": {
            str(i) for i in ReviewRequest.objects.filter(organisation=organisation).values_list("id", flat=True)
        },
        "reports": {str(i) for i in Report.objects.filter(organisation=organisation).values_list("id", flat=True)},
    }


@pytest.fixture
def worlds(org, other_org, admin_user, owner, steward, outsider, settings, tmp_path):
    settings.STORAGE_ROOT = tmp_path
    other_org.processing_purposes = ["Benefit fraud triage"]
    other_org.save()
    other_steward = make_user("olaf_other_steward", organisation=other_org, roles=("steward",))
    grantee = make_user("gina_grantee")
    build_world(org, admin_user, owner, steward, grantee)
    build_world(other_org, outsider, outsider, other_steward, make_user("gus_grantee"))
    for organisation, actor in ((org, owner), (other_org, outsider)):
        usecase = UseCase.objects.filter(organisation=organisation, title="Benefit claim triage").get()
        thirdparty_register(
            actor=actor,
            usecase=usecase,
            data={"supplier": "Northwind", "name": "Quill", "version": "1", "intended_use": "Letter drafting."},
        )
    return grantee


def found(groups) -> dict[str, set[str]]:
    return {group["kind"]: {result["id"] for result in group["results"]} for group in groups}


@BOTH_PATHS
@pytest.mark.parametrize("persona", ["admin_user", "owner", "steward", "board_member", "auditor", "grantee"])
def test_search_never_returns_another_organisations_objects_of_any_kind(persona, full_text, worlds, org, request):
    user = worlds if persona == "grantee" else request.getfixturevalue(persona)
    mine = ids_of(org)
    seen_kinds = set()
    for query in QUERIES:
        for kind, ids in found(search(user, query, full_text=full_text, limit=50)).items():
            if kind in MY_KINDS:
                assert ids <= mine[kind], f"{persona} searching {query!r} saw {kind} of another organisation"
                seen_kinds.add(kind)
    # Each kind was found at least once, so the assertion above was not vacuous.
    assert seen_kinds == MY_KINDS


@BOTH_PATHS
def test_the_other_organisation_sees_only_its_own(worlds, outsider, other_org, full_text):
    theirs = ids_of(other_org)
    for query in QUERIES:
        for kind, ids in found(search(outsider, query, full_text=full_text, limit=50)).items():
            if kind in MY_KINDS:
                assert ids and ids <= theirs[kind]


def test_acting_in_one_organisation_narrows_the_search_to_it(worlds, org, other_org, owner):
    from apps.accounts.models import Membership

    Membership.objects.create(user=owner, organisation=other_org, role="owner")
    everywhere = found(search(owner, "Benefit claim", full_text=True))["usecases"]
    here = found(search(owner, "Benefit claim", organisation=org, full_text=True))["usecases"]
    assert here == ids_of(org)["usecases"] & everywhere
    assert everywhere - here  # the other organisation's use case, now visible to the member of both


@BOTH_PATHS
def test_an_auditor_grant_counts_only_while_it_is_in_force(worlds, org, full_text):
    grantee = worlds
    assert found(search(grantee, "Benefit claim", full_text=full_text))["usecases"]
    grant = AuditorGrant.objects.get(user=grantee, organisation=org)
    grant.expires_at = timezone.now() - timedelta(minutes=1)
    grant.save()
    assert search(grantee, "Benefit claim", full_text=full_text) == []
    grant.expires_at = None
    grant.revoked_at = timezone.now()
    grant.save()
    assert search(grantee, "Benefit claim", full_text=full_text) == []


# --------------------------------------------------------------------------------------------------------- ranking


@pytest.fixture
def letters(org, owner):
    """A use case about letter drafting by title, one that only mentions it in its description, and one without."""
    in_title = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Letter drafting assistant"))
    in_description = usecase_create(
        actor=owner,
        organisation=org,
        data=usecase_data(title="Claims triage", description="Flags claims; a later step supports letter drafting."),
    )
    unrelated = usecase_create(actor=owner, organisation=org, data=usecase_data(title="Fraud scoring"))
    return in_title, in_description, unrelated


@BOTH_PATHS
def test_a_title_match_ranks_above_a_description_match_and_non_matches_are_left_out(letters, owner, full_text):
    in_title, in_description, unrelated = letters
    [group] = search(owner, "letter drafting", full_text=full_text)
    ids = [result["id"] for result in group["results"]]
    assert ids == [str(in_title.id), str(in_description.id)]
    assert group["results"][0]["rank"] > group["results"][1]["rank"]


@BOTH_PATHS
def test_an_exact_reference_ranks_its_use_case_first(letters, owner, full_text):
    _, in_description, _ = letters
    [group] = search(owner, in_description.reference, full_text=full_text, kinds=("usecases",))
    assert group["results"][0]["id"] == str(in_description.id)


def test_full_text_search_matches_other_forms_of_a_word_where_the_simple_match_cannot(letters, owner):
    in_title, in_description, _ = letters
    # "drafts" is not a substring of "drafting"; English stemming makes both "draft".
    assert found(search(owner, "drafts", full_text=True))["usecases"] == {str(in_title.id), str(in_description.id)}
    assert search(owner, "drafts", full_text=False) == []


def test_the_database_decides_the_default_path(letters, owner, monkeypatch):
    assert search(owner, "drafts")  # PostgreSQL in the tests: full text, stemmed
    monkeypatch.setattr("apps.search.selectors.uses_full_text", lambda: False)  # as on the demo's SQLite
    assert search(owner, "drafts") == []
    assert search(owner, "drafting")


@BOTH_PATHS
def test_typed_punctuation_never_reaches_sql_as_syntax(letters, owner, full_text):
    assert search(owner, "letter & | ! ( ' :* drafting", full_text=full_text)
    assert search(owner, "!!! ::: &&&", full_text=full_text) == []


def test_more_is_flagged_when_a_kind_has_more_than_the_limit(org, owner):
    for number in range(3):
        usecase_create(actor=owner, organisation=org, data=usecase_data(title=f"Letter drafting {number}"))
    [group] = search(owner, "letter", full_text=True, limit=2)
    assert len(group["results"]) == 2 and group["more"] is True


# ------------------------------------------------------------------------------------------------- page and API


def test_the_results_page_groups_by_kind_and_links_each_result(letters, owner, client):
    in_title, _, _ = letters
    client.force_login(owner)
    page = client.get(reverse("search:results"), {"q": "letter drafting"}).content.decode()
    assert 'id="results-usecases-heading">Use cases</h2>' in page
    assert f'href="{reverse("usecases:detail", args=[in_title.id])}"' in page
    assert "2 results" in page


def test_every_page_has_a_labelled_search_box_in_the_header(owner, client):
    client.force_login(owner)
    page = client.get(reverse("dashboard")).content.decode()
    assert 'role="search"' in page
    assert '<label for="header-search-q"' in page and 'id="header-search-q" name="q"' in page


def test_the_api_answers_groups_and_refuses_bad_queries_in_the_one_error_shape(letters, owner, other_org):
    api = APIClient()
    api.force_authenticate(owner)
    body = api.get("/api/v1/search/", {"q": "letter drafting"}).json()
    assert [group["kind"] for group in body["groups"]] == ["usecases"]
    assert len(body["groups"][0]["results"]) == 2
    short = api.get("/api/v1/search/", {"q": "l"})
    assert short.status_code == 400 and short.json()["error"]["code"] == "invalid"
    assert api.get("/api/v1/search/", {"q": "letter", "kind": "secrets"}).status_code == 400
    assert api.get("/api/v1/search/", {"q": "letter", "organisation": str(other_org.id)}).status_code == 404


# ----------------------------------------------------------------------------- kinds searched by their own apps


def test_risks_come_from_the_register_of_the_organisation_only(org, other_org, owner, outsider):
    from apps.portfolio.models import Risk

    for organisation, person, reference in ((org, owner, "RK-0001"), (other_org, outsider, "RK-0002")):
        Risk.objects.create(
            organisation=organisation,
            reference=reference,
            title="Vendor outage stops letter drafting",
            likelihood=2,
            severity=3,
            owner=person,
            treatment="mitigate",
            review_on=timezone.localdate(),
            created_by=person,
        )
    [group] = search(owner, "Vendor outage", kinds=("risks",))
    assert [result["id"] for result in group["results"]] == ["RK-0001"]
    assert group["results"][0]["title"] == "RK-0001 Vendor outage stops letter drafting"


def test_requirements_of_the_catalogues_are_found(owner):
    groups = search(owner, "risk management", kinds=("requirements",))
    if not groups:
        pytest.fail("no requirement matched 'risk management': are the catalogues loaded in the test database?")
    assert all(result["url"] for result in groups[0]["results"])


@BOTH_PATHS
def test_the_number_of_queries_does_not_grow_with_the_results(org, owner, full_text):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for_search() -> int:
        with CaptureQueriesContext(connection) as captured:
            search(owner, "letter", full_text=full_text, limit=50)
        return len(captured)

    for number in range(2):
        usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(title=f"Letter drafting {number}"))
        Dataset.objects.create(organisation=org, usecase=usecase, name=f"Letter corpus {number}", created_by=owner)
        thirdparty_register(
            actor=owner,
            usecase=usecase,
            data={"supplier": "Northwind", "name": f"Letter model {number}", "version": "1", "intended_use": "x"},
        )
    few = queries_for_search()
    for number in range(2, 20):
        usecase = usecase_create(actor=owner, organisation=org, data=usecase_data(title=f"Letter drafting {number}"))
        Dataset.objects.create(organisation=org, usecase=usecase, name=f"Letter corpus {number}", created_by=owner)
        thirdparty_register(
            actor=owner,
            usecase=usecase,
            data={"supplier": "Northwind", "name": f"Letter model {number}", "version": "1", "intended_use": "x"},
        )
    assert queries_for_search() == few
