"""Request bodies of the monitoring API: CSV as the body itself, JSON rows, or a multipart file.

A production batch's CSV body is encrypted while it streams in (as dataset uploads are), bounded by
``BATCH_MAX_BYTES``; its file is registered on the request, so it is discarded at the end unless the service moved it
into place. JSON is parsed in memory and so is bounded by ``DATA_UPLOAD_MAX_MEMORY_SIZE`` whatever the route allows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework.parsers import BaseParser, JSONParser

from apps.core.errors import AttestError
from apps.core.uploads import track
from apps.datasets.storage import EncryptedIncomingFile

CHUNK_BYTES = 1024 * 1024


def _declared_length(parser_context: dict[str, Any] | None) -> int:
    request = (parser_context or {}).get("request")
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) if request is not None else 0
    except (TypeError, ValueError):
        return 0


class BoundedJSONParser(JSONParser):
    """JSON, refused above ``DATA_UPLOAD_MAX_MEMORY_SIZE`` before it is read (it is parsed in memory)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if _declared_length(parser_context) > limit:
            raise AttestError(
                "too_large",
                f"JSON bodies are at most {limit // 2**20} MB; send larger batches as CSV.",
                {"limit_bytes": limit},
            )
        return super().parse(stream, media_type, parser_context)


class CSVTextParser(BaseParser):
    """A CSV body as text (``{"csv": ...}``); the route's body limit bounds it."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        raw = stream.read() if stream is not None else b""
        try:
            return {"csv": raw.decode("utf-8-sig")}
        except UnicodeDecodeError:
            raise AttestError("invalid", "The CSV must be UTF-8 text.") from None


def encrypted_batch(request: Any, chunks: Iterable[bytes]) -> tuple[EncryptedIncomingFile, str]:
    """A production batch encrypted as its chunks arrive, bounded by ``BATCH_MAX_BYTES`` and registered on the
    request; with the sha256 of its plaintext."""
    incoming = EncryptedIncomingFile(max_bytes=settings.BATCH_MAX_BYTES)
    track(getattr(request, "_request", request), incoming)
    try:
        for chunk in chunks:
            incoming.write(chunk)
        sha256 = incoming.close()
    except BaseException:
        incoming.discard()
        raise
    return incoming, sha256


class EncryptingCSVParser(BaseParser):
    """A CSV body encrypted chunk by chunk as it is read (``{"incoming": ..., "sha256": ...}``)."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict[str, Any] | None = None) -> Any:
        chunks = iter(lambda: stream.read(CHUNK_BYTES), b"") if stream is not None else ()
        incoming, sha256 = encrypted_batch((parser_context or {}).get("request"), chunks)
        return {"incoming": incoming, "sha256": sha256}
