"""A Django upload handler that encrypts and hashes the file while it streams in (never whole in memory or in clear).

Django's default handlers would write the plaintext to a temporary file first; this one hands each chunk straight
to the encryptor and stops the upload as soon as it passes the size limit.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, StopUpload

from apps.datasets.storage import EncryptedIncomingFile


class EncryptedUpload(UploadedFile):
    """What the view receives: the encrypted incoming file, its plaintext sha256 and size."""

    def __init__(self, incoming: EncryptedIncomingFile, name: str, sha256: str) -> None:
        super().__init__(file=None, name=name, content_type="application/octet-stream", size=incoming.size)
        self.incoming = incoming
        self.sha256 = sha256


class EncryptingUploadHandler(FileUploadHandler):
    chunk_size = 1024 * 1024

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.incoming: EncryptedIncomingFile | None = None
        self.too_large = False

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.incoming = EncryptedIncomingFile()

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        assert self.incoming is not None
        if self.incoming.size + len(raw_data) > settings.UPLOAD_MAX_BYTES:
            self.too_large = True
            self.incoming.discard()
            self.incoming = None
            raise StopUpload(connection_reset=False)
        self.incoming.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> EncryptedUpload | None:
        if self.incoming is None:
            return None
        sha256 = self.incoming.close()
        return EncryptedUpload(self.incoming, self.file_name or "upload", sha256)

    def upload_interrupted(self) -> None:
        if self.incoming is not None:
            self.incoming.discard()
