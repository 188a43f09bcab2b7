"""Request bodies and uploads: refused before they are read, bounded while they stream, gone when the request ends.

Every route has an upload policy. Routes that take files declare theirs with ``@accepts_upload(...)`` on the view (or
on the DRF action); every other route gets ``DEFAULT_POLICY``: small files held in memory, never on disk.
``UploadLimitMiddleware`` (early in ``MIDDLEWARE``):

1. refuses a body whose declared size (Content-Length) is over the route's limit before anything reads it (Django
   never reads past Content-Length, so the declared size bounds the whole body);
2. gives the request the route's bounded upload handler, which caps the number of file parts, the field names and
   each file's size while it streams, and registers every file it creates on the request;
3. on an upload route, checks authentication, CSRF (all of Django's check except a token that is only in the body)
   and the route's permission check before the body is read, then parses the body and answers a refusal itself;
4. when the response is ready, whatever the outcome (refusal, 404, CSRF failure, validation error, crash), discards
   every registered file the view did not take away (a dataset upload is moved into place; a consent import copies it).

``incoming_sweep`` (a beat task) deletes what a killed worker leaves in the incoming folder.
"""

from __future__ import annotations

import copy
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.core.files.uploadedfile import InMemoryUploadedFile, UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import REASON_CSRF_TOKEN_MISSING, CsrfViewMiddleware
from django.shortcuts import redirect
from django.urls import Resolver404, ResolverMatch, get_resolver
from django.utils.datastructures import MultiValueDict
from django.utils.html import escape

from apps.core.errors import AttestError

logger = logging.getLogger(__name__)

# Room for the multipart framing and the small form fields (CSRF token, a date...) beside the files themselves.
FORM_OVERHEAD_BYTES = 1024 * 1024

Limit = int | Callable[[], int]
View = TypeVar("View", bound=Callable[..., Any])


def incoming_dir() -> Path:
    """Where uploads are written while they arrive (encrypted dataset files, spooled consent CSVs and PDFs)."""
    folder = Path(settings.STORAGE_ROOT) / "incoming"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _value(limit: Limit | None, default: int) -> int:
    if limit is None:
        return default
    return int(limit() if callable(limit) else limit)


@dataclass(frozen=True)
class UploadPolicy:
    """What one route accepts in a request body.

    ``handler``: the upload handler class (bounded memory by default; ``SpoolingUploadHandler`` for a private temporary
    file in the incoming folder; the datasets app's encrypting handler). ``allowed(user, request, view_kwargs)`` is
    the route's permission check before the body is read: it raises ``Http404``, ``PermissionDenied`` or an
    ``AttestError``. ``back(request, view_kwargs)`` is the page an HTML form returns to with the refusal message.
    """

    handler: type[FileUploadHandler] | None = None
    max_file_bytes: Limit | None = None
    max_files: int = 1
    fields: tuple[str, ...] = ()
    max_request_bytes: Limit | None = None
    allowed: Callable[[Any, HttpRequest, dict[str, Any]], None] | None = None
    too_large_message: str = ""
    back: Callable[[HttpRequest, dict[str, Any]], str] | None = None
    methods: tuple[str, ...] = ("POST",)

    def file_limit(self) -> int:
        return _value(self.max_file_bytes, settings.FILE_UPLOAD_MAX_MEMORY_SIZE)

    def request_limit(self) -> int:
        if self is DEFAULT_POLICY:
            return settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return _value(self.max_request_bytes, self.file_limit() * self.max_files + FORM_OVERHEAD_BYTES)

    def handlers(self, request: HttpRequest) -> list[FileUploadHandler]:
        return [(self.handler or BoundedMemoryUploadHandler)(request, policy=self)]  # type: ignore[call-arg]

    def too_large(self) -> AttestError:
        limit = self.file_limit()
        message = self.too_large_message or f"The file is larger than the limit of {_size(limit)}."
        return AttestError("too_large", message, {"limit_bytes": limit})


def _size(n: int) -> str:
    return f"{n // 2**20} MB" if n >= 2**20 else f"{max(1, n // 1024)} KB"


# Every route that declares nothing: a body no larger than DATA_UPLOAD_MAX_MEMORY_SIZE, files (if a form sends any)
# held in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE each, nothing written to disk.
DEFAULT_POLICY = UploadPolicy(max_files=10)


def accepts_upload(**options: Any) -> Callable[[View], View]:
    """Declare a view's (or a DRF action's) upload policy; see ``UploadPolicy`` for the options."""
    policy = UploadPolicy(**options)

    def mark(view: View) -> View:
        view.upload_policy = policy  # type: ignore[attr-defined]
        return view

    return mark


# --- files a request created, discarded when it ends unless the view took them ---


def track(request: HttpRequest | None, pending: Any) -> None:
    if request is not None:
        request.__dict__.setdefault("_upload_files", []).append(pending)


def discard_unadopted(request: HttpRequest) -> None:
    """Remove every file this request's upload handlers created and the view did not move away (idempotent)."""
    for pending in request.__dict__.pop("_upload_files", []):
        try:
            pending.discard()
        except Exception:  # one failure must not keep the others
            logger.exception("Could not discard an incoming upload file")


def refusal(request: HttpRequest) -> AttestError | None:
    return request.__dict__.get("_upload_refusal")


# --- the handlers ---


class _MemoryFile:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    @property
    def size(self) -> int:
        return self.buffer.tell()

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def finish(self, handler: FileUploadHandler) -> UploadedFile:
        size = self.size
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            self.buffer,
            handler.field_name,
            handler.file_name,
            handler.content_type,
            size,
            handler.charset,
            handler.content_type_extra,
        )

    def discard(self) -> None:
        self.buffer.close()


class SpooledUpload(UploadedFile):
    """A file spooled to a private temporary file in the incoming folder; removed when its request ends."""

    def __init__(self, spool: _SpoolFile, handler: FileUploadHandler) -> None:
        super().__init__(
            spool.handle,
            handler.file_name,
            handler.content_type,
            spool.size,
            handler.charset,
            handler.content_type_extra,
        )
        self.spool = spool

    def temporary_file_path(self) -> str:
        return str(self.spool.path)

    def close(self) -> None:
        self.spool.discard()


class _SpoolFile:
    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(dir=incoming_dir(), prefix="upload-", suffix=".part")
        self.path = Path(name)
        self.handle = os.fdopen(handle, "w+b")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.handle.write(data)
        self.size += len(data)

    def finish(self, handler: FileUploadHandler) -> UploadedFile:
        self.handle.flush()
        self.handle.seek(0)
        return SpooledUpload(self, handler)

    def discard(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.path.unlink(missing_ok=True)


class BoundedUploadHandler(FileUploadHandler):
    """The one handler of a request: accepts the route's file fields only, at most ``max_files`` files, each at most
    ``max_file_bytes`` (checked while streaming); any breach stops the upload and records a refusal on the request.
    Subclasses say where a file goes (``open_file``); every file is registered for discarding at the request's end."""

    chunk_size = 64 * 1024

    def __init__(self, request: HttpRequest | None = None, policy: UploadPolicy | None = None) -> None:
        super().__init__(request)
        self.policy = policy or getattr(request, "upload_policy", None) or DEFAULT_POLICY
        self.limit = self.policy.file_limit()
        self.count = 0
        self.pending: Any = None

    def open_file(self) -> Any:
        """Where the file goes: each concrete handler (in memory, encrypted, private spool file) answers this."""
        raise NotImplementedError(f"{type(self).__name__} must say where an uploaded file goes")

    def refuse(self, error: AttestError) -> None:
        if self.request is not None:
            self.request.__dict__.setdefault("_upload_refusal", error)
        if self.pending is not None:
            self.pending.discard()
            self.pending = None
        raise StopUpload(connection_reset=False)

    def new_file(
        self,
        field_name: str,
        file_name: str,
        content_type: str,
        content_length: int | None,
        charset: str | None = None,
        content_type_extra: dict[str, Any] | None = None,
    ) -> None:
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.count += 1
        fields = self.policy.fields
        if fields and field_name not in fields:
            names = " or ".join(f"'{name}'" for name in fields)
            self.refuse(
                AttestError(
                    "invalid", f"Send the file in the form field {names}.", {field_name: ["unexpected file field"]}
                )
            )
        if self.count > self.policy.max_files:
            self.refuse(
                AttestError(
                    "invalid",
                    f"Send at most {self.policy.max_files} file(s) at a time.",
                    {"file": [f"at most {self.policy.max_files}"]},
                )
            )
        if content_length is not None and content_length > self.limit:
            self.refuse(self.policy.too_large())
        self.pending = self.open_file()
        track(self.request, self.pending)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        if self.pending is None:
            return None
        if self.pending.size + len(raw_data) > self.limit:
            self.refuse(self.policy.too_large())
        self.pending.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.pending is None:
            return None
        uploaded = self.pending.finish(self)
        self.pending = None
        return uploaded

    def upload_interrupted(self) -> None:
        if self.pending is not None:
            self.pending.discard()
            self.pending = None


class BoundedMemoryUploadHandler(BoundedUploadHandler):
    """Small files in memory (the default for every route, also as ``FILE_UPLOAD_HANDLERS``): nothing on disk."""

    def open_file(self) -> Any:
        return _MemoryFile()


class SpoolingUploadHandler(BoundedUploadHandler):
    """Files too large for memory: a private temporary file (0600) in the incoming folder, removed at the end."""

    chunk_size = 1024 * 1024

    def open_file(self) -> Any:
        return _SpoolFile()


# --- the middleware ---


def _route(request: HttpRequest) -> tuple[UploadPolicy, ResolverMatch | None]:
    try:
        match = get_resolver(getattr(request, "urlconf", None)).resolve(request.path_info)
    except Resolver404:
        return DEFAULT_POLICY, None
    target: Any = match.func
    actions = getattr(match.func, "actions", None)  # a DRF viewset: the policy sits on the action's method
    if actions:
        method = (request.method or "").lower()
        target = getattr(match.func.cls, actions.get(method, ""), None)  # type: ignore[attr-defined]
    policy = getattr(target, "upload_policy", None)
    if policy is None or request.method not in policy.methods:
        return DEFAULT_POLICY, match
    return policy, match


def _declared_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except (TypeError, ValueError):
        return 0


def _is_api(view: Any) -> bool:
    return getattr(view, "cls", None) is not None


def _wants_json(request: HttpRequest, api: bool) -> bool:
    return api or request.path_info.startswith("/api/") or "application/json" in request.headers.get("Accept", "")


class _EarlyCsrfCheck(CsrfViewMiddleware):
    """Django's CSRF check, told the body is empty: origin, referer, cookie and a header token are checked before the
    body is read. A missing token may still be in the form body: CsrfViewMiddleware checks it after the parse."""

    reason: str | None = None

    def _accept(self, request: HttpRequest) -> None:
        self.reason = None
        return None

    def _reject(self, request: HttpRequest, reason: str) -> None:  # type: ignore[override]
        self.reason = reason
        return None


def _csrf_failure(request: HttpRequest) -> str | None:
    probe = copy.copy(request)
    probe._post, probe._files = QueryDict(), MultiValueDict()  # type: ignore[attr-defined]
    check = _EarlyCsrfCheck(lambda r: HttpResponse())

    def callback() -> None:  # pragma: no cover - never called, only inspected for csrf_exempt
        return None

    check.process_view(probe, callback, (), {})
    return None if check.reason in (None, REASON_CSRF_TOKEN_MISSING) else check.reason


class UploadLimitMiddleware:
    """Bounds and gates request bodies (see the module docstring); place it before every middleware that may read
    the body (CsrfViewMiddleware does)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        policy, match = _route(request)
        request.upload_policy = policy  # type: ignore[attr-defined]
        limit = policy.request_limit()
        if _declared_length(request) > limit:
            return self._too_large_early(request, limit, _is_api(match.func) if match else False)
        request.upload_handlers = policy.handlers(request)
        try:
            return self.get_response(request)
        finally:
            discard_unadopted(request)

    def _too_large_early(self, request: HttpRequest, limit: int, api: bool) -> HttpResponse:
        message = f"The request is larger than {_size(limit)}, the limit for this address; nothing was stored."
        error = AttestError("too_large", message, {"limit_bytes": limit})
        if _wants_json(request, api):
            return JsonResponse(error.as_dict(), status=413)
        # The session and user are not loaded yet: a plain page, no template that needs them.
        return HttpResponse(
            f"<!doctype html><title>Request too large</title><h1>Request too large</h1><p>{escape(message)}</p>"
            '<p><a href="/">Back to your dashboard</a></p>',
            status=413,
            content_type="text/html; charset=utf-8",
        )

    def process_view(self, request: HttpRequest, view: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if request.method != "POST" or request.content_type != "multipart/form-data":
            return None
        policy: UploadPolicy = getattr(request, "upload_policy", DEFAULT_POLICY)
        api = _is_api(view)
        if policy is DEFAULT_POLICY and api:
            return None  # DRF parses (or refuses, 415) by itself, through the bounded memory handler
        if policy is not DEFAULT_POLICY:
            refused = self._gate(request, policy, view, kwargs, api)
            if refused is not None:
                return refused
        try:
            request.POST  # noqa: B018 - parse now, through the route's bounded handler, to answer a refusal here
        except RequestDataTooBig:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            error = AttestError(
                "too_large", f"The form's fields hold more than {_size(limit)}.", {"limit_bytes": limit}
            )
            return self._refuse(request, error, policy, kwargs, api)
        except (MultiPartParserError, TooManyFilesSent) as exc:
            return self._refuse(
                request, AttestError("invalid", f"The form could not be read: {exc}"), policy, kwargs, api
            )
        error = refusal(request)
        if error is not None:
            return self._refuse(request, error, policy, kwargs, api)
        return None

    def _gate(
        self, request: HttpRequest, policy: UploadPolicy, view: Any, kwargs: dict[str, Any], api: bool
    ) -> HttpResponse | None:
        """Authentication, CSRF and permission, before one byte of the body is read."""
        user, by_token = self._user(request, view, api)
        if isinstance(user, HttpResponse):
            return user
        if user is None or not user.is_authenticated:
            if api:
                response = JsonResponse(
                    AttestError("not_authenticated", "Authentication credentials were not provided.").as_dict(),
                    status=401,
                )
                response["WWW-Authenticate"] = 'Bearer realm="api"'
                return response
            return redirect_to_login(request.get_full_path())
        if not by_token and (api or not getattr(view, "csrf_exempt", False)):
            reason = _csrf_failure(request)
            if reason is not None:
                if api:
                    return JsonResponse(
                        AttestError("permission_denied", f"CSRF Failed: {reason}").as_dict(), status=403
                    )
                from django.middleware.csrf import _get_failure_view

                return _get_failure_view()(request, reason=reason)
        if policy.allowed is not None:
            try:
                policy.allowed(user, request, kwargs)
            except Http404:
                return self._refuse(request, AttestError("not_found", "Not found."), policy, kwargs, api)
            except DjangoPermissionDenied:
                return self._refuse(
                    request,
                    AttestError("permission_denied", "You do not have permission to do this."),
                    policy,
                    kwargs,
                    api,
                )
            except AttestError as exc:
                return self._refuse(request, exc, policy, kwargs, api)
        return None

    @staticmethod
    def _user(request: HttpRequest, view: Any, api: bool) -> tuple[Any, bool]:
        """The user as the view will see it: for the API, a token first (DRF's order), then the session."""
        if api:
            from rest_framework.authentication import SessionAuthentication

            forced = getattr(request, "_force_auth_user", None)  # DRF's test client (force_authenticate)
            if forced is not None:
                return forced, True
            from rest_framework.exceptions import AuthenticationFailed

            for authenticator in view.cls().get_authenticators():
                if isinstance(authenticator, SessionAuthentication):
                    continue
                try:
                    result = authenticator.authenticate(request)
                except AuthenticationFailed as exc:
                    response = JsonResponse(AttestError("not_authenticated", str(exc.detail)).as_dict(), status=401)
                    response["WWW-Authenticate"] = 'Bearer realm="api"'
                    return response, False
                if result is not None:
                    return result[0], True
        return getattr(request, "user", None), False

    @staticmethod
    def _refuse(
        request: HttpRequest, error: AttestError, policy: UploadPolicy, kwargs: dict[str, Any], api: bool
    ) -> HttpResponse:
        if _wants_json(request, api):
            return JsonResponse(error.as_dict(), status=error.status)
        if error.status == 404:
            raise Http404
        if error.status == 403:
            raise DjangoPermissionDenied
        messages.error(request, error.message)
        return redirect(policy.back(request, kwargs) if policy.back else request.get_full_path())


# --- the sweeper ---


def longest_upload_seconds() -> int:
    """How long an upload request can last, body and checks included (``settings.UPLOAD_MAX_SECONDS``)."""
    return int(settings.UPLOAD_MAX_SECONDS)


def incoming_sweep(*, now: float | None = None) -> int:
    """Delete what a killed process left in the incoming folder; returns how many files.

    Files only web requests write (spooled uploads ``upload-*.part``, half-written consent imports
    ``consent-imports/*.part``) go once older than the longest upload. Encrypted files (``*.enc``, ``.part-*``) are
    also written by jobs (a prepared or anonymised version is encrypted there before it moves into place), so they
    go once older than both the longest upload and the longest job (``JOB_HARD_TIME_LIMIT_SECONDS``).
    """
    now = time.time() if now is None else now
    web_cutoff = now - longest_upload_seconds()
    any_cutoff = now - max(longest_upload_seconds(), int(settings.JOB_HARD_TIME_LIMIT_SECONDS))
    root = Path(settings.STORAGE_ROOT)
    removed = 0
    for folder, pattern in ((root / "incoming", "*"), (root / "consent-imports", "*.part")):
        if not folder.is_dir():
            continue
        for path in folder.glob(pattern):
            web_only = folder.name == "consent-imports" or path.name.startswith("upload-")
            try:
                if path.is_file() and path.stat().st_mtime < (web_cutoff if web_only else any_cutoff):
                    path.unlink()
                    removed += 1
            except FileNotFoundError:  # its request or job finished meanwhile
                continue
    if removed:
        logger.warning("Removed %d abandoned upload file(s) from the incoming folder", removed)
    return removed
