"""Safe exports: CSV cells that a spreadsheet would run as formulas are neutralised."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: Any) -> str:
    """Prefix a single quote to a cell that starts like a formula (OWASP CSV injection guidance)."""
    text = (
        ""
        if value is None
        else (
            value
            if isinstance(value, str)
            else json.dumps(value, cls=DjangoJSONEncoder)
            if isinstance(value, (dict, list))
            else str(value)
        )
    )
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_stream(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    yield buffer.getvalue()
    for row in rows:
        buffer.seek(0)
        buffer.truncate(0)
        writer.writerow([csv_safe(cell) for cell in row])
        yield buffer.getvalue()


def json_array_stream(items: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    for index, item in enumerate(items):
        yield ("," if index else "") + json.dumps(item, cls=DjangoJSONEncoder, sort_keys=True)
    yield "]"
