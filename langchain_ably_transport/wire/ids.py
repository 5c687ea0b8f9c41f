"""The shape of an id a client may put on the wire, and the bound on any text an agent echoes back.

Any client that may publish on a session can put anything in a header, up to Ably's 64 KiB message limit. An
agent copies a trigger's ids into what it publishes (`input-codec-message-id` and `parent` on every lifecycle
message and output, `steer-codec-message-ids`), so an id of 60 KiB made the agent's own `ai-run-start` too big
to publish. Ids are therefore checked where they enter: 1 to `MAX_ID_LENGTH` visible ASCII characters, which
every id the JS SDK mints (uuids), every provider's tool-call id and LangGraph's interrupt ids satisfy.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

MAX_ID_LENGTH = 256
MAX_CLIENT_ID_LENGTH = 256
MAX_ECHOED_TEXT_LENGTH = 2000
_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_ID_LENGTH}}}")
ID_SHAPE = f"1 to {MAX_ID_LENGTH} visible ASCII characters (no spaces or control characters)"


def is_valid_id(value: object) -> bool:
    """Whether `value` is an id of the documented shape (`ID_SHAPE`)."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def describe_invalid(key: str, value: str) -> str:
    """Why `value` is refused as `key`, without echoing it (it may be 60 KiB of anything)."""
    return f"{key} is not an id ({len(value)} characters; ids are {ID_SHAPE})"


def read_ids(headers: Mapping[str, str], keys: Iterable[str]) -> tuple[dict[str, str | None], list[str]]:
    """Each of `keys` read as an id: absent or `""` as None, an id out of shape as None with the reason listed."""
    values: dict[str, str | None] = {}
    problems: list[str] = []
    for key in keys:
        value = headers.get(key) or None
        if value is not None and not is_valid_id(value):
            problems.append(describe_invalid(key, value))
            value = None
        values[key] = value
    return values, problems


def bounded_text(text: str, limit: int = MAX_ECHOED_TEXT_LENGTH) -> str:
    """`text` cut to `limit` characters, marked when cut: an error message may quote a client's whole input."""
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} more characters]"
    return text[:limit] + marker
