"""Delivering alerts to an organisation's webhook: signed, defended against server-side request forgery, retried.

The body is JSON naming the alert, its monitor, severity and status, the deployment and the alert's portal address:
nothing about a person. Each delivery carries ``X-Attest-Timestamp`` (Unix seconds) and ``X-Attest-Signature:
sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`` under the organisation's secret, so a receiver checks both origin
and freshness (reject old timestamps to stop replays).

SSRF: the address must be https and every address its host resolves to must be public (no private, loopback,
link-local -- which holds cloud metadata at 169.254.169.254 --, shared, multicast or reserved address, nor an IPv6
address carrying one of those, mapped or 6to4). The check runs
when the webhook is saved and again at each delivery, and the connection goes to the address that was checked (a DNS
answer that changes in between cannot redirect it). Redirects are never followed, and the timeout is short.
``ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP`` lets the tests deliver over http to 127.0.0.1; it is off everywhere else.

Delivery is the ``alert_webhook`` job kind: a 5xx, 408 or 429 answer, a timeout or a refused connection is transient
(``WebhookUnavailable`` is a ``ConnectionError``, so the job lifecycle queues the job again with backoff until
``max_attempts``); a redirect, another 4xx or a refused address fails the job at once with the reason.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from apps.core.errors import AttestError, ValidationFailed
from apps.core.keys import unwrap_secret
from apps.deployments.models import Alert, AlertWebhook
from apps.jobs.registry import JobKind
from apps.jobs.runner import JobContext
from workers import task_names

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
MAX_ATTEMPTS = 6
USER_AGENT = "Attest-Alert-Webhook/1"
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class WebhookUnavailable(ConnectionError):
    """The receiver did not answer, or answered that it cannot now: the job is retried later."""


def _refusal(address: IpAddress) -> str | None:
    """Why ``address`` may not receive a webhook, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one reaches that IPv4 address: judge it (6to4 counts as global otherwise).
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            address = embedded
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (where cloud metadata services answer)"
    if address.is_private:
        return "a private address"
    if address.is_multicast or address.is_reserved or address.is_unspecified or not address.is_global:
        return "not a public address"
    return None


def resolve(url: str) -> tuple[str, int, list[IpAddress], str]:
    """Check ``url`` and resolve its host: (host, port, addresses, scheme). Raises ``ValidationFailed`` with the
    reason when the address may not receive webhooks."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("https", "http") or not host:
        raise ValidationFailed("The webhook address must be an https URL.", {"url": ["https://host/path"]})
    if parts.username or parts.password:
        raise ValidationFailed("Put no credentials in the webhook address.", {"url": ["user:password@ refused"]})
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise ValidationFailed("The webhook address has an invalid port.", {"url": ["invalid port"]}) from None
    try:
        answers = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError):
        raise ValidationFailed(f"The webhook host {host} cannot be resolved.", {"url": ["unknown host"]}) from None
    addresses: list[IpAddress] = []
    for answer in answers:
        address = ipaddress.ip_address(answer[4][0].split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ValidationFailed(f"The webhook host {host} cannot be resolved.", {"url": ["unknown host"]})
    loopback_test = settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP and all(
        (a.ipv4_mapped or a).is_loopback if isinstance(a, ipaddress.IPv6Address) else a.is_loopback for a in addresses
    )
    if loopback_test:
        return host, port, addresses, scheme
    if scheme != "https":
        raise ValidationFailed("The webhook address must be an https URL.", {"url": ["https only"]})
    for address in addresses:
        reason = _refusal(address)
        if reason:
            raise ValidationFailed(
                f"The webhook host {host} resolves to {reason} ({address}); alerts are sent only to public addresses.",
                {"url": [reason]},
            )
    return host, port, addresses, scheme


def check_url(url: str) -> None:
    """Refuse an address that may not receive webhooks (``ValidationFailed``), before it is saved."""
    if len(url) > 500:
        raise ValidationFailed("The webhook address is too long (500 characters at most).", {"url": ["too long"]})
    resolve(url)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Attest-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def payload(alert: Alert) -> dict[str, Any]:
    """What a receiver learns of an alert: no value, no person, nothing a page would not show by its title."""
    from apps.deployments.alerts import alert_url  # alerts imports this module

    return {
        "alert_id": str(alert.id),
        "monitor": alert.monitor,
        "severity": alert.severity,
        "status": alert.status,
        "deployment_id": str(alert.deployment_id),
        "url": f"{settings.SITE_URL.rstrip('/')}{alert_url(alert)}",
    }


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address that was checked, whatever the host name resolves to by now."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """TLS to the checked address, with the certificate verified for the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def deliver(url: str, body: bytes, secret: bytes) -> int:
    """POST ``body`` to ``url``, signed; return the receiver's status code (2xx). Raises ``WebhookUnavailable`` for
    what may pass, ``AttestError`` for what will not (a refused address, a redirect, another 4xx)."""
    host, port, addresses, scheme = resolve(url)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Attest-Timestamp": timestamp,
        "X-Attest-Signature": sign(secret, timestamp, body),
    }
    connection_class = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(host, port, address=str(addresses[0]), timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read(65536)  # drain a little; what the receiver says is not kept
        status = response.status
    except ssl.SSLCertVerificationError as exc:
        raise AttestError("invalid", f"The webhook's TLS certificate is not valid for {host}: {exc.reason}.") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise WebhookUnavailable(f"{host} did not answer ({type(exc).__name__})") from exc
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        raise AttestError(
            "invalid",
            f"The webhook answered with a redirect ({status}); redirects are not followed. Set the final "
            "address instead.",
        )
    if status in TRANSIENT_STATUSES:
        raise WebhookUnavailable(f"{host} answered {status}")
    raise AttestError("invalid", f"The webhook refused the delivery ({status}).")


def run_alert_webhook(ctx: JobContext, spec: dict[str, Any]) -> dict[str, Any]:
    """Deliver one alert's current state to its organisation's webhook (the ``alert_webhook`` job)."""
    alert = Alert.objects.filter(id=spec.get("alert_id")).first()
    if alert is None:
        return {"delivered": False, "reason": "the alert no longer exists"}
    webhook = AlertWebhook.objects.filter(organisation_id=alert.organisation_id, active=True).first()
    if webhook is None:
        return {"delivered": False, "reason": "no webhook is set"}
    body = json.dumps(payload(alert), sort_keys=True, separators=(",", ":")).encode()
    secret = unwrap_secret(bytes(webhook.wrapped_secret).decode("ascii"))
    # What the webhook row says of its last delivery is telemetry for the settings page, like a job's progress.
    try:
        status = deliver(webhook.url, body, secret)
    except WebhookUnavailable as exc:
        if ctx.job.attempt < ctx.job.max_attempts:
            _note(webhook.pk, f"{exc}; trying again later")
            raise
        _note(webhook.pk, f"{exc}; gave up after {ctx.job.attempt} attempts")
        # The lifecycle's own words for exhausted transient errors speak of the database and the broker.
        raise AttestError(
            "webhook_unavailable", f"The webhook could not take the alert after {ctx.job.attempt} attempts: {exc}."
        ) from exc
    except AttestError as exc:
        _note(webhook.pk, exc.message)
        raise
    _note(webhook.pk, f"delivered ({status})")
    return {"delivered": True, "status": status, "body_sha256": hashlib.sha256(body).hexdigest()}


def _note(webhook_id: Any, status: str) -> None:
    AlertWebhook.objects.filter(pk=webhook_id).update(
        last_delivery_at=timezone.now(), last_delivery_status=status[:200], updated_at=timezone.now()
    )


ALERT_WEBHOOK = JobKind(
    kind="alert_webhook",
    label="Alert webhook delivery",
    task_name=task_names.ALERT_WEBHOOK,
    run=run_alert_webhook,
    max_attempts=MAX_ATTEMPTS,
)
