"""The OpenAPI document describes what the API really returns: every GET operation in the schema is called with one
real object of each kind (the permission matrix's world) and its JSON body validated against the documented response.

A new GET route is covered without touching this file; it fails here until the matrix's world has an object for it.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from tests.api.test_permission_matrix import (  # noqa: F401 - the fixture is used by name
    TOKEN_ONLY,
    fill_path,
    request_body,
    world,
)


@functools.cache
def openapi() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    # Through JSON, as a client reads /api/schema/?format=json (lazy strings, enums and the like become plain values).
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's dialect to JSON Schema: ``nullable: true`` becomes "or null"; objects admit no undocumented keys."""
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: as_json_schema(value) for key, value in node.items() if key != "nullable"}
    if converted.get("type") == "object" and "properties" in converted:
        converted.setdefault("additionalProperties", False)
    if node.get("nullable"):
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@functools.cache
def components() -> dict[str, Any]:
    return as_json_schema(openapi()["components"])


def get_operations() -> list[str]:
    return sorted(path for path, operations in openapi()["paths"].items() if "get" in operations)


def validate(body: Any, schema: dict[str, Any]) -> list[str]:
    root = {**as_json_schema(schema), "components": components()}
    validator = Draft202012Validator(root, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '(body)'}: {error.message[:300]}"
        for error in validator.iter_errors(body)
    ]


def test_every_get_route_of_the_api_is_checked_here():
    paths = get_operations()
    assert len(paths) >= 40 and all(path.startswith("/api/v1/") for path in paths)


@pytest.fixture
def full_world(world):  # noqa: F811 - the imported fixture
    """The matrix's world plus what it has no need of: a consent record, a comment, a notice, a signing identity and a
    system job."""
    from apps.ethics.models import Comment, Notice, ReviewRequest
    from apps.jobs.models import Job
    from apps.reports.services import signing_identity

    mine, _theirs, personas = world
    admin = APIClient()
    admin.force_authenticate(personas["admin"])
    body, _format = request_body("POST", "/api/v1/consent/records/", mine)
    assert admin.post("/api/v1/consent/records/", body, format="json").status_code == 201
    review = ReviewRequest.objects.get(pk=mine.ids["reviews"])
    Comment.objects.create(review=review, section="usecase", author=personas["board"], body="Why this retention?")
    Notice.objects.create(
        user=personas["admin"],
        organisation=mine.organisation,
        review=review,
        kind="opened",
        message="A review was opened.",
        url="/",
    )
    signing_identity(mine.organisation)
    # A job nobody asked for (beat's, or its user deleted): its creator is null.
    Job.objects.create(organisation=mine.organisation, kind="diagnostics", task_name="attest.default.diagnostics")
    return world


@pytest.mark.django_db
@pytest.mark.parametrize("path", get_operations())
def test_the_response_of_every_get_operation_matches_the_schema(path, full_world):
    mine, _theirs, personas = full_world
    client = APIClient()
    if ("GET", path) in TOKEN_ONLY:  # answers to the deployment's scoring token only
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {mine.ids['scoring-secret']}")
    else:
        client.force_authenticate(personas["admin"])
    operation = openapi()["paths"][path]["get"]
    response = client.get(fill_path(path, mine), {"format": "json"} if path.endswith("/export/") else None)
    assert response.status_code == 200, (response.status_code, getattr(response, "data", None))
    documented = operation["responses"].get("200")
    assert documented is not None, f"{path}: 200 is not documented"
    media_type = response["Content-Type"].split(";")[0].strip()
    content = documented.get("content", {})
    assert media_type in content, f"{path}: {media_type} is not documented ({sorted(content)})"
    if media_type != "application/json":
        return
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    body = json.loads(raw)
    # Real data: a list has at least one item, so the items' schema is exercised too.
    items = body.get("results") if isinstance(body, dict) and "results" in body else body
    if isinstance(items, list):
        assert items, f"{path}: the world has nothing to list here; add an object of this kind to build_world"
    errors = validate(body, content[media_type]["schema"])
    assert not errors, f"{path} does not match its schema:\n" + "\n".join(errors[:20])
