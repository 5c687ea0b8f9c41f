"""The id shape a client must respect, and the bound on echoed text: pure."""

from __future__ import annotations

import pytest

from langchain_ably_transport.wire import names
from langchain_ably_transport.wire.headers import run_end_message
from langchain_ably_transport.wire.ids import MAX_ECHOED_TEXT_LENGTH, MAX_ID_LENGTH, bounded_text, is_valid_id, read_ids

A_UUID = "88d4b786-1916-4851-9966-0fb640bb2fff"  # fixed: parallel workers must collect the same test ids


@pytest.mark.parametrize("value", [A_UUID, "call_Xy12", "toolu_01A09q90qw90lq917835lq9", "lc_run--1-2",
                                   "0f1e" * 8, "a", "x" * MAX_ID_LENGTH, "run:42/step-0@agent+v=1~"])
def test_ids_minted_by_the_sdks_providers_and_langgraph_are_ids(value):
    assert is_valid_id(value)


@pytest.mark.parametrize("value", ["", "x" * (MAX_ID_LENGTH + 1), "has space", "tab\there", "new\nline", "nul\x00",
                                   "caf\u00e9", "\U0001f4a5", None, 5, ["id"]])
def test_empty_long_spaced_control_non_ascii_and_non_strings_are_not(value):
    assert not is_valid_id(value)


def test_read_ids_reads_absent_and_empty_as_none_and_names_each_refusal_without_echoing_it():
    headers = {names.HEADER_PARENT: "p1", names.HEADER_FORK_OF: "", names.HEADER_RUN_ID: "y" * 60_000}
    values, problems = read_ids(headers, (names.HEADER_PARENT, names.HEADER_FORK_OF, names.HEADER_RUN_ID,
                                          names.HEADER_MSG_REGENERATE))
    assert values == {names.HEADER_PARENT: "p1", names.HEADER_FORK_OF: None, names.HEADER_RUN_ID: None,
                      names.HEADER_MSG_REGENERATE: None}
    assert problems == [f"run-id is not an id (60000 characters; ids are 1 to {MAX_ID_LENGTH} visible ASCII "
                        "characters (no spaces or control characters))"]


def test_echoed_text_is_cut_and_marked_and_a_run_end_always_fits():
    assert bounded_text("short") == "short"
    cut = bounded_text("é" * 100_000)
    assert cut.startswith("é" * MAX_ECHOED_TEXT_LENGTH) and cut.endswith(f"[{100_000 - MAX_ECHOED_TEXT_LENGTH} more "
                                                                         "characters]")
    end = run_end_message(run_id="r", reason="error", error_code=40000, error_message="quoted input " * 10_000)
    assert end.size() < 8 * 1024
