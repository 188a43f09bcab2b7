"""The organisation's alert webhook: deliveries signed with HMAC-SHA256 that a receiver can check, retried on 5xx
through the job lifecycle, and refused for addresses that would let the portal reach inside its own network (SSRF),
at save and again at delivery, with no redirect followed."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.audit.models import AuditEvent
from apps.core.errors import NotFound, PermissionDenied, ValidationFailed
from apps.deployments.alerts import alert_webhook_remove, alert_webhook_set, alerts_sync
from apps.deployments.models import Alert, AlertWebhook
from apps.jobs.models import Job
from apps.jobs.runner import RetryLater, job_execute
from tests.conftest import run_inline
from tests.deployments.loop import result, window

pytestmark = pytest.mark.django_db


class Receiver:
    """A real HTTP server on 127.0.0.1 in a thread: answers with the statuses it is given, records what it got."""

    def __init__(self, statuses=(200,), location: str = "") -> None:
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/attest?team=risk"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers(settings):
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True
    made = []

    def make(*statuses, location=""):
        made.append(Receiver(statuses or (200,), location))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


def verify(request: dict, secret: str, *, max_age: int = 300) -> dict:
    """What a receiver does: check the timestamp is fresh and the signature is ours, then read the body."""
    timestamp = request["headers"]["X-Attest-Timestamp"]
    assert abs(time.time() - int(timestamp)) < max_age
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request["headers"]["X-Attest-Signature"], f"sha256={expected}")
    return json.loads(request["body"])


def open_alert(deployment):
    alerts_sync(deployment=deployment, window=window(deployment, 1), results=[result("data_drift:psi:age", "fail")])
    alert = Alert.objects.get()
    return alert, Job.objects.get(kind="alert_webhook", target_id=str(alert.id))


def test_a_delivery_is_signed_and_the_receiver_verifies_it(deployed, admin_user, owner, receivers):
    receiver = receivers(200)
    webhook, secret = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    assert secret.encode() not in bytes(webhook.wrapped_secret)  # wrapped by the master key, never stored plain
    alert, job = open_alert(deployed)

    run_inline(job)
    (request,) = receiver.requests
    assert request["path"] == "/hooks/attest?team=risk"
    body = verify(request, secret)
    assert body == {
        "alert_id": str(alert.id),
        "monitor": "data_drift:psi:age",
        "severity": "critical",
        "status": "open",
        "deployment_id": str(deployed.id),
        "url": body["url"],
    }
    assert body["url"].endswith(f"/deployments/alerts/{alert.id}/")
    raw = request["body"].decode()
    assert owner.username not in raw and owner.email not in raw and "0.41" not in raw  # no person, no value
    with pytest.raises(AssertionError):  # a forged signature fails the receiver's check
        verify({**request, "body": request["body"].replace(b"critical", b"warning")}, secret)
    webhook.refresh_from_db()
    assert webhook.last_delivery_status == "delivered (200)"


def test_a_500_is_retried_with_the_job_lifecycle_then_delivered(deployed, admin_user, receivers):
    receiver = receivers(500, 200)
    _, secret = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    _, job = open_alert(deployed)

    with pytest.raises(RetryLater):
        job_execute(job.id, worker="test", renew_lease=False)
    job.refresh_from_db()
    assert job.status == "queued" and job.attempt == 1
    assert "trying again later" in AlertWebhook.objects.get().last_delivery_status

    ended = job_execute(job.id, worker="test", renew_lease=False)
    assert ended.status == "succeeded" and ended.attempt == 2
    assert len(receiver.requests) == 2
    for request in receiver.requests:
        verify(request, secret)


def test_it_gives_up_after_its_attempts_saying_so(deployed, admin_user, receivers):
    receiver = receivers(503)
    alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    _, job = open_alert(deployed)
    Job.objects.filter(pk=job.pk).update(max_attempts=2)
    with pytest.raises(RetryLater):
        job_execute(job.id, worker="test", renew_lease=False)
    ended = job_execute(job.id, worker="test", renew_lease=False)
    assert ended.status == "failed" and "could not take the alert after 2 attempts" in ended.error["message"]
    assert len(receiver.requests) == 2


def test_a_redirect_is_not_followed(deployed, admin_user, receivers):
    elsewhere = receivers(200)
    redirecting = receivers(302, location=elsewhere.url)
    alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=redirecting.url)
    _, job = open_alert(deployed)
    ended = run_inline(job, expect="failed")
    assert "redirects are not followed" in ended.error["message"]
    assert len(redirecting.requests) == 1 and elsewhere.requests == []


def test_resolving_an_alert_is_delivered_too(deployed, admin_user, owner, receivers):
    from apps.deployments.alerts import alert_resolve

    receiver = receivers(200)
    _, secret = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    alert, job = open_alert(deployed)
    run_inline(job)
    alert_resolve(actor=owner, alert=alert, resolution="Fixed upstream.")
    run_inline(Job.objects.filter(kind="alert_webhook").latest("created_at"))
    assert [verify(r, secret)["status"] for r in receiver.requests] == ["open", "resolved"]


# ---------------------------------------------------------------------------------------------------------- SSRF


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.9/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/hook", "loopback"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://100.64.0.1/hook", "not a public address"),
        # IPv6 addresses that carry an IPv4 one inside the network: mapped, 6to4 and the NAT64 prefix.
        ("https://[::ffff:169.254.169.254]/hook", "link-local"),
        ("https://[2002:a9fe:a9fe::1]/hook", "link-local"),
        ("https://[2002:0a00:0001::1]/hook", "private"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "not a public address"),
        ("http://8.8.8.8/hook", "https"),
        ("ftp://example.org/hook", "https"),
        ("https://user:pw@8.8.8.8/hook", "credentials"),
    ],
)
def test_addresses_inside_the_network_are_refused_at_save(deployed, admin_user, url, reason):
    with pytest.raises(ValidationFailed) as refused:
        alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=url)
    assert reason in refused.value.message
    assert not AlertWebhook.objects.exists()


def test_loopback_http_is_refused_without_the_tests_setting(deployed, admin_user, settings):
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = False
    with pytest.raises(ValidationFailed):
        alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url="http://127.0.0.1:8080/hook")
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = True  # the setting opens loopback only, never a private network
    with pytest.raises(ValidationFailed):
        alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url="http://10.0.0.8/hook")


def test_a_name_that_resolves_inside_the_network_is_refused(deployed, admin_user, monkeypatch):
    real = socket.getaddrinfo

    def resolver(host, *args, **kwargs):
        if host == "hooks.example.org":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.20.30.40", 443))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    with pytest.raises(ValidationFailed) as refused:
        alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url="https://hooks.example.org/a")
    assert "10.20.30.40" in refused.value.message


def test_the_connection_goes_to_the_address_that_was_checked(deployed, admin_user, receivers, monkeypatch):
    """A name whose answer changes once it was checked (DNS rebinding) cannot move the delivery elsewhere."""
    receiver = receivers(200)
    port = receiver.server.server_address[1]
    real = socket.getaddrinfo
    lookups = []

    def resolver(host, *args, **kwargs):
        if host != "hooks.test":
            return real(host, *args, **kwargs)
        lookups.append(host)
        # The check at save and the check at delivery see the receiver; a later lookup would see another machine.
        address = "127.0.0.1" if len(lookups) <= 2 else "10.255.255.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=f"http://hooks.test:{port}/hook")
    _, job = open_alert(deployed)
    run_inline(job)
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.test:{port}"
    assert len(lookups) == 2  # the connection used the checked address, it did not look the name up again


def test_the_address_is_checked_again_at_delivery(deployed, admin_user, receivers, settings):
    receiver = receivers(200)
    alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    _, job = open_alert(deployed)
    settings.ALERT_WEBHOOK_ALLOW_LOOPBACK_HTTP = False  # what was allowed at save is no longer
    ended = run_inline(job, expect="failed")
    assert "https" in ended.error["message"]
    assert receiver.requests == []


# ------------------------------------------------------------------------------------------------ who sets it


def test_only_admins_set_or_remove_it_and_events_keep_no_secret_or_path(
    deployed, admin_user, owner, outsider, receivers
):
    receiver = receivers(200)
    with pytest.raises(PermissionDenied):
        alert_webhook_set(actor=owner, organisation=deployed.organisation, url=receiver.url)
    with pytest.raises(NotFound):
        alert_webhook_set(actor=outsider, organisation=deployed.organisation, url=receiver.url)
    _, secret = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    _, second = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    assert second != secret  # setting it again rotates the secret
    alert_webhook_remove(actor=admin_user, organisation=deployed.organisation)
    assert not AlertWebhook.objects.exists()
    events = AuditEvent.objects.filter(action__startswith="alert_webhook.")
    assert [e.action for e in events.order_by("id")] == ["alert_webhook.set"] * 2 + ["alert_webhook.remove"]
    text = json.dumps([e.after for e in events])
    assert secret not in text and second not in text and "/hooks/attest" not in text and "team=risk" not in text


def test_no_webhook_no_job(deployed):
    alerts_sync(deployment=deployed, window=window(deployed, 1), results=[result("data_drift:psi:age", "fail")])
    assert not Job.objects.filter(kind="alert_webhook").exists()


def test_the_secret_survives_a_master_key_rotation(deployed, admin_user, receivers, settings):
    from cryptography.fernet import Fernet

    from apps.datasets.services import master_key_rotate

    receiver = receivers(200)
    _, secret = alert_webhook_set(actor=admin_user, organisation=deployed.organisation, url=receiver.url)
    settings.MASTER_KEYS = [Fernet.generate_key().decode(), *settings.MASTER_KEYS]
    master_key_rotate()
    settings.MASTER_KEYS = settings.MASTER_KEYS[:1]  # the old key is gone
    _, job = open_alert(deployed)
    run_inline(job)
    verify(receiver.requests[0], secret)
