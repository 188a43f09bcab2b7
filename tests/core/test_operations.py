"""Operations: /metrics (text format, protected, counts that move), request ids in logs and responses, /livez and
/readyz (503 naming the failed check), all against the real PostgreSQL and Redis the fixtures start."""

from __future__ import annotations

import json
import logging
import math
import re
from collections import defaultdict

import pytest
from django.db import connections
from django.test import Client
from kombu import Connection, Queue

from apps.core.logs import JsonFormatter
from apps.core.metrics import HTTP
from apps.jobs.services import job_diagnostics_start
from tests.conftest import run_inline
from tests.plugins.services import free_port

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token-0123456789"  # noqa: S105 - a test value
_SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})?'
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|Inf|NaN))$"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse_exposition(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A strict reader of Prometheus' text format 0.0.4: every sample belongs to a family declared once by TYPE
    before it, label sets are unique, histograms have increasing buckets ending in +Inf equal to _count."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, f"family {name} declared twice"
            assert kind in {"counter", "gauge", "histogram", "summary", "untyped"}
            types[name] = kind
            continue
        match = _SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name = match["name"]
        family = next((f for f in (name, re.sub(r"_(bucket|sum|count)$", "", name)) if f in types), None)
        assert family is not None, f"{name} sampled before its TYPE"
        if types[family] != "histogram":
            assert name == family
        labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
        assert (name, labels) not in samples, f"duplicate sample {name}{labels}"
        value = match["value"]
        samples[(name, labels)] = math.inf if value == "+Inf" else float(value)
    series: dict[tuple[str, tuple], list[tuple[float, float]]] = defaultdict(list)
    for (name, labels), value in samples.items():
        if name.endswith("_bucket"):
            le = dict(labels)["le"]
            rest = tuple(item for item in labels if item[0] != "le")
            series[(name[: -len("_bucket")], rest)].append((math.inf if le == "+Inf" else float(le), value))
    for (family, rest), buckets in series.items():
        buckets.sort()
        assert buckets[-1][0] == math.inf
        counts = [count for _, count in buckets]
        assert counts == sorted(counts), f"{family} buckets decrease"
        assert samples[(f"{family}_count", rest)] == counts[-1]
    return samples


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: Client | None = None):
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse_exposition(response.content.decode())


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    settings.CELERY_BROKER_URL = "filesystem://"


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}"])
def test_metrics_are_refused_without_the_token(metrics_token, authorization):
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = Client().get("/metrics", **headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert "attest_up" not in response.content.decode()


def test_with_no_token_and_no_network_configured_metrics_are_never_served(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", []
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


def test_an_allowed_network_may_scrape_without_a_token(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "", ["10.20.0.0/16"]
    settings.CELERY_BROKER_URL = "filesystem://"
    assert Client(REMOTE_ADDR="10.20.3.4").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="10.21.3.4").get("/metrics").status_code == 403


def test_request_counts_and_latency_move_with_requests(metrics_token):
    before = scrape()
    client = Client()
    for _ in range(3):
        assert client.get("/livez").status_code == 200
    client.get("/no-such-page")
    after = scrape()
    assert value(after, "attest_up") == 1
    livez = {"method": "GET", "route": "livez", "status": "200"}
    assert (
        value(after, "attest_http_requests_total", **livez) - value(before, "attest_http_requests_total", **livez) == 3
    )
    missing = {"method": "GET", "route": "unmatched", "status": "404"}
    assert (
        value(after, "attest_http_requests_total", **missing) - value(before, "attest_http_requests_total", **missing)
        == 1
    )
    latency = {"method": "GET", "route": "livez"}
    assert (
        value(after, "attest_http_request_duration_seconds_count", **latency)
        - value(before, "attest_http_request_duration_seconds_count", **latency)
        == 3
    )


def test_job_outcomes_and_durations_per_kind_come_from_the_jobs_table(metrics_token, admin_user, org):
    before = scrape()
    queued = job_diagnostics_start(actor=admin_user, organisation=org)
    middle = scrape()
    assert (
        value(middle, "attest_jobs_queued", queue=queued.queue)
        == value(before, "attest_jobs_queued", queue=queued.queue) + 1
    )
    run_inline(queued)
    after = scrape()
    done = {"kind": "diagnostics", "outcome": "succeeded"}
    assert (
        value(after, "attest_job_duration_seconds_count", **done)
        == value(before, "attest_job_duration_seconds_count", **done) + 1
    )
    assert value(after, "attest_jobs", kind="diagnostics", status="succeeded") == 1
    assert value(after, "attest_jobs_queued", queue=queued.queue) == value(
        before, "attest_jobs_queued", queue=queued.queue
    )
    assert value(after, "attest_database_up") == 1


def test_queue_depth_is_read_from_the_redis_broker(metrics_token, settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    with Connection(redis_server.url) as connection:
        producer = connection.Producer(serializer="json")
        queue = Queue("default", routing_key="default")
        for priority in (None, None, 5):
            producer.publish({"n": 1}, routing_key="default", declare=[queue], priority=priority)
    try:
        samples = scrape()
        assert value(samples, "attest_broker_queue_length", queue="default") == 3
        assert value(samples, "attest_broker_queue_length", queue="gpu") == 0
        assert value(samples, "attest_broker_up") == 1
    finally:
        with Connection(redis_server.url) as connection:
            connection.default_channel.client.flushdb()


def test_the_text_of_help_and_labels_is_escaped(metrics_token):
    HTTP.observe("GET", 'odd"route\\name', 200, 0.01)
    samples = scrape()
    assert value(samples, "attest_http_requests_total", method="GET", route='odd\\"route\\\\name', status="200") >= 1


# ------------------------------------------------------------------------------------------------- request ids


def test_the_request_id_reaches_every_log_record_and_the_response(caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get("/no-such-page", HTTP_X_REQUEST_ID="trace-abc123456")
    assert response["X-Request-ID"] == "trace-abc123456"
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.request_id == "trace-abc123456"
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "trace-abc123456" and line["level"] == "WARNING" and "Not Found" in line["message"]


@pytest.mark.parametrize("incoming", ["short", "has space in it", "x" * 65, "bad\u00e9characters"])
def test_a_bad_incoming_request_id_is_replaced(caplog, incoming):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = Client().get("/no-such-page", HTTP_X_REQUEST_ID=incoming)
    assert response["X-Request-ID"] != incoming
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.request_id == response["X-Request-ID"]


def test_a_job_queued_during_a_request_carries_its_request_id(client, admin_user):
    from apps.jobs.models import Job
    from tests.conftest import PASSWORD

    client.post("/accounts/login/", {"username": admin_user.username, "password": PASSWORD})
    response = client.post("/jobs/diagnostics/", HTTP_X_REQUEST_ID="queue-request-0001")
    assert response.status_code in (200, 302)
    assert Job.objects.get(kind="diagnostics").request_id == "queue-request-0001"


# ------------------------------------------------------------------------------------------ liveness, readiness


def test_liveness_touches_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/livez")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readiness_checks_database_migrations_and_the_redis_broker(settings, redis_server):
    settings.CELERY_BROKER_URL = redis_server.url
    for path in ("/readyz", "/healthz"):
        response = Client().get(path)
        assert response.status_code == 200
        assert response.json()["checks"] == {"database": "ok", "migrations": "ok", "broker": "ok"}


def test_readiness_fails_with_503_naming_an_unreachable_broker(settings):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["broker"]


def test_readiness_fails_with_503_naming_an_unreachable_database(settings, redis_server, monkeypatch):
    settings.CELERY_BROKER_URL = redis_server.url
    closed = {**connections.settings["default"], "PORT": str(free_port()), "HOST": "127.0.0.1", "NAME": "attest"}
    closed["OPTIONS"] = {**closed.get("OPTIONS", {}), "connect_timeout": 2}
    monkeypatch.setitem(connections.settings, "unreachable", closed)
    try:
        response = Client().get("/readyz")
    finally:
        if hasattr(connections._connections, "unreachable"):
            connections["unreachable"].close()
            del connections["unreachable"]
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"] and body["checks"]["migrations"] == "skipped"
    assert body["status"] == "unavailable"


def test_the_probe_command_runs_the_readiness_checks_for_workers(settings, redis_server):
    from django.core.management import CommandError, call_command

    settings.CELERY_BROKER_URL = redis_server.url
    call_command("probe", "ready")
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(CommandError, match="not ready: broker"):
        call_command("probe", "ready")


def test_compose_health_checks_use_readiness():
    from pathlib import Path

    import yaml

    services = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text())["services"]
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    for name in ("worker", "worker-gpu", "beat"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "manage.py", "probe", "ready"], name
