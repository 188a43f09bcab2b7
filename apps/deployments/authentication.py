"""The scoring endpoint's own authentication: a bearer token of the one deployment in the URL, and nothing else.

A user's API token, a session, or another deployment's scoring token all answer 401: scoring is machine-to-machine
and a token opens exactly one deployment. Only the token's sha256 is stored. The caller is a ``ScoringClient``, not a
user, so it can do nothing else in the API; the throttle counts per deployment, whichever of its tokens calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions, throttling
from rest_framework.settings import api_settings

from apps.accounts.authentication import hash_token
from apps.deployments.models import ScoringToken

SCORING_TOKEN_PREFIX = "ask_"  # noqa: S105 - a public marker ("Attest scoring key"), not a secret


@dataclass(frozen=True)
class ScoringClient:
    """Who calls with a scoring token: the token's holder, not a person (``request.user`` on the scoring routes)."""

    token: ScoringToken
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False
    is_superuser: bool = False
    pk: None = None
    id: None = None

    def get_username(self) -> str:
        return f"scoring token {self.token.prefix}..."


def _deployment_in_url(request: Any) -> str | None:
    match = getattr(request, "resolver_match", None)
    value = (match.kwargs if match is not None else {}).get("pk")
    return str(value) if value is not None else None


class ScoringTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer ask_...`` of the deployment named in the URL."""

    def authenticate(self, request: Any) -> tuple[ScoringClient, ScoringToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() not in {"bearer", "token"}:
            return None
        if len(parts) != 2 or not parts[1].startswith(SCORING_TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed(
                "Scoring takes a scoring token of this deployment: 'Authorization: Bearer ask_...'."
            )
        token = ScoringToken.objects.select_related("deployment").filter(key_hash=hash_token(parts[1])).first()
        if token is None or token.revoked_at is not None or str(token.deployment_id) != _deployment_in_url(request):
            raise exceptions.AuthenticationFailed("Invalid or revoked scoring token for this deployment.")
        now = timezone.now()
        # Record use at most once a minute: scoring should not turn every call into a write.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ScoringToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return ScoringClient(token=token), token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="scoring"'


class HasScoringToken(permissions.BasePermission):
    """Only a caller authenticated by a scoring token gets in (a forced or session user does not)."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if isinstance(request.auth, ScoringToken):
            return True
        raise exceptions.NotAuthenticated("Scoring takes one of this deployment's scoring tokens.")


class ScoringRateThrottle(throttling.SimpleRateThrottle):
    """The "scoring" rate (``DEFAULT_THROTTLE_RATES["scoring"]``), counted per deployment."""

    scope = "scoring"

    def get_rate(self) -> str | None:
        # Read at each request (not frozen at import) so an operator's setting, or a test's, applies.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not isinstance(request.auth, ScoringToken):
            return None
        return self.cache_format % {"scope": self.scope, "ident": str(request.auth.deployment_id)}


class ScoringTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.deployments.authentication.ScoringTokenAuthentication"
    name = "scoringToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A scoring token of the deployment in the path: `Authorization: Bearer ask_...`.",
        }
