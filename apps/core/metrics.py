"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand: prometheus_client is not a
dependency, and the few families below need nothing from it.

HTTP counters and the latency histogram are per process (each gunicorn worker counts its own requests, and a restart
starts from zero, which Prometheus' ``rate()`` handles); scrape every worker or read them as a sample. Jobs, queue
depth and alerts are read from the database and the broker at scrape time, so every process answers the same.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import timedelta

import redis
from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse

from apps.deployments.models import Alert
from apps.jobs.models import Job

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_DURATION_BUCKETS = (1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 12 * 3600.0)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _HttpMetrics:
    """Request counts by (method, route, status) and latency by (method, route) for this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.buckets: dict[tuple[str, str], list[int]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self.lock:
            self.requests[(method, route, str(status))] += 1
            counts = self.buckets.setdefault((method, route), [0] * (len(LATENCY_BUCKETS) + 1))
            for index, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
            counts[-1] += 1
            self.sums[(method, route)] += seconds

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.buckets.clear()
            self.sums.clear()


HTTP = _HttpMetrics()


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name, never the path: ids in paths would make a series per object."""
    match = getattr(request, "resolver_match", None)
    if match is None:
        return "unmatched"
    return match.view_name or "unnamed"


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        method = request.method if request.method in _METHODS else "other"
        HTTP.observe(method or "other", route_of(request), response.status_code, time.perf_counter() - started)
        return response


# --- exposition -------------------------------------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "+Inf" if value > 0 else "-Inf"
        if math.isnan(value):
            return "NaN"
        return repr(value)
    return str(value)


class Exposition:
    """Collects families and renders them; each family has one HELP and TYPE line before its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        label_text = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
        self.lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")

    def histogram(
        self, name: str, labels: dict[str, str], bounds: Iterable[float], cumulative: list[int], total: float
    ) -> None:
        for bound, count in zip(bounds, cumulative, strict=False):
            self.sample(f"{name}_bucket", {**labels, "le": _number(float(bound))}, count)
        self.sample(f"{name}_bucket", {**labels, "le": "+Inf"}, cumulative[-1])
        self.sample(f"{name}_sum", labels, total)
        self.sample(f"{name}_count", labels, cumulative[-1])

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


def _http(out: Exposition) -> None:
    with HTTP.lock:
        requests = dict(HTTP.requests)
        buckets = {key: list(value) for key, value in HTTP.buckets.items()}
        sums = dict(HTTP.sums)
    out.family(
        "attest_http_requests_total", "counter", "HTTP responses by method, route name and status (this process)."
    )
    for (method, route, status), count in sorted(requests.items()):
        out.sample("attest_http_requests_total", {"method": method, "route": route, "status": status}, count)
    out.family("attest_http_request_duration_seconds", "histogram", "Time to answer a request (this process).")
    for (method, route), counts in sorted(buckets.items()):
        out.histogram(
            "attest_http_request_duration_seconds",
            {"method": method, "route": route},
            LATENCY_BUCKETS,
            counts,
            sums[(method, route)],
        )


def _jobs(out: Exposition) -> None:
    out.family("attest_jobs", "gauge", "Job rows by kind and status.")
    for row in Job.objects.order_by().values("kind", "status").annotate(n=Count("id")).order_by("kind", "status"):
        out.sample("attest_jobs", {"kind": row["kind"], "status": row["status"]}, row["n"])
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    aggregates: dict[str, object] = {"total": Count("id"), "seconds": Sum(duration)}
    for index, bound in enumerate(JOB_DURATION_BUCKETS):
        aggregates[f"le{index}"] = Count("id", filter=Q(duration__lte=timedelta(seconds=bound)))
    finished = (
        Job.objects.order_by()
        .filter(status__in=Job.FINISHED, started_at__isnull=False, finished_at__isnull=False)
        .annotate(duration=duration)
        .values("kind", "status")
        .annotate(**aggregates)  # type: ignore[arg-type]
        .order_by("kind", "status")
    )
    out.family("attest_job_duration_seconds", "histogram", "Run time of finished jobs by kind and outcome.")
    for row in finished:
        cumulative = [row[f"le{index}"] for index in range(len(JOB_DURATION_BUCKETS))] + [row["total"]]
        seconds = row["seconds"].total_seconds() if row["seconds"] is not None else 0.0
        out.histogram(
            "attest_job_duration_seconds",
            {"kind": row["kind"], "outcome": row["status"]},
            JOB_DURATION_BUCKETS,
            cumulative,
            seconds,
        )


# kombu's Redis transport keeps priority levels 1-9 of a queue in lists named "<queue>\x06\x16<level>" beside it.
_KOMBU_PRIORITY_SEP = "\x06\x16"


def redis_queue_lengths(broker_url: str, queues: Iterable[str]) -> dict[str, int]:
    client = redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        lengths = {}
        for queue in queues:
            names = [queue, *(f"{queue}{_KOMBU_PRIORITY_SEP}{level}" for level in range(1, 10))]
            pipe = client.pipeline()
            for name in names:
                pipe.llen(name)
            lengths[queue] = sum(pipe.execute())
        return lengths
    finally:
        client.close()


def _queues(out: Exposition) -> None:
    out.family("attest_jobs_queued", "gauge", "Jobs waiting for a worker, from the jobs table, by queue.")
    queued = dict(Job.objects.order_by().filter(status=Job.Status.QUEUED).values_list("queue").annotate(n=Count("id")))
    for queue in Job.Queue.values:
        out.sample("attest_jobs_queued", {"queue": queue}, queued.get(queue, 0))
    broker = settings.CELERY_BROKER_URL
    if broker.startswith(("redis://", "rediss://")):
        out.family("attest_broker_queue_length", "gauge", "Messages waiting in the Celery broker (Redis) by queue.")
        try:
            lengths = redis_queue_lengths(broker, Job.Queue.values)
        except Exception:  # noqa: BLE001 - an unreachable broker is reported as such, the rest still renders
            out.family("attest_broker_up", "gauge", "Whether the broker answered this scrape.")
            out.sample("attest_broker_up", {}, 0)
            return
        for queue, length in lengths.items():
            out.sample("attest_broker_queue_length", {"queue": queue}, length)
        out.family("attest_broker_up", "gauge", "Whether the broker answered this scrape.")
        out.sample("attest_broker_up", {}, 1)


def _alerts(out: Exposition) -> None:
    out.family("attest_alerts_open", "gauge", "Unresolved monitoring and governance alerts by severity and status.")
    rows = dict(
        ((severity, status), n)
        for severity, status, n in Alert.objects.order_by()
        .exclude(status=Alert.Status.RESOLVED)
        .values_list("severity", "status")
        .annotate(n=Count("id"))
    )
    for severity in Alert.Severity.values:
        for status in (Alert.Status.OPEN, Alert.Status.ACKNOWLEDGED):
            out.sample("attest_alerts_open", {"severity": severity, "status": status}, rows.get((severity, status), 0))


def render_metrics() -> str:
    out = Exposition()
    out.family("attest_up", "gauge", "1 while this process answers.")
    out.sample("attest_up", {}, 1)
    _http(out)
    database_up = 1
    try:
        _jobs(out)
        _queues(out)
        _alerts(out)
    except Exception:  # noqa: BLE001 - a scrape during a database outage still says so instead of failing
        database_up = 0
    out.family("attest_database_up", "gauge", "Whether the database answered this scrape.")
    out.sample("attest_database_up", {}, database_up)
    return out.render()
