"""Issue 13, points 1 and 2: uploads leave nothing behind on any exit path, and nothing is written (or even read)
before the request is allowed and bounded.

"Nothing behind" is checked in the incoming folder (where upload handlers write) and in the process's temporary
folder (where Django's default handler would spool), both private to each test (see conftest.py).
"""

from __future__ import annotations

import io
import os
import re
import time
import uuid
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.test import Client

from apps.consent.models import ConsentImport
from apps.datasets.models import DatasetVersion
from tests.security.conftest import StreamedBody, post_streamed

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
CSV = b"applicant_id,age\nA-1,30\nA-2,40\nA-3,50\n"


def incoming_files() -> list[Path]:
    folder = Path(settings.STORAGE_ROOT) / "incoming"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def temp_files(temp: Path) -> list[Path]:
    return sorted(p for p in temp.rglob("*") if p.is_file())


def named(content: bytes, name: str = "data.csv") -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def logged_in(user, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf, raise_request_exception=False)
    client.force_login(user)
    return client


def csrf_token(client: Client) -> str:
    """A CSRF cookie for this client, as a browser holds it after any page with a form; returns the matching token."""
    from django.middleware.csrf import _get_new_csrf_string

    secret = _get_new_csrf_string()
    client.cookies[settings.CSRF_COOKIE_NAME] = secret
    return secret


def dataset_routes(dataset_id) -> dict[str, str]:
    return {"html": f"/datasets/{dataset_id}/upload/", "api": f"/api/v1/datasets/{dataset_id}/versions/"}


# --- point 2: refused before the body is read ---


def test_an_anonymous_300mb_post_to_the_login_page_is_refused_before_anything_is_read(private_folders):
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client)
    body = StreamedBody(300 * MB, fields={"username": "nobody", "csrfmiddlewaretoken": token[:-1] + "x"})
    response = post_streamed(client, "/accounts/login/", body)
    assert response.status_code == 413
    assert b"larger than 10 MB" in response.content
    assert body.read_bytes == 0
    assert temp_files(private_folders) == [] and incoming_files() == []


def test_files_sent_to_a_page_that_takes_none_never_reach_the_disk(private_folders):
    """Under the 10 MB body limit, a file part on the login page is held in memory up to 2 MB, then refused."""
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client)
    seen: list[list[Path]] = []
    body = StreamedBody(
        8 * MB,
        fields={"csrfmiddlewaretoken": token[:-1] + "x"},
        on_offset=(6 * MB, lambda: seen.append(temp_files(private_folders) + incoming_files())),
    )
    response = post_streamed(client, "/accounts/login/", body)
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "larger than the limit of 2 MB" in client.get("/accounts/login/").content.decode()
    assert seen == [[]]
    assert temp_files(private_folders) == [] and incoming_files() == []


@pytest.mark.parametrize(("path", "size"), [("/consent/", 300 * MB), ("/reports/verify/", 40 * MB)])
def test_an_anonymous_upload_is_sent_to_sign_in_before_its_body_is_read(private_folders, path, size):
    client = Client(enforce_csrf_checks=True)
    token = csrf_token(client)
    body = StreamedBody(size)
    response = post_streamed(client, path, body, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert body.read_bytes == 0
    assert temp_files(private_folders) == [] and incoming_files() == []


@pytest.mark.parametrize("route", ["html", "api"])
def test_a_csrf_token_refused_in_the_header_refuses_the_upload_before_its_body(
    steward, dataset, private_folders, route
):
    client = logged_in(steward, csrf=True)
    csrf_token(client)
    body = StreamedBody(300 * MB)
    response = post_streamed(client, dataset_routes(dataset.id)[route], body, HTTP_X_CSRFTOKEN="x" * 64)
    assert response.status_code == 403
    assert body.read_bytes == 0
    assert incoming_files() == [] and temp_files(private_folders) == []


def test_an_outsider_posting_to_a_random_dataset_reads_and_leaves_nothing(outsider, private_folders):
    client = logged_in(outsider, csrf=True)
    token = csrf_token(client)
    body = StreamedBody(300 * MB)
    response = post_streamed(client, f"/api/v1/datasets/{uuid.uuid4()}/versions/", body, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert body.read_bytes == 0
    small = client.post(f"/api/v1/datasets/{uuid.uuid4()}/versions/", {"file": named(CSV)}, HTTP_X_CSRFTOKEN=token)
    assert small.status_code == 404
    assert incoming_files() == [] and temp_files(private_folders) == []


@pytest.mark.parametrize("path", ["/reports/verify/", "/api/v1/reports/verify/"])
def test_a_declared_size_over_the_route_limit_is_refused_before_reading(steward, private_folders, path):
    body = StreamedBody(60 * MB)
    response = post_streamed(logged_in(steward), path, body)
    assert response.status_code == 413
    assert body.read_bytes == 0
    assert temp_files(private_folders) == [] and incoming_files() == []


@pytest.mark.parametrize("path", ["/reports/verify/", "/api/v1/reports/verify/"])
def test_report_verification_refuses_a_file_over_50mb_while_it_streams(steward, private_folders, path):
    """The body is under the route's declared limit but the file passes 50 MB: the upload stops there."""
    on_disk: list[int] = []

    def measure() -> None:
        on_disk.append(sum(p.stat().st_size for p in temp_files(private_folders) + incoming_files()))

    body = StreamedBody(50 * MB + 512 * 1024, on_offset=(50 * MB + 256 * 1024, measure))
    response = post_streamed(logged_in(steward), path, body, HTTP_ACCEPT="application/json")
    assert on_disk and on_disk[0] <= 50 * MB, on_disk
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large" and "50 MB" in response.json()["error"]["message"]
    assert temp_files(private_folders) == [] and incoming_files() == []


def test_the_html_verify_page_says_why_a_large_file_was_refused(steward, private_folders):
    client = logged_in(steward)
    response = post_streamed(client, "/reports/verify/", StreamedBody(50 * MB + 512 * 1024))
    assert response.status_code == 302
    page = client.get(response["Location"])
    assert "larger than 50 MB: it is not a report this portal issued" in page.content.decode()
    assert temp_files(private_folders) == [] and incoming_files() == []


# --- point 1: every exit path leaves the incoming folder empty ---


@pytest.mark.parametrize("route", ["html", "api"])
def test_a_file_in_the_wrong_field_is_refused_and_leaves_nothing(steward, dataset, route):
    response = logged_in(steward).post(
        dataset_routes(dataset.id)[route], {"data": named(CSV)}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 400
    assert "'file'" in response.json()["error"]["message"]
    assert incoming_files() == [] and not DatasetVersion.objects.exists()


@pytest.mark.parametrize("route", ["html", "api"])
def test_an_extra_file_part_is_refused_and_leaves_nothing(steward, dataset, route):
    response = logged_in(steward).post(
        dataset_routes(dataset.id)[route],
        {"file": [named(CSV), named(CSV + b"A-4,60\n")]},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 400
    assert "at most 1 file" in response.json()["error"]["message"]
    assert incoming_files() == [] and not DatasetVersion.objects.exists()


@pytest.mark.parametrize("route", ["html", "api"])
def test_a_csrf_failure_in_the_form_body_leaves_nothing(steward, dataset, route):
    client = logged_in(steward, csrf=True)
    token = csrf_token(client)
    response = client.post(
        dataset_routes(dataset.id)[route], {"csrfmiddlewaretoken": token[:-2] + "xx", "file": named(CSV)}
    )
    assert response.status_code == 403
    assert incoming_files() == [] and not DatasetVersion.objects.exists()
    accepted = client.post(
        dataset_routes(dataset.id)[route],
        {"csrfmiddlewaretoken": token, "file": named(CSV)},
        HTTP_ACCEPT="application/json",
    )
    assert accepted.status_code == 201, accepted.content
    assert incoming_files() == [] and DatasetVersion.objects.count() == 1


def test_a_dataset_the_user_cannot_see_refuses_the_upload_and_leaves_nothing(outsider, dataset):
    client = logged_in(outsider, csrf=True)
    token = csrf_token(client)
    response = client.post(dataset_routes(dataset.id)["api"], {"file": named(CSV)}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 404
    assert incoming_files() == [] and not DatasetVersion.objects.exists()


def test_a_permission_refusal_comes_before_the_body(auditor, owner, dataset, private_folders):
    """An auditor reads consent but may not import it; an owner sees the dataset but may not upload to it."""
    client = logged_in(auditor, csrf=True)
    body = StreamedBody(300 * MB)
    response = post_streamed(client, "/consent/", body, HTTP_X_CSRFTOKEN=csrf_token(client))
    assert response.status_code == 403
    assert body.read_bytes == 0
    client = logged_in(owner, csrf=True)
    body = StreamedBody(300 * MB)
    response = post_streamed(client, dataset_routes(dataset.id)["api"], body, HTTP_X_CSRFTOKEN=csrf_token(client))
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"
    assert body.read_bytes == 0
    assert temp_files(private_folders) == [] and incoming_files() == []


def test_an_api_validation_error_leaves_nothing(steward, dataset):
    response = logged_in(steward).post(
        dataset_routes(dataset.id)["api"], {"file": named(CSV), "retention_until": "not-a-date"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert incoming_files() == [] and not DatasetVersion.objects.exists()


@pytest.mark.parametrize("route", ["html", "api"])
def test_a_crash_after_the_upload_leaves_nothing(steward, dataset, monkeypatch, route):
    def crash(**kwargs):
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr("apps.datasets.services.dataset_version_upload", crash)
    response = logged_in(steward).post(
        dataset_routes(dataset.id)[route], {"file": named(CSV)}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 500
    assert incoming_files() == []


def test_consent_imports_leave_nothing_on_refusal_validation_error_or_crash(steward, org, private_folders, monkeypatch):
    client = logged_in(steward)
    big = b"subject_id,purpose,status,timestamp\n" + b"S-1,Service improvement,granted,2025-01-01T00:00:00Z\n" * 60_000
    assert len(big) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE  # Django's default handler would spool it to disk
    refused = client.post("/api/v1/consent/imports/", {"organisation": str(uuid.uuid4()), "file": named(big)})
    assert refused.status_code == 404
    invalid = client.post("/api/v1/consent/imports/", {"organisation": "not-an-id", "file": named(big)})
    assert invalid.status_code == 400
    wrong_field = client.post("/consent/", {"upload": named(big)})
    assert wrong_field.status_code == 302

    def crash(**kwargs):
        raise RuntimeError("broker down")

    monkeypatch.setattr("apps.consent.services.consent_import_create", crash)
    assert client.post("/consent/", {"file": named(big)}).status_code == 500
    assert client.post("/api/v1/consent/imports/", {"organisation": str(org.id), "file": named(big)}).status_code == 500
    assert temp_files(private_folders) == [] and incoming_files() == []
    leftovers = Path(settings.STORAGE_ROOT) / "consent-imports"
    assert not leftovers.exists() or list(leftovers.iterdir()) == []
    monkeypatch.undo()
    accepted = client.post("/api/v1/consent/imports/", {"organisation": str(org.id), "file": named(big)})
    assert accepted.status_code == 202, accepted.content
    assert ConsentImport.objects.get().size_bytes == len(big)
    assert temp_files(private_folders) == [] and incoming_files() == []


# --- the sweeper and the proxy ---


def test_the_sweeper_deletes_only_what_is_older_than_the_longest_upload(settings):
    from apps.core.uploads import incoming_sweep

    def aged(path: Path, seconds: float) -> Path:
        path.write_bytes(b"x")
        os.utime(path, (time.time() - seconds, time.time() - seconds))
        return path

    folder = Path(settings.STORAGE_ROOT) / "incoming"
    consent = Path(settings.STORAGE_ROOT) / "consent-imports"
    folder.mkdir(parents=True)
    consent.mkdir()
    upload, job = settings.UPLOAD_MAX_SECONDS, max(settings.UPLOAD_MAX_SECONDS, settings.JOB_HARD_TIME_LIMIT_SECONDS)
    gone = [
        aged(folder / "upload-abandoned.part", upload + 60),  # a spooled upload whose web worker was killed
        aged(consent / "half.part", upload + 60),  # a consent file being copied when the worker died
        aged(folder / f"{uuid.uuid4()}.enc", job + 60),  # encrypted, older than any upload or job
    ]
    kept = [
        aged(folder / "upload-arriving.part", upload - 60),
        aged(folder / f"{uuid.uuid4()}.enc", upload + 60),  # a long job may still be writing it
        aged(consent / "queued.csv", job + 60),  # a queued import's file belongs to its job
    ]
    assert incoming_sweep() == len(gone)
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)
    assert settings.UPLOAD_MAX_SECONDS >= settings.UPLOAD_MAX_BYTES // MB  # at least 1 MB/s for the largest file


def test_the_sweeper_runs_from_beat():
    from portal.celery import app
    from workers import task_names, tasks

    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == task_names.INCOMING_SWEEP]
    assert entries and entries[0]["schedule"] <= 3600
    assert tasks.incoming_sweep.name == task_names.INCOMING_SWEEP


def _nginx_limits(conf: str) -> tuple[int, list[tuple[re.Pattern[str], int]]]:
    """The server-wide client_max_body_size and each regex location's, in bytes, in the file's order."""
    server = int(re.search(r"^    client_max_body_size (\d+)m;", conf, re.M).group(1)) * MB
    locations = [
        (re.compile(pattern), int(size) * MB)
        for pattern, size in re.findall(r"location ~ (\S+) \{\s*client_max_body_size (\d+)m;", conf)
    ]
    return server, locations


def test_the_production_proxy_limits_each_route_as_the_application_does():
    from django.test import RequestFactory

    from apps.core.uploads import _route

    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    proxy = compose["services"]["proxy"]
    assert "ports" not in compose["services"]["web"], "the web server is reached only through the proxy"
    assert proxy["depends_on"]["web"]["condition"] == "service_healthy"
    mounted = next(v.split(":")[0] for v in proxy["volumes"] if "nginx" in v)
    conf = (REPO / mounted.removeprefix("./")).read_text()
    assert "proxy_request_buffering off;" in conf  # plaintext never lands in the proxy's temporary files
    server, locations = _nginx_limits(conf)
    some = uuid.uuid4()
    for path in [
        "/accounts/login/",
        "/api/v1/usecases/",
        "/reports/signing/",
        f"/datasets/{some}/upload/",
        f"/api/v1/datasets/{some}/versions/",
        "/consent/",
        "/api/v1/consent/imports/",
        "/reports/verify/",
        "/api/v1/reports/verify/",
        f"/datasets/versions/{some}/anonymise/",
        f"/api/v1/deployments/{some}/score/",
        f"/api/v1/deployments/{some}/batches/",
    ]:
        policy, _match = _route(RequestFactory().post(path))
        proxy_limit = next((size for pattern, size in locations if pattern.match(path)), server)
        assert (
            proxy_limit == -(-policy.request_limit() // MB) * MB or policy.request_limit() <= proxy_limit <= server
        ), path
    assert max(size for _pattern, size in locations) == settings.UPLOAD_MAX_BYTES + MB
