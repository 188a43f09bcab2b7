import hashlib
import io
import os
import uuid

import pytest

from workers.engine.datasets.crypto import (
    HEADER,
    LENGTH,
    StreamingEncryptor,
    TamperedFileError,
    decrypt_to,
    new_data_key,
)

CHUNK = 1000


def encrypt(tmp_path, data, key=None, file_id=None, name="f"):
    key = key or new_data_key()
    file_id = file_id or uuid.uuid4()
    with StreamingEncryptor(tmp_path / name, key, file_id, chunk_size=CHUNK) as enc:
        for start in range(0, len(data), 777):
            enc.write(data[start : start + 777])
    return tmp_path / name, key, file_id, enc


def decrypt(path, key, file_id):
    out = io.BytesIO()
    decrypt_to(path, key, file_id, out)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK * 3, CHUNK * 3 + 17])
def test_round_trip_and_plaintext_hash_match_hashlib(tmp_path, size):
    data = os.urandom(size)
    path, key, file_id, enc = encrypt(tmp_path, data)
    assert enc.sha256.hexdigest() == hashlib.sha256(data).hexdigest() and enc.size == size
    assert decrypt(path, key, file_id) == data
    # A plaintext prefix never shows in the file. Only meaningful for prefixes long enough not to occur by chance
    # (a 1-byte plaintext appears in ~18% of random headers).
    if size >= 16:
        assert data[:64] not in path.read_bytes()


def chunk_offsets(raw):
    offsets, position = [], HEADER.size
    while position < len(raw):
        (length,) = LENGTH.unpack(raw[position : position + 4])
        offsets.append((position, length))
        position += 4 + length
    return offsets


def test_any_flipped_byte_is_detected(tmp_path):
    path, key, file_id, _ = encrypt(tmp_path, os.urandom(CHUNK * 3 + 5))
    raw = path.read_bytes()
    for position in [7, HEADER.size - 1, HEADER.size + 10, len(raw) // 2, len(raw) - 1]:
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        path.write_bytes(bytes(tampered))
        with pytest.raises(TamperedFileError):
            decrypt(path, key, file_id)


def test_swapped_chunks_a_truncated_end_and_another_files_id_are_detected(tmp_path):
    path, key, file_id, _ = encrypt(tmp_path, os.urandom(CHUNK * 3))
    raw = path.read_bytes()
    (a_pos, a_len), (b_pos, b_len) = chunk_offsets(raw)[:2]
    a, b = raw[a_pos : a_pos + 4 + a_len], raw[b_pos : b_pos + 4 + b_len]
    path.write_bytes(raw[:a_pos] + b + a + raw[b_pos + 4 + b_len :])
    with pytest.raises(TamperedFileError):
        decrypt(path, key, file_id)
    last_pos, _ = chunk_offsets(raw)[-1]
    path.write_bytes(raw[:last_pos])  # drop the final chunk: the one before it was not sealed as last
    with pytest.raises(TamperedFileError):
        decrypt(path, key, file_id)
    path.write_bytes(raw)
    with pytest.raises(TamperedFileError):
        decrypt(path, key, uuid.uuid4())
    with pytest.raises(TamperedFileError):
        decrypt(path, new_data_key(), file_id)


def test_a_failure_mid_stream_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with StreamingEncryptor(tmp_path / "f", new_data_key(), uuid.uuid4(), chunk_size=CHUNK) as enc:
            enc.write(os.urandom(CHUNK * 2))
            raise RuntimeError("client went away")
    assert list(tmp_path.iterdir()) == []
