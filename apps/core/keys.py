"""Wrapping small secrets (data keys, pseudonym keys) with the master keys from settings (MultiFernet).

The first master key wraps; every configured key unwraps, so rotation is: put the new key first, re-wrap, then drop
the old one (``manage.py rotate_master_key``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode() if isinstance(key, str) else key) for key in keys])


def master_fernet() -> MultiFernet:
    return _fernet(tuple(settings.MASTER_KEYS))


def wrap_secret(secret: bytes) -> str:
    return master_fernet().encrypt(secret).decode("ascii")


def unwrap_secret(wrapped: str) -> bytes:
    try:
        return master_fernet().decrypt(wrapped.encode("ascii"))
    except InvalidToken as exc:
        raise RuntimeError("A wrapped key cannot be opened with the configured master keys.") from exc


def rewrap_secret(wrapped: str) -> str:
    """Re-encrypt under the first (newest) master key."""
    return master_fernet().rotate(wrapped.encode("ascii")).decode("ascii")


def wrapped_secret_fields() -> list[tuple[Any, str]]:
    """(model, field name) of every stored secret wrapped by the master key: concrete fields named ``wrapped_*``."""
    from django.apps import apps

    return [
        (model, field.name)
        for model in apps.get_models()
        if not model._meta.proxy
        for field in model._meta.concrete_fields
        if field.name.startswith("wrapped_")
    ]
