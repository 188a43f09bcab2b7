"""Where version files live and how they are opened: encrypted at rest, keys wrapped by the master key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from apps.core.errors import AttestError
from apps.core.keys import unwrap_secret, wrap_secret
from apps.core.uploads import incoming_dir
from apps.datasets.models import DatasetVersion
from workers.engine.datasets.crypto import StreamingEncryptor, TamperedFileError, new_data_key, open_decrypted


def storage_root() -> Path:
    return Path(settings.STORAGE_ROOT)


class EncryptedIncomingFile:
    """A file being written, encrypted from its first byte, under a fresh data key and file id."""

    def __init__(self, max_bytes: int | None = None) -> None:
        self.file_id = uuid.uuid4()
        self.data_key = new_data_key()
        self.path = incoming_dir() / f"{self.file_id}.enc"
        self.max_bytes = max_bytes
        self.encryptor = StreamingEncryptor(self.path, self.data_key, self.file_id)

    def write(self, data: bytes) -> None:
        if self.max_bytes is not None and self.encryptor.size + len(data) > self.max_bytes:
            self.encryptor.abort()
            raise AttestError(
                "too_large",
                f"The file is larger than the limit of {self.max_bytes // 2**20} MB.",
                {"limit_bytes": self.max_bytes},
            )
        self.encryptor.write(data)

    def close(self) -> str:
        return self.encryptor.close()

    def discard(self) -> None:
        self.encryptor.abort()
        self.path.unlink(missing_ok=True)

    @property
    def size(self) -> int:
        return self.encryptor.size

    def wrapped_key(self) -> str:
        return wrap_secret(self.data_key)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        with open_decrypted(self.path, self.data_key, self.file_id) as reader:
            yield reader


def version_relative_path(version: DatasetVersion) -> str:
    dataset = version.dataset
    return f"datasets/{dataset.organisation_id}/{dataset.id}/{version.id}.enc"


@contextmanager
def open_version(version: DatasetVersion) -> Iterator[BinaryIO]:
    """The plaintext of a version as a stream; a changed byte on disk raises AttestError('tampered')."""
    if not version.wrapped_key:
        raise AttestError("erased", f"{version} was erased when its retention period ended.")
    try:
        with open_decrypted(
            storage_root() / version.storage_path, unwrap_secret(version.wrapped_key), version.id
        ) as reader:
            yield reader
    except TamperedFileError as exc:
        raise AttestError("tampered", f"The stored file of {version} fails its integrity check: {exc}.") from exc
