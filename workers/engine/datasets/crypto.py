"""Envelope encryption of stored files, chunk by chunk, with AES-GCM.

Each file has its own random 256-bit data key (wrapped by the master keys elsewhere). The plaintext is cut into
chunks; each chunk is sealed with AES-GCM under a nonce made of a random per-file prefix and the chunk index, and its
associated data binds the file id, the chunk index and whether it is the last chunk. So chunks cannot be reordered,
swapped between files, dropped from the end, or altered without ``TamperedFileError``. Memory use is one chunk.

Layout: MAGIC(6) | version(1) | chunk_size(4) | file_id(16) | nonce_prefix(8) | sealed chunks (len(4) | ct+tag)...
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"ATTEST"
VERSION = 1
DEFAULT_CHUNK = 1024 * 1024
HEADER = struct.Struct(">6sBI16s8s")
LENGTH = struct.Struct(">I")
TAG_BYTES = 16


class TamperedFileError(Exception):
    """The encrypted file was changed, truncated, reordered or belongs to another file id."""


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _associated_data(header: bytes, index: int, last: bool) -> bytes:
    # The whole header (format, chunk size, file id, nonce prefix) is authenticated with every chunk.
    return header + struct.pack(">I?", index, last)


class StreamingEncryptor:
    """Write plaintext in any pieces; it is hashed (sha256 of the plaintext) and sealed chunk by chunk.

    Writes go to a temporary file beside ``dest``; ``close()`` renames it into place, ``abort()`` removes it, so a
    failure never leaves a partial file behind.
    """

    def __init__(self, dest: Path, data_key: bytes, file_id: uuid.UUID, chunk_size: int = DEFAULT_CHUNK) -> None:
        self.dest = Path(dest)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self._aead = AESGCM(data_key)
        self._file_id = file_id
        self._chunk_size = chunk_size
        self._prefix = os.urandom(8)
        handle, temp = tempfile.mkstemp(dir=self.dest.parent, prefix=".part-")
        self._temp = Path(temp)
        self._out: BinaryIO = os.fdopen(handle, "wb")
        self._header = HEADER.pack(MAGIC, VERSION, chunk_size, file_id.bytes, self._prefix)
        self._out.write(self._header)
        self._buffer = bytearray()
        self._index = 0
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)
        self._buffer += data
        # Keep one full chunk back: only at close do we know which chunk is the last.
        while len(self._buffer) > self._chunk_size:
            self._seal(bytes(self._buffer[: self._chunk_size]), last=False)
            del self._buffer[: self._chunk_size]

    def _seal(self, chunk: bytes, last: bool) -> None:
        sealed = self._aead.encrypt(
            _nonce(self._prefix, self._index), chunk, _associated_data(self._header, self._index, last)
        )
        self._out.write(LENGTH.pack(len(sealed)))
        self._out.write(sealed)
        self._index += 1

    def close(self) -> str:
        """Seal the last chunk, move the file into place; returns the plaintext sha256 (hex)."""
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()
        self._out.flush()
        os.fsync(self._out.fileno())
        self._out.close()
        os.replace(self._temp, self.dest)
        self.closed = True
        return self.sha256.hexdigest()

    def abort(self) -> None:
        if not self._out.closed:
            self._out.close()
        self._temp.unlink(missing_ok=True)

    def __enter__(self) -> StreamingEncryptor:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # type: ignore[no-untyped-def]
        if exc_type is not None:
            self.abort()
        elif not self.closed:
            self.close()


class DecryptingReader(io.RawIOBase):
    """A read-only binary stream of the plaintext, verifying every chunk as it is reached."""

    def __init__(self, path: Path, data_key: bytes, file_id: uuid.UUID) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed in close()
        header = self._file.read(HEADER.size)
        if len(header) != HEADER.size:
            raise TamperedFileError("header truncated")
        magic, version, chunk_size, stored_id, prefix = HEADER.unpack(header)
        if magic != MAGIC or version != VERSION:
            raise TamperedFileError("not an Attest encrypted file")
        if stored_id != file_id.bytes:
            raise TamperedFileError("the file belongs to another file id")
        self._aead = AESGCM(data_key)
        self._header = header
        self._prefix = prefix
        self._max_sealed = chunk_size + TAG_BYTES
        self._index = 0
        self._pending = b""
        self._finished = False

    def readable(self) -> bool:
        return True

    def _next_chunk(self) -> bytes:
        length_bytes = self._file.read(LENGTH.size)
        if len(length_bytes) != LENGTH.size:
            raise TamperedFileError("the file ends before its last chunk")
        (length,) = LENGTH.unpack(length_bytes)
        if length > self._max_sealed or length < TAG_BYTES:
            raise TamperedFileError(f"chunk {self._index} has an impossible length")
        sealed = self._file.read(length)
        if len(sealed) != length:
            raise TamperedFileError(f"chunk {self._index} is truncated")
        # Whether this is the last chunk is decided by the file, and the tag proves it.
        last = self._file.peek(1)[:1] == b"" if hasattr(self._file, "peek") else False
        try:
            plain = self._aead.decrypt(
                _nonce(self._prefix, self._index), sealed, _associated_data(self._header, self._index, last)
            )
        except InvalidTag:
            raise TamperedFileError(f"chunk {self._index} fails authentication") from None
        self._index += 1
        self._finished = last
        return plain

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        while not self._pending and not self._finished:
            self._pending = self._next_chunk()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        self._file.close()
        super().close()


def open_decrypted(path: Path, data_key: bytes, file_id: uuid.UUID) -> io.BufferedReader:
    return io.BufferedReader(DecryptingReader(Path(path), data_key, file_id), buffer_size=DEFAULT_CHUNK)


def decrypt_to(path: Path, data_key: bytes, file_id: uuid.UUID, dest: BinaryIO) -> str:
    """Copy the plaintext into ``dest``; returns its sha256."""
    digest = hashlib.sha256()
    with open_decrypted(path, data_key, file_id) as reader:
        while block := reader.read(DEFAULT_CHUNK):
            digest.update(block)
            dest.write(block)
    return digest.hexdigest()
