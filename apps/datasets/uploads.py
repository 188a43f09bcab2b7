"""A Django upload handler that encrypts and hashes the file while it streams in (never whole in memory or in clear).

Django's default handlers would write the plaintext to a temporary file first; this one hands each chunk straight
to the encryptor. It is a ``BoundedUploadHandler`` (apps/core/uploads.py): the route's policy caps the file's size
while it streams, the number of files and the field name, and every file it creates is registered on the request and
discarded when the request ends unless the upload service moved it into place.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile

from apps.core.uploads import BoundedUploadHandler
from apps.datasets.storage import EncryptedIncomingFile


class EncryptedUpload(UploadedFile):
    """What the view receives: the encrypted incoming file, its plaintext sha256 and size."""

    def __init__(self, incoming: EncryptedIncomingFile, name: str, sha256: str) -> None:
        super().__init__(file=None, name=name, content_type="application/octet-stream", size=incoming.size)
        self.incoming = incoming
        self.sha256 = sha256

    def close(self) -> None:
        # No open handle to close (Django closes request files at the end); the middleware discards the file.
        return None


class _Encrypting:
    def __init__(self) -> None:
        self.incoming = EncryptedIncomingFile()

    @property
    def size(self) -> int:
        return self.incoming.size

    def write(self, data: bytes) -> None:
        self.incoming.write(data)

    def finish(self, handler: Any) -> EncryptedUpload:
        sha256 = self.incoming.close()
        return EncryptedUpload(self.incoming, handler.file_name or "upload", sha256)

    def discard(self) -> None:
        self.incoming.discard()


class EncryptingUploadHandler(BoundedUploadHandler):
    chunk_size = 1024 * 1024

    def open_file(self) -> _Encrypting:
        return _Encrypting()


def dataset_upload_limit() -> int:
    return settings.UPLOAD_MAX_BYTES
