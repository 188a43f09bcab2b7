import hashlib
import hmac
import io
from datetime import UTC, datetime

import pytest

from workers.engine.consent import (
    ConsentFileError,
    ParseReport,
    parse_consent_csv,
    pseudonymise,
    snapshot_hash,
    state_as_of,
)

SECRET = b"k" * 32
HEADER = "subject_id,purpose,status,timestamp,notice_version,channel,evidence_ref\n"


def parse(text, **kwargs):
    report = ParseReport()
    events = [
        event
        for batch in parse_consent_csv(io.BytesIO(text.encode()), secret=SECRET, report=report, batch_size=2, **kwargs)
        for event in batch
    ]
    return events, report


def test_pseudonyms_are_hmac_sha256_of_the_external_id():
    expected = hmac.new(SECRET, b"C-1001", hashlib.sha256).hexdigest()
    assert pseudonymise("C-1001", SECRET) == expected
    assert pseudonymise("C-1001", b"other") != expected


def test_valid_rows_become_events_without_the_raw_id():
    events, report = parse(
        HEADER + "C-1,Research,granted,2025-01-02T10:00:00Z,v3,web,form-77\n"
        "C-2,Research,WITHDRAWN,2025-01-03T10:00:00+01:00,v3,email,\n"
        "C-3,Research,refused,2025-01-04T00:00:00Z,,,\n"
    )
    assert report.valid == 3 and report.invalid == 0
    assert [event.status for event in events] == ["granted", "withdrawn", "refused"]
    assert all("C-" not in event.subject_pseudonym for event in events)
    assert events[1].occurred_at == datetime(2025, 1, 3, 9, 0, tzinfo=UTC)


def test_line_errors_name_the_line_and_column_and_skip_only_that_line():
    events, report = parse(
        HEADER + "C-1,Research,granted,2025-01-02T10:00:00Z,,,\n"
        ",Research,maybe,yesterday,,,\n"
        "C-3,Research,granted,2025-01-02T10:00:00,,,\n"
        "C-4,Research\n"
    )
    assert len(events) == 1
    assert report.invalid == 3
    problems = {(error.line, error.column) for error in report.errors}
    assert {(3, "subject_id"), (3, "status"), (3, "timestamp"), (4, "timestamp"), (5, "")} == problems
    assert "line,column,message" in report.error_csv()


def test_dates_without_a_utc_instant_or_in_the_future_are_line_errors_not_crashes():
    # Year 1 at +14:00 lies before the earliest UTC datetime: converting it overflowed and failed the whole import.
    events, report = parse(
        HEADER + "C-1,Research,granted,0001-01-01T00:00:00+14:00,,,\n"
        "C-2,Research,granted,1850-06-01T00:00:00Z,,,\n"
        "C-3,Research,granted,2999-01-01T00:00:00Z,,,\n"
        "C-4,Research,granted,2025-01-02T10:00:00Z,,,\n"
    )
    assert [e.subject_pseudonym for e in events] == [pseudonymise("C-4", SECRET)]
    messages = {error.line: error.message for error in report.errors}
    assert set(messages) == {2, 3, 4}
    assert "check the date" in messages[2] and "1900" in messages[3] and "future" in messages[4]


def test_unknown_purposes_are_refused_when_the_organisation_lists_its_purposes():
    events, report = parse(HEADER + "C-1,Marketing,granted,2025-01-02T10:00:00Z,,,\n", allowed_purposes={"Research"})
    assert events == [] and report.errors[0].column == "purpose"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"subject_id,purpose\nC-1,Research\n", "Missing required column"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
        (b"subject_id,purpose,status,timestamp\nC-1\x00\x00,x,granted,2025-01-01T00:00:00Z\n", "binary"),
        (b"subject_id,purpose,status,timestamp\n\xff\xfe\xfa,x,granted,2025-01-01T00:00:00Z\n", "UTF-8"),
    ],
)
def test_fatal_file_errors_stop_the_whole_file(content, message):
    report = ParseReport()
    with pytest.raises(ConsentFileError) as caught:
        for _batch in parse_consent_csv(io.BytesIO(content), secret=SECRET, report=report):
            pass
    assert message in caught.value.message


def test_the_same_event_has_the_same_natural_key():
    first, _ = parse(HEADER + "C-1,Research,granted,2025-01-02T10:00:00Z,,,\n")
    again, _ = parse(HEADER + "C-1,Research,granted,2025-01-02T11:00:00+01:00,v9,phone,\n")
    later, _ = parse(HEADER + "C-1,Research,granted,2025-01-02T10:00:01Z,,,\n")
    assert first[0].natural_key == again[0].natural_key  # same instant, other zone and metadata
    assert first[0].natural_key != later[0].natural_key


def test_state_as_of_takes_the_latest_event_at_or_before_the_time():
    events, _ = parse(
        HEADER + "C-1,Research,granted,2025-01-01T00:00:00Z,,,\n"
        "C-1,Research,withdrawn,2025-03-01T00:00:00Z,,,\n"
        "C-2,Research,granted,2025-02-01T00:00:00Z,,,\n"
    )
    p1, p2 = pseudonymise("C-1", SECRET), pseudonymise("C-2", SECRET)
    assert state_as_of(events, datetime(2025, 1, 15, tzinfo=UTC)) == {(p1, "Research"): "granted"}
    assert state_as_of(events, datetime(2025, 3, 1, tzinfo=UTC)) == {
        (p1, "Research"): "withdrawn",
        (p2, "Research"): "granted",
    }


def test_snapshot_hash_is_order_independent_and_changes_with_consent():
    at = datetime(2025, 1, 1, tzinfo=UTC)
    assert snapshot_hash(["b", "a"], "Research", at) == snapshot_hash(["a", "b"], "Research", at)
    assert snapshot_hash(["a"], "Research", at) != snapshot_hash(["a", "b"], "Research", at)
