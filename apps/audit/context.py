"""The request id of the work in progress (HTTP request or job), carried in a context variable."""

from __future__ import annotations

import contextvars
import uuid

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("attest_request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex
