"""The JSON-lines contract behind `omicsflow classify`."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from classifiers.jsonl import classify_json_line, classify_line, classify_stream

RECORD_KEYS = {"error_type", "owner", "category", "summary", "action", "classified_by", "rule"}


def test_classifies_a_healthomics_line() -> None:
    out = classify_json_line({"platform": "healthomics", "failure_reason": "SERVICE_ERROR"})
    assert set(out) == RECORD_KEYS
    assert (out["owner"], out["error_type"], out["classified_by"]) == (
        "platform",
        "system",
        "lookup",
    )


def test_tasks_are_read() -> None:
    out = classify_json_line(
        {
            "platform": "seqera",
            "tasks": [
                {
                    "name": "ALIGN",
                    "status": "FAILED",
                    "status_message": "OutOfMemoryError: Container killed due to memory usage",
                    "exit_code": 137,
                    "log_location": "s3://logs/x",
                }
            ],
        }
    )
    assert out["category"] == "out_of_memory"


def test_unknown_keys_are_ignored_and_numeric_strings_accepted() -> None:
    out = classify_json_line({"id": "run-1", "exit_code": "127", "extra": [1, 2]})
    assert out["category"] == "command_not_found"


def test_bad_field_type_is_an_error_naming_the_field() -> None:
    out = classify_json_line({"exit_code": "not a number"})
    assert set(out) == {"error"}
    assert "exit_code" in out["error"]
    assert "platform" in classify_json_line({"platform": "mainframe"})["error"]
    assert "tasks" in classify_json_line({"tasks": ["not an object"]})["error"]


def test_non_object_is_an_error() -> None:
    assert classify_json_line([1, 2]) == {"error": "expected a JSON object, got list"}  # type: ignore[arg-type]


def test_stream_keeps_one_output_line_per_input_line_in_order() -> None:
    lines = [
        '{"exit_code": 137}\n',
        "this is not json\n",
        "\n",
        "[1, 2]\n",
        '{"exit_code": "x"}\n',
        '{"failure_reason": "INPUT_URI_NOT_FOUND"}',
    ]
    out = [json.loads(o) for o in classify_stream(lines)]
    assert len(out) == len(lines)
    assert out[0]["category"] == "out_of_memory"
    assert out[1]["error"].startswith("invalid JSON")
    assert out[2] == {"error": "empty line"}
    assert out[3]["error"].startswith("expected a JSON object")
    assert out[4]["error"].startswith("invalid evidence")
    assert out[5]["owner"] == "lab"


def test_output_lines_have_no_newline_and_are_json() -> None:
    line = classify_line(json.dumps({"log_tail": "a\nb\nsegfault\n\x00"}))
    assert "\n" not in line
    json.loads(line)


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    out = json.loads(classify_line("[" * 100_000 + "]" * 100_000))
    assert "error" in out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=200).filter(lambda s: "\n" not in s), max_size=10))
def test_any_input_lines_give_as_many_json_lines(lines: list[str]) -> None:
    out = list(classify_stream(lines))
    assert len(out) == len(lines)
    for o in out:
        obj = json.loads(o)
        assert set(obj) == {"error"} or set(obj) == RECORD_KEYS


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "platform",
                "exit_code",
                "failure_reason",
                "status_message",
                "error_message",
                "error_report",
                "log_tail",
                "tasks",
                "temp_fail_exit_code",
                "other",
            ]
        ),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=50),
            st.booleans(),
            st.floats(),
            st.lists(st.dictionaries(st.text(max_size=10), st.text(max_size=10)), max_size=3),
        ),
    )
)
def test_any_object_gives_a_record_or_an_error(obj: dict[str, object]) -> None:
    out = classify_json_line(obj)
    assert set(out) == {"error"} or set(out) == RECORD_KEYS
