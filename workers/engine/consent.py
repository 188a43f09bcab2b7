"""Consent records from an organisation's consent system: streaming CSV parsing and subject pseudonyms.

Pure Python (no Django): the import job feeds it a binary stream and stores the validated records it yields.
Raw subject ids never leave ``pseudonymise``: records carry only the keyed pseudonym (HMAC-SHA256 under the
organisation's secret), so a database dump cannot be joined back to people without that secret.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import hmac
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

REQUIRED_COLUMNS = ("subject_id", "purpose", "status", "timestamp")
OPTIONAL_COLUMNS = ("notice_version", "channel", "evidence_ref")
STATUSES = ("granted", "withdrawn", "refused")
MAX_FIELD = 300
# Per-line errors kept for the downloadable report; beyond this they are only counted.
MAX_REPORTED_ERRORS = 10_000


class ConsentFileError(Exception):
    """A fatal problem with the whole file (nothing from it may be imported)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True)
class LineError:
    line: int
    column: str
    message: str


@dataclass
class ParseReport:
    """Counts and per-line errors of one pass over a consent file."""

    lines: int = 0
    valid: int = 0
    invalid: int = 0
    errors: list[LineError] = field(default_factory=list)

    def add_error(self, line: int, column: str, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(LineError(line, column, message))

    def error_csv(self) -> str:
        """The error report a steward downloads: one row per problem."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "column", "message"])
        for error in self.errors:
            writer.writerow([error.line, error.column, error.message])
        if self.invalid > len(self.errors):
            writer.writerow(["", "", f"... and more: {self.invalid} invalid lines in all"])
        return out.getvalue()


@dataclass(frozen=True)
class ConsentEvent:
    """One validated consent event, keyed by pseudonym."""

    subject_pseudonym: str
    purpose: str
    status: str
    occurred_at: datetime
    notice_version: str
    channel: str
    evidence_ref: str

    @property
    def natural_key(self) -> str:
        """Identity of the event: the same file imported twice yields the same keys, so nothing changes."""
        instant = self.occurred_at.astimezone(UTC).isoformat()
        raw = "|".join([self.subject_pseudonym, self.purpose, self.status, instant])
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def pseudonymise(subject_id: str, secret: bytes) -> str:
    """HMAC-SHA256 of the external subject id under the organisation's secret (hex)."""
    return hmac.new(secret, subject_id.strip().encode("utf-8"), hashlib.sha256).hexdigest()


EARLIEST_CONSENT_YEAR = 1900
FUTURE_TOLERANCE = timedelta(days=1)


def parse_timestamp(value: str, *, now: datetime | None = None) -> datetime:
    """ISO 8601 with an explicit zone (Z or +hh:mm): consent times without a zone are ambiguous. Returned in UTC.

    Dates outside 1900 .. tomorrow are refused with a clear message: year 1 with a +14:00 zone has no UTC
    representation at all (it overflowed before), and a consent given in the future is a data error."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("timestamp needs a time zone (e.g. 2025-03-01T10:00:00Z)")
    if parsed.year < EARLIEST_CONSENT_YEAR:
        raise ValueError(f"timestamp is before {EARLIEST_CONSENT_YEAR}: check the date")
    try:
        instant = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValueError("timestamp is out of range: check the date") from None
    if instant > (now or datetime.now(UTC)) + FUTURE_TOLERANCE:
        raise ValueError("timestamp is in the future: check the date and its time zone")
    return instant


def validate_event(
    row: dict[str, str],
    secret: bytes,
    allowed_purposes: set[str] | None,
) -> tuple[ConsentEvent | None, list[tuple[str, str]]]:
    """Check one row; returns the event or the (column, message) problems."""
    problems: list[tuple[str, str]] = []
    subject = (row.get("subject_id") or "").strip()
    purpose = (row.get("purpose") or "").strip()
    status = (row.get("status") or "").strip().lower()
    if not subject:
        problems.append(("subject_id", "is empty"))
    elif len(subject) > MAX_FIELD:
        problems.append(("subject_id", f"is longer than {MAX_FIELD} characters"))
    if not purpose:
        problems.append(("purpose", "is empty"))
    elif allowed_purposes is not None and purpose not in allowed_purposes:
        problems.append(("purpose", f"{purpose[:80]!r} is not one of the organisation's processing purposes"))
    if status not in STATUSES:
        problems.append(("status", f"must be one of {', '.join(STATUSES)}"))
    occurred_at = None
    try:
        occurred_at = parse_timestamp(row.get("timestamp") or "")
    except ValueError as exc:
        text = str(exc)
        problems.append(("timestamp", text if text.startswith("timestamp") else "is not an ISO 8601 date-time"))
    extras = {}
    for column in OPTIONAL_COLUMNS:
        value = (row.get(column) or "").strip()
        if len(value) > MAX_FIELD:
            problems.append((column, f"is longer than {MAX_FIELD} characters"))
        extras[column] = value[:MAX_FIELD]
    if problems or occurred_at is None:
        return None, problems
    return ConsentEvent(pseudonymise(subject, secret), purpose, status, occurred_at, **extras), []


def parse_consent_csv(
    stream: BinaryIO,
    *,
    secret: bytes,
    report: ParseReport,
    allowed_purposes: set[str] | None = None,
    batch_size: int = 5000,
) -> Iterator[list[ConsentEvent]]:
    """Yield batches of valid events from a UTF-8 CSV stream; per-line problems go to ``report``.

    Raises ConsentFileError for problems with the whole file (empty, no header, missing columns, not UTF-8 text);
    the caller must then discard everything, which is why the import runs in one transaction.
    """
    reader_stream = codecs.getreader("utf-8-sig")(stream, errors="strict")
    try:
        reader = csv.reader(_reject_nul(reader_stream))
        try:
            header = next(reader)
        except StopIteration:
            raise ConsentFileError("The file is empty.") from None
        columns = [name.strip().lower() for name in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise ConsentFileError(
                f"Missing required column(s): {', '.join(missing)}. "
                f"Expected: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}.",
                line=1,
            )
        batch: list[ConsentEvent] = []
        for line_number, values in enumerate(reader, start=2):
            if not values or all(not value.strip() for value in values):
                continue
            report.lines += 1
            if len(values) != len(columns):
                report.invalid += 1
                report.add_error(line_number, "", f"has {len(values)} fields, the header has {len(columns)}")
                continue
            event, problems = validate_event(dict(zip(columns, values, strict=True)), secret, allowed_purposes)
            if event is None:
                report.invalid += 1
                for column, message in problems:
                    report.add_error(line_number, column, message)
                continue
            report.valid += 1
            batch.append(event)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    except UnicodeDecodeError as exc:
        raise ConsentFileError(f"The file is not UTF-8 text (byte {exc.start} of a read block).") from None
    except csv.Error as exc:
        raise ConsentFileError(f"The file is not valid CSV: {exc}.") from None


def _reject_nul(lines: Iterator[str]) -> Iterator[str]:
    for line in lines:
        if "\x00" in line:
            raise ConsentFileError("The file contains binary data (NUL bytes); upload a CSV text file.")
        yield line


def state_as_of(events: list[ConsentEvent], at: datetime) -> dict[tuple[str, str], str]:
    """Status per (subject, purpose) as of ``at``: the latest event at or before ``at`` decides."""
    latest: dict[tuple[str, str], tuple[datetime, str]] = {}
    for event in events:
        if event.occurred_at > at:
            continue
        key = (event.subject_pseudonym, event.purpose)
        if key not in latest or event.occurred_at >= latest[key][0]:
            latest[key] = (event.occurred_at, event.status)
    return {key: status for key, (_time, status) in latest.items()}


def snapshot_hash(valid_pseudonyms: list[str], purpose: str, as_of: datetime) -> str:
    """The consent snapshot's identity: sha256 over the sorted valid pseudonyms, the purpose and the time."""
    digest = hashlib.sha256()
    digest.update(f"{purpose}\n{as_of.isoformat()}\n".encode())
    for pseudonym in sorted(valid_pseudonyms):
        digest.update(pseudonym.encode("ascii") + b"\n")
    return digest.hexdigest()
