"""Fixtures for the upload hardening tests: private storage and temporary folders, a dataset, and bodies that are
produced on demand so a test can send hundreds of megabytes and see how much of them the server read."""

from __future__ import annotations

import tempfile

import pytest

from apps.datasets.services import dataset_create
from apps.usecases.services import usecase_create
from tests.usecases.factories import usecase_data

BOUNDARY = "attestboundary7MA4YWxkTrZu0gW"


@pytest.fixture(autouse=True)
def private_folders(settings, tmp_path, monkeypatch):
    """STORAGE_ROOT and the process's temporary folder are the test's own, so "nothing written" can be checked."""
    settings.STORAGE_ROOT = tmp_path / "storage"
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    settings.FILE_UPLOAD_TEMP_DIR = None
    return temp


@pytest.fixture
def usecase(org, owner):
    return usecase_create(actor=owner, organisation=org, data=usecase_data(purpose="Service improvement"))


@pytest.fixture
def dataset(usecase, steward):
    return dataset_create(actor=steward, usecase=usecase, name="Applicants 2026")


class StreamedBody:
    """A multipart/form-data body of ``size`` bytes (one file part, or raw filler) made as it is read.

    ``read_bytes`` says how much the server consumed; ``on_offset`` (offset, callback) runs the callback once when
    reading passes that offset (to look at the disk while the upload is still arriving).
    """

    def __init__(
        self,
        size: int,
        *,
        field: str = "file",
        filename: str = "big.csv",
        fields: dict | None = None,
        on_offset: tuple[int, object] | None = None,
    ) -> None:
        head = "".join(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in (fields or {}).items()
        )
        head += (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        )
        self.head = head.encode()
        self.tail = f"\r\n--{BOUNDARY}--\r\n".encode()
        self.size = size
        self.read_bytes = 0
        self.on_offset = on_offset

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={BOUNDARY}"

    def _byte_range(self, start: int, end: int) -> bytes:
        out = bytearray()
        filler_end = self.size - len(self.tail)
        position = start
        while position < end:
            if position < len(self.head):
                piece = self.head[position : min(end, len(self.head))]
            elif position < filler_end:
                line = b"1234567,abcdefg\n"
                offset = (position - len(self.head)) % len(line)
                count = min(end, filler_end) - position
                piece = (line * (count // len(line) + 2))[offset : offset + count]
            else:
                piece = self.tail[position - filler_end : end - filler_end]
            out += piece
            position += len(piece)
        return bytes(out)

    def read(self, n: int = -1) -> bytes:
        remaining = self.size - self.read_bytes
        n = remaining if n is None or n < 0 else min(n, remaining)
        data = self._byte_range(self.read_bytes, self.read_bytes + n)
        before = self.read_bytes
        self.read_bytes += len(data)
        if self.on_offset and before <= self.on_offset[0] < self.read_bytes:
            self.on_offset[1]()
        return data

    def readline(self, limit: int = -1) -> bytes:
        return self.read(limit if limit and limit > 0 else 65536)

    def environ(self) -> dict:
        return {"CONTENT_TYPE": self.content_type, "CONTENT_LENGTH": str(self.size), "wsgi.input": self}


def post_streamed(client, path: str, body: StreamedBody, **extra):
    return client.generic("POST", path, b"", **{**body.environ(), **extra})
