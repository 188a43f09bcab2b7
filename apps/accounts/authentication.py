"""Bearer-token authentication for API clients (CI pipelines, consent systems)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from apps.accounts.models import ApiToken
from apps.core.errors import AttestError

TOKEN_PREFIX = "atk_"  # noqa: S105 - a public marker, not a secret


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer atk_...``; only the token's sha256 is stored, so a database leak reveals no token."""

    keyword = "Bearer"

    def authenticate(self, request):  # type: ignore[no-untyped-def]
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() not in {"bearer", "token"}:
            return None
        if len(parts) != 2 or not parts[1].startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("Malformed Authorization header: expected 'Bearer atk_...'.")
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(parts[1])).first()
        now = timezone.now()
        if token is None or token.revoked_at is not None or (token.expires_at and token.expires_at <= now):
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("The token's user is deactivated.")
        if token.scope == ApiToken.Scope.READ and request.method not in permissions.SAFE_METHODS:
            # Refused before any view runs, so no endpoint can forget the check.
            raise AttestError(
                "token_read_only",
                "This token is read only: it cannot change anything.",
                {"scope": token.scope},
                status=403,
            )
        # Write last-use at most once a minute: a busy client should not turn every read into a write.
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request):  # type: ignore[no-untyped-def]
        return 'Bearer realm="api"'
