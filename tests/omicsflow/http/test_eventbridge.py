"""The EventBridge event parser: what a HealthOmics "Run Status Change" must look like."""

from __future__ import annotations

import json

import pytest

from omicsflow.http.eventbridge import MAX_EVENT_BYTES, BadEvent, parse_run_status_change

# The shape AWS documents for HealthOmics run status events.
EVENT = {
    "version": "0",
    "id": "0d6e2c9f-1111-2222-3333-444455556666",
    "detail-type": "Run Status Change",
    "source": "aws.omics",
    "account": "123456789012",
    "region": "us-east-1",
    "resources": ["arn:aws:omics:us-east-1:123456789012:run/1234567"],
    "detail": {"omicsVersion": "1.0.0", "arn": "arn:aws:omics:us-east-1:123456789012:run/1234567",
               "status": "FAILED", "runId": "1234567"},
}


def test_a_documented_event_parses() -> None:
    change = parse_run_status_change(json.dumps(EVENT).encode())
    assert (change.run_id, change.status) == ("1234567", "FAILED")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.update(source="aws.batch"), "source must be 'aws.omics'"),
        (lambda e: e.update({"detail-type": "Task Status Change"}), "detail-type"),
        (lambda e: e.pop("detail"), "no 'detail' object"),
        (lambda e: e["detail"].update(runId="../../etc"), "runId must be"),
        (lambda e: e["detail"].update(runId=1234567), "runId must be"),
        (lambda e: e["detail"].update(status=None), "status must be a string"),
    ],
)
def test_anything_else_is_refused_with_the_reason(mutate, message) -> None:  # type: ignore[no-untyped-def]
    event = json.loads(json.dumps(EVENT))
    mutate(event)
    with pytest.raises(BadEvent, match=message):
        parse_run_status_change(json.dumps(event).encode())


@pytest.mark.parametrize("body", [b"", b"{nope", b"[1,2]", b"\xff\xfe", b"null"])
def test_malformed_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(BadEvent):
        parse_run_status_change(body)


def test_oversized_events_are_refused_before_parsing() -> None:
    with pytest.raises(BadEvent, match="over"):
        parse_run_status_change(b" " * (MAX_EVENT_BYTES + 1))
