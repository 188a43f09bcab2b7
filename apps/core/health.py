"""Liveness, readiness and the metrics endpoint, for orchestrators and Prometheus (not for people).

``/livez`` answers while the process can serve a request and touches nothing else: restarting a web process because
the database is down would not bring the database back. ``/readyz`` checks what a request needs (the database, the
broker, every migration applied) and answers 503 naming the checks that failed; ``/healthz`` is its older name.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from pathlib import Path

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from apps.accounts.throttling import client_address
from apps.core.api.errors import error_body
from apps.core.metrics import render_metrics

logger = logging.getLogger(__name__)
_migrations_seen_applied: set[str] = set()


def check_database(alias: str = DEFAULT_DB_ALIAS) -> None:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1")


def check_migrations(alias: str = DEFAULT_DB_ALIAS) -> None:
    # Loading the migration graph takes a while; once everything was applied it stays so for this process's code.
    if alias in _migrations_seen_applied:
        return
    executor = MigrationExecutor(connections[alias])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migrations not applied")
    _migrations_seen_applied.add(alias)


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith(("redis://", "rediss://")):
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    elif url.startswith("filesystem://"):
        folder = Path(settings.CELERY_BROKER_FOLDER) / "queue"
        if not folder.is_dir():
            raise RuntimeError("broker folder missing")


def check_databases() -> None:
    """Every configured database alias answers (the portal has one; a read replica would be a second)."""
    for alias in connections:
        check_database(alias)


def readiness() -> dict[str, str]:
    """Each check's outcome, "ok" or "failed"; migrations are checked only when the database answers."""
    results: dict[str, str] = {}
    for name, check in (
        ("database", check_databases),
        ("migrations", check_migrations),
        ("broker", check_broker),
    ):
        if name == "migrations" and results.get("database") != "ok":
            results[name] = "skipped"
            continue
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; the reason goes to the log only
            logger.warning("readiness check %s failed: %s", name, type(exc).__name__)
            results[name] = "failed"
    return results


@never_cache
def livez(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    failed = [name for name, outcome in checks.items() if outcome == "failed"]
    body = {"status": "unavailable" if failed else "ok", "checks": checks, "failed": failed}
    return JsonResponse(body, status=503 if failed else 200)


def metrics_allowed(request: HttpRequest) -> bool:
    """A bearer token equal to ``METRICS_TOKEN``, or a client address inside ``METRICS_ALLOWED_NETWORKS``."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return True
    address = client_address(request)
    if not address or not settings.METRICS_ALLOWED_NETWORKS:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return JsonResponse(
            error_body("permission_denied", "Metrics need the metrics token or an allowed network."), status=403
        )
    return HttpResponse(render_metrics(), content_type="text/plain; version=0.0.4; charset=utf-8")
