"""Every name, header key, reserved codec key, enumeration and error code of §1 and §8, as 0.8.0 spells them."""

from __future__ import annotations

from langchain_ably_transport.wire import names


def test_the_nine_message_names_of_section_1_1():
    assert {
        names.AI_INPUT, names.AI_OUTPUT, names.RUN_START, names.RUN_RESUME, names.RUN_SUSPEND, names.RUN_END,
        names.STEP_START, names.STEP_END, names.CANCEL,
    } == {
        "ai-input", "ai-output", "ai-run-start", "ai-run-resume", "ai-run-suspend", "ai-run-end", "ai-step-start",
        "ai-step-end", "ai-cancel",
    }
    union = names.RUN_LIFECYCLE_NAMES | names.STEP_LIFECYCLE_NAMES | names.CODEC_NAMES | {"ai-cancel"}
    assert union == names.ALL_NAMES
    assert len(names.ALL_NAMES) == 9


def test_every_transport_header_key_of_section_1_2():
    expected = {
        "HEADER_STREAM": "stream", "HEADER_STATUS": "status", "HEADER_STREAM_ID": "stream-id",
        "HEADER_DISCRETE": "discrete", "HEADER_RUN_ID": "run-id", "HEADER_INVOCATION_ID": "invocation-id",
        "HEADER_EVENT_ID": "event-id", "HEADER_CODEC_MESSAGE_ID": "codec-message-id",
        "HEADER_RUN_CLIENT_ID": "run-client-id", "HEADER_INPUT_CLIENT_ID": "input-client-id", "HEADER_ROLE": "role",
        "HEADER_PARENT": "parent", "HEADER_FORK_OF": "fork-of", "HEADER_MSG_REGENERATE": "msg-regenerate",
        "HEADER_SUPERSEDES": "supersedes", "HEADER_RUN_REASON": "run-reason", "HEADER_ERROR_CODE": "error-code",
        "HEADER_ERROR_MESSAGE": "error-message", "HEADER_STEP_ID": "step-id",
        "HEADER_STEP_START_SERIAL": "step-start-serial", "HEADER_STEP_REASON": "step-reason",
        "HEADER_STEP_CLIENT_ID": "step-client-id", "HEADER_INPUT_CODEC_MESSAGE_ID": "input-codec-message-id",
        "HEADER_STEER_CODEC_MESSAGE_IDS": "steer-codec-message-ids",
    }
    assert {constant: getattr(names, constant) for constant in expected} == expected
    assert set(expected.values()) == names.TRANSPORT_HEADERS


def test_reserved_codec_keys_of_section_1_3():
    assert (names.KIND, names.PART_TYPE) == ("kind", "partType")


def test_enumerations():
    assert [s.value for s in names.StreamStatus] == ["streaming", "complete", "cancelled"]
    assert [r.value for r in names.RunEndReason] == ["complete", "cancelled", "error"]
    assert [r.value for r in names.StepEndReason] == ["complete", "failed", "cancelled"]
    assert [s.value for s in names.RunStatus] == ["active", "suspended", "complete", "cancelled", "error"]


def test_actions_follow_ably_python_numbering():
    from ably.types.message import MessageAction

    for action in MessageAction:
        assert names.ACTION_BY_NUMBER[int(action)].name.replace("MESSAGE_", "") == action.name.replace("MESSAGE_", "")
