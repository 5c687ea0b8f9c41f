"""Header value encodings and the transport tier's builders and parsers, one test per §1.2/§1.4 message kind."""

from __future__ import annotations

import json
import math
import uuid

import pytest

from langchain_ably_transport.errors import InvalidArgumentError
from langchain_ably_transport.wire import (
    BoolField,
    EnumField,
    JsonField,
    StrField,
    build_run_end_error,
    build_step_headers,
    build_transport_headers,
    cancel_message,
    parse_bool,
    parse_header_json,
    parse_run_lifecycle,
    parse_steer_codec_message_ids,
    parse_step_lifecycle,
    read_cancel_target,
    read_fields,
    run_end_message,
    run_resume_message,
    run_start_message,
    run_suspend_message,
    step_end_message,
    step_start_message,
    to_header_json,
    write_fields,
)
from langchain_ably_transport.wire.headers import RunEndError, js_number

# --- Value encodings ----------------------------------------------------------------------------------------


def test_str_field_reads_the_raw_string_and_writes_only_strings():
    field, total = StrField("title"), StrField("toolName", "")
    headers: dict[str, str] = {}
    field.write(headers, "Weather")
    field.write(headers, 5)
    total.write(headers, None)
    assert headers == {"title": "Weather"}
    assert (field.read(headers), field.read({})) == ("Weather", None)
    assert (total.read({}), total.read({"toolName": "x"})) == ("", "x")


def test_bool_field_true_is_the_only_truth():
    field, total = BoolField("dynamic"), BoolField("approved", False)
    headers: dict[str, str] = {}
    field.write(headers, True)
    total.write(headers, "true")  # not a bool: not written
    assert headers == {"dynamic": "true"}
    values = ("true", "false", "TRUE", "1", "")
    assert [field.read({"dynamic": v}) for v in values] == [True, False, False, False, False]
    assert (field.read({}), total.read({})) == (None, False)
    assert parse_bool(None) is None


def test_json_field_writes_compact_unescaped_json_and_reads_malformed_as_absent():
    field = JsonField("providerMetadata")
    headers: dict[str, str] = {}
    field.write(headers, {"openai": {"note": "café", "n": [1, 2]}})
    field.write({}, None)
    assert headers == {"providerMetadata": '{"openai":{"note":"café","n":[1,2]}}'}
    assert field.read(headers) == {"openai": {"note": "café", "n": [1, 2]}}
    assert field.read({"providerMetadata": "{not json"}) is None
    assert field.read({"providerMetadata": "NaN"}) is None  # JSON.parse refuses it too
    assert field.read({}) is None


def test_json_values_js_cannot_express_are_refused():
    with pytest.raises(InvalidArgumentError):
        to_header_json(math.nan)
    with pytest.raises(InvalidArgumentError):
        to_header_json({1, 2})
    assert parse_header_json("[1, 2]") == [1, 2]


def test_enum_field_falls_back_for_absent_or_unknown_values():
    field = EnumField("finishReason", ("stop", "length", "tool-calls"), "stop")
    values = ("length", "tool-calls", "bogus")
    assert [field.read({"finishReason": v}) for v in values] == ["length", "tool-calls", "stop"]
    assert field.read({}) == "stop"
    headers: dict[str, str] = {}
    field.write(headers, "length")
    assert headers == {"finishReason": "length"}


def test_fields_write_from_and_read_into_same_named_keys():
    fields = (StrField("toolCallId", ""), BoolField("dynamic"), JsonField("providerMetadata"), StrField("title"))
    headers = write_fields(fields, {"toolCallId": "c1", "dynamic": False, "title": None}, {"kind": "tool-input"})
    assert headers == {"kind": "tool-input", "toolCallId": "c1", "dynamic": "false"}
    assert read_fields(fields, headers) == {"toolCallId": "c1", "dynamic": False}
    assert read_fields(fields, {}) == {"toolCallId": ""}


# --- ai-input / ai-output transport tier --------------------------------------------------------------------


def test_output_transport_set_of_section_1_4():
    headers = build_transport_headers(
        role="assistant", codec_message_id="M", run_id="R", run_client_id="", parent="U", fork_of="F",
        regenerates="G", invocation_id="I", input_client_id="alice", input_codec_message_id="U", step_id="I-step-0",
        step_client_id="", step_start_serial="S", steer_codec_message_ids=["s1", "s2"],
    )
    assert headers == {
        "role": "assistant", "codec-message-id": "M", "run-id": "R", "run-client-id": "", "parent": "U",
        "fork-of": "F", "msg-regenerate": "G", "invocation-id": "I", "input-client-id": "alice",
        "input-codec-message-id": "U", "step-id": "I-step-0", "step-start-serial": "S", "step-client-id": "",
        "steer-codec-message-ids": '["s1","s2"]',
    }
    assert parse_steer_codec_message_ids(headers) == ["s1", "s2"]


def test_input_transport_set_of_a_fresh_client_send():
    headers = build_transport_headers(role="user", codec_message_id="U", parent="A", input_event_id="E")
    assert headers == {"role": "user", "codec-message-id": "U", "parent": "A", "event-id": "E"}


def test_tool_result_fork_input_carries_supersedes():
    headers = build_transport_headers(role="assistant", codec_message_id="X", parent="U", supersedes="R",
                                      input_event_id="E")
    assert headers["supersedes"] == "R"
    assert "run-id" not in headers


def test_empty_anchors_are_skipped_but_empty_identity_is_written():
    headers = build_transport_headers(role="assistant", codec_message_id="M", parent="", fork_of="", regenerates="",
                                      supersedes="", invocation_id="", input_event_id="", run_client_id="",
                                      input_client_id="", steer_codec_message_ids=[])
    assert headers == {"role": "assistant", "codec-message-id": "M", "run-client-id": "", "input-client-id": ""}


@pytest.mark.parametrize(("raw", "ids"), [(None, []), ("not json", []), ('{"a":1}', []), ('[1, "x"]', ["x"])])
def test_steer_ids_read_as_a_list_of_strings(raw, ids):
    headers = {} if raw is None else {"steer-codec-message-ids": raw}
    assert parse_steer_codec_message_ids(headers) == ids


# --- ai-run-start / resume / suspend / end --------------------------------------------------------------------


def _tiers(message):
    return message.name, message.data, message.codec, message.extras


def test_run_start_carries_the_structural_anchors():
    message = run_start_message(run_id="R", run_client_id="", invocation_id="I", input_client_id="alice",
                                input_codec_message_id="U", parent="U", fork_of="F", regenerates="G")
    assert _tiers(message)[:3] == ("ai-run-start", None, {})
    assert message.extras == {"ai": {"transport": {
        "run-id": "R", "run-client-id": "", "parent": "U", "fork-of": "F", "msg-regenerate": "G",
        "invocation-id": "I", "input-client-id": "alice", "input-codec-message-id": "U",
    }}}


def test_run_resume_omits_the_anchors():
    message = run_resume_message(run_id="R", run_client_id="bob", invocation_id="I2", input_codec_message_id="A")
    assert message.name == "ai-run-resume"
    assert message.transport == {"run-id": "R", "run-client-id": "bob", "invocation-id": "I2",
                                 "input-codec-message-id": "A"}


def test_run_suspend():
    message = run_suspend_message(run_id="R", invocation_id="I", input_codec_message_id="U")
    assert message.name == "ai-run-suspend"
    assert message.transport == {"run-id": "R", "run-client-id": "", "invocation-id": "I",
                                 "input-codec-message-id": "U"}


@pytest.mark.parametrize("reason", ["complete", "cancelled"])
def test_run_end_without_error(reason):
    message = run_end_message(run_id="R", reason=reason, invocation_id="I", input_codec_message_id="U")
    assert message.name == "ai-run-end"
    assert message.transport == {"run-id": "R", "run-client-id": "", "run-reason": reason, "invocation-id": "I",
                                 "input-codec-message-id": "U"}


def test_run_end_with_error():
    message = run_end_message(run_id="R", reason="error", error_code=104008, error_message="unable to complete run")
    assert message.transport == {"run-id": "R", "run-client-id": "", "run-reason": "error", "error-code": "104008",
                                 "error-message": "unable to complete run"}


def test_run_end_refuses_an_error_with_another_reason():
    with pytest.raises(InvalidArgumentError):
        run_end_message(run_id="R", reason="complete", error_code=500)


def test_parse_run_start():
    event = parse_run_lifecycle("ai-run-start", {
        "run-id": "R", "run-client-id": "c", "invocation-id": "I", "parent": "U", "fork-of": "F",
        "msg-regenerate": "G", "input-codec-message-id": "U",
    }, serial="s1", timestamp=5)
    assert event is not None
    assert (event.type, event.run_id, event.client_id, event.invocation_id, event.serial, event.timestamp) == (
        "start", "R", "c", "I", "s1", 5)
    assert (event.parent, event.fork_of, event.regenerates, event.input_codec_message_id) == ("U", "F", "G", "U")


def test_parse_run_resume_and_suspend_ignore_anchors():
    for name, kind in (("ai-run-resume", "resume"), ("ai-run-suspend", "suspend")):
        event = parse_run_lifecycle(name, {"run-id": "R", "parent": "U"})
        assert event is not None
        assert (event.type, event.client_id, event.invocation_id, event.parent) == (kind, "", "", None)


def test_parse_run_end_defaults_and_error():
    complete = parse_run_lifecycle("ai-run-end", {"run-id": "R"})
    assert complete is not None and (complete.reason, complete.error) == ("complete", None)
    error = parse_run_lifecycle("ai-run-end", {"run-id": "R", "run-reason": "error", "error-code": "40003",
                                               "error-message": "bad"})
    assert error is not None and error.error == RunEndError("bad", 40003, 400)


@pytest.mark.parametrize("headers", [{}, {"run-id": ""}])
def test_lifecycle_without_run_id_is_ignored(headers):
    assert parse_run_lifecycle("ai-run-start", headers) is None


def test_non_lifecycle_names_parse_to_nothing():
    assert parse_run_lifecycle("ai-output", {"run-id": "R"}) is None
    assert parse_step_lifecycle("ai-run-start", {"run-id": "R", "step-id": "S"}) is None


@pytest.mark.parametrize(("raw", "code", "status"), [
    (None, 104008, 500), ("104008", 104008, 500), ("40003", 40003, 400), ("50000", 50000, 500),
    ("59999", 59999, 599), ("9999", 9999, 500), ("abc", 104008, 500), ("", 0, 500), (" 42 ", 42, 500),
    ("0x9C40", 40000, 400), ("1e400", 104008, 500), ("12345.5", 12345.5, 123),
])
def test_build_run_end_error_follows_js_number(raw, code, status):
    headers = {} if raw is None else {"error-code": raw}
    error = build_run_end_error(headers)
    assert (error.code, error.status_code, error.message) == (code, status, "agent reported an error")


@pytest.mark.parametrize(("text", "value"), [
    ("12", 12), ("-3.5", -3.5), ("", 0), ("\t7\n", 7), ("0b101", 5), ("0o17", 15), ("Infinity", math.inf),
    ("inf", math.nan), ("1_000", math.nan), ("-0x10", math.nan), ("12px", math.nan), (".5", 0.5), ("5.", 5),
])
def test_js_number(text, value):
    result = js_number(text)
    assert (math.isnan(result) and math.isnan(value)) or result == value


# --- ai-step-start / ai-step-end -----------------------------------------------------------------------------


def test_step_start_message():
    message = step_start_message(run_id="R", step_id="I-step-0", invocation_id="I", run_client_id="",
                                 input_client_id="alice", step_client_id="alice")
    assert message.name == "ai-step-start"
    assert message.transport == {"run-id": "R", "step-id": "I-step-0", "invocation-id": "I", "run-client-id": "",
                                 "input-client-id": "alice", "step-client-id": "alice"}
    assert "step-start-serial" not in message.transport and "input-codec-message-id" not in message.transport


def test_step_end_message():
    message = step_end_message(run_id="R", step_id="I-step-0", step_start_serial="S", reason="failed",
                               invocation_id="I", step_client_id="")
    assert message.name == "ai-step-end"
    assert message.transport == {"run-id": "R", "step-id": "I-step-0", "step-start-serial": "S", "invocation-id": "I",
                                 "step-client-id": "", "step-reason": "failed"}
    with pytest.raises(InvalidArgumentError):
        step_end_message(run_id="R", step_id="I-step-0", step_start_serial="")


def test_parse_step_lifecycle():
    start = parse_step_lifecycle("ai-step-start", build_step_headers(run_id="R", step_id="S1", input_client_id="a"),
                                 serial="x")
    assert start is not None
    assert (start.type, start.invocation_client_id, start.step_client_id, start.serial) == ("step-start", "a", "", "x")
    end = parse_step_lifecycle("ai-step-end", {"run-id": "R", "step-id": "S1", "step-start-serial": "x"})
    assert end is not None and (end.type, end.step_start_serial, end.reason) == ("step-end", "x", "complete")
    assert parse_step_lifecycle("ai-step-end", {"run-id": "R", "step-id": "S1"}) is None
    assert parse_step_lifecycle("ai-step-start", {"run-id": "R"}) is None


# --- ai-cancel ----------------------------------------------------------------------------------------------


def test_cancel_message_has_a_fresh_event_id_and_no_data():
    first = cancel_message(input_codec_message_id="U")
    second = cancel_message(run_id="R", input_codec_message_id="U")
    assert (first.name, first.data, first.codec) == ("ai-cancel", None, {})
    assert uuid.UUID(first.transport["event-id"]).version == 4
    assert first.transport["event-id"] != second.transport["event-id"]
    assert second.transport == {"event-id": second.transport["event-id"], "run-id": "R", "input-codec-message-id": "U"}
    assert json.loads(json.dumps(second.extras)) == {"ai": {"transport": second.transport}}


def test_cancel_needs_a_target():
    with pytest.raises(InvalidArgumentError):
        cancel_message()


def test_read_cancel_target():
    target = read_cancel_target(cancel_message(run_id="R").transport)
    assert (target.run_id, target.input_codec_message_id) == ("R", None)
