"""Dataset profiles never show values of personal-data columns, and quasi-identifiers only show cells of at least the
organisation's minimum cell size: on the version page, in the API and in the datasheet report, to every role."""

import io
import json

import pandas as pd
import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.services import organisation_update
from apps.datasets.models import DatasetVersion
from apps.datasets.profiles import redact_column_profile
from apps.datasets.services import dataset_version_confirm_roles, dataset_version_profile
from apps.reports.content import datasheet
from tests.datasets.test_upload_and_prepare import upload

pytestmark = pytest.mark.django_db

ROWS = 200
NAMES = [f"Zebulon{i} Quartermaine" for i in range(20)]  # each name on 10 rows: enough to be a "top value"
MOTTOS = [f"Wobblefizz{i}" for i in range(20)]  # no personal-data signal: only the steward knows it identifies


def personal_csv() -> bytes:
    towns = ["Bigtown"] * 150 + ["Midville"] * 47 + ["Tinyhamlet"] * 3
    ages = [30 + (i % 5) for i in range(ROWS - 1)] + [113]  # one very old person
    frame = pd.DataFrame(
        {
            "patient_id": [900001 + i for i in range(ROWS)],
            "full_name": [NAMES[i % 20] for i in range(ROWS)],
            "motto": [MOTTOS[i % 20] for i in range(ROWS)],
            "town": towns,
            "age": ages,
            "outcome": [i % 2 for i in range(ROWS)],
        }
    )
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


PERSONAL_VALUES = ["Quartermaine", "Wobblefizz", "900001", "900200", "900100"]


@pytest.fixture
def version(steward, dataset):
    client = Client()
    client.force_login(steward)
    response = upload(client, dataset, personal_csv())
    assert response.status_code == 201, response.content
    version = DatasetVersion.objects.get(id=response.json()["version"])
    dataset_version_profile(version_id=version.id)
    roles = {
        "patient_id": "subject_key",
        "full_name": "direct_identifier",
        "motto": "direct_identifier",  # confirmed later: its stored profile still has values
        "town": "quasi_identifier",
        "age": "quasi_identifier",
        "outcome": "label",
    }
    return dataset_version_confirm_roles(actor=steward, version=version, roles=roles)


def stored(version, name):
    version.refresh_from_db()
    return next(c for c in version.profile["columns"] if c["name"] == name)


def test_detected_personal_data_is_not_stored_in_the_profile(version):
    assert stored(version, "full_name")["top_values"] == [] and "values_removed" in stored(version, "full_name")
    assert "Wobblefizz" in json.dumps(stored(version, "motto"))  # not detected: only the display redacts it
    assert "Quartermaine" not in json.dumps(version.profile)
    assert stored(version, "full_name")["distinct"] == 20  # counts stay


@pytest.mark.parametrize("persona", ["steward", "owner", "board_member", "external_auditor", "admin_user"])
def test_no_role_sees_a_personal_data_value_on_the_page_or_in_the_api(request, version, persona):
    user = request.getfixturevalue(persona)
    client = Client()
    client.force_login(user)
    page = client.get(f"/datasets/versions/{version.id}/")
    assert page.status_code == 200
    html = page.content.decode()
    api = APIClient()
    api.force_authenticate(user)
    response = api.get(f"/api/v1/dataset-versions/{version.id}/")
    assert response.status_code == 200
    body = response.content.decode()
    for value in PERSONAL_VALUES:
        assert value not in html, value
        assert value not in body, value
    assert "Values not shown: personal data" in html
    assert "Bigtown" in html and "Bigtown" in body  # other values still show
    profile = response.json()["profile"]
    assert profile["full_name"]["values_hidden"] and profile["full_name"]["distinct"] == 20
    assert profile["motto"]["values_hidden"] and profile["patient_id"]["values_hidden"]
    assert "min" not in profile["patient_id"] and "histogram" not in profile["patient_id"]


def test_the_datasheet_report_shows_no_personal_data_value(version):
    content = datasheet(DatasetVersion.objects.get(id=version.id))
    rendered = json.dumps([content.sections, content.evidence], default=str)
    for value in PERSONAL_VALUES:
        assert value not in rendered, value
    assert "values not shown: personal data" in rendered and "Bigtown" in rendered


def test_quasi_identifier_cells_below_the_minimum_cell_size_are_hidden(version, admin_user, org):
    api = APIClient()
    api.force_authenticate(admin_user)
    profile = api.get(f"/api/v1/dataset-versions/{version.id}/").json()["profile"]
    towns = {item["value"]: item["count"] for item in profile["town"]["top_values"]}
    assert towns == {"Bigtown": 150, "Midville": 47}  # Tinyhamlet's 3 rows are below 10
    assert profile["town"]["suppressed_values"] == 1
    age = profile["age"]
    assert "113" not in {item["value"] for item in age["top_values"]}
    assert "min" not in age and "max" not in age  # the extremes are single people
    assert "histogram" not in age  # equal-width bin edges give away min and max (113) whatever the counts
    assert "113" not in json.dumps(age) and age["suppressed_values"] == 1
    assert "0.05" not in age["quantiles"] or 0.05 * ROWS >= 10
    # The organisation's own cell size applies: at 60, Midville's 47 rows are hidden too.
    organisation_update(actor=admin_user, organisation=org, data={"min_cell_size": 60})
    profile = api.get(f"/api/v1/dataset-versions/{version.id}/").json()["profile"]
    assert [item["value"] for item in profile["town"]["top_values"]] == ["Bigtown"]
    client = Client()
    client.force_login(admin_user)
    html = client.get(f"/datasets/versions/{version.id}/").content.decode()
    assert "Midville" not in html and "Tinyhamlet" not in html and "fewer than 60 rows" in html


def test_the_minimum_cell_size_is_an_admin_setting(org, admin_user, steward):
    api = APIClient()
    api.force_authenticate(admin_user)
    assert api.get(f"/api/v1/organisations/{org.id}/").json()["min_cell_size"] == 10
    assert api.patch(f"/api/v1/organisations/{org.id}/", {"min_cell_size": 1}, format="json").status_code == 400
    assert api.patch(f"/api/v1/organisations/{org.id}/", {"min_cell_size": 25}, format="json").status_code == 200
    org.refresh_from_db()
    assert org.min_cell_size == 25
    api.force_authenticate(steward)
    assert api.patch(f"/api/v1/organisations/{org.id}/", {"min_cell_size": 2}, format="json").status_code == 403


def test_redaction_decides_from_role_suggestion_and_findings():
    profile = {
        "name": "x",
        "rows": 30,
        "missing": 0,
        "distinct": 2,
        "min": 1.0,
        "max": 9.0,
        "mean": 5.0,
        "top_values": [{"value": "secret", "count": 29}, {"value": "rare", "count": 1}],
    }
    found_name = [{"kind": "name", "source": "values"}]
    assert redact_column_profile(profile, role="feature", pii=found_name)["top_values"] == []
    assert redact_column_profile(profile, suggested_role="subject_key")["top_values"] == []
    quasi = redact_column_profile(profile, pii=[{"kind": "postcode"}], min_cell_size=5)
    assert quasi["top_values"] == [{"value": "secret", "count": 29}] and "min" not in quasi
    assert redact_column_profile(profile, role="feature")["top_values"] == profile["top_values"]
